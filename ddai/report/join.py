"""Join a Phase 2 log's per-prompt figures with the curriculum's Phase 1 difficulty.

WHY: the curriculum promised that the A-bucket prompts, trained easy → hard, would improve.
Grouping the Phase 2 figures by Phase 1 bucket and by Phase 1 difficulty decile (decile 1 =
the hardest tenth, lowest Phase 1 mean) shows whether the hard prompts did, with each
group's judge score at the prompts' first and last appearance side by side.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ddai.report.logstats import QUADRANTS
from ddai.report.summarize import LogReport, _r


def _group_figures(g: pd.DataFrame) -> dict[str, Any]:
    def wmean(s: str, n: str) -> float | None:
        tot = g[n].sum()
        return _r((g[s + "_mean"].fillna(0) * g[n]).sum() / tot) if tot else None

    out = {
        "prompts": len(g),
        "rollouts": int(g["n"].sum()),
        "phase1_mean": _r(g["phase1"].mean()) if g["phase1"].notna().any() else None,
        "judge_mean": wmean("judge", "judge_n"),
        "ndcg_mean": wmean("ndcg", "ndcg_n"),
        "final_mean": _r(g["final_mean"].mean()) if g["final_mean"].notna().any() else None,
        "error_rate": _r(g["errors"].sum() / g["n"].sum()) if g["n"].sum() else None,
        "judge_first": _r(g["judge_first"].mean()) if g["judge_first"].notna().any() else None,
        "judge_last": _r(g["judge_last"].mean()) if g["judge_last"].notna().any() else None,
    }
    out["judge_change"] = (_r(out["judge_last"] - out["judge_first"])
                           if out["judge_first"] is not None and out["judge_last"] is not None else None)
    if "quadrant" in g:
        out["quadrants"] = {q: int((g["quadrant"] == q).sum()) for q in QUADRANTS}
    return out


def join_curriculum(rep: LogReport, phase1: pd.DataFrame, deciles: int = 10) -> None:
    """Add ``by_bucket`` and ``by_decile`` blocks to the log's summary."""
    df = rep.prompts.merge(phase1, on="prompt", how="left")
    df["bucket"] = df["bucket"].fillna("not in curriculum")
    by_bucket = {str(b): _group_figures(g) for b, g in df.groupby("bucket", sort=True)}
    joined = df[df["phase1"].notna()].sort_values(["phase1", "prompt"], kind="mergesort")
    by_decile = []
    k = min(deciles, len(joined))
    if k:
        labels = np.floor(np.arange(len(joined)) * k / len(joined)).astype(int) + 1
        joined = joined.assign(decile=labels)
        for dec, g in joined.groupby("decile", sort=True):
            by_decile.append({"decile": int(dec), "phase1_min": _r(g["phase1"].min()),
                              "phase1_max": _r(g["phase1"].max()), **_group_figures(g)})
    rep.summary["curriculum_join"] = {
        "matched_prompts": int(df["phase1"].notna().sum() if "phase1" in df else 0),
        "log_prompts_not_in_curriculum": int((df["bucket"] == "not in curriculum").sum()),
        "deciles": k,
        "by_bucket": by_bucket,
        "by_decile": by_decile,
    }
    rep.extra["joined"] = df
