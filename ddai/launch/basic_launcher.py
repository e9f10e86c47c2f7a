"""The default launcher (in-process, one job after another) with ddai's sweep guarantees.

WHY not Hydra's ``BasicLauncher`` as is: it runs job 0 before job 1's config is even
composed, so ``-m curriculum.theta1=0.05,0.9`` spent a whole bucketing run before failing
on the second combination with a traceback, and its sweeper then stops at the first failed
job before the end-of-sweep summary. Here, as in the submitit launchers
(:mod:`ddai.launch.submitit_launcher`):

* every combination is composed and validated first (:mod:`ddai.launch.sweep_validate`);
  a rejected sweep runs nothing and leaves no directory behind;
* a job that fails is recorded (``sweep_jobs.json``) and reported by the summary callback,
  which then exits non-zero, instead of a traceback cutting the sweep short.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra.core.utils import JobReturn, JobStatus

from ddai.atomic import atomic_write_text
from ddai.launch.sweep_validate import validate_sweep_or_exit

JOBS_FILE = "sweep_jobs.json"
SUMMARY_CALLBACK = "ddai.launch.sweep_summary.SweepSummary"


def _summary_configured(config: Any) -> bool:
    from omegaconf import OmegaConf

    callbacks = OmegaConf.select(config, "hydra.callbacks") or {}
    return any(OmegaConf.select(cb, "_target_") == SUMMARY_CALLBACK for cb in callbacks.values())


def _error_text(exc: BaseException) -> str:
    from ddai.launch.cli import describe
    from ddai.launch.secrets import redact

    described = describe(exc)
    return redact(described[0] if described else f"{type(exc).__name__}: {' '.join(str(exc).split())}")


class ValidatingBasicLauncher(BasicLauncher):
    """Hydra's basic launcher, validating the whole sweep first and surviving failed jobs."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None and self.hydra_context is not None
        plans = validate_sweep_or_exit(self.hydra_context.config_loader, self.config, job_overrides, initial_job_idx)
        returns = list(super().launch(job_overrides, initial_job_idx))
        if not _summary_configured(self.config):
            return returns
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        records = []
        for plan, ret in zip(plans, returns):
            ok = ret.status == JobStatus.COMPLETED
            records.append({"num": plan.num, "label": plan.label, "overrides": plan.overrides, "job_id": None,
                            "executor": "basic", "status": "COMPLETED" if ok else "FAILED", "state": None,
                            "output_dir": plan.output_dir, "out_dir": plan.out_dir, "stdout": None,
                            "stderr": str(Path(plan.output_dir) / "ddai.log"),
                            "error": None if ok else _error_text(ret._return_value)})
            if not ok:
                # Hydra's sweeper raises at the first failed job, before the end-of-sweep callback;
                # the summary callback reports the failure and exits non-zero instead.
                ret.status = JobStatus.COMPLETED
                ret._return_value = {"ddai_failed": True, **records[-1]}
        path = sweep_dir / JOBS_FILE
        try:
            earlier = [r for r in json.loads(path.read_text())["jobs"] if r["num"] not in {r["num"] for r in records}]
        except (OSError, ValueError, KeyError, TypeError):
            earlier = []
        atomic_write_text(path, json.dumps({"jobs": sorted(earlier + records, key=lambda r: r["num"])}, indent=2) + "\n")
        return returns
