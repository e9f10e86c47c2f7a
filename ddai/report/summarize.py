"""Turn an aggregated log (a :class:`~ddai.report.logstats.Partial`) into report figures.

WHY separate from the aggregation: the streaming part must stay small and fast; this part
runs once per log on bounded data (per prompt, per step, per group) and produces both the
JSON-ready summary dict (stable keys) and a per-prompt table that the quadrant, next-round,
curriculum-join and plot code share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ddai.report.logstats import CURVE_COLS, GI, QUADRANTS, Partial

if TYPE_CHECKING:
    import pandas as pd

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
LATENCY_Q = (0.5, 0.95, 0.99)


@dataclass
class LogReport:
    """Everything the renderers need about one log."""

    path: str
    fmt: str
    nbytes: int
    part: Partial
    summary: dict[str, Any]
    prompts: pd.DataFrame                          # one row per prompt
    curves: pd.DataFrame                           # one row per (prompt, step) group
    extra: dict[str, Any] = field(default_factory=dict)


def _r(x: float | None, nd: int = 6) -> float | None:
    """Round for stable, readable JSON; None for missing or non-finite."""
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), nd)


def _div(a: float, b: float) -> float | None:
    return a / b if b else None


def score_block(part: Partial, name: str) -> dict[str, Any]:
    sk = part.sk[name]
    qs = sk.quantiles(QUANTILES)
    out: dict[str, Any] = {
        "n": sk.n, "missing": part.missing[name], "nonfinite": part.nonfinite[name],
        "invalid": part.invalid.get(name, 0),
        # finite but outside [0, 1]: counted, never averaged (the one usable-score rule)
        "out_of_range": part.out_of_range[name],
        "out_of_range_min": _r(part.out_of_range_span[name][0]) if name in part.out_of_range_span else None,
        "out_of_range_max": _r(part.out_of_range_span[name][1]) if name in part.out_of_range_span else None,
        "mean": _r(sk.mean()), "std": _r(sk.std()),
        "min": _r(sk.lo) if sk.n else None, "max": _r(sk.hi) if sk.n else None,
        "quantiles_exact": sk.exact,
    }
    for q, v in zip(QUANTILES, qs):
        out[f"p{round(q * 100):02d}"] = _r(v)
    return out


def prompt_table(part: Partial) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-prompt figures and the per-(prompt, step) curve table."""
    import pandas as pd  # imported late: while a big log is read, by this process (logstats)

    pp = part.per_prompt[: len(part.keys)]
    g = part.groups()
    curves = pd.DataFrame(g, columns=["pidx", "step", *CURVE_COLS])
    curves["pidx"] = curves["pidx"].astype(np.int64)
    curves["step"] = curves["step"].astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        curves["judge_mean"] = curves["j_sum"] / curves["j_n"]
        curves["ndcg_mean"] = curves["n_sum"] / curves["n_n"]
        curves["final_mean"] = curves["f_sum"] / curves["f_n"]
    curves["prompt"] = [part.keys[i] for i in curves["pidx"]] if len(curves) else []

    def col(name: str) -> np.ndarray:
        return pp[:, GI[name]] if len(pp) else np.zeros(0)

    with np.errstate(invalid="ignore", divide="ignore"):
        jm = col("j_sum") / col("j_n")
        nm = col("n_sum") / col("n_n")
        fm = col("f_sum") / col("f_n")
        js = np.sqrt(np.maximum(col("j_sq") / col("j_n") - jm * jm, 0))
        ns = np.sqrt(np.maximum(col("n_sq") / col("n_n") - nm * nm, 0))
        gap = col("disc_sum") / col("disc_n")
    df = pd.DataFrame({
        "prompt": list(part.keys), "n": col("n").astype(np.int64),
        "judge_n": col("j_n").astype(np.int64), "judge_mean": jm, "judge_std": js,
        "ndcg_n": col("n_n").astype(np.int64), "ndcg_mean": nm, "ndcg_std": ns, "final_mean": fm,
        "errors": col("err").astype(np.int64), "judge_failed": col("jfail").astype(np.int64),
        "mean_gap": gap,
        **{f"q_{q}": col(f"q_{q}").astype(np.int64) for q in QUADRANTS},
    })
    # first / last appearance (by step; groups are sorted by prompt then step)
    first_step = np.full(len(df), -1, dtype=np.int64)
    last_step = np.full(len(df), -1, dtype=np.int64)
    jf = np.full(len(df), np.nan)
    jl = np.full(len(df), np.nan)
    steps_seen = np.zeros(len(df), dtype=np.int64)
    if len(curves):
        pidx = curves["pidx"].to_numpy()
        starts = np.flatnonzero(np.r_[True, pidx[1:] != pidx[:-1]])
        ends = np.r_[starts[1:], len(pidx)] - 1
        who = pidx[starts]
        first_step[who] = curves["step"].to_numpy()[starts]
        last_step[who] = curves["step"].to_numpy()[ends]
        jf[who] = curves["judge_mean"].to_numpy()[starts]
        jl[who] = curves["judge_mean"].to_numpy()[ends]
        steps_seen[who] = ends - starts + 1
    df["first_step"] = first_step
    df["last_step"] = last_step
    df["steps_seen"] = steps_seen
    df["judge_first"] = jf
    df["judge_last"] = jl
    return df, curves


def summarize(path: str, fmt: str, nbytes: int, part: Partial) -> LogReport:
    """Build the per-log summary dict (without quadrants / joins, added by their modules)."""
    part.flush()
    prompts, curves = prompt_table(part)
    lat = part.sk["latency_s"]
    lq = lat.quantiles(LATENCY_Q)
    steps = sorted(part.per_step)
    per_step = []
    if steps:
        prompts_per_step = curves[curves["step"] >= 0].groupby("step").size().to_dict()
        for st in steps:
            row = part.per_step[st]
            per_step.append({
                "step": int(st), "rollouts": int(row[GI["n"]]), "prompts": int(prompts_per_step.get(st, 0)),
                "judge_mean": _r(_div(row[GI["j_sum"]], row[GI["j_n"]])),
                "ndcg_mean": _r(_div(row[GI["n_sum"]], row[GI["n_n"]])),
                "final_mean": _r(_div(row[GI["f_sum"]], row[GI["f_n"]])),
                "error_rate": _r(_div(row[GI["err"]], row[GI["n"]])),
                "latency_mean": _r(_div(row[GI["lat_sum"]], row[GI["lat_n"]])),
            })
    n = part.rollouts
    tokens = {k: {"sum": _r(v[0], 3), "mean": _r(_div(v[0], v[1]), 3), "n": v[1]}
              for k, v in part.tokens.items() if v[1]}
    summary: dict[str, Any] = {
        "path": path,
        "format": fmt,
        "read": {
            "bytes": nbytes, "lines": part.lines, "blank_lines": part.blank,
            "malformed_lines": part.malformed, "truncated_last_line": part.truncated,
            "skipped_records": part.skipped,
            "problems": [{"line": ex.line, "reason": ex.reason, **({"file": ex.path} if ex.path else {})}
                         for ex in part.examples],
        },
        "rollouts": n,
        "prompts": len(part.keys),
        "steps": ({"count": len(steps), "first": int(steps[0]), "last": int(steps[-1])} if steps else None),
        "scores": {name: score_block(part, name) for name in ("judge", "ndcg", "final")},
        "judge_subscores": {k: _r(_div(*v)) for k, v in sorted(part.subscores.items())},
        "rates": {
            "error_rate": _r(_div(part.errors, n)),
            "judge_failed_rate": _r(_div(part.judge_failed, n)),
            "cache_hit_rate": _r(_div(part.cache[0], part.cache[1])),
            "cache_known": part.cache[1],
            "errors_by_kind": dict(sorted(part.labels["error_kind"].items(), key=lambda kv: (-kv[1], kv[0]))),
        },
        "latency_s": {"n": lat.n, "mean": _r(lat.mean()), "p50": _r(lq[0]), "p95": _r(lq[1]),
                      "p99": _r(lq[2]), "max": _r(lat.hi) if lat.n else None, "quantiles_exact": lat.exact},
        "tokens": tokens or None,
        "cost_usd": ({"sum": _r(part.cost[0]), "mean": _r(_div(*part.cost), 9), "n": part.cost[1],
                      "generator_sum": _r(part.generator_cost[0]) if part.generator_cost[1] else None}
                     if part.cost[1] or part.generator_cost[1] else None),
        "labels": {k: dict(sorted(v.items())) for k, v in part.labels.items() if v and k != "error_kind"},
        "per_step": per_step,
    }
    return LogReport(path=path, fmt=fmt, nbytes=nbytes, part=part, summary=summary,
                     prompts=prompts, curves=curves)
