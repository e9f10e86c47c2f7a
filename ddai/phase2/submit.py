"""Submit a rendered Phase 2 run: sbatch, dry-run report, and the submitit path.

WHY separate from rendering: everything here has side effects (files in the run directory,
Slurm jobs); rendering and validation stay pure so tests and ``--dry-run`` need no cluster.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from ddai.errors import ConfigError, DdaiError
from ddai.slurm_scripts import script_path as shipped_script
from ddai.phase2 import chain_state as cs
from ddai.phase2.plan import PLAN_NAME, read_plan, write_plan
from ddai.phase2.render import Plan, shell_line


def script_path() -> str:
    """The installed ``slurm/phase2.slurm`` (checkout or wheel; ``DDAI_PHASE2_SCRIPT`` overrides it)."""
    env = os.environ.get("DDAI_PHASE2_SCRIPT")
    path = Path(env) if env else shipped_script("phase2.slurm")
    if not path.is_file():
        raise ConfigError(f"job script {path} not found", where="DDAI_PHASE2_SCRIPT",
                          expected="the path of slurm/phase2.slurm")
    return str(path)


def sbatch_argv(plan: Plan | dict[str, Any], dependency: str | None = None) -> list[str]:
    d = plan.to_json() if isinstance(plan, Plan) else plan
    argv = ["sbatch", "--parsable", *d["sbatch_args"]]
    if dependency:
        argv.append(f"--dependency={dependency}")
    argv += ["--export=ALL", script_path(), d["run_dir"]]
    return argv


def dry_run_report(plan: Plan) -> dict[str, Any]:
    """What would run, exactly: trainer argv, sbatch argv, required secrets (names only)."""
    return {
        "dry_run": True,
        "run_dir": plan.run_dir,
        "checkpoint_dir": plan.checkpoint_dir,
        "train_file": plan.train_file,
        "train_rows": plan.train_rows,
        "steps_per_epoch": plan.steps_per_epoch,
        "total_steps": plan.total_steps,
        "trainer_command": shell_line(["python", *plan.command]),
        "sbatch_command": shell_line(sbatch_argv(plan)),
        "sbatch_args": plan.sbatch_args,
        "required_env": plan.required_env,
    }


def _store_plan(plan: Plan) -> Path:
    """Write plan.json; an existing plan for this run_dir must be the same run."""
    path = Path(plan.run_dir) / PLAN_NAME
    if path.exists():
        old = read_plan(path)
        if old["overrides"] != plan.overrides or old["sbatch_args"] != plan.sbatch_args:
            raise ConfigError("this run directory already holds a different run", where=path,
                              expected="a new phase2.run_dir (or phase2.experiment_name), or the same settings "
                                       "to continue that run")
    else:
        write_plan(path, plan)
    return path


def submit_chain(plan: Plan, dependency: str | None = None) -> dict[str, Any]:
    """Write the plan and submit the first job of the chain."""
    path = _store_plan(plan)
    run_dir = Path(plan.run_dir)
    if cs.marker(run_dir, cs.DONE_NAME) is not None:
        return {"submitted": False, "run_dir": plan.run_dir, "reason": "run already finished (DONE marker)"}
    if cs.marker(run_dir, cs.FAILED_NAME) is not None:  # resubmitting = retry after a fix
        (run_dir / cs.FAILED_NAME).unlink()
        cs.log(run_dir, "resubmitted after FAILED: budgets start afresh")
    argv = sbatch_argv(plan, dependency)
    res = subprocess.run(argv, capture_output=True, text=True, cwd=plan.run_dir)
    if res.returncode != 0:
        raise DdaiError(f"sbatch failed: {res.stderr.strip()}", where="slurm",
                        expected="a reachable Slurm controller and valid sbatch settings (phase2.slurm.*)")
    job_id = res.stdout.strip().split(";")[0]
    cs.log(run_dir, f"submitted first job {job_id}: {shell_line(argv)}")
    return {"submitted": True, "job_id": job_id, "run_dir": plan.run_dir, "plan": str(path),
            "log": str(run_dir / cs.LOG_NAME)}


def run_in_submitit_job(plan: Plan) -> dict[str, Any]:
    """Inside a submitit job: run the chain script in place, forwarding submitit's USR2.

    submitit asks for ``--signal=USR2@signal_delay_s`` (no ``B:``), which reaches this Python
    process. Instead of submitit's requeue we forward it to the script as USR1, the script
    stops the trainer, and the successor the script pre-submitted (``afterany``) continues:
    the same chain, state file and log as with ``sbatch slurm/phase2.slurm``.
    """
    _store_plan(plan)
    proc = subprocess.Popen(["bash", script_path(), plan.run_dir], env=dict(os.environ, DDAI_PHASE2_IN_JOB="1"))

    def forward(signum: int, _frame: Any) -> None:
        proc.send_signal(signal.SIGUSR1)

    signal.signal(signal.SIGUSR2, forward)
    signal.signal(signal.SIGTERM, forward)
    rc = proc.wait()
    state = cs.read(Path(plan.run_dir))
    out = {"rc": rc, "run_dir": plan.run_dir, "status": state.get("status"), "message": state.get("message")}
    print(json.dumps(out), file=sys.stdout)
    return out
