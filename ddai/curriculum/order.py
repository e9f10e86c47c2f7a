"""Order the training bucket. verl reads it with ``data.shuffle=False``, so order = schedule.

WHY every sort has a total key ending in the dataset id: Python's sort is stable, but the
reference's pandas sort was not, and equal means are common (NDCG is often exactly 0 or 1).
A total order makes the output independent of input order and identical on every run.
``random`` hashes (seed, id), so it is a seeded permutation that also does not depend on
the order rows arrive in.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Sequence

_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True, slots=True)
class Item:
    """What ordering needs to know about one prompt."""

    row: int                   # position in the dataset file
    id: str
    mean: float | None
    std: float | None = None
    pass_rate: float | None = None


def id_key(dataset_id: str) -> tuple:
    """Natural order of ids ("train_2" < "train_10"), total: the raw id breaks any tie."""
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in _DIGITS.split(dataset_id) if p)
    return parts + ((2, 0, dataset_id),)


def _num(x: float | None, missing: float) -> float:
    return missing if x is None else x


def _random_key(seed: int, dataset_id: str) -> bytes:
    return hashlib.sha256(f"{seed}\0{dataset_id}".encode("utf-8")).digest()


def easy_to_hard(items: Sequence[Item]) -> list[Item]:
    return sorted(items, key=lambda it: (-_num(it.mean, -1.0), id_key(it.id)))


def order_items(items: Sequence[Item], strategy: str, *, seed: int = 0, frontier_by: str = "pass_rate",
                strata: int = 4) -> list[Item]:
    """Return ``items`` in the order ``strategy`` prescribes (a permutation, deterministic)."""
    if strategy == "easy_to_hard":
        return easy_to_hard(items)
    if strategy == "hard_to_easy":
        return sorted(items, key=lambda it: (_num(it.mean, 2.0), id_key(it.id)))
    if strategy == "original":
        return sorted(items, key=lambda it: (it.row, id_key(it.id)))
    if strategy == "random":
        return sorted(items, key=lambda it: (_random_key(seed, it.id), id_key(it.id)))
    if strategy == "frontier":
        if frontier_by == "std":
            return sorted(items, key=lambda it: (-_num(it.std, -1.0), id_key(it.id)))
        # closest to a 50 % success rate first: where p(1-p), hence GRPO's signal, peaks
        return sorted(items, key=lambda it: (abs(_num(it.pass_rate, 2.0) - 0.5), -_num(it.std, -1.0),
                                             id_key(it.id)))
    if strategy == "interleave":
        return interleave(easy_to_hard(items), strata)
    raise ValueError(f"unknown sort {strategy!r}")


def interleave(ordered: Sequence[Item], strata: int) -> list[Item]:
    """Cut an easy→hard list into ``strata`` contiguous strata and deal them round-robin.

    Consecutive prompts then come from different difficulty strata, so every batch spans the
    range instead of the schedule drifting from easy to hard.
    """
    n = len(ordered)
    k = max(1, min(strata, n))
    bounds = [round(i * n / k) for i in range(k + 1)]
    parts = [list(ordered[bounds[i]:bounds[i + 1]]) for i in range(k)]
    out: list[Item] = []
    for j in range(max((len(p) for p in parts), default=0)):
        for p in parts:
            if j < len(p):
                out.append(p[j])
    return out
