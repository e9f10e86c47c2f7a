"""NDCG exactly as DESIGN.md defines it; the worked examples of DESIGN.md / the notes are the cases."""

import math

import pytest

from ddai.reward.ndcg import basename, ndcg, reference_basenames


def test_worked_example_hit_at_rank_two():
    assert ndcg(["X", "A"], ["A"]) == pytest.approx(1 / math.log2(3))
    assert ndcg(["X", "A"], ["A"]) == pytest.approx(0.631, abs=5e-4)


def test_worked_example_one_of_two_references_found():
    assert ndcg(["A"], ["A", "B"]) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert ndcg(["A"], ["A", "B"]) == pytest.approx(0.613, abs=5e-4)


@pytest.mark.parametrize(
    "retrieved, reference, expected",
    [
        (["A"], ["A"], 1.0),
        (["A", "B"], ["B", "A"], 1.0),  # order among relevant pages does not matter
        ([], ["A"], 0.0),
        (["A"], [], 0.0),  # no reference pages -> 0
        (["X", "Y"], ["A"], 0.0),
        (["X", "A", "B"], ["A", "B"], (1 / math.log2(3) + 1 / 2) / (1 + 1 / math.log2(3))),
    ],
)
def test_cases(retrieved, reference, expected):
    assert ndcg(retrieved, reference) == pytest.approx(expected)


def test_ideal_counts_every_reference_page_even_beyond_the_viewed_list():
    # 3 references, 1 page viewed and relevant: IDCG sums all 3 ideal positions.
    assert ndcg(["A"], ["A", "B", "C"]) == pytest.approx(1 / (1 + 1 / math.log2(3) + 0.5))


def test_basenames():
    assert basename("./search_engine/corpus/img/2_7.jpg") == "2_7"
    assert basename("/x/8309_18.jpg/") == "8309_18"
    assert reference_basenames("2.pdf", [7, 9]) == ["2_7", "2_9"]
