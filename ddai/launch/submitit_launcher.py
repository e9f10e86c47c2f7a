"""ddai's submitit launchers: validate the whole sweep first, survive failed jobs, record job ids.

WHY a subclass of the plugin's launcher (hydra-submitit-launcher 1.2.0):
* it submits first and lets each job discover its own bad config; ddai composes and validates
  every combination before ``sbatch`` runs (:mod:`ddai.launch.sweep_validate`);
* it creates its log folder only after ``sbatch`` returns, which Slurm 22.05 punishes with a
  failed job; here the folder exists before submission;
* its ``launch()`` raises at the first failed job, so Hydra never reaches the end-of-sweep
  callback; here every job is waited for, each outcome (Slurm job id, state, log paths) is
  written to ``<sweep dir>/sweep_jobs.json``, and the failure is reported by the summary
  callback (:mod:`ddai.launch.sweep_summary`), which then exits non-zero;
* a task that fails inside the job makes the Slurm job FAILED too (the plugin returns
  normally, so Slurm would say COMPLETED).

Requeue and preemption keep the plugin's behaviour: the same job (same overrides, same
output directory) is started again, and the curriculum writer is atomic and deterministic.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import (
    BaseSubmititLauncher,
)
from omegaconf import OmegaConf

from ddai.atomic import atomic_write_text
from ddai.errors import DdaiError
from ddai.launch.sweep_validate import JobPlan, validate_sweep_or_exit

log = logging.getLogger(__name__)

JOBS_FILE = "sweep_jobs.json"
SUMMARY_CALLBACK = "ddai.launch.sweep_summary.SweepSummary"
INIT_KEYS = {"max_num_timeout"}    # executor constructor arguments, not job parameters


class RunFailed(RuntimeError):
    """Raised inside a job whose task failed, so that Slurm records the job as FAILED."""


def jobs_file(sweep_dir: str | Path) -> Path:
    return Path(sweep_dir) / JOBS_FILE


def summary_callback_configured(config: Any) -> bool:
    callbacks = OmegaConf.select(config, "hydra.callbacks") or {}
    return any(OmegaConf.select(cb, "_target_") == SUMMARY_CALLBACK for cb in callbacks.values())


class _DdaiSubmitit(BaseSubmititLauncher):
    """Shared behaviour of the Slurm and local variants (``_EXECUTOR`` picks the backend)."""

    # -- inside the job ---------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> JobReturn:
        import warnings

        from ddai.launch.sweep_config import SCHEMA_MATCH_WARNING

        # the job re-composes its config: same expected schema-matching warning as at launch
        warnings.filterwarnings("ignore", message=SCHEMA_MATCH_WARNING, category=UserWarning)
        ret = super().__call__(*args, **kwargs)
        if ret.status == JobStatus.FAILED:
            exc = ret._return_value
            if not isinstance(exc, DdaiError):
                traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
            raise RunFailed(f"{type(exc).__name__}: {exc}")
        return ret

    # -- on the submitting host ---------------------------------------------------------------
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        assert self.config is not None and self.hydra_context is not None
        plans = validate_sweep_or_exit(self.hydra_context.config_loader, self.config, job_overrides, initial_job_idx)

        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        folder = str(self.params["submitit_folder"])
        # Create the log folder BEFORE sbatch (Slurm 22.05 fails a job whose log dir is missing).
        submitit.core.utils.JobPaths.get_first_id_independent_folder(folder).mkdir(parents=True, exist_ok=True)

        init_params: dict[str, Any] = {"folder": folder}
        init_params.update({f"{self._EXECUTOR}_{k}": v for k, v in self.params.items() if k in INIT_KEYS})
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init_params)
        base_keys = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{
            (k if k in base_keys else f"{self._EXECUTOR}_{k}"): v
            for k, v in self.params.items() if k not in INIT_KEYS | {"submitit_folder"}
        })

        log.info(f"ddai: submitting {len(plans)} job(s) to {self._EXECUTOR}; sweep dir {sweep_dir}")
        args = [(plan.overrides, "hydra.sweep.dir", plan.num, f"job_id_for_{plan.num}", Singleton.get_state())
                for plan in plans]
        try:
            jobs = executor.map_array(self, *zip(*args))
        except submitit.core.utils.FailedJobError as exc:   # sbatch refused the array: nothing runs
            detail = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            print(f"ddai: error: hydra.launcher: the scheduler refused the sweep ({detail}); nothing was "
                  f"submitted (expected resources the cluster offers: check partition, mem_gb, "
                  f"cpus_per_task, gpus_per_node, timeout_min)", file=sys.stderr)
            sys.exit(2)
        records = [self._record(plan, job, "SUBMITTED") for plan, job in zip(plans, jobs)]
        self._write_records(sweep_dir, records)
        for rec in records:
            print(f"ddai: #{rec['num']} {rec['label']} -> job {rec['job_id']}", file=sys.stderr)

        self._wait(jobs, records)
        returns: list[JobReturn] = []
        for plan, job, rec in zip(plans, jobs, records):
            returns.append(self._collect(plan, job, rec))
        self._settle_states(jobs, records)
        self._write_records(sweep_dir, records)

        failed = [r for r in records if r["status"] != "COMPLETED"]
        if failed and summary_callback_configured(self.config):
            # Hydra's sweeper raises at the first failed JobReturn, before any end-of-sweep
            # callback; the summary callback reports these failures and exits non-zero.
            for ret, rec in zip(returns, records):
                if rec["status"] != "COMPLETED":
                    ret.status = JobStatus.COMPLETED
                    ret._return_value = {"ddai_failed": True, **rec}
        return returns

    def _wait(self, jobs: list[Any], records: list[dict[str, Any]]) -> None:
        """Wait for every job, with a progress bar on a terminal."""
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        total = len(jobs)
        last_force = 0.0
        with Progress(TextColumn("[bold]sweep[/] {task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total} jobs done"), TimeElapsedColumn(),
                      transient=True, console=_stderr_console()) as progress:
            bar = progress.add_task(f"{self._EXECUTOR} jobs", total=total)
            while True:
                force = time.monotonic() - last_force > 10   # ask the scheduler, not only the disk
                if force:
                    last_force = time.monotonic()
                done = sum(1 for j in jobs if j.done(force_check=force))
                progress.update(bar, completed=done)
                if done == total:
                    return
                time.sleep(1.0)

    @staticmethod
    def _settle_states(jobs: list[Any], records: list[dict[str, Any]], timeout_s: float = 60.0) -> None:
        """A job's result file appears just before the job ends: wait (briefly) for the final state."""
        deadline = time.monotonic() + timeout_s
        while True:
            pending = [(j, r) for j, r in zip(jobs, records) if r["state"] in _NOT_FINAL]
            if not pending or time.monotonic() > deadline:
                return
            time.sleep(1.0)
            for job, rec in pending:
                rec["state"] = _state(job, default=rec["state"])

    def _collect(self, plan: JobPlan, job: Any, rec: dict[str, Any]) -> JobReturn:
        try:
            ret = job.results()[0]
            rec["status"] = "COMPLETED"
            rec["state"] = _state(job, default="COMPLETED")
            return ret
        except Exception as exc:  # FailedJobError (task raised), UncompletedJobError (killed/lost)
            rec["status"] = "FAILED"
            rec["state"] = _state(job, default="FAILED")
            rec["error"] = _short_error(exc)
            ret = JobReturn(overrides=plan.overrides, working_dir=plan.output_dir, status=JobStatus.FAILED)
            ret._return_value = exc
            return ret

    def _record(self, plan: JobPlan, job: Any, status: str) -> dict[str, Any]:
        return {
            "num": plan.num,
            "label": plan.label,
            "overrides": plan.overrides,
            "job_id": str(job.job_id),
            "executor": self._EXECUTOR,
            "status": status,
            "state": None,
            "output_dir": plan.output_dir,
            "out_dir": plan.out_dir,
            "stdout": str(job.paths.stdout),
            "stderr": str(job.paths.stderr),
            "error": None,
        }

    @staticmethod
    def _write_records(sweep_dir: Path, records: list[dict[str, Any]]) -> None:
        """Record (or update) this batch's jobs; earlier batches of the same sweep are kept."""
        path = jobs_file(sweep_dir)
        mine = {r["num"] for r in records}
        try:
            earlier = [r for r in json.loads(path.read_text())["jobs"] if r["num"] not in mine]
        except (OSError, ValueError, KeyError, TypeError):
            earlier = []
        jobs = sorted(earlier + records, key=lambda r: r["num"])
        atomic_write_text(path, json.dumps({"jobs": jobs}, indent=2) + "\n")


def _state(job: Any, default: str) -> str:
    """The scheduler's word on a job (Slurm: via sacct, forced; local: the process state)."""
    try:
        if job.__class__.__name__ == "SlurmJob":
            state = str(job.watcher.get_state(job.job_id, mode="force") or "")
        else:  # a local process only knows RUNNING / FINISHED / INTERRUPTED: keep the outcome
            state = str(job.state or "")
            state = state if state in ("RUNNING", "INTERRUPTED") else default
    except Exception:  # the scheduler could not be asked; the outcome still stands
        state = ""
    return state.split()[0] if state and state != "UNKNOWN" else default


# States in which a job that already left its result may linger for a moment.
_NOT_FINAL = {"READY", "PENDING", "RUNNING", "UNKNOWN", "REQUEUED", "COMPLETING", "PREEMPTED", "CONFIGURING"}


def _short_error(exc: BaseException) -> str:
    """The informative line of a submitit error (the task's own message when there is one)."""
    text = str(exc)
    for line in reversed(text.splitlines()):
        if line.startswith(RunFailed.__name__ + ":") or ".RunFailed:" in line:
            return line.split("RunFailed:", 1)[1].strip()
    lines = [ln for ln in text.splitlines() if ln.strip() and not set(ln.strip()) <= {"-"}]
    return " ".join(lines[:2])[:500] if lines else type(exc).__name__


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


class SlurmLauncher(_DdaiSubmitit):
    _EXECUTOR = "slurm"


class LocalLauncher(_DdaiSubmitit):
    _EXECUTOR = "local"
