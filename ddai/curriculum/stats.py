"""Per-prompt statistics: gather rollouts into groups, then summarize a group's scores.

WHY keep every raw score (flat lists, a slice per group) instead of running sums: the
duplicate policy decides *after* matching which groups of a prompt count (pool, latest,
first), so the summary must be computable over any subset of groups. Response texts never
get here (the readers drop them), so memory stays proportional to the number of rollouts.
The groups are kept as columns (:class:`GroupTable`), not as one object each: see its WHY.

A score is usable when it is a real number, finite, and within [0, 1]. Anything else
(absent, null, NaN, inf, out of range, non-numeric) is excluded from every statistic and
counted — never treated as 0 — unless ``missing_as_zero`` asks for the reference script's
behaviour, where an *absent* score counted as 0 (invalid values stay excluded).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import Any, NamedTuple, overload

import numpy as np

from ddai.curriculum.records import SCORE_FIELDS, Rollout


@dataclass(slots=True)
class Group:
    """All rollouts of one prompt at one step, as one log recorded them -- one entry of a
    :class:`GroupTable`, as a plain object (for tests, examples in reports, readers' checks).

    ``order`` is the position of the group's first rollout in the input stream (file order),
    the tiebreak of the ``latest``/``first`` duplicate policies after ``step``.
    """

    group: str
    step: int | None
    order: int
    sources: list[str] = field(default_factory=list)
    dataset_ids: set[str] = field(default_factory=set)
    deck_ids: set[str] = field(default_factory=set)
    questions: set[str] = field(default_factory=set)
    raw_questions: list[str] = field(default_factory=list)
    scores: dict[str, list[object]] = field(default_factory=lambda: {k: [] for k in SCORE_FIELDS})
    n_rollouts: int = 0

    @property
    def key(self) -> tuple[int | None, str]:
        return (self.step, self.group)

    def label(self) -> str:
        """How a person finds this group in the log: step and group uid."""
        return group_label(self.step, self.group)


def group_label(step: int | None, uid: str) -> str:
    return f"step {step} group {uid}" if step is not None else f"group {uid}"


class Evidence(NamedTuple):
    """What links a group to a dataset row, plus where it was read; shared by every group that
    carries the same (a prompt recurs at many steps with the same evidence)."""

    dataset_ids: frozenset[str]
    deck_ids: frozenset[str]
    questions: frozenset[str]          # normalized
    raw_questions: tuple[str, ...]     # as the log wrote them, first-seen order
    sources: tuple[str, ...]           # files, first-seen order


_NO_EVIDENCE = Evidence(frozenset(), frozenset(), frozenset(), (), ())


@dataclass(eq=False)
class GroupTable(Sequence[Group]):
    """The groups of a read, column by column: entry ``g`` is the group first seen ``g``-th.

    WHY columns: a 400 MB log holds ~70,000 groups; one Python object per group (with its sets
    and score lists) cost more to build, match, select and summarize than reading the scores
    did. Here a group is its uid, its step, the id of its (shared) :class:`Evidence` and a
    slice of three flat score lists; matching works per distinct evidence (a few thousand),
    duplicates and summaries with numpy. Indexing gives a :class:`Group` object made on demand.
    """

    uid: list[str]
    step: list[int | None]
    ev: np.ndarray                      # per group: index into ``evidence``
    evidence: list[Evidence]
    n_rollouts: np.ndarray              # per group
    offsets: np.ndarray                 # group g's values: values[name][offsets[g]:offsets[g + 1]]
    values: dict[str, list[object]]     # per score field: every rollout's raw value, group by group

    def __len__(self) -> int:
        return len(self.uid)

    @overload
    def __getitem__(self, i: int) -> Group: ...
    @overload
    def __getitem__(self, i: slice) -> list[Group]: ...

    def __getitem__(self, i: int | slice) -> Group | list[Group]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        e = self.evidence[int(self.ev[i])]
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        return Group(self.uid[i], self.step[i], i, list(e.sources), set(e.dataset_ids), set(e.deck_ids),
                     set(e.questions), list(e.raw_questions), {k: v[a:b] for k, v in self.values.items()},
                     int(self.n_rollouts[i]))

    def __iter__(self) -> Iterator[Group]:
        return (self[i] for i in range(len(self)))

    def label(self, i: int) -> str:
        return group_label(self.step[i], self.uid[i])

    def summarize(self, name: str, gids: np.ndarray, counts: np.ndarray, *, count_at: Sequence[float] = (),
                  tau: float = 0.5, missing_as_zero: bool = False) -> SummaryColumns:
        """Summaries of score ``name``, one per entry: entry k pools the values of groups
        ``gids[sum(counts[:k]):sum(counts[:k + 1])]`` in that order (as :func:`summarize` of them)."""
        gids = np.asarray(gids, dtype=np.int64)
        counts = np.asarray(counts, dtype=np.int64)
        lens = self.n_rollouts[gids]
        idx = segments_index(self.offsets[gids], lens).tolist()
        values = self.values[name]
        picked = list(itemgetter(*idx)(values)) if len(idx) > 1 else [values[i] for i in idx]
        return summarize_segments(picked, sums_per_run(lens, counts), count_at=count_at, tau=tau,
                                  missing_as_zero=missing_as_zero)

    @classmethod
    def from_groups(cls, groups: Iterable[Group]) -> GroupTable:
        """The table of plain groups (tests; callers that built groups themselves)."""
        collector = GroupCollector(lambda q: q)
        for g in groups:
            collector.add_evidence_group(g.step, g.group, Evidence(
                frozenset(g.dataset_ids), frozenset(g.deck_ids), frozenset(g.questions),
                tuple(g.raw_questions), tuple(g.sources)), g.scores)
        return collector.table()


class GroupCollector:
    """Gathers rollouts into groups keyed by (step, group uid), in first-seen order.

    The step is part of the key because the step-keyed log draws fresh uids per step and
    JSON Lines logs may reuse a uid across steps; either way one (step, uid) pair is one
    batch's group of agents for one prompt.

    Three ways in, with the same result: :meth:`add_rollout` one record at a time (JSON Lines,
    parquet, tests), :meth:`add_group` a whole group at once, and :meth:`add_step` a whole step
    -- what the step-keyed reader does, with the step's score columns already decoded, so
    the work per group is a few list appends. ``add_group(...)`` equals ``add_rollout`` of the
    group's rollouts in order (they share uid, step, source, dataset id and question).
    """

    def __init__(self, normalize_question: Callable[[str], str]):
        self._normalize = normalize_question
        self._gid: dict[tuple[int | None, str], int] = {}
        self._uid: list[str] = []
        self._step: list[int | None] = []
        self._ev: list[int] = []                       # per group
        self._evidence: list[Evidence] = []
        self._ev_id: dict[Evidence, int] = {}
        self._fresh: dict[tuple[Any, ...], int] = {}    # a new group's (source, id, decks, question) -> evidence id
        self._norm: dict[str, str] = {}                # raw question -> normalized (one call per distinct text)
        self._slice_gid: list[int] = []                # per added run of rollouts: its group ...
        self._slice_len: list[int] = []                # ... and its length
        self._values: dict[str, list[object]] = {k: [] for k in SCORE_FIELDS}
        self._done: GroupTable | None = None

    def __len__(self) -> int:
        return len(self._uid)

    def _open(self) -> None:
        if self._done is not None:
            raise RuntimeError("rollouts added after the collector's table() was taken")

    def _intern(self, e: Evidence) -> int:
        i = self._ev_id.get(e)
        if i is None:
            i = self._ev_id[e] = len(self._evidence)
            self._evidence.append(e)
        return i

    def _normalized(self, question: str) -> str:
        norm = self._norm.get(question)
        if norm is None:
            norm = self._norm[question] = self._normalize(question)
        return norm

    def _fresh_evidence(self, source: str, dataset_id: str | None, decks: Iterable[str], question: str | None) -> int:
        """The evidence of a new group (what the first of its rollouts carries)."""
        norm = self._normalized(question) if question else ""
        return self._intern(Evidence(frozenset((str(dataset_id),)) if dataset_id else frozenset(),
                                     frozenset(str(d) for d in decks if d), frozenset((norm,)) if norm else frozenset(),
                                     (question,) if question else (), (source,)))

    def _merged(self, e: int, source: str, dataset_id: Any, decks: Iterable[Any], question: str | None) -> int:
        """Evidence ``e`` plus what one more record of its group carries (``e`` when nothing new)."""
        old = self._evidence[e]
        did = str(dataset_id) if dataset_id else None
        new_decks = [str(d) for d in decks if d and str(d) not in old.deck_ids]
        if (source in old.sources and (did is None or did in old.dataset_ids) and not new_decks
                and (not question or question in old.raw_questions)):
            return e
        sources = old.sources if source in old.sources else old.sources + (source,)
        ids = old.dataset_ids | {did} if did else old.dataset_ids
        raw_q, qs = old.raw_questions, old.questions
        if question and question not in raw_q:
            raw_q = raw_q + (question,)
            norm = self._normalized(question)
            if norm:
                qs = qs | {norm}
        return self._intern(Evidence(ids, old.deck_ids | frozenset(new_decks), qs, raw_q, sources))

    def _group(self, step: int | None, uid: str, make_ev: Callable[[], int]) -> tuple[int, bool]:
        self._open()
        key = (step, uid)
        g = self._gid.get(key)
        if g is None:
            g = self._gid[key] = len(self._uid)
            self._uid.append(uid)
            self._step.append(step)
            self._ev.append(make_ev())
            return g, True
        return g, False

    def add_evidence_group(self, step: int | None, uid: str, evidence: Evidence, scores: dict[str, list]) -> None:
        """A group whose evidence is already known (:meth:`GroupTable.from_groups`)."""
        g, new = self._group(step, uid, lambda: self._intern(evidence))
        if not new:
            raise ValueError(f"group {group_label(step, uid)} given twice")
        n = len(scores.get(SCORE_FIELDS[0], ()))
        for k in SCORE_FIELDS:
            col = list(scores.get(k, ()))
            if len(col) != n:
                raise ValueError(f"group {group_label(step, uid)}: score lists of different lengths")
            self._values[k].extend(col)
        self._slice_gid.append(g)
        self._slice_len.append(n)

    def add_group(self, step: int | None, uid: str, source: str, dataset_id: str | None,
                  decks: Iterable[str], question: str | None,
                  ndcg: list, judge: list, final: list) -> None:
        """One group's rollouts at once (``ndcg``/``judge``/``final``: one raw value per rollout)."""
        decks = tuple(decks)
        g, new = self._group(step, uid, lambda: self._fresh_evidence(source, dataset_id, decks, question))
        if not new:
            self._ev[g] = self._merged(self._ev[g], source, dataset_id, decks, question)
        v = self._values
        v["ndcg"].extend(ndcg)
        v["judge"].extend(judge)
        v["final"].extend(final)
        self._slice_gid.append(g)
        self._slice_len.append(len(ndcg))

    def add_step(self, step: int, source: str, uids: list[str], dataset_ids: list[str | None],
                 decks: list[tuple[str, ...]], questions: list[str | None],
                 ndcg: list, judge: list, final: list, lens: list[int]) -> None:
        """A whole step's groups (parallel lists, one entry per group; the score lists hold every
        rollout of the step, ``lens[i]`` of them for group ``i``): :meth:`add_group` for each."""
        self._open()
        k = len(uids)
        n_groups = len(self._uid)
        keys = list(zip(repeat(step, k), uids))
        if 0 not in lens and len(ndcg) == sum(lens):
            fresh_keys = dict(zip(keys, range(n_groups, n_groups + k)))
            if len(fresh_keys) == k and not any(map(self._gid.__contains__, keys)):
                self._add_fresh_step(fresh_keys, step, source, uids, dataset_ids, decks, questions, ndcg, judge, final,
                                     lens)
                return
        o = 0    # a step seen before, a uid twice in it, an empty group: one group at a time
        for uid, did, dk, q, n in zip(uids, dataset_ids, decks, questions, lens):
            if n:
                self.add_group(step, uid, source, did, dk, q, ndcg[o:o + n], judge[o:o + n], final[o:o + n])
            o += n

    def _add_fresh_step(self, fresh_keys: dict, step: int, source: str, uids: list[str], dataset_ids: list,
                        decks: list, questions: list, ndcg: list, judge: list, final: list, lens: list[int]) -> None:
        """:meth:`add_step` of a step whose groups are all new and not empty (every step of a
        step-keyed log): whole columns appended at once, evidence looked up in one pass."""
        k = len(uids)
        n_groups = len(self._uid)
        self._gid.update(fresh_keys)
        self._uid.extend(uids)
        self._step.extend(repeat(step, k))
        ev_keys = list(zip(repeat(source, k), dataset_ids, decks, questions))
        fresh = self._fresh
        evs = list(map(fresh.get, ev_keys))
        if None in evs:
            for i, e in enumerate(evs):
                if e is None:
                    fk = ev_keys[i]
                    e = fresh.get(fk)
                    if e is None:
                        e = fresh[fk] = self._fresh_evidence(*fk)
                    evs[i] = e
        self._ev.extend(evs)
        self._slice_gid.extend(range(n_groups, n_groups + k))
        self._slice_len.extend(lens)
        v = self._values
        v["ndcg"].extend(ndcg)
        v["judge"].extend(judge)
        v["final"].extend(final)

    def add_rollout(self, r: Rollout) -> None:
        """One rollout record."""
        g, new = self._group(r.step, r.group, lambda: self._fresh_evidence(r.source, r.dataset_id, r.deck_ids,
                                                                            r.question))
        if not new:
            self._ev[g] = self._merged(self._ev[g], r.source, r.dataset_id, r.deck_ids, r.question)
        scores = r.scores
        v = self._values
        v["ndcg"].append(scores.get("ndcg"))
        v["judge"].append(scores.get("judge"))
        v["final"].append(scores.get("final"))
        self._slice_gid.append(g)
        self._slice_len.append(1)

    def table(self) -> GroupTable:
        """The groups, as columns (each group's values made contiguous). Ends the collection:
        the table takes the collector's lists over, so nothing may be added afterwards."""
        if self._done is not None:
            return self._done
        n_groups = len(self._uid)
        gid = np.asarray(self._slice_gid, dtype=np.int64)
        lens = np.asarray(self._slice_len, dtype=np.int64)
        n_rollouts = np.bincount(gid, weights=lens, minlength=n_groups).astype(np.int64) if len(gid) else \
            np.zeros(n_groups, dtype=np.int64)
        offsets = np.zeros(n_groups + 1, dtype=np.int64)
        np.cumsum(n_rollouts, out=offsets[1:])
        values = dict(self._values)    # the lists themselves, not copies: the collection has ended
        if len(gid) != n_groups or (n_groups and not np.array_equal(gid, np.arange(n_groups))):
            # some group got rollouts in several runs: order the values group by group (stable)
            order = np.argsort(np.repeat(gid, lens), kind="stable")
            for k, v in values.items():
                arr = np.empty(len(v), dtype=object)
                arr[:] = v
                values[k] = arr[order].tolist()
        self._done = GroupTable(self._uid, self._step, np.asarray(self._ev, dtype=np.int64), self._evidence,
                                n_rollouts, offsets, values)
        return self._done

    def groups(self) -> GroupTable:
        """The groups, in first-seen order."""
        return self.table()


def sums_per_run(per_item: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sums of consecutive runs of ``per_item`` (run k has ``counts[k]`` items; empty runs give 0)."""
    bounds = np.zeros(len(per_item) + 1, dtype=np.int64)
    np.cumsum(per_item, out=bounds[1:])
    ends = np.cumsum(counts)
    return bounds[ends] - bounds[ends - counts]


def segments_index(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """The positions ``starts[0] .. starts[0]+lens[0]-1, starts[1] .. ...`` as one array."""
    starts = np.asarray(starts, dtype=np.int64)
    lens = np.asarray(lens, dtype=np.int64)
    total = int(lens.sum()) if len(lens) else 0
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    before = np.zeros(len(lens), dtype=np.int64)
    np.cumsum(lens[:-1], out=before[1:])
    return np.repeat(starts - before, lens) + np.arange(total, dtype=np.int64)


def collect_groups(rollouts: Iterable[Rollout], normalize_question: Callable[[str], str]) -> GroupTable:
    """Gather a rollout stream into groups keyed by (step, group uid), in first-seen order
    (see :class:`GroupCollector`)."""
    collector = GroupCollector(normalize_question)
    add = collector.add_rollout
    for r in rollouts:
        add(r)
    return collector.table()


def is_usable(value: object) -> bool:
    """A real, finite number in [0, 1] (bools are not scores)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and 0.0 <= value <= 1.0


@dataclass(frozen=True, slots=True)
class Summary:
    """Statistics of one prompt's usable scores (``n == 0`` → all the rest are None)."""

    n: int
    n_missing: int
    n_invalid: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    pass_rate: float | None               # fraction of usable scores ≥ tau
    counts_at: tuple[tuple[float, int], ...]  # (threshold, number of usable scores ≥ threshold)

    @property
    def n_unusable(self) -> int:
        return self.n_missing + self.n_invalid


def summarize(values: Sequence[object], *, count_at: Sequence[float] = (), tau: float = 0.5,
              missing_as_zero: bool = False) -> Summary:
    """Summarize raw score values; see the module docstring for what counts as usable.

    The mean is a left-to-right sum divided by n (what ``sum(x)/len(x)`` and numpy's mean
    give for the group sizes of a GRPO log), so reference values are reproduced bit for bit.
    The std is the population std (ddof=0): the spread of *these* rollouts, as GRPO sees it.
    """
    usable: list[float] = []
    n_missing = n_invalid = 0
    for v in values:
        if v is None:
            if missing_as_zero:
                usable.append(0.0)
            else:
                n_missing += 1
        elif is_usable(v):
            usable.append(float(v))
        else:
            n_invalid += 1
    n = len(usable)
    if n == 0:
        return Summary(0, n_missing, n_invalid, None, None, None, None, None,
                       tuple((float(t), 0) for t in count_at))
    total = 0.0
    for x in usable:          # left to right on purpose: builtin sum() is compensated on 3.12+
        total += x
    mean = total / n
    var = 0.0
    for x in usable:
        var += (x - mean) * (x - mean)
    std = math.sqrt(var / n)
    ordered = sorted(usable)
    passed = n - bisect_left(ordered, tau)
    counts = tuple((float(t), n - bisect_left(ordered, t)) for t in count_at)
    return Summary(n, n_missing, n_invalid, mean, std, ordered[0], ordered[-1], passed / n, counts)


def pooled(groups: Iterable[Group], name: str) -> Iterator[object]:
    """All raw values of score ``name`` over ``groups`` (in the groups' given order)."""
    for g in groups:
        yield from g.scores[name]


# --- columnar summaries ------------------------------------------------------------------------
#
# WHY a second, vectorized path: a big log has tens of thousands of prompts and three score
# fields, and calling :func:`summarize` once per (prompt, field) costs seconds of interpreter
# time. :func:`summarize_segments` computes the very same numbers for many value lists at once
# with numpy. Every operation is the one :func:`summarize` performs, in the same order (the sum
# is accumulated left to right, column by column, never pairwise), so results are bit-identical;
# ``tests/curriculum/test_perf_equivalence_curriculum.py`` checks that against :func:`summarize`.

_LONG_SEGMENT = 512  # segments longer than this are summed by a plain loop (rare: few of them)


@dataclass
class SummaryColumns:
    """:class:`Summary` fields of many value lists, one array entry per list.

    ``mean``/``std``/``min``/``max``/``pass_rate`` are NaN where ``n == 0`` (``None`` in a Summary).
    """

    n: np.ndarray
    n_missing: np.ndarray
    n_invalid: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray
    pass_rate: np.ndarray
    count_at: tuple[float, ...]
    counts: list[np.ndarray]      # per threshold of ``count_at``: number of usable scores ≥ it

    def __len__(self) -> int:
        return len(self.n)

    def summary(self, i: int) -> Summary:
        """Entry ``i`` as the :class:`Summary` that :func:`summarize` returns for that list."""
        n = int(self.n[i])
        counts = tuple((t, int(c[i])) for t, c in zip(self.count_at, self.counts))
        if n == 0:
            return Summary(0, int(self.n_missing[i]), int(self.n_invalid[i]), None, None, None, None, None, counts)
        return Summary(n, int(self.n_missing[i]), int(self.n_invalid[i]), float(self.mean[i]), float(self.std[i]),
                       float(self.min[i]), float(self.max[i]), float(self.pass_rate[i]), counts)

    def summaries(self) -> list[Summary]:
        """All entries as :class:`Summary` objects (bulk-converted: cheaper than :meth:`summary`)."""
        n, nm, ni = self.n.tolist(), self.n_missing.tolist(), self.n_invalid.tolist()
        mean, std, lo, hi, pr = (a.tolist() for a in (self.mean, self.std, self.min, self.max, self.pass_rate))
        counts = [c.tolist() for c in self.counts]
        ts = self.count_at
        out = []
        for i in range(len(n)):
            ca = tuple((t, c[i]) for t, c in zip(ts, counts))
            if n[i] == 0:
                out.append(Summary(0, nm[i], ni[i], None, None, None, None, None, ca))
            else:
                out.append(Summary(n[i], nm[i], ni[i], mean[i], std[i], lo[i], hi[i], pr[i], ca))
        return out


def _classify(values: Sequence[object], missing_as_zero: bool) -> tuple[np.ndarray, np.ndarray]:
    """(float value, code) per raw value; code 0 usable, 1 missing, 2 invalid (as :func:`summarize`)."""
    kinds = set(map(type, values))
    if kinds <= {float, int, type(None)}:
        # the usual log: plain numbers and absent scores, converted in one C-level pass
        # (exactly float(v) for every number; None becomes NaN and is told apart below)
        try:
            x = np.array(values, dtype=np.float64)
        except OverflowError:   # an int too large for a float: the loop below reports it as before
            pass
        else:
            none = np.array(values, dtype=object) == None  # noqa: E711 - elementwise identity with None
            code = np.zeros(len(values), dtype=np.int8)
            if missing_as_zero:
                x[none] = 0.0
            else:
                code[none] = 1
            with np.errstate(invalid="ignore"):
                code[(code == 0) & ~((x >= 0.0) & (x <= 1.0))] = 2
            if len(values) == 0:
                x = x.reshape(0)
            return x, code
    floats = [0.0] * len(values)
    codes = bytearray(len(values))
    for i, v in enumerate(values):
        if type(v) is float:
            floats[i] = v          # range and finiteness are checked vectorized below
        elif v is None:
            if not missing_as_zero:
                codes[i] = 1
        elif is_usable(v):
            floats[i] = float(v)
        else:
            codes[i] = 2
    x = np.array(floats, dtype=np.float64)
    code = np.frombuffer(bytes(codes), dtype=np.int8).copy()
    with np.errstate(invalid="ignore"):
        bad = (code == 0) & ~((x >= 0.0) & (x <= 1.0))   # NaN fails both comparisons
    code[bad] = 2
    return x, code


def _sequential_sums(x: np.ndarray, starts: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Per segment ``x[starts[k]:starts[k]+n[k]]``: ``0.0 + x0 + x1 + ...`` strictly left to right."""
    total = np.zeros(len(n), dtype=np.float64)
    if len(n) == 0:
        return total
    long_ = np.nonzero(n > _LONG_SEGMENT)[0]
    for k in long_.tolist():                      # rare: summed by the interpreter, same order
        acc = 0.0
        for v in x[starts[k]:starts[k] + n[k]].tolist():
            acc += v
        total[k] = acc
    short = np.nonzero((n > 0) & (n <= _LONG_SEGMENT))[0]
    if len(short):
        # process segments by decreasing length so that "still has a j-th value" is a prefix
        order = short[np.argsort(-n[short], kind="stable")]
        lens = n[order]
        st = starts[order]
        acc = np.zeros(len(order), dtype=np.float64)
        for j in range(int(lens[0])):
            m = int(np.searchsorted(-lens, -j, side="left"))   # number of segments with len > j
            acc[:m] += x[st[:m] + j]
        total[order] = acc
    return total


def summarize_segments(values: Sequence[object], lengths: Sequence[int], *, count_at: Sequence[float] = (),
                       tau: float = 0.5, missing_as_zero: bool = False) -> SummaryColumns:
    """:func:`summarize` of consecutive slices of ``values`` (slice k has ``lengths[k]`` values).

    Bit-identical to ``summarize(values[a:b], ...)`` for every slice; see the section comment.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    k = len(lengths)
    seg = np.repeat(np.arange(k, dtype=np.int64), lengths)
    x, code = _classify(values, missing_as_zero)
    n_missing = np.bincount(seg[code == 1], minlength=k).astype(np.int64)
    n_invalid = np.bincount(seg[code == 2], minlength=k).astype(np.int64)
    keep = code == 0
    xu, su = x[keep], seg[keep]
    n = np.bincount(su, minlength=k).astype(np.int64)
    starts = np.zeros(k, dtype=np.int64)
    if k:
        np.cumsum(n[:-1], out=starts[1:])
    nan = np.full(k, np.nan)
    has = n > 0
    total = _sequential_sums(xu, starts, n)
    mean = nan.copy()
    mean[has] = total[has] / n[has]
    dev = xu - mean[su]
    var = _sequential_sums(dev * dev, starts, n)
    std = nan.copy()
    std[has] = np.sqrt(var[has] / n[has])
    lo, hi = nan.copy(), nan.copy()
    if has.any():
        idx = starts[has]
        lo[has] = np.minimum.reduceat(xu, idx)
        hi[has] = np.maximum.reduceat(xu, idx)
        # 0.0 == -0.0: summarize's stable sort keeps the first of equal minima and the last of
        # equal maxima, numpy's reductions may pick the other zero. Redo the (rare) lists that
        # hold a -0.0 exactly as summarize does.
        # (sorted(set(...)), not np.unique: numpy 2 imports numpy.ma for it, ~30 ms per run)
        for j in sorted(set(su[(xu == 0.0) & np.signbit(xu)].tolist())):
            ordered = sorted(xu[starts[j]:starts[j] + n[j]].tolist())
            lo[j], hi[j] = ordered[0], ordered[-1]
    passed = np.bincount(su[xu >= tau], minlength=k)
    pass_rate = nan.copy()
    pass_rate[has] = passed[has] / n[has]
    ts = tuple(float(t) for t in count_at)
    counts = [np.bincount(su[xu >= t], minlength=k).astype(np.int64) for t in ts]
    return SummaryColumns(n, n_missing, n_invalid, mean, std, lo, hi, pass_rate, ts, counts)
