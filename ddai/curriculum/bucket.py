"""Bucket rules: a prompt's score summary → a named bucket.

WHY several rules: the reference rule (mean between θ1 and θ_easy) is kept exactly, but the
mean hides the spread GRPO learns from (five agents at 0.4 give no advantage; 0.8 and 0.0
do), so ``spread`` and ``pass_rate`` select on mixed outcomes, and ``quantile`` gives the
generic n-level split of the users' bucketing guide. A prompt without a usable score is
never guessed into a bucket: it goes to ``no_score``.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ddai.curriculum.config import quantile_names
from ddai.curriculum.stats import Summary

NO_SCORE = "no_score"


@dataclass
class Bucketing:
    labels: dict[int, str]          # row -> bucket name
    names: list[str]                # the rule's buckets, in file order (train bucket first)
    train: str                      # the bucket written as the training set
    rule: dict[str, Any]            # {"name": ..., "params": {...}} for the manifest


def threshold_bucket(mean: float, theta1: float, theta_easy: float) -> str:
    """The reference rule: B above θ_easy, A in [θ1, θ_easy], 0 below θ1."""
    if mean > theta_easy:
        return "B"
    if mean >= theta1:
        return "A"
    return "0"


def is_mixed(s: Summary, high: float, low: float, min_std: float | None) -> bool:
    """Evidence of mixed outcomes: a real success and a real failure, or enough spread."""
    if s.max is not None and s.min is not None and s.max >= high and s.min <= low:
        return True
    return min_std is not None and s.std is not None and s.std >= min_std


def quantile_edges(means: list[float], n: int) -> list[float]:
    """Cut points at k/n quantiles (linear interpolation) of the matched prompts' means."""
    if not means:
        return []
    arr = np.asarray(sorted(means), dtype=np.float64)
    return [float(x) for x in np.quantile(arr, [k / n for k in range(1, n)])]


def assign(summaries: Mapping[int, Summary], c: Any) -> Bucketing:
    """Bucket every row in ``summaries`` under rule ``c.rule`` (``c``: the curriculum config)."""
    labels: dict[int, str] = {}
    scored = {r: s for r, s in summaries.items() if s.n > 0}
    for r, s in summaries.items():
        if s.n == 0:
            labels[r] = NO_SCORE
    theta1, theta_easy = float(c.theta1), float(c.theta_easy)
    rule = c.rule
    if rule == "threshold":
        for r, s in scored.items():
            labels[r] = threshold_bucket(s.mean, theta1, theta_easy)
        return Bucketing(labels, ["A", "B", "0"], "A",
                         {"name": rule, "params": {"theta1": theta1, "theta_easy": theta_easy}})
    if rule == "spread":
        sp = c.spread
        high, low = float(sp.high), float(sp.low)
        min_std = None if sp.min_std is None else float(sp.min_std)
        flat = str(sp.flat_bucket)
        for r, s in scored.items():
            b = threshold_bucket(s.mean, theta1, theta_easy)
            labels[r] = flat if b == "A" and not is_mixed(s, high, low, min_std) else b
        return Bucketing(labels, ["A", "B", "0", flat], "A",
                         {"name": rule, "params": {"theta1": theta1, "theta_easy": theta_easy,
                                                   "high": high, "low": low, "min_std": min_std,
                                                   "flat_bucket": flat}})
    if rule == "pass_rate":
        pr = c.pass_rate
        tau, p_lo, p_hi = float(pr.tau), float(pr.p_lo), float(pr.p_hi)
        for r, s in scored.items():
            p = s.pass_rate
            labels[r] = "B" if p > p_hi else ("A" if p >= p_lo else "0")
        return Bucketing(labels, ["A", "B", "0"], "A",
                         {"name": rule, "params": {"tau": tau, "p_lo": p_lo, "p_hi": p_hi}})
    if rule == "quantile":
        q = c.quantile
        names = quantile_names(q)
        explicit = [float(e) for e in (q.edges or [])]
        edges = explicit or quantile_edges([s.mean for s in scored.values()], len(names))
        for r, s in scored.items():
            labels[r] = names[bisect_right(edges, s.mean)] if edges else names[0]
        train = str(q.train) if q.train is not None else names[len(names) // 2]
        ordered = [train] + [n for n in names if n != train]
        return Bucketing(labels, ordered, train,
                         {"name": rule, "params": {"names": names, "edges": edges,
                                                   "edges_from": "explicit" if explicit else "quantiles",
                                                   "train": train}})
    raise ValueError(f"unknown rule {rule!r}")
