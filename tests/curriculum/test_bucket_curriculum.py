"""Bucket rules: threshold (reference), spread, pass_rate, quantile; settings rejected early."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from engine_helpers import make_cfg  # noqa: E402

from ddai.curriculum.bucket import NO_SCORE, assign, threshold_bucket
from ddai.curriculum.config import validate_settings
from ddai.curriculum.stats import summarize
from ddai.errors import ConfigError


def summ(*vals):
    return summarize(list(vals), tau=0.5)


def test_threshold_boundaries_are_the_reference_ones():
    assert threshold_bucket(0.7000001, 0.1, 0.7) == "B"
    assert threshold_bucket(0.7, 0.1, 0.7) == "A"
    assert threshold_bucket(0.1, 0.1, 0.7) == "A"
    assert threshold_bucket(0.0999999, 0.1, 0.7) == "0"


def test_no_usable_score_goes_to_its_own_bucket():
    b = assign({0: summ(None, float("nan")), 1: summ(0.5)}, make_cfg())
    assert b.labels == {0: NO_SCORE, 1: "A"}


def test_spread_names_flat_groups():
    c = make_cfg(rule="spread", spread={"high": 0.7, "low": 0.1, "min_std": 0.3, "flat_bucket": "flat"})
    b = assign({0: summ(0.4, 0.4, 0.4), 1: summ(0.8, 0.0, 0.4), 2: summ(0.9, 0.9), 3: summ(0.2, 0.7)}, c)
    assert b.labels == {0: "flat", 1: "A", 2: "B", 3: "flat"}
    assert b.names == ["A", "B", "0", "flat"] and b.train == "A"
    c2 = make_cfg(rule="spread", spread={"high": 0.9, "low": 0.0, "min_std": 0.2})
    assert assign({3: summ(0.2, 0.7)}, c2).labels == {3: "A"}     # std 0.25 ≥ 0.2


def test_pass_rate_rule():
    c = make_cfg(rule="pass_rate", pass_rate={"tau": 0.5, "p_lo": 0.2, "p_hi": 0.8})
    b = assign({0: summ(1, 1, 1, 1, 1), 1: summ(1, 0, 0, 0, 0), 2: summ(0, 0, 0, 0, 0), 3: summ(1, 1, 1, 1, 0)}, c)
    assert b.labels == {0: "B", 1: "A", 2: "0", 3: "A"}


def test_quantile_explicit_edges_and_names():
    c = make_cfg(rule="quantile", quantile={"edges": [0.3, 0.7], "names": ["hard", "medium", "easy"]})
    b = assign({0: summ(0.1), 1: summ(0.3), 2: summ(0.69), 3: summ(0.7), 4: summ(1.0)}, c)
    assert b.labels == {0: "hard", 1: "medium", 2: "medium", 3: "easy", 4: "easy"}
    assert b.train == "medium" and b.names[0] == "medium"
    assert b.rule["params"]["edges"] == [0.3, 0.7]


def test_quantile_equal_count_keeps_ties_together():
    c = make_cfg(rule="quantile", quantile={"n": 3, "train": "q1"})
    means = [0.0, 0.0, 0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.0]
    b = assign({i: summ(m) for i, m in enumerate(means)}, c)
    zeros = {b.labels[i] for i in range(3)}
    assert len(zeros) == 1
    assert b.train == "q1"
    assert sorted(set(b.labels.values())) == ["q1", "q2", "q3"]


@pytest.mark.parametrize("overrides, key", [
    ({"theta1": 0.7, "theta_easy": 0.7}, "curriculum.theta1"),
    ({"theta1": 0.8}, "curriculum.theta1"),
    ({"theta_easy": 1.5}, "curriculum.theta_easy"),
    ({"rule": "median"}, "curriculum.rule"),
    ({"sort": "sideways"}, "curriculum.sort"),
    ({"match": "fuzzy"}, "curriculum.match"),
    ({"score": "bleu"}, "curriculum.score"),
    ({"duplicates": "mean"}, "curriculum.duplicates"),
    ({"remainder": "drop"}, "curriculum.remainder"),
    ({"train_batch_size": 0}, "curriculum.train_batch_size"),
    ({"rule": "quantile", "quantile": {"edges": [0.7, 0.3]}}, "curriculum.quantile.edges"),
    ({"rule": "quantile", "quantile": {"edges": [0.3, 1.2]}}, "curriculum.quantile.edges[1]"),
    ({"rule": "quantile", "quantile": {"n": 1}}, "curriculum.quantile.n"),
    ({"rule": "quantile", "quantile": {"n": 3, "names": ["a", "b"]}}, "curriculum.quantile.names"),
    ({"rule": "quantile", "quantile": {"n": 2, "names": ["a", "A"]}}, "curriculum.quantile.names"),
    ({"rule": "quantile", "quantile": {"n": 2, "names": ["x/y", "b"]}}, "curriculum.quantile.names[0]"),
    ({"rule": "quantile", "quantile": {"n": 2, "train": "zz"}}, "curriculum.quantile.train"),
    ({"rule": "pass_rate", "pass_rate": {"p_lo": 0.9, "p_hi": 0.1}}, "curriculum.pass_rate.p_lo"),
    ({"rule": "spread", "spread": {"flat_bucket": "unmatched"}}, "curriculum.spread.flat_bucket"),
    ({"rule": "spread", "spread": {"low": 0.8, "high": 0.2}}, "curriculum.spread.low"),
])
def test_impossible_settings_fail_naming_the_key(overrides, key):
    with pytest.raises(ConfigError) as err:
        validate_settings(make_cfg(**overrides))
    assert err.value.where == key


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 1), st.floats(0, 1), st.lists(st.floats(0, 1), min_size=1, max_size=8))
def test_threshold_rule_matches_its_definition(t1, te, vals):
    if not t1 < te:
        return
    s = summ(*vals)
    label = assign({0: s}, make_cfg(theta1=t1, theta_easy=te)).labels[0]
    expected = "B" if s.mean > te else ("A" if t1 <= s.mean <= te else "0")
    assert label == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.floats(0, 1), min_size=1, max_size=5), min_size=1, max_size=30),
       st.integers(2, 5))
def test_quantile_buckets_are_monotone_in_the_mean(groups, n):
    summaries = {i: summ(*g) for i, g in enumerate(groups)}
    b = assign(summaries, make_cfg(rule="quantile", quantile={"n": n}))
    names = [f"q{i + 1}" for i in range(n)]
    pairs = sorted((summaries[i].mean, names.index(b.labels[i])) for i in summaries)
    ranks = [r for _, r in pairs]
    assert ranks == sorted(ranks)
