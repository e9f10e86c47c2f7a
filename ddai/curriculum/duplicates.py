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


def _chrono(g: Group) -> tuple[int, int, int]:
    # Groups without a step sort before every stepped group, then by file order.
    return (0 if g.step is None else 1, g.step if g.step is not None else 0, g.order)


def select(row_groups: Mapping[int, Sequence[Group]], policy: str) -> tuple[dict[int, list[Group]], dict]:
    """Apply ``policy`` (pool | latest | first); return the kept groups per row and a report."""
    kept: dict[int, list[Group]] = {}
    rows_with_several = discarded = most = 0
    for row, groups in row_groups.items():
        ordered = sorted(groups, key=_chrono)
        most = max(most, len(ordered))
        if len(ordered) > 1:
            rows_with_several += 1
        if policy == "pool":
            kept[row] = ordered
        elif policy == "latest":
            kept[row] = [ordered[-1]]
            discarded += len(ordered) - 1
        elif policy == "first":
            kept[row] = [ordered[0]]
            discarded += len(ordered) - 1
        else:  # validate() rejects this earlier; kept for direct callers
            raise ValueError(f"unknown duplicates policy {policy!r}")
    report = {"policy": policy, "rows_with_several_groups": rows_with_several,
              "groups_discarded": discarded, "max_groups_per_row": most}
    return kept, report
