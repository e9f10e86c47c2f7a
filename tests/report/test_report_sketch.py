"""Quantile sketch: exact while small, bounded error once folded into bins, exact merges."""

from __future__ import annotations

import numpy as np
import pytest

from ddai.report.sketch import Sketch

QS = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]


def test_exact_below_the_cap():
    v = np.array([0.0, 0.2, 0.2, 0.5, 1.0])
    s = Sketch("unit")
    s.add_many(v)
    assert s.exact
    assert s.quantiles(QS) == pytest.approx(list(np.quantile(v, QS)))
    assert s.mean() == pytest.approx(0.38) and s.std() == pytest.approx(float(np.std(v)))


@pytest.mark.parametrize("kind, tol", [("unit", 2e-4), ("log", 0.01)])
def test_binned_quantiles_within_the_documented_error(kind, tol):
    rng = np.random.default_rng(1)
    v = rng.random(30_000) if kind == "unit" else rng.lognormal(1.5, 0.8, 30_000)
    s = Sketch(kind, cap=1_000)
    for chunk in np.array_split(v, 9):
        s.add_many(chunk)
    assert not s.exact
    got, want = np.array(s.quantiles(QS)), np.quantile(v, QS)
    err = np.abs(got - want) if kind == "unit" else np.abs(got - want) / want
    assert err.max() <= tol
    assert s.n == v.size and s.mean() == pytest.approx(v.mean())


def test_merge_is_the_same_as_one_pass():
    rng = np.random.default_rng(2)
    a, b = rng.random(700), rng.random(900)
    one = Sketch("unit")
    one.add_many(np.concatenate([a, b]))
    left, right = Sketch("unit"), Sketch("unit")
    left.add_many(a)
    right.add_many(b)
    left.merge(right)
    assert left.exact and left.quantiles(QS) == pytest.approx(one.quantiles(QS))
    small = Sketch("unit", cap=1000)
    small.add_many(a)
    other = Sketch("unit", cap=1000)
    other.add_many(b)
    small.merge(other)                      # exceeds the cap: folds into bins
    assert not small.exact and small.n == 1600
    assert np.abs(np.array(small.quantiles(QS)) - np.quantile(np.concatenate([a, b]), QS)).max() < 2e-3
