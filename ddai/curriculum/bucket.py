"""Bucket rules: a prompt's score summary → a named bucket.

WHY several rules: the reference rule (mean between θ1 and θ_easy) is kept exactly, but the
mean hides the spread GRPO learns from (five agents at 0.4 give no advantage; 0.8 and 0.0
do), so ``spread`` and ``pass_rate`` select on mixed outcomes, and ``quantile`` gives the
generic n-level split of the users' bucketing guide. ``interval`` is the pass-rate rule made
noise-aware: five rollouts cannot tell 0.2 from 0.5, so a prompt is put in A, B or 0 only when
its whole confidence interval lies in that band, and in an ``uncertain`` bucket when it
straddles a threshold (a later round can re-test it instead of excluding it on one noisy
reading). A prompt without a usable score is never guessed into a bucket: it goes to
``no_score``.
"""

from __future__ import annotations

import math
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


INTERVAL_METHODS = ("wilson", "beta")


def wilson_interval(k: float, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (k successes in n trials)."""
    from statistics import NormalDist

    if n <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-12:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """Regularized incomplete beta I_x(a, b) (no SciPy needed for a handful of prompts)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1 - x) / b


def _beta_ppf(q: float, a: float, b: float) -> float:
    lo, hi = 0.0, 1.0
    for _ in range(60):  # bisection: 2^-60 is far below any threshold a user sets
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if beta_cdf(mid, a, b) < q else (lo, mid)
    return (lo + hi) / 2


def beta_interval(k: float, n: int, confidence: float) -> tuple[float, float]:
    """Equal-tailed Jeffreys interval: quantiles of Beta(k + ½, n − k + ½) (ends pinned at 0/1)."""
    a, b = k + 0.5, n - k + 0.5
    lo = 0.0 if k <= 0 else _beta_ppf((1 - confidence) / 2, a, b)
    hi = 1.0 if k >= n else _beta_ppf(1 - (1 - confidence) / 2, a, b)
    return lo, hi


def validate_interval(c: Any) -> None:
    from ddai.curriculum.config import _bucket_name
    from ddai.errors import ConfigError

    iv = c.interval if not isinstance(c, dict) else c["interval"]
    get = (lambda k: iv[k]) if isinstance(iv, dict) else (lambda k: getattr(iv, k))
    if get("method") not in INTERVAL_METHODS:
        raise ConfigError(f"unknown value {get('method')!r}", where="curriculum.interval.method",
                          expected="wilson or beta")
    conf = get("confidence")
    if not isinstance(conf, (int, float)) or not 0 < float(conf) < 1:
        raise ConfigError(f"value {conf!r}", where="curriculum.interval.confidence", expected="a number in (0, 1)")
    _bucket_name(get("uncertain_bucket"), "interval.uncertain_bucket", reserved=("A", "B", "0"))


def interval_bucket(lo: float, hi: float, p_lo: float, p_hi: float, uncertain: str) -> str:
    """B above ``p_hi``, 0 below ``p_lo``, A inside [p_lo, p_hi] — each only if the whole interval is."""
    if lo > p_hi:
        return "B"
    if hi < p_lo:
        return "0"
    if lo >= p_lo and hi <= p_hi:
        return "A"
    return uncertain


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
    if rule == "interval":
        pr, iv = c.pass_rate, c.interval
        p_lo, p_hi, conf = float(pr.p_lo), float(pr.p_hi), float(iv.confidence)
        unc = str(iv.uncertain_bucket)
        bounds = wilson_interval if iv.method == "wilson" else beta_interval
        for r, s in scored.items():
            lo, hi = bounds(s.pass_rate * s.n, s.n, conf)
            labels[r] = interval_bucket(lo, hi, p_lo, p_hi, unc)
        return Bucketing(labels, ["A", "B", "0", unc], "A",
                         {"name": rule, "params": {"tau": float(pr.tau), "p_lo": p_lo, "p_hi": p_hi,
                                                   "method": str(iv.method), "confidence": conf,
                                                   "uncertain_bucket": unc}})
    raise ValueError(f"unknown rule {rule!r}")
