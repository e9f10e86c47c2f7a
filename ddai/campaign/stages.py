"""A campaign as a list of stages (see :mod:`ddai.jobs.stage`), in the order they must run.

round 1: [curriculum] → Phase 2 → round 2: next set → Phase 2 → ... → close.
Every stage but ``close`` waits with ``afterok`` on the one before, so a failure cancels the
rest; ``close`` waits with ``afterany`` and records the outcome either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ddai.campaign import record as cr
from ddai.campaign import steps
from ddai.jobs import JobRef, JobSpec
from ddai.jobs.stage import MarkerStage, Stage


@dataclass
class CloseStage(Stage):
    """The last job: settles the rounds, writes ``done`` or why the campaign stopped."""

    name: str
    spec: JobSpec
    campaign_dir: Path

    def is_complete(self) -> bool:
        rec = cr.load(self.campaign_dir)
        return rec is not None and rec.status == "done"

    def submit(self, executor: Any, after: Sequence[JobRef] = ()) -> JobRef:
        return executor.submit(self.spec, after, "afterany")

    def describe(self) -> dict[str, Any]:
        import shlex

        return {"stage": self.name, "complete": self.is_complete(), "sbatch": shlex.join(self.spec.argv())}


def cpu_spec(name: str, command: list[str], log_dir: Path, job: Any, slurm: Any) -> JobSpec:
    """One of the campaign's small CPU jobs (resources: ``campaign.job``; partition/account of Phase 2)."""
    return JobSpec(name=name, command=command, output=str(log_dir / f"{name}-%j.out"), cpus_per_task=int(job.cpus),
                   time_min=int(job.time_min), mem=str(job.mem), partition=slurm.partition, account=slurm.account,
                   chdir=str(log_dir))


def nextset_stage(campaign_dir: Path, k: int, prefix: str, python: str, job: Any, slurm: Any) -> MarkerStage:
    rdir = steps.round_dir(campaign_dir, k)
    spec = cpu_spec(f"{prefix}-r{k}-set", [python, "-m", "ddai.campaign.steps", "nextset", str(campaign_dir), str(k)],
                    campaign_dir / "logs", job, slurm)
    return MarkerStage(f"round{k}-set", spec, rdir / "set" / steps.READY_NAME)


def close_stage(campaign_dir: Path, prefix: str, python: str, job: Any, slurm: Any) -> CloseStage:
    spec = cpu_spec(f"{prefix}-close", [python, "-m", "ddai.campaign.steps", "close", str(campaign_dir)],
                    campaign_dir / "logs", job, slurm)
    return CloseStage("close", spec, campaign_dir)
