"""Several groups for one dataset row: which of them count.

WHY a policy and a count: a prompt seen at several steps (or epochs) has several groups —
in the step-keyed log each with a fresh uuid. The reference kept whichever came last in the
file and said nothing; ddai pools them by default (more rollouts, a less noisy estimate),
offers ``latest``/``first`` (ordered by step, then file order), and reports how many
prompts were affected so nobody is surprised.
"""

from __future__ import annotations

from typing import Mapping, Sequence

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
