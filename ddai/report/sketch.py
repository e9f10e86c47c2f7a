"""Quantiles in bounded memory: exact while small, a fixed-bin histogram once large.

WHY this shape: the hand-checked logs of the tests and most daily logs hold a few hundred
thousand rollouts, where keeping the floats (8 bytes each, ``array('d')``) is cheap and the
quantiles are exact. A multi-GB log must not grow memory with its size, so past ``cap``
values the sketch folds everything into fixed bins and keeps only counts. Scores live in
[0, 1] and get linear bins (10,000 of them: quantile error ≤ 1e-4); latencies span orders of
magnitude and get log-spaced bins (relative error ≤ 0.5 %). Either way the sketch is
mergeable, so chunks parsed in parallel combine exactly as one pass would.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence

import numpy as np

EXACT_CAP = 250_000  # values kept exactly per metric before folding into bins (2 MB)


class Sketch:
    """A mergeable distribution summary of finite floats (NaNs are the caller's to count)."""

    __slots__ = ("cap", "counts", "edges", "hi", "kind", "lo", "n", "sq", "total", "values")

    def __init__(self, kind: str = "unit", cap: int = EXACT_CAP):
        self.kind = kind              # "unit": scores in [0, 1]; "log": positive, wide range
        self.cap = cap
        self.edges = _edges(kind)
        self.values: array | None = array("d")
        self.counts: np.ndarray | None = None
        self.n = 0
        self.total = 0.0
        self.sq = 0.0
        self.lo = math.inf
        self.hi = -math.inf

    # -- filling -----------------------------------------------------------------------
    def add_many(self, vals: np.ndarray) -> None:
        """Add a batch of finite values."""
        if vals.size == 0:
            return
        self.n += int(vals.size)
        self.total += float(vals.sum())
        # not np.dot: that goes to the BLAS, whose worker threads spin for tens of ms per
        # call on a busy machine (measured: 30-45 ms for 13,000 values)
        self.sq += float(np.square(vals).sum())
        self.lo = min(self.lo, float(vals.min()))
        self.hi = max(self.hi, float(vals.max()))
        if self.values is not None and len(self.values) + vals.size <= self.cap:
            self.values.frombytes(np.ascontiguousarray(vals, dtype=np.float64).tobytes())
            return
        self._to_bins()
        self.counts += _bin(vals, self.edges)

    def merge(self, other: Sketch) -> None:
        """Fold ``other`` into this sketch (same kind)."""
        if other.n == 0:
            return
        self.n += other.n
        self.total += other.total
        self.sq += other.sq
        self.lo = min(self.lo, other.lo)
        self.hi = max(self.hi, other.hi)
        if self.values is not None and other.values is not None and len(self.values) + len(other.values) <= self.cap:
            self.values.extend(other.values)
            return
        self._to_bins()
        if other.values is not None:
            self.counts += _bin(np.frombuffer(other.values, dtype=np.float64), self.edges)
        else:
            self.counts += other.counts

    def _to_bins(self) -> None:
        if self.values is None:
            return
        self.counts = _bin(np.frombuffer(self.values, dtype=np.float64), self.edges)
        self.values = None

    # -- reading -----------------------------------------------------------------------
    @property
    def exact(self) -> bool:
        return self.values is not None

    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    def std(self) -> float | None:
        if not self.n:
            return None
        var = max(self.sq / self.n - (self.total / self.n) ** 2, 0.0)
        return math.sqrt(var)

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """Quantiles by linear interpolation (numpy's default) when exact, else from the bins."""
        if not self.n:
            return [None for _ in qs]
        if self.values is not None:
            arr = np.frombuffer(self.values, dtype=np.float64)
            return [float(x) for x in np.quantile(arr, list(qs))]
        cum = np.cumsum(self.counts)
        out = []
        for q in qs:
            rank = q * (self.n - 1) + 1  # 1-based rank of the wanted value
            i = int(np.searchsorted(cum, rank - 1e-9))
            i = min(i, len(self.counts) - 1)
            below = cum[i - 1] if i else 0
            inside = self.counts[i]
            lo, hi = _bin_bounds(self.edges, i)
            frac = (rank - below - 0.5) / inside if inside else 0.5
            val = lo + (hi - lo) * min(max(frac, 0.0), 1.0)
            out.append(float(min(max(val, self.lo), self.hi)))
        return out

    def histogram(self, bins: int = 50, lo: float = 0.0, hi: float = 1.0) -> tuple[list[int], list[float]]:
        """Counts on ``bins`` equal bins over [lo, hi] (for plots)."""
        edges = np.linspace(lo, hi, bins + 1)
        if self.values is not None:
            arr = np.clip(np.frombuffer(self.values, dtype=np.float64), lo, hi)
            counts, _ = np.histogram(arr, bins=edges)
            return [int(c) for c in counts], [float(e) for e in edges]
        centres = np.array([sum(_bin_bounds(self.edges, i)) / 2 for i in range(len(self.counts))])
        counts, _ = np.histogram(np.clip(centres, lo, hi), bins=edges, weights=self.counts)
        return [int(c) for c in counts], [float(e) for e in edges]


def _edges(kind: str) -> np.ndarray:
    if kind == "unit":
        return np.linspace(0.0, 1.0, 10_001)
    # log bins from 1 ms to ~1 day; values outside fall in the end bins
    return np.logspace(-3, 5, 4_001)


def _bin(vals: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin; bin 0 / last also take values below / above the range.

    The bins are equal in value (unit) or in log10 (log), so the index is arithmetic —
    several times faster than a binary search over the edges.
    """
    nb = len(edges) - 1
    if edges[0] == 0.0:  # unit: linear bins on [0, 1]
        pos = vals * nb
    else:
        lo, hi = np.log10(edges[0]), np.log10(edges[-1])
        with np.errstate(divide="ignore"):
            pos = (np.log10(vals) - lo) * (nb / (hi - lo))
    idx = np.nan_to_num(np.floor(pos), nan=0.0, posinf=nb - 1, neginf=0.0)
    np.clip(idx, 0, nb - 1, out=idx)
    return np.bincount(idx.astype(np.int64), minlength=nb).astype(np.int64)


def _bin_bounds(edges: np.ndarray, i: int) -> tuple[float, float]:
    return float(edges[i]), float(edges[i + 1])


def exact_quantiles(values: Iterable[float], qs: Sequence[float]) -> list[float | None]:
    """Exact quantiles of a small list (used for per-prompt and per-group figures)."""
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if arr.size == 0:
        return [None for _ in qs]
    return [float(x) for x in np.quantile(arr, list(qs))]
