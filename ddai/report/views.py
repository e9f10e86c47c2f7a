"""Presentation choices shared by the PNGs, the HTML page, the terminal and W&B.

WHY one module: "which prompts get a learning curve", "what tells the sweep's runs apart"
and "what goes in the headline" are decisions about what a person sees, not figures of
the log. Made here once, every renderer shows the same prompts, labels and numbers.
Everything is derived from the :class:`~ddai.report.model.Report` the reading side built.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ddai.report.logstats import QUADRANTS

MAX_CURVES = 6


def direction(judge: float | None, ndcg: float | None) -> str:
    """Which score is ahead: ``judge>NDCG``, ``NDCG>judge`` or ``judge=NDCG``.

    WHY not the quadrant name: a prompt at judge 0.74 / NDCG 0.90 is *solved* (both high);
    calling it a reasoning failure because NDCG is ahead misleads. The direction of the gap is
    what the discordance table ranks; the quadrant is shown beside it.
    """
    if judge is None or ndcg is None or not (math.isfinite(judge) and math.isfinite(ndcg)):
        return "—"
    if judge > ndcg:
        return "judge>NDCG"
    if ndcg > judge:
        return "NDCG>judge"
    return "judge=NDCG"


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


# -- learning curves ----------------------------------------------------------------------
def curve_prompts(lr: Any, chosen: list[str], limit: int = MAX_CURVES) -> list[tuple[str, str]]:
    """(prompt, why) pairs to draw: the user's ``--prompt`` ids, else a mix of the most
    discordant, most improved and most regressed prompts (judge at last vs first step).

    WHY a mix: discordance says where judge and retrieval disagree; improvement and
    regression say whether training moved anything. Prompts seen at one step only cannot
    have improved, so they are picked only as discordant.
    """
    known = set(lr.prompts["prompt"]) if len(lr.prompts) else set()
    if chosen:
        return [(p, "chosen") for p in chosen if p in known][: max(limit, len(chosen))]
    out: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(p: str, why: str) -> None:
        if p not in seen and len(out) < limit:
            seen.add(p)
            out.append((p, why))

    df = lr.prompts
    if not len(df):
        return out
    change = pd.DataFrame({"prompt": df["prompt"], "d": df["judge_last"] - df["judge_first"],
                           "steps": df["steps_seen"]})
    change = change[(change["steps"] >= 2) & np.isfinite(change["d"])]
    imp = change[change["d"] > 0].sort_values(["d", "prompt"], ascending=[False, True], kind="mergesort")
    reg = change[change["d"] < 0].sort_values(["d", "prompt"], ascending=[True, True], kind="mergesort")
    disc = [d["prompt"] for d in lr.summary.get("quadrants", {}).get("most_discordant", [])]
    per = max(1, limit // 3)
    for p in disc[:per]:
        add(p, "most discordant")
    for p in imp["prompt"].head(per):
        add(p, "most improved")
    for p in reg["prompt"].head(per):
        add(p, "most regressed")
    for p in disc[per:]:
        add(p, "most discordant")
    return out


def curves_of(lr: Any, prompts: list[str]) -> dict[str, pd.DataFrame]:
    """prompt → its (step, judge_mean, ndcg_mean, n) rows, sorted by step."""
    c = lr.curves
    if not len(c):
        return {}
    c = c[(c["step"] >= 0) & c["prompt"].isin(prompts)]
    return {p: g.sort_values("step")[["step", "judge_mean", "ndcg_mean", "n"]].reset_index(drop=True)
            for p, g in c.groupby("prompt", sort=False)}


# -- sweeps -------------------------------------------------------------------------------
def _kv(overrides: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for o in overrides or []:
        s = str(o).lstrip("+~")
        if "=" in s:
            k, v = s.split("=", 1)
            out[k] = v
    return out


def _manifest_kv(job: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for src in ("thresholds", "rule_params"):
        block = job.get(src)
        if isinstance(block, dict):
            for k, v in block.items():
                out.setdefault(str(k), str(v))
    for k in ("rule", "sort", "score"):
        if job.get(k) is not None:
            out[k] = str(job[k])
    return out


def swept_labels(jobs: list[dict[str, Any]]) -> dict[str, str]:
    """job → ``theta1=0.05 sort=frontier``: only the values that differ between the jobs.

    WHY: job numbers say nothing; the full override list is mostly shared. The overrides
    the launcher recorded are used first, the manifests' rule settings otherwise.
    """
    for getter in (lambda j: _kv(j.get("overrides")), _manifest_kv):
        vals = {str(j["job"]): getter(j) for j in jobs}
        keys = sorted({k for v in vals.values() for k in v})
        differ = [k for k in keys if len({v.get(k) for v in vals.values()}) > 1]
        if differ and len(jobs) > 1:
            return {job: " ".join(f"{k.rsplit('.', 1)[-1]}={v[k]}" for k in differ if k in v) or f"job {job}"
                    for job, v in vals.items()}
    return {str(j["job"]): f"job {j['job']}" for j in jobs}


def bucket_order(names: list[str], train: str | None) -> list[str]:
    """The training bucket first (bottom of a stack), ``unmatched`` last, others as given."""
    first = [train] if train in names else [b for b in ("A",) if b in names][:1]
    last = [b for b in names if b == "unmatched" and b not in first]
    return first + [b for b in names if b not in first and b not in last] + last


# -- headline -----------------------------------------------------------------------------
def trend(per_step: list[dict[str, Any]], key: str) -> float | None:
    """Least-squares slope of ``key`` per 100 steps (None with fewer than two steps)."""
    pts = [(r["step"], r[key]) for r in per_step if r.get(key) is not None]
    if len(pts) < 2:
        return None
    x = np.array([p[0] for p in pts], dtype=float)
    y = np.array([p[1] for p in pts], dtype=float)
    if np.ptp(x) == 0:
        return None
    slope = np.polyfit(x, y, 1)[0]
    return float(slope * 100)


def trend_text(v: float | None) -> str:
    """``+0.060``, ``-0.012`` or ``±0.000`` (never ``-0.000``) per 100 steps; ``""`` without a trend."""
    if v is None:
        return ""
    return "±0.000" if abs(v) < 0.0005 else f"{v:+.3f}"


def headline(s: dict[str, Any]) -> dict[str, Any]:
    """The figures a person wants first, from one log's summary."""
    st = s.get("steps") or {}
    per_step = s.get("per_step") or []
    cost = s.get("cost_usd") or {}
    total_cost = None
    if cost:
        total_cost = (cost.get("sum") or 0.0) + (cost.get("generator_sum") or 0.0)
    nsteps = st.get("count") or 0
    q = (s.get("quadrants") or {}).get("rollouts") or {}
    return {
        "rollouts": s.get("rollouts"), "prompts": s.get("prompts"), "steps": nsteps,
        "first_step": st.get("first"), "last_step": st.get("last"),
        **{f"{k}_mean": (s.get("scores") or {}).get(k, {}).get("mean") for k in ("judge", "ndcg", "final")},
        **{f"{k}_trend": trend(per_step, f"{k}_mean") for k in ("judge", "ndcg", "final")},
        "error_rate": (s.get("rates") or {}).get("error_rate"),
        "cache_hit_rate": (s.get("rates") or {}).get("cache_hit_rate"),
        "cost_usd": total_cost,
        "cost_per_step": (total_cost / nsteps) if total_cost is not None and nsteps else None,
        "quadrants": {k: (q.get(k) or {}).get("fraction") for k in QUADRANTS},
    }
