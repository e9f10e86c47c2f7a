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
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

from ddai.curriculum.records import Rollout

SCORE_FIELDS = ("ndcg", "judge", "final")


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


def collect_groups(rollouts: Iterable[Rollout], normalize_question) -> list[Group]:
    """Gather a rollout stream into groups keyed by (step, group uid), in first-seen order.

    The step is part of the key because the step-keyed log draws fresh uids per step and
    JSON Lines logs may reuse a uid across steps; either way one (step, uid) pair is one
    batch's group of agents for one prompt.
    """
    groups: dict[tuple[int | None, str], Group] = {}
    for r in rollouts:
        key = (r.step, r.group)
        g = groups.get(key)
        if g is None:
            g = groups[key] = Group(group=r.group, step=r.step, order=len(groups))
        if not g.sources or g.sources[-1] != r.source:
            if r.source not in g.sources:
                g.sources.append(r.source)
        if r.dataset_id:
            g.dataset_ids.add(str(r.dataset_id))
        for d in r.deck_ids:
            if d:
                g.deck_ids.add(str(d))
        if r.question and r.question not in g.raw_questions:  # agents of a group share it: normalize once
            g.raw_questions.append(r.question)
            norm = normalize_question(r.question)
            if norm:
                g.questions.add(norm)
        for name in SCORE_FIELDS:
            g.scores[name].append(r.scores.get(name))
        g.n_rollouts += 1
    return list(groups.values())


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
