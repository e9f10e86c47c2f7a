"""verl batch alignment: which prompts a sequential loader with drop_last never trains.

WHY: with ``data.shuffle=False`` verl uses a SequentialSampler and its train loader drops
the last partial batch, so the *last* ``len % train_batch_size`` prompts of an ordered file
— for easy→hard, the hardest ones — are silently never trained (1,560 mod 64 = 24 in the
reference run). The manifest names them and the policy decides:

- ``warn``: write as ordered; report the ids verl will drop.
- ``trim`` (the default): move them out of the training file into their own ``remainder``
  bucket file, so the file holds whole batches and Phase 2's data check accepts it as
  written; verl trains exactly the prompts it would have trained anyway, and the others are
  named and kept (``ddai-report --next-round ... --include`` can bring them back later).
- ``pad``: append repeats of the first prompts of the order until the last batch is full,
  so every intended prompt is trained (the repeats are listed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence, TypeVar

T = TypeVar("T")


@dataclass
class BatchPlan:
    train: list            # rows to write into the training file, in order (pads included)
    remainder: list        # rows moved out by ``trim`` (empty otherwise)
    dropped: list          # rows verl would drop from ``train`` as written
    padded: list           # rows repeated by ``pad``
    steps_per_epoch: int
    report: dict = field(default_factory=dict)


def plan(ordered: Sequence[T], batch_size: int, policy: str, ident=lambda x: x) -> BatchPlan:
    """Apply ``policy`` to an ordered training list; ``ident`` names an item in the report."""
    items = list(ordered)
    remainder_n = len(items) % batch_size
    intended = len(items)
    remainder: list = []
    padded: list = []
    if policy == "trim" and remainder_n:
        remainder = items[len(items) - remainder_n:]
        items = items[:len(items) - remainder_n]
    elif policy == "pad" and remainder_n:
        need = batch_size - remainder_n
        padded = [items[i % len(items)] for i in range(need)]
        items = items + padded
    elif policy not in ("warn", "trim", "pad"):
        raise ValueError(f"unknown remainder policy {policy!r}")
    final_rem = len(items) % batch_size
    dropped = items[len(items) - final_rem:] if final_rem else []
    steps = len(items) // batch_size
    report = {
        "train_batch_size": batch_size,
        "intended_rows": intended,
        "rows_written": len(items),
        "steps_per_epoch": steps,
        "remainder": remainder_n,
        "policy": policy,
        "dropped_ids": [ident(x) for x in dropped],
        "trimmed_ids": [ident(x) for x in remainder],
        "padded_ids": [ident(x) for x in padded],
    }
    return BatchPlan(items, remainder, dropped, padded, steps, report)
