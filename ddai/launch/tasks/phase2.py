"""``task=phase2``: render and validate the verl GSPO run, then submit its job chain.

``python -m ddai.launch task=phase2 phase2.model_path=... phase2.manifest=...`` writes
``<run_dir>/plan.json`` and submits ``slurm/phase2.slurm`` with sbatch. With
``phase2.dry_run=true`` it prints the exact trainer command and sbatch line (JSON on stdout)
and submits nothing. Under ``hydra/launcher=submitit_slurm`` the task already runs inside a
Slurm job: it runs the same script in place, so resume behaviour and state are identical.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from omegaconf import DictConfig

from ddai.phase2 import submit
from ddai.phase2 import validate as v
from ddai.phase2.plan import build_plan
from ddai.phase2.render import required_env


def _print(result: dict[str, Any]) -> None:
    """The result on stdout: indented for a person (one run), one JSON line per job in a sweep."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    try:
        multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:
        multirun = False
    print(json.dumps(result) if multirun else json.dumps(result, indent=2), flush=True)


def validate(cfg: DictConfig) -> None:
    """Settings-only checks (no data read, nothing submitted); missing keys fail unless dry-run."""
    p = cfg.phase2
    v.check_settings(p)
    missing = v.missing_env(required_env(p))
    if missing and not p.dry_run:
        v.check_env(required_env(p))


def run(cfg: DictConfig) -> dict[str, Any]:
    p = cfg.phase2
    plan = build_plan(p)
    missing = v.missing_env(plan.required_env)
    if p.dry_run:
        out = submit.dry_run_report(plan)
        if missing:
            out["missing_env"] = missing
            print(f"ddai: warning: missing API key(s): {v.describe(missing)} (a real submission would fail)",
                  file=sys.stderr)
        _print(out)
        return out
    if missing:
        v.check_env(plan.required_env)
    if os.environ.get("SUBMITIT_EXECUTOR") == "slurm" and os.environ.get("SLURM_JOB_ID"):
        return submit.run_in_submitit_job(plan)
    result = submit.submit_chain(plan)
    _print(result)
    return result
