"""Stages: units of work that know when they are done, chained by dependencies.

WHY completion markers and not job states: a stage is done when its output exists (a
manifest, a DONE marker), whoever produced it and however long ago; Slurm forgets jobs,
files do not. So a re-run asks every stage ``is_complete()`` first and submits only the rest,
each behind the job of the last stage it submitted (datatrove's executors work the same way
with ``depends=`` and completed-rank markers).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddai.jobs.spec import JobRef, JobSpec


class Stage(ABC):
    """One step of a job suite. ``submit`` returns the job a later stage can wait on with ``afterok``."""

    name: str

    @abstractmethod
    def is_complete(self) -> bool: ...

    @abstractmethod
    def submit(self, executor: Any, after: Sequence[JobRef] = ()) -> JobRef: ...

    def describe(self) -> dict[str, Any]:
        """What a dry run prints for this stage."""
        return {"stage": self.name, "complete": self.is_complete()}


@dataclass
class MarkerStage(Stage):
    """A job whose success is a file: complete when ``marker`` exists (written last, atomically)."""

    name: str
    spec: JobSpec
    marker: Path

    def is_complete(self) -> bool:
        return Path(self.marker).exists()

    def submit(self, executor: Any, after: Sequence[JobRef] = ()) -> JobRef:
        return executor.submit(self.spec, after, "afterok")

    def describe(self) -> dict[str, Any]:
        import shlex

        return {"stage": self.name, "complete": self.is_complete(), "marker": str(self.marker),
                "sbatch": shlex.join(self.spec.argv())}


@dataclass
class Submitted:
    """What :func:`submit_stages` did: the job of each submitted stage, and the skipped ones."""

    jobs: dict[str, JobRef] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    last: JobRef | None = None

    def to_json(self) -> dict[str, Any]:
        return {"jobs": {k: v.job_id for k, v in self.jobs.items()}, "skipped": self.skipped,
                "last": self.last.job_id if self.last else None}


def submit_stages(stages: Sequence[Stage], executor: Any, after: Sequence[JobRef] = ()) -> Submitted:
    """Submit every incomplete stage, in order, each behind the previous submitted one.

    Complete stages are skipped; the first incomplete stage waits for ``after`` only.
    """
    out = Submitted()
    prev: list[JobRef] = list(after)
    for stage in stages:
        if stage.is_complete():
            out.skipped.append(stage.name)
            continue
        ref = stage.submit(executor, prev)
        out.jobs[stage.name] = ref
        out.last = ref
        prev = [ref]
    return out
