"""Batch jobs in one place: what a job asks for, how it is submitted, what state it is in.

WHY one package: sbatch arguments, dependency syntax, job-id parsing and the mapping of
Slurm's many state names used to be re-implemented wherever a job was submitted. Here a
:class:`~ddai.jobs.spec.JobSpec` says what a job needs, an executor (:mod:`ddai.jobs.slurm`
or its local twin :mod:`ddai.jobs.local`, chosen by :func:`executor`) submits it and reports
its state, and :mod:`ddai.jobs.stage` chains work as stages that know when they are done.
This package imports only the core (``ddai.errors``, ``ddai.atomic``), so every layer above
may use it.
"""

from __future__ import annotations

import os

from ddai.jobs.spec import Dependency, JobRef, JobSpec, JobState, parse_job_id

__all__ = ["Dependency", "JobRef", "JobSpec", "JobState", "executor", "parse_job_id"]


def executor(kind: str | None = None):
    """The executor named by ``kind`` or ``DDAI_JOBS_BACKEND`` (``slurm``, the default, or ``local``)."""
    name = kind or os.environ.get("DDAI_JOBS_BACKEND", "slurm")
    if name == "slurm":
        from ddai.jobs.slurm import SlurmExecutor

        return SlurmExecutor()
    if name == "local":
        from ddai.jobs.local import LocalExecutor

        return LocalExecutor()
    from ddai.errors import ConfigError

    raise ConfigError(f"unknown job backend {name!r}", where="DDAI_JOBS_BACKEND", expected="slurm or local")
