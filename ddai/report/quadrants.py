"""Phase 3 quadrants: judge score against retrieval NDCG, per rollout and per prompt.

WHY these four: the Phase 2 log records both the answer's judge score and the retrieval's
NDCG, so each rollout (and each prompt, by its means) falls in one of
  solved            judge high, NDCG high — right answer from the right evidence
  guessing          judge high, NDCG low  — right answer without the evidence
  reasoning_failure judge low,  NDCG high — evidence found, answer wrong
  failure           judge low,  NDCG low
"High" means ≥ the threshold (options ``--judge-high`` / ``--ndcg-high``). Guessing and
reasoning failure are the two cases the users' Phase 3 plan trains on differently, and the
prompts with the largest gap between mean judge and mean NDCG are listed first, labelled by
the gap's direction (``judge>NDCG`` / ``NDCG>judge``) with their quadrant beside it: a prompt
at judge 0.74 / NDCG 0.90 is solved, not a reasoning failure.
Rollouts missing either score are counted as ``unscored`` and left out of the quadrants.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ddai.report.logstats import QUADRANTS, Thresholds
from ddai.report.summarize import LogReport, _r
from ddai.report.views import direction


def classify(judge: np.ndarray, ndcg: np.ndarray, th: Thresholds) -> np.ndarray:
    """Quadrant name per row (``None`` when a score is missing)."""
    jh = judge >= th.judge_high
    nh = ndcg >= th.ndcg_high
    ok = np.isfinite(judge) & np.isfinite(ndcg)
    out = np.where(jh & nh, "solved", np.where(jh, "guessing", np.where(nh, "reasoning_failure", "failure")))
    return np.where(ok, out, None)


def add_quadrants(rep: LogReport, th: Thresholds, top: int = 10) -> None:
    """Add the ``quadrants`` block to the summary and a ``quadrant`` column to the prompts."""
    df = rep.prompts
    roll = {q: int(df[f"q_{q}"].sum()) for q in QUADRANTS} if len(df) else {q: 0 for q in QUADRANTS}
    scored = sum(roll.values())
    df["quadrant"] = classify(df["judge_mean"].to_numpy(), df["ndcg_mean"].to_numpy(), th) if len(df) else []
    counts = df["quadrant"].value_counts().to_dict() if len(df) else {}
    p_scored = int(sum(counts.values()))
    disc = discordant(df, top)
    rep.summary["quadrants"] = {
        "thresholds": {"judge_high": th.judge_high, "ndcg_high": th.ndcg_high},
        "rollouts": {
            "scored": scored, "unscored": rep.part.rollouts - scored,
            **{q: {"n": roll[q], "fraction": _r(roll[q] / scored if scored else None)} for q in QUADRANTS},
        },
        "prompts": {
            "scored": p_scored, "unscored": len(df) - p_scored,
            **{q: {"n": int(counts.get(q, 0)), "fraction": _r(counts.get(q, 0) / p_scored if p_scored else None)}
               for q in QUADRANTS},
        },
        "most_discordant": disc,
    }


def discordant(df: pd.DataFrame, top: int) -> list[dict[str, Any]]:
    """Prompts with the largest |mean judge − mean NDCG|; ties by more rollouts, then id."""
    if not len(df):
        return []
    d = df[np.isfinite(df["judge_mean"]) & np.isfinite(df["ndcg_mean"])].copy()
    d["abs_gap"] = (d["judge_mean"] - d["ndcg_mean"]).abs()
    d = d.sort_values(["abs_gap", "n", "prompt"], ascending=[False, False, True], kind="mergesort").head(top)
    return [{
        "prompt": r.prompt, "rollouts": int(r.n), "judge_mean": _r(r.judge_mean), "ndcg_mean": _r(r.ndcg_mean),
        "gap": _r(r.judge_mean - r.ndcg_mean),
        "kind": direction(r.judge_mean, r.ndcg_mean),
        "quadrant": r.quadrant,
    } for r in d.itertuples()]
