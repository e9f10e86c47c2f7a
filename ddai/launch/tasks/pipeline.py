"""``task=pipeline``: bucketing, then Phase 2 behind it, as two stages of :mod:`ddai.jobs`.

``python -m ddai.launch task=pipeline curriculum.phase1_log=... curriculum.dataset=...
phase2.model_path=...`` validates both halves now, then submits the stages that are not
complete yet: the curriculum job (CPU; complete when ``<curriculum.out_dir>/manifest.json``
exists) and the Phase 2 chain behind it with ``afterok`` (complete at its DONE marker). A
failed bucketing cancels Phase 2 (``--kill-on-invalid-dep=yes``) instead of leaving it
pending forever. Phase 2 trains the manifest's training bucket; its row count is checked when
the first Phase 2 job starts, because it does not exist yet. Re-running the same command
skips finished stages. ``phase2.dry_run=true`` prints both sbatch lines and submits nothing.
Resources of the curriculum job: ``phase2.slurm.{partition,account}`` and the
``DDAI_CURRICULUM_{TIME_MIN,MEM}`` environment (defaults 120 min, 8G).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from ddai.errors import ConfigError
from ddai.jobs import JobSpec, executor
from ddai.jobs.stage import MarkerStage, submit_stages
from ddai.launch.tasks import curriculum as curriculum_task
from ddai.launch.tasks import phase2 as phase2_task
from ddai.phase2 import chain_state as cs
from ddai.phase2.plan import build_plan
from ddai.phase2.submit import Phase2Stage


def _curriculum_overrides(cfg: DictConfig, out_dir: str) -> list[str]:
    """The user's curriculum.* overrides, plus the resolved absolute output directory."""
    try:
        from hydra.core.hydra_config import HydraConfig

        task_overrides = list(HydraConfig.get().overrides.task)
    except ValueError:  # not inside a Hydra run (tests calling run() directly)
        task_overrides = []
    keep = [o for o in task_overrides if o.lstrip("+~").startswith("curriculum.")
            and not o.lstrip("+~").startswith("curriculum.out_dir")]
    return ["task=curriculum", *keep, f"curriculum.out_dir={out_dir}"]


def _prepare(cfg: DictConfig) -> tuple[list[str], Any]:
    out_dir = str(Path(str(cfg.curriculum.out_dir)).expanduser().resolve())
    if int(cfg.curriculum.train_batch_size) != int(cfg.phase2.train_batch_size):
        raise ConfigError(
            f"curriculum.train_batch_size={cfg.curriculum.train_batch_size} but "
            f"phase2.train_batch_size={cfg.phase2.train_batch_size}",
            where="curriculum.train_batch_size", expected="the same batch size in both halves")
    p = cfg.phase2
    with open_dict(p):
        p.manifest = str(Path(out_dir) / "manifest.json")
        p.train_file = None
        p.defer_data_check = True
    return _curriculum_overrides(cfg, out_dir), p


def curriculum_spec(name: str, overrides: list[str], *, log_dir: str, partition: str | None = None,
                    account: str | None = None) -> JobSpec:
    """The CPU job that runs ``python -m ddai.launch task=curriculum ...`` (also used by campaigns)."""
    return JobSpec(name=name, command=[sys.executable, "-m", "ddai.launch", *overrides],
                   output=f"{log_dir}/curriculum-%j.out", cpus_per_task=1,
                   time_min=int(os.environ.get("DDAI_CURRICULUM_TIME_MIN", "120")),
                   mem=os.environ.get("DDAI_CURRICULUM_MEM", "8G"), partition=partition, account=account,
                   chdir=os.getcwd())


def validate(cfg: DictConfig) -> None:
    curriculum_task.validate(cfg)
    _prepare(cfg)  # points phase2 at the manifest the bucketing job will write
    phase2_task.validate(cfg)


def run(cfg: DictConfig) -> dict[str, Any]:
    cur_overrides, p = _prepare(cfg)
    plan = build_plan(p)
    run_dir = Path(plan.run_dir)
    spec = curriculum_spec(f"ddai-curriculum-{p.experiment_name}", cur_overrides, log_dir=str(run_dir),
                           partition=p.slurm.partition, account=p.slurm.account)
    stages = [MarkerStage("curriculum", spec, Path(p.manifest)), Phase2Stage("phase2", plan)]
    if p.dry_run:
        out = {"dry_run": True, "curriculum_sbatch": shlex.join(spec.argv()),
               "phase2_sbatch": stages[1].describe()["sbatch"],
               "trainer_command": shlex.join(["python", *plan.command]),
               "stages": [s.describe() for s in stages]}
        print(json.dumps(out, indent=2))
        return out
    run_dir.mkdir(parents=True, exist_ok=True)
    done = submit_stages(stages, executor())
    result: dict[str, Any] = {"stages": done.to_json(), "run_dir": str(run_dir)}
    if "curriculum" in done.jobs:
        result["curriculum_job_id"] = done.jobs["curriculum"].job_id
        cs.log(run_dir, f"pipeline: curriculum job {result['curriculum_job_id']}: {shlex.join(spec.command)}")
    if "phase2" in done.jobs:
        result["finisher_id"] = done.jobs["phase2"].job_id
        result["job_id"] = stages[1].result.get("job_id") or stages[1].result.get("live_job")
    print(json.dumps(result, indent=2))
    return result
