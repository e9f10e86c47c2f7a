"""``task=pipeline``: submit bucketing, then Phase 2 with ``--dependency=afterok``.

``python -m ddai.launch task=pipeline curriculum.phase1_log=... curriculum.dataset=...
phase2.model_path=...`` validates both halves now, submits the curriculum job (CPU, via
``sbatch --wrap``), and submits the Phase 2 chain depending on it with ``afterok`` (and
``--kill-on-invalid-dep=yes``, so a failed bucketing cancels Phase 2 instead of leaving it
pending forever). Phase 2 trains ``<curriculum.out_dir>/manifest.json``'s training bucket;
its row count is checked when the first Phase 2 job starts, because it does not exist yet.
``phase2.dry_run=true`` prints both sbatch lines and submits nothing.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from ddai.errors import ConfigError, DdaiError
from ddai.launch.tasks import curriculum as curriculum_task
from ddai.launch.tasks import phase2 as phase2_task
from ddai.phase2 import chain_state as cs
from ddai.phase2 import submit
from ddai.phase2.plan import build_plan


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


def validate(cfg: DictConfig) -> None:
    curriculum_task.validate(cfg)
    _prepare(cfg)  # points phase2 at the manifest the bucketing job will write
    phase2_task.validate(cfg)


def run(cfg: DictConfig) -> dict[str, Any]:
    cur_overrides, p = _prepare(cfg)
    plan = build_plan(p)
    # A failed bucketing must cancel Phase 2, not leave it pending on a dead dependency.
    plan.sbatch_args.append("--kill-on-invalid-dep=yes")
    run_dir = Path(plan.run_dir)
    cur_cmd = [sys.executable, "-m", "ddai.launch", *cur_overrides]
    cur_sbatch = ["sbatch", "--parsable", f"--job-name=ddai-curriculum-{p.experiment_name}", "--nodes=1",
                  "--ntasks=1", "--cpus-per-task=1", "--time=120", f"--output={run_dir}/curriculum-%j.out",
                  *([f"--partition={p.slurm.partition}"] if p.slurm.partition else []),
                  *([f"--account={p.slurm.account}"] if p.slurm.account else []),
                  f"--chdir={os.getcwd()}", "--wrap", shlex.join(cur_cmd)]
    if p.dry_run:
        out = {"dry_run": True, "curriculum_sbatch": shlex.join(cur_sbatch),
               "phase2_sbatch": shlex.join(submit.sbatch_argv(plan, "afterok:<curriculum job>")),
               "trainer_command": shlex.join(["python", *plan.command])}
        print(json.dumps(out, indent=2))
        return out
    run_dir.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(cur_sbatch, capture_output=True, text=True)
    if res.returncode != 0:
        raise DdaiError(f"sbatch of the curriculum job failed: {res.stderr.strip()}", where="slurm",
                        expected="a reachable Slurm controller")
    cur_job = res.stdout.strip().split(";")[0]
    cs.log(run_dir, f"pipeline: curriculum job {cur_job}: {shlex.join(cur_cmd)}")
    result = submit.submit_chain(plan, dependency=f"afterok:{cur_job}")
    result["curriculum_job_id"] = cur_job
    print(json.dumps(result, indent=2))
    return result
