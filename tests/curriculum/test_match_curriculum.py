"""Matching log groups to dataset rows: every strategy, and ambiguity never merged."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from engine_helpers import rollouts  # noqa: E402

from ddai.curriculum.match import DatasetIndex, deck_row_id, match_groups, normalize_question
from ddai.curriculum.stats import collect_groups

IDS = ["train_1", "train_2", "train_3", "train_4"]
QUESTIONS = ["What is A?", "What is B?", "What is B?", None]   # rows 2 and 3 share a question


def index():
    return DatasetIndex.build(IDS, QUESTIONS)


def groups(*parts):
    return collect_groups([r for p in parts for r in p], normalize_question)


def test_normalize_question_ignores_case_spacing_punctuation_and_prefix():
    assert normalize_question("Question:  What is   the TOTAL?") == normalize_question("what is the total")
    assert normalize_question("What's A?") != normalize_question("What is A?")


def test_id_deck_question_strategies():
    gs = groups(rollouts("g1", [0.5], dataset_id="train_1"), rollouts("g2", [0.5], deck="4"),
                rollouts("g3", [0.5], question="what is a"))
    by_id = match_groups(gs, index(), "id")
    assert {r: [g.group for g in v] for r, v in by_id.row_groups.items()} == {0: ["g1"]}
    assert [g.group for g in by_id.no_row] == ["g2", "g3"]
    by_deck = match_groups(gs, index(), "deck")
    assert {r: [g.group for g in v] for r, v in by_deck.row_groups.items()} == {3: ["g2"]}
    by_q = match_groups(gs, index(), "question")
    assert {r: [g.group for g in v] for r, v in by_q.row_groups.items()} == {0: ["g3"]}
    auto = match_groups(gs, index(), "auto")
    assert {r: [g.group for g in v] for r, v in auto.row_groups.items()} == {0: ["g1", "g3"], 3: ["g2"]}


def test_question_fitting_two_rows_is_ambiguous():
    res = match_groups(groups(rollouts("g", [0.5], question="What is B?")), index(), "question")
    assert not res.row_groups
    assert res.ambiguous[0].candidates == [1, 2] and res.ambiguous[0].reason.startswith("several rows")
    assert set(res.ambiguous_rows) == {1, 2}
    # deck evidence resolves it under auto
    res = match_groups(groups(rollouts("g", [0.5], question="What is B?", deck="3")), index(), "auto")
    assert list(res.row_groups) == [2] and not res.ambiguous


def test_conflicting_evidence_in_one_group_is_ambiguous_under_auto():
    # deck says row 1 (train_1), question says row 2 (What is B?)
    res = match_groups(groups(rollouts("g", [0.5], deck="1", question="What is B?")), index(), "auto")
    assert not res.row_groups and res.ambiguous[0].reason.startswith("conflict")
    # deck pointing outside the dataset while the question fits a row: conflict, not a match
    res = match_groups(groups(rollouts("g", [0.5], deck="999", question="What is A?")), index(), "auto")
    assert not res.row_groups and res.ambiguous[0].reason.startswith("conflict")
    # the reference's deck strategy ignores the question entirely
    res = match_groups(groups(rollouts("g", [0.5], deck="1", question="What is B?")), index(), "deck")
    assert list(res.row_groups) == [0]


def test_two_groups_claiming_one_row_with_different_questions():
    gs = groups(rollouts("g1", [0.5], deck="4", question="what is c"),
                rollouts("g2", [0.5], deck="4", question="what is d"))
    auto = match_groups(gs, index(), "auto")   # row 4 has no question: both fit it alone
    assert not auto.row_groups and 3 in auto.ambiguous_rows
    assert {a.group.group for a in auto.ambiguous} == {"g1", "g2"}
    deck = match_groups(gs, index(), "deck")   # reference: same deck → same prompt
    assert [g.group for g in deck.row_groups[3]] == ["g1", "g2"]


def test_report_names_examples():
    gs = groups(rollouts("g1", [0.5], deck="1"), rollouts("orphan", [0.5], deck="77"),
                rollouts("amb", [0.5], question="What is B?"))
    idx = index()
    rep = match_groups(gs, idx, "auto").report(idx)
    assert rep["matched_rows"] == 1 and rep["groups_without_row"] == 1 and rep["ambiguous_groups"] == 1
    assert rep["unmatched_rows"] == 1   # train_4: no claim at all (train_2/3 are ambiguous rows)
    assert rep["examples"]["unmatched_rows"] == ["train_4"]
    assert rep["examples"]["groups_without_row"][0]["deck_ids"] == ["77"]
    assert rep["examples"]["ambiguous_groups"][0]["candidates"] == ["train_2", "train_3"]


evidence = st.fixed_dictionaries({
    "deck": st.one_of(st.none(), st.sampled_from(["1", "2", "3", "4", "5", "6"])),
    "question": st.one_of(st.none(), st.sampled_from(["q1", "q2", "q3", "q4"])),
    "dataset_id": st.one_of(st.none(), st.sampled_from(["train_1", "train_2", "train_3", "train_9"])),
    "step": st.integers(1, 3),
})


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["q1", "q2", "q3", None]), min_size=1, max_size=5),
       st.lists(evidence, max_size=12), st.sampled_from(["auto", "id", "deck", "question"]))
def test_matching_never_merges_conflicting_evidence(row_questions, evs, strategy):
    ids = [f"train_{i + 1}" for i in range(len(row_questions))]
    idx = DatasetIndex.build(ids, row_questions)
    rs = []
    for n, e in enumerate(evs):
        rs += rollouts(f"g{n}", [0.5], step=e["step"], deck=e["deck"], question=e["question"],
                       dataset_id=e["dataset_id"])
    gs = collect_groups(rs, normalize_question)
    res = match_groups(gs, idx, strategy)
    # every group lands in exactly one place
    placed = [g.group for v in res.row_groups.values() for g in v] + [g.group for g in res.no_row] \
        + [a.group.group for a in res.ambiguous]
    assert sorted(placed) == sorted(g.group for g in gs)
    kinds = {"auto": ("id", "deck", "question"), "id": ("id",), "deck": ("deck",), "question": ("question",)}[strategy]
    for row, claims in res.row_groups.items():
        assert row not in res.ambiguous_rows
        for g in claims:
            # every piece of evidence the strategy uses agrees with the row
            if "id" in kinds and g.dataset_ids:
                assert g.dataset_ids == {ids[row]}
            if "deck" in kinds and g.deck_ids:
                assert {deck_row_id(d) for d in g.deck_ids} == {ids[row]}
            if "question" in kinds and g.questions and (strategy == "question" or idx.questions[row]):
                assert g.questions == {idx.questions[row]}
                if strategy == "question":
                    assert len(idx.by_question[idx.questions[row]]) == 1
        if strategy != "deck" and len(claims) > 1:
            for kind in ("dataset_ids", "deck_ids", "questions"):
                assert len(set().union(*(getattr(g, kind) for g in claims))) <= 1
