"""Per-prompt statistics: usable scores only, unusable ones counted, never zero."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from engine_helpers import rollouts  # noqa: E402

from ddai.curriculum.match import normalize_question
from ddai.curriculum.stats import collect_groups, is_usable, summarize


def test_unusable_scores_are_excluded_and_counted_not_zero():
    s = summarize([0.5, None, float("nan"), float("inf"), -0.2, 1.5, "0.9", True, 1.0],
                  count_at=[0.5, 0.9], tau=0.75)
    assert s.n == 2
    assert s.n_missing == 1
    assert s.n_invalid == 6
    assert s.n_unusable == 7
    assert s.mean == 0.75 and s.min == 0.5 and s.max == 1.0
    assert s.std == 0.25
    assert s.pass_rate == 0.5
    assert s.counts_at == ((0.5, 2), (0.9, 1))


def test_all_unusable_gives_no_statistics():
    s = summarize([None, float("nan")], count_at=[0.1])
    assert s.n == 0 and s.mean is None and s.std is None and s.pass_rate is None
    assert s.counts_at == ((0.1, 0),)


def test_missing_as_zero_is_the_reference_mode_only_for_absent_values():
    s = summarize([1.0, None, float("nan")], missing_as_zero=True)
    assert s.n == 2 and s.mean == 0.5 and s.n_missing == 0 and s.n_invalid == 1


scores = st.lists(st.one_of(st.floats(0, 1), st.none(), st.floats(allow_nan=True, allow_infinity=True),
                            st.just("x")), max_size=30)


@settings(max_examples=200, deadline=None)
@given(scores)
def test_summary_properties(values):
    s = summarize(values, count_at=[0.0, 0.5, 1.0], tau=0.5)
    usable = [v for v in values if is_usable(v)]
    assert s.n == len(usable) and s.n + s.n_unusable == len(values)
    if usable:
        assert s.min <= s.mean <= s.max or math.isclose(s.mean, s.min) or math.isclose(s.mean, s.max)
        assert s.min == min(usable) and s.max == max(usable)
        assert s.std >= 0 and math.isclose(s.std, float(np.std(usable)), abs_tol=1e-9)
        assert dict(s.counts_at)[0.0] == len(usable)
        assert s.pass_rate == sum(v >= 0.5 for v in usable) / len(usable)
        if len(usable) < 8:  # numpy sums short arrays left to right: bit-identical means
            assert s.mean == float(np.mean(usable))
    # order of the rollouts does not change what is counted
    r = summarize(list(reversed(values)), count_at=[0.5])
    assert (r.n, r.n_unusable, r.min, r.max) == (s.n, s.n_unusable, s.min, s.max)


def test_collect_groups_keys_by_step_and_uid_and_gathers_evidence():
    rs = (rollouts("u1", [0.1, 0.2], step=1, deck="5", question="Question: What is X?")
          + rollouts("u1", [0.9], step=2, deck="5")
          + rollouts("u2", [0.3], step=1, dataset_id="train_7", source="other.jsonl")
          + rollouts("u1", [0.4], step=1, deck="5", question="what is x"))
    groups = collect_groups(rs, normalize_question)
    assert [(g.step, g.group, g.n_rollouts) for g in groups] == [(1, "u1", 3), (2, "u1", 1), (1, "u2", 1)]
    g = groups[0]
    assert g.order == 0 and g.deck_ids == {"5"} and g.questions == {"what is x"}
    assert g.scores["ndcg"] == [0.1, 0.2, 0.4] and g.scores["judge"] == [None, None, None]
    assert groups[2].dataset_ids == {"train_7"} and groups[2].sources == ["other.jsonl"]
