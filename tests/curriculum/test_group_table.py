"""The columnar group table, matcher and duplicate selection give what plain per-group code gives.

WHY: the engine keeps a log's groups as columns (uids, steps, shared evidence, flat score lists)
and matches per distinct evidence, selects duplicates and summarizes with numpy. The plain
definitions below -- one object per group, a loop per group, written for reading, not speed --
are what those fast paths must equal, on random streams with every awkward case: a (step, uid)
seen again later (its rollouts not contiguous), evidence that grows on a later record, groups
without a step, conflicting and ambiguous evidence, steps beyond 64 bits.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddai.curriculum import duplicates
from ddai.curriculum.match import (
    CONFLICT_KINDS,
    KINDS_BY_STRATEGY,
    DatasetIndex,
    _match_all,
    _match_one,
    match_groups,
    normalize_question,
)
from ddai.curriculum.records import SCORE_FIELDS, Rollout
from ddai.curriculum.stats import Group, GroupCollector, GroupTable, collect_groups

IDS = [f"train_{i}" for i in range(8)]
QUESTIONS = ["What is one?", "What is two?", "What is two?", None, "Four?", "Five?", "", "Seven?"]


# --- plain definitions ----------------------------------------------------------------------------

def plain_groups(rollouts: list[Rollout]) -> list[Group]:
    """One Group object per (step, uid), evidence merged record by record."""
    by_key: dict = {}
    for r in rollouts:
        g = by_key.get((r.step, r.group))
        if g is None:
            g = by_key[(r.step, r.group)] = Group(r.group, r.step, len(by_key), [r.source])
        if r.source not in g.sources:
            g.sources.append(r.source)
        if r.dataset_id:
            g.dataset_ids.add(str(r.dataset_id))
        if r.question and r.question not in g.raw_questions:
            g.raw_questions.append(r.question)
            if normalize_question(r.question):
                g.questions.add(normalize_question(r.question))
        g.deck_ids.update(str(d) for d in r.deck_ids if d)
        for k in SCORE_FIELDS:
            g.scores[k].append(r.scores.get(k))
        g.n_rollouts += 1
    return list(by_key.values())


def plain_match(groups: list[Group], index: DatasetIndex, strategy: str):
    """Each group classified on its own; a row claimed by groups with different evidence is ambiguous."""
    kinds, conflict_kinds = KINDS_BY_STRATEGY[strategy], CONFLICT_KINDS[strategy]
    row_groups: dict[int, list[Group]] = {}
    no_row, ambiguous, claimed = [], [], {}
    for g in groups:
        status, rows, why = _match_one(g, kinds, index)
        if status == "ok":
            row_groups.setdefault(next(iter(rows)), []).append(g)
        elif status == "none":
            no_row.append(g)
        else:
            ambiguous.append((g, why, sorted(rows)))
            for r in rows:
                claimed.setdefault(r, f"only claimed by ambiguous {g.label()}")
    ambiguous_rows = {}
    for row in sorted(row_groups):
        claims = row_groups[row]
        if len(claims) < 2:
            continue
        for kind in conflict_kinds:
            attr = {"id": "dataset_ids", "deck": "deck_ids", "question": "questions"}[kind]
            if len(set().union(*(getattr(g, attr) for g in claims))) > 1:
                why = f"conflict: {len(claims)} groups claim it with different {kind} evidence"
                ambiguous_rows[row] = why
                ambiguous += [(g, why, [row]) for g in claims]
                del row_groups[row]
                break
    for row, why in claimed.items():
        if row not in row_groups and row not in ambiguous_rows:
            ambiguous_rows[row] = why
    ambiguous.sort(key=lambda t: t[0].order)
    return row_groups, no_row, ambiguous, ambiguous_rows


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 10 ** 6), st.integers(1, 40), st.sampled_from(["id", "deck", "question"]))
def test_one_kind_shortcut_equals_the_general_rule(seed, n, kind):
    index = DatasetIndex.build(IDS, QUESTIONS)
    for e in collect_groups(random_rollouts(seed, n), normalize_question).evidence:
        assert _match_one(e, (kind,), index) == _match_all(e, (kind,), index)


def _view(g: Group) -> tuple:
    scores = {k: ["nan" if v != v else v for v in vs] for k, vs in g.scores.items()}
    return (g.group, g.step, g.order, g.sources, g.dataset_ids, g.deck_ids, g.questions, g.raw_questions,
            scores, g.n_rollouts)


# --- random streams -------------------------------------------------------------------------------

def random_rollouts(seed: int, n: int) -> list[Rollout]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        row = rng.randrange(len(IDS))
        step = rng.choice([None, 0, 1, 2, 2, 3, 2 ** 70, -5])
        uid = f"u{rng.randrange(12)}"
        out.append(Rollout(
            group=uid, source=rng.choice(["a.jsonl", "b.jsonl"]), step=step, sample_idx=i,
            dataset_id=rng.choice([None, None, IDS[row], IDS[rng.randrange(len(IDS))], "nope"]),
            question=rng.choice([None, QUESTIONS[row], QUESTIONS[rng.randrange(len(IDS))], "unknown?", ""]),
            deck_ids=tuple(rng.sample(["0", "1", "2", "5", "99", ""], rng.randrange(3))),
            scores={k: rng.choice([rng.random(), None, "x", float("nan"), 1.5, 1, True])
                    for k in SCORE_FIELDS if rng.random() < 0.9}))
    return out


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 10 ** 6), st.integers(0, 60))
def test_table_equals_plain_groups(seed, n):
    rs = random_rollouts(seed, n)
    table = collect_groups(rs, normalize_question)
    assert isinstance(table, GroupTable)
    assert [_view(g) for g in table] == [_view(g) for g in plain_groups(rs)]


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 10 ** 6), st.integers(0, 60), st.sampled_from(sorted(KINDS_BY_STRATEGY)))
def test_match_equals_plain_match(seed, n, strategy):
    rs = random_rollouts(seed, n)
    index = DatasetIndex.build(IDS, QUESTIONS)
    got = match_groups(collect_groups(rs, normalize_question), index, strategy)
    row_groups, no_row, ambiguous, ambiguous_rows = plain_match(plain_groups(rs), index, strategy)
    assert {r: [g.order for g in gs] for r, gs in got.row_groups.items()} == \
        {r: [g.order for g in gs] for r, gs in row_groups.items()}
    assert list(got.row_groups) == list(row_groups)     # rows in the order of their first group
    assert [g.order for g in got.no_row] == [g.order for g in no_row]
    assert [(a.group.order, a.reason, a.candidates) for a in got.ambiguous] == \
        [(g.order, why, cands) for g, why, cands in ambiguous]
    assert got.ambiguous_rows == ambiguous_rows
    assert got.report(index)["matched_groups"] == sum(map(len, row_groups.values()))


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 10 ** 6), st.integers(0, 60), st.sampled_from(duplicates.POLICIES))
def test_select_table_equals_select(seed, n, policy):
    rs = random_rollouts(seed, n)
    matched = match_groups(collect_groups(rs, normalize_question), DatasetIndex.build(IDS, QUESTIONS), "auto")
    kept, report = duplicates.select_table(matched.rows, matched.group_row, matched.table.step, policy)
    want, want_report = duplicates.select(matched.row_groups, policy)
    assert report == want_report
    assert kept.rows.tolist() == list(want)
    assert [kept.groups_of(k) for k in range(len(kept))] == [[g.order for g in gs] for gs in want.values()]


def test_steps_beyond_64_bits_and_without_a_step_are_ordered_as_numbers():
    """latest = the highest step (None before every step), whatever its size."""
    rs = [Rollout(group=f"g{i}", source="a", step=s, sample_idx=0, dataset_id="train_1", question=None,
                  deck_ids=(), scores={"ndcg": 0.5}) for i, s in enumerate([2 ** 70, None, 3, 2 ** 64 + 1, -1])]
    matched = match_groups(collect_groups(rs, normalize_question), DatasetIndex.build(IDS, QUESTIONS), "id")
    order = [0, 1, 2, 3, 4]
    kept, _ = duplicates.select_table(matched.rows, matched.group_row, matched.table.step, "pool")
    assert kept.groups_of(0) == sorted(order, key=lambda i: (rs[i].step is not None, rs[i].step or 0))
    latest, _ = duplicates.select_table(matched.rows, matched.group_row, matched.table.step, "latest")
    assert latest.groups_of(0) == [0]
    assert duplicates.step_ranks([2 ** 70, 3, 2 ** 64 + 1]).tolist() == [3, 1, 2]    # no None, beyond 64 bits
    assert duplicates.step_ranks([5, -2, 7]).tolist() == [5, -2, 7]                 # fits: the steps themselves


def _step_args(groups: list[tuple[str, int, float]], source: str = "log.json"):
    """add_step's arguments for groups (uid, rollouts, score), decks and questions per uid."""
    uids = [u for u, _, _ in groups]
    lens = [n for _, n, _ in groups]
    vals = [v for _, n, v in groups for _ in range(n)]
    return (source, uids, [None] * len(uids), [(u[-1],) for u in uids], [f"Q {u[-1]}?" for u in uids],
            vals, list(vals), list(vals), lens)


@pytest.mark.parametrize("steps", [
    [(1, [("a1", 2, 0.1), ("b2", 3, 0.2)]), (2, [("a1", 1, 0.3)])],                 # fresh steps
    [(1, [("a1", 2, 0.1), ("a1", 1, 0.2)])],                                           # a uid twice in a step
    [(1, [("a1", 2, 0.1), ("b2", 0, 0.9), ("c3", 1, 0.2)])],                           # an empty group
    [(1, [("a1", 2, 0.1)]), (2, [("b2", 1, 0.2)]), (1, [("a1", 1, 0.3), ("c3", 2, 0.4)])],  # a step seen again
])
def test_add_step_equals_add_rollout(steps):
    by_step = GroupCollector(normalize_question)
    by_record = GroupCollector(normalize_question)
    for step, groups in steps:
        source, uids, dids, decks, qs, nd, jd, fn, lens = _step_args(groups)
        by_step.add_step(step, source, uids, dids, decks, qs, nd, jd, fn, lens)
        o = 0
        for uid, d, q, n in zip(uids, decks, qs, lens):
            for v in nd[o:o + n]:
                by_record.add_rollout(Rollout(group=uid, source=source, step=step, sample_idx=0, dataset_id=None,
                                              question=q, deck_ids=d, scores={k: v for k in SCORE_FIELDS}))
            o += n
    assert [_view(g) for g in by_step.table()] == [_view(g) for g in by_record.table()]


def test_table_ends_the_collection():
    c = GroupCollector(normalize_question)
    c.add_group(1, "a", "log", None, ("1",), "Q?", [0.5], [0.5], [0.5])
    t = c.table()
    assert c.table() is t
    with pytest.raises(RuntimeError, match="after the collector's table"):
        c.add_group(2, "b", "log", None, (), None, [0.5], [0.5], [0.5])
    with pytest.raises(RuntimeError):
        c.add_step(2, "log", ["b"], [None], [()], [None], [0.5], [0.5], [0.5], [1])
    assert len(t) == 1 and t[0].scores == {"ndcg": [0.5], "judge": [0.5], "final": [0.5]}


def test_from_groups_round_trips_and_indexes_like_a_list():
    rs = random_rollouts(7, 40)
    plain = plain_groups(rs)
    table = GroupTable.from_groups(plain)
    assert [_view(g) for g in table] == [_view(g) for g in plain]
    assert _view(table[-1]) == _view(plain[-1]) and [_view(g) for g in table[1:3]] == [_view(g) for g in plain[1:3]]
    with pytest.raises(IndexError):
        table[len(plain)]


def test_distinct_is_np_unique_without_numpy_ma() -> None:
    """match's distinct (row, evidence) pairs: the same values as np.unique, sorted."""
    import numpy as np

    from ddai.curriculum.match import _distinct

    rng = np.random.default_rng(7)
    for n in (0, 1, 2, 3, 50, 5000):
        a = rng.integers(-20, 20, n, dtype=np.int64)
        assert np.array_equal(_distinct(a), np.unique(a))
