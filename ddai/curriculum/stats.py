"""Per-prompt statistics: gather rollouts into groups, then summarize a group's scores.

WHY keep raw score lists per group (a few floats each) instead of running sums: the
duplicate policy decides *after* matching which groups of a prompt count (pool, latest,
first), so the summary must be computable over any subset of groups. Response texts never
get here (the readers drop them), so memory stays proportional to the number of rollouts.

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

import numpy as np

from ddai.curriculum.records import SCORE_FIELDS, Rollout


@dataclass(slots=True)
class Group:
    """All rollouts of one prompt at one step, as one log recorded them.

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
        return f"step {self.step} group {self.group}" if self.step is not None else f"group {self.group}"


class GroupCollector:
    """Gathers rollouts into groups keyed by (step, group uid), in first-seen order.

    The step is part of the key because the step-keyed log draws fresh uids per step and
    JSON Lines logs may reuse a uid across steps; either way one (step, uid) pair is one
    batch's group of agents for one prompt.

    Two ways in, with the same result: :meth:`add_rollout` one record at a time (JSON Lines,
    parquet, tests), and :meth:`add_group` a whole group at once -- what the step-keyed reader
    does, with the group's score columns already sliced out of the step's arrays, so no Python
    work is done per rollout. ``add_group(...)`` equals ``add_rollout`` of the group's rollouts in
    order (they share uid, step, source, dataset id and question).
    """

    def __init__(self, normalize_question: Callable[[str], str]):
        self._normalize = normalize_question
        self._groups: dict[tuple[int | None, str], Group] = {}
        self._norm: dict[str, str] = {}      # raw question -> normalized (one call per distinct text)

    def __len__(self) -> int:
        return len(self._groups)

    def _questions(self, question: str | None) -> tuple[list[str], set[str]]:
        if not question:
            return [], set()
        norm = self._norm.get(question)
        if norm is None:
            norm = self._norm[question] = self._normalize(question)
        return [question], ({norm} if norm else set())

    def _merge(self, g: Group, source: str, dataset_id: str | None, question: str | None) -> None:
        sources = g.sources
        if sources[-1] != source and source not in sources:
            sources.append(source)
        if dataset_id:
            g.dataset_ids.add(str(dataset_id))
        if question and question not in g.raw_questions:  # agents of a group share it: normalize once
            g.raw_questions.append(question)
            norm = self._normalize(question)
            if norm:
                g.questions.add(norm)

    def add_group(self, step: int | None, uid: str, source: str, dataset_id: str | None,
                  decks: Iterable[str], question: str | None,
                  ndcg: list, judge: list, final: list) -> None:
        """One group's rollouts at once (``ndcg``/``judge``/``final``: one raw value per rollout;
        the lists are taken over, not copied)."""
        key = (step, uid)
        groups = self._groups
        g = groups.get(key)
        if g is None:
            raw_q, norm_q = self._questions(question)
            groups[key] = Group(uid, step, len(groups), [source], {str(dataset_id)} if dataset_id else set(),
                                {d for d in decks if d}, norm_q, raw_q,
                                {"ndcg": ndcg, "judge": judge, "final": final}, len(ndcg))
            return
        self._merge(g, source, dataset_id, question)
        g.deck_ids.update(d for d in decks if d)
        sc = g.scores
        sc["ndcg"].extend(ndcg)
        sc["judge"].extend(judge)
        sc["final"].extend(final)
        g.n_rollouts += len(ndcg)

    def add_step(self, step: int, source: str, uids: list[str], dataset_ids: list[str | None],
                 decks: list[tuple[str, ...]], questions: list[str | None],
                 ndcg: list, judge: list, final: list, lens: list[int]) -> None:
        """A whole step's groups (parallel lists, one entry per group; the score lists hold every
        rollout of the step, ``lens[i]`` of them for group ``i``): :meth:`add_group` for each,
        in one loop."""
        groups = self._groups
        norm_of = self._norm
        normalize = self._normalize
        o = 0
        for uid, did, dk, q, n in zip(uids, dataset_ids, decks, questions, lens):
            if not n:
                continue
            e = o + n
            key = (step, uid)
            if key in groups:
                self.add_group(step, uid, source, did, dk, q, ndcg[o:e], judge[o:e], final[o:e])
            else:
                if q:
                    norm = norm_of.get(q)
                    if norm is None:
                        norm = norm_of[q] = normalize(q)
                    raw_q, norm_q = [q], ({norm} if norm else set())
                else:
                    raw_q, norm_q = [], set()
                dks = set(dk)
                dks.discard("")
                groups[key] = Group(uid, step, len(groups), [source], {did} if did else set(), dks, norm_q, raw_q,
                                    {"ndcg": ndcg[o:e], "judge": judge[o:e], "final": final[o:e]}, n)
            o = e

    def add_rollout(self, r: Rollout) -> None:
        """One rollout record."""
        key = (r.step, r.group)
        g = self._groups.get(key)
        if g is None:
            g = self._groups[key] = Group(r.group, r.step, len(self._groups), [r.source], set(), set(), set(), [],
                                          {"ndcg": [], "judge": [], "final": []}, 0)
        self._merge(g, r.source, r.dataset_id, r.question)
        for d in r.deck_ids:
            if d:
                g.deck_ids.add(str(d))
        scores = r.scores
        sc = g.scores
        sc["ndcg"].append(scores.get("ndcg"))
        sc["judge"].append(scores.get("judge"))
        sc["final"].append(scores.get("final"))
        g.n_rollouts += 1

    def groups(self) -> list[Group]:
        """The groups, in first-seen order."""
        return list(self._groups.values())


def collect_groups(rollouts: Iterable[Rollout], normalize_question: Callable[[str], str]) -> list[Group]:
    """Gather a rollout stream into groups keyed by (step, group uid), in first-seen order
    (see :class:`GroupCollector`)."""
    collector = GroupCollector(normalize_question)
    add = collector.add_rollout
    for r in rollouts:
        add(r)
    return collector.groups()


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
