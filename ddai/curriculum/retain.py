"""Objects a curriculum run may leave to the end of the process instead of freeing them mid-run.

WHY: after deciding, a run lets go of the log's groups (tens of thousands of small objects
each: sets, lists, one float object per score). Freeing them one by one took ~0.2 s of a
curriculum run on a 400 MB log. When the process ends right after the run without tearing
its heap down (``python -m ddai.launch``, see :mod:`ddai.launch.quick_exit`), that work buys
nothing: the entry point calls :func:`until_exit` and the run parks what it drops here.

The cost is memory: the groups stay while the outputs are written. The outputs are built
from the dataset's table (a few MB for the users' datasets) and the process's peak is
reached while reading the log, when the groups and the reader's buffers are alive anyway.
Library callers (tests, a long-lived process) never call :func:`until_exit`, so for them
everything is freed as soon as it is dropped. While parking, the run also freezes what is
alive when it ends (``gc.freeze``), so the collector's next full pass does not walk the
parked objects (that walk cost as much as freeing them).
"""

from __future__ import annotations

from typing import Any

_parked: list[Any] | None = None


def until_exit() -> None:
    """From now on, objects passed to :func:`drop` are kept until the process ends."""
    global _parked
    if _parked is None:
        _parked = []


def parking() -> bool:
    """Whether dropped objects are being kept until the process ends."""
    return _parked is not None


def drop(obj: Any) -> None:
    """Let go of ``obj``: freed by the caller's ``del`` as usual, or parked (see :func:`until_exit`)."""
    if _parked is not None:
        _parked.append(obj)
