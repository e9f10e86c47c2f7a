"""Several groups for one dataset row: which of them count.

WHY a policy and a count: a prompt seen at several steps (or epochs) has several groups —
in the step-keyed log each with a fresh uuid. The reference kept whichever came last in the
file and said nothing; ddai pools them by default (more rollouts, a less noisy estimate),
offers ``latest``/``first`` (ordered by step, then file order), and reports how many
prompts were affected so nobody is surprised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ddai.curriculum.stats import Group

POLICIES = ("pool", "latest", "first")


def _chrono(g: Group) -> tuple[int, int, int]:
    # Groups without a step sort before every stepped group, then by file order.
    return (0 if g.step is None else 1, g.step if g.step is not None else 0, g.order)


def select(row_groups: Mapping[int, Sequence[Group]], policy: str) -> tuple[dict[int, list[Group]], dict]:
    """Apply ``policy`` (pool | latest | first); return the kept groups per row and a report.

    ``latest``/``first`` keep what the last/first element of the chronologically (stably) sorted
    groups would be, found without sorting each row's groups.
    """
    kept: dict[int, list[Group]] = {}
    rows_with_several = discarded = most = 0
    for row, groups in row_groups.items():
        if policy not in POLICIES:  # validate() rejects this earlier; kept for direct callers
            raise ValueError(f"unknown duplicates policy {policy!r}")
        n = len(groups)
        most = max(most, n)
        if n > 1:
            rows_with_several += 1
            discarded += n - 1
        if n == 1:
            kept[row] = list(groups)
        elif policy == "pool":
            kept[row] = sorted(groups, key=_chrono)
        elif policy == "latest":
            # the last of the stably sorted list: the latest key, the last one in list order among equals
            kept[row] = [max(reversed(groups), key=_chrono)]
        else:
            kept[row] = [min(groups, key=_chrono)]   # the first among equals, as a stable sort puts it
    report = {"policy": policy, "rows_with_several_groups": rows_with_several,
              "groups_discarded": discarded if policy != "pool" else 0, "max_groups_per_row": most}
    return kept, report


@dataclass(eq=False)
class Kept:
    """The groups that count, row by row: ``gids[starts[k]:starts[k] + counts[k]]`` are the kept
    groups of ``rows[k]`` (chronological for ``pool``), rows in the matcher's order."""

    rows: np.ndarray
    counts: np.ndarray
    starts: np.ndarray
    gids: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)

    def groups_of(self, k: int) -> list[int]:
        a = int(self.starts[k])
        return self.gids[a:a + int(self.counts[k])].tolist()

    @classmethod
    def empty(cls) -> Kept:
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, none, none)


def step_ranks(steps: Sequence[int | None]) -> np.ndarray:
    """A key per group that orders as :func:`_chrono`'s (has a step, step) does, as int64: the
    steps themselves when every group has one that fits 64 bits (the usual log), else each
    step's rank among the distinct steps (None below every step)."""
    if None not in steps:
        try:
            return np.array(steps, dtype=np.int64)
        except OverflowError:
            pass
    distinct = sorted({s for s in steps if s is not None})
    rank = {s: i + 1 for i, s in enumerate(distinct)}
    rank[None] = 0   # type: ignore[index]
    return np.fromiter((rank[s] for s in steps), dtype=np.int64, count=len(steps))


def select_table(rows: np.ndarray, group_row: np.ndarray, steps: Sequence[int | None],
                 policy: str) -> tuple[Kept, dict]:
    """:func:`select` over a matcher's columns (``rows``: the matched rows in order, ``group_row``:
    each group's row or -1): the same kept groups and report, without one object per group."""
    if policy not in POLICIES:
        raise ValueError(f"unknown duplicates policy {policy!r}")
    ok = np.nonzero(group_row >= 0)[0]
    rank_of_row = np.zeros(int(rows.max()) + 1 if len(rows) else 0, dtype=np.int64)
    rank_of_row[rows] = np.arange(len(rows), dtype=np.int64)
    row_rank = rank_of_row[group_row[ok]]
    chrono = np.lexsort((ok, step_ranks(steps)[ok] if len(ok) else ok, row_rank))  # by row, then _chrono
    gids = ok[chrono]
    counts = np.bincount(row_rank, minlength=len(rows)).astype(np.int64)
    starts = np.zeros(len(rows), dtype=np.int64)
    if len(rows):
        np.cumsum(counts[:-1], out=starts[1:])
    several = counts > 1
    report = {"policy": policy, "rows_with_several_groups": int(several.sum()),
              "groups_discarded": int((counts - 1)[several].sum()) if policy != "pool" else 0,
              "max_groups_per_row": int(counts.max()) if len(counts) else 0}
    if policy == "pool":
        return Kept(rows, counts, starts, gids), report
    pick = starts + counts - 1 if policy == "latest" else starts
    return Kept(rows, np.ones(len(rows), dtype=np.int64), np.arange(len(rows), dtype=np.int64), gids[pick]), report
