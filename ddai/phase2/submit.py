"""Submit a rendered Phase 2 run: the chain's first job, its finisher, dry runs, submitit.

WHY separate from rendering: everything here has side effects (files in the run directory,
Slurm jobs); rendering and validation stay pure so tests and ``--dry-run`` need no cluster.
Submission goes through :mod:`ddai.jobs` (one place for sbatch, dependencies and job ids).

A chain ends in a DONE marker written by whichever job finished it, so nothing could wait
for it with ``afterok``. :class:`Phase2Stage` adds a *finisher*: a tiny CPU job that waits
(``afterany``) on the chain's newest job — each job of the chain re-points it at the
successor it submits — and exits 0 only when the run is DONE. Later stages wait on the
finisher with ``afterok``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from ddai.errors import ConfigError
from ddai.jobs import Dependency, JobRef, JobSpec, executor
from ddai.jobs.spec import raw_spec
from ddai.jobs.stage import Stage
from ddai.slurm_scripts import script_path as shipped_script
from ddai.phase2 import chain_state as cs
from ddai.phase2.plan import DEFERRED, PLAN_NAME, read_plan, write_plan
from ddai.phase2.render import Plan, shell_line


def script_path() -> str:
    """The installed ``slurm/phase2.slurm`` (checkout or wheel; ``DDAI_PHASE2_SCRIPT`` overrides it)."""
    env = os.environ.get("DDAI_PHASE2_SCRIPT")
    path = Path(env) if env else shipped_script("phase2.slurm")
    if not path.is_file():
        raise ConfigError(f"job script {path} not found", where="DDAI_PHASE2_SCRIPT",
                          expected="the path of slurm/phase2.slurm")
    return str(path)


def chain_spec(plan: Plan | dict[str, Any], *, script: str | None = None,
               time_limit: str | None = None) -> JobSpec:
    """The job spec of every job of the chain: the plan's frozen sbatch settings, this script.

    ``time_limit`` replaces the plan's ``--time`` (a successor asks for the limit its
    predecessor really got, so a user's ``sbatch --time=`` wins over the plan).
    """
    d = plan.to_json() if isinstance(plan, Plan) else plan
    args = list(d["sbatch_args"])
    if time_limit:
        args = [a for a in args if not a.startswith("--time=")] + [f"--time={time_limit}"]
    return raw_spec("ddai-phase2", args, script or script_path(), [d["run_dir"]])


def sbatch_argv(plan: Plan | dict[str, Any], dependency: str | None = None) -> list[str]:
    """The first job's sbatch line (``dependency`` as Slurm writes it, e.g. ``afterok:123``)."""
    dep = None
    if dependency:
        kind, _, ids = dependency.partition(":")
        dep = Dependency(kind, tuple(i for i in ids.split(":") if i))
    return chain_spec(plan).argv(dep)


def finisher_spec(plan: Plan | dict[str, Any]) -> JobSpec:
    """The finisher: ``python -m ddai.phase2.chain finish RUN_DIR`` on one CPU for a few minutes."""
    d = plan.to_json() if isinstance(plan, Plan) else plan
    args = d["sbatch_args"]
    names = [a.split("=", 1)[1] for a in args if a.startswith("--job-name=")]
    keep = [a for a in args if a.startswith(("--partition=", "--account="))]
    python = os.environ.get("DDAI_PYTHON") or sys.executable
    return JobSpec(name=(names[-1] if names else "ddai-phase2") + "-done",
                   command=[python, "-m", "ddai.phase2.chain", "finish", d["run_dir"]],
                   output=f"{d['run_dir']}/finisher-%j.out", time_min=10, mem="500M",
                   chdir=d["run_dir"], kill_on_invalid_dep=False, extra_args=keep)


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
        # A deferred plan's first job replaced the placeholder with the real training file.
        mine = [o.replace(DEFERRED, old["train_file"]) for o in plan.overrides]
        if old["overrides"] != mine or old["sbatch_args"] != plan.sbatch_args:
            raise ConfigError("this run directory already holds a different run", where=path,
                              expected="a new phase2.run_dir (or phase2.experiment_name), or the same settings "
                                       "to continue that run")
    else:
        write_plan(path, plan)
    return path


def submit_chain(plan: Plan, after: list[JobRef | str] | tuple = (), *, finisher: bool = False,
                 jobs: Any = None) -> dict[str, Any]:
    """Write the plan and submit the first job of the chain (behind ``after``, ``afterok``).

    With ``finisher`` also submit the finisher (see module doc) and report it as
    ``finisher_id``: the job to wait on for "this run is DONE". The first job is submitted
    held until the finisher's id is in the chain state, so no job of the chain can miss it.
    """
    path = _store_plan(plan)
    run_dir = Path(plan.run_dir)
    if cs.marker(run_dir, cs.DONE_NAME) is not None:
        return {"submitted": False, "run_dir": plan.run_dir, "reason": "run already finished (DONE marker)"}
    if cs.marker(run_dir, cs.FAILED_NAME) is not None:  # resubmitting = retry after a fix
        (run_dir / cs.FAILED_NAME).unlink()
        cs.log(run_dir, "resubmitted after FAILED: budgets start afresh")
    ex = jobs or executor()
    spec = chain_spec(plan)
    live = ex.live_dependencies(list(after), "afterok") if hasattr(ex, "live_dependencies") else \
        [str(a) for a in after]
    spec.kill_on_invalid_dep = bool(live)  # a failed earlier stage cancels the run, never leaves it pending
    ref = ex.submit(spec, live, "afterok", hold=finisher, cwd=plan.run_dir)
    argv = spec.argv(Dependency.on(live, "afterok"))
    cs.log(run_dir, f"submitted first job {ref.job_id}: {shell_line(argv)}")
    out = {"submitted": True, "job_id": ref.job_id, "run_dir": plan.run_dir, "plan": str(path),
           "log": str(run_dir / cs.LOG_NAME)}
    if finisher:
        try:
            out["finisher_id"] = attach_finisher(plan, ref, jobs=ex)
        finally:
            ex.release(ref)
    return out


def attach_finisher(plan: Plan | dict[str, Any], newest: JobRef | str, *, jobs: Any = None) -> str:
    """Submit a finisher waiting (``afterany``) on ``newest`` and record it in the chain state."""
    d = plan.to_json() if isinstance(plan, Plan) else plan
    ex = jobs or executor()
    ref = ex.submit(finisher_spec(d), [newest], "afterany", cwd=d["run_dir"])
    run_dir = Path(d["run_dir"])
    cs.set_marker(run_dir, cs.FINISHER_NAME, ref.job_id)
    cs.log(run_dir, f"finisher {ref.job_id} waits for the chain (now job {newest}); it exits 0 at DONE")
    return ref.job_id


def live_chain_job(run_dir: Path, jobs: Any = None) -> str | None:
    """A job of this run's chain that is still pending or running (the newest first), if any."""
    st = cs.read(run_dir)
    ex = jobs or executor()
    candidates = []
    for rec in reversed(st.get("jobs", [])):
        candidates += [rec.get("successor_id"), rec.get("job_id")]
    for jid in [st.get("running_job"), *candidates]:
        if jid and ex.alive(str(jid)):
            return str(jid)
    return None


class Phase2Stage(Stage):
    """A Phase 2 run as a stage: complete at DONE; ``submit`` returns its finisher.

    A run whose chain is still alive (a re-run of the campaign after its finisher was
    cancelled) gets only a new finisher attached to the live chain, never a second chain.
    """

    def __init__(self, name: str, plan: Plan):
        self.name = name
        self.plan = plan
        self.result: dict[str, Any] = {}  # what the last submit did (first job id, finisher id)

    @property
    def run_dir(self) -> Path:
        return Path(self.plan.run_dir)

    def is_complete(self) -> bool:
        return cs.marker(self.run_dir, cs.DONE_NAME) is not None

    def submit(self, executor_: Any, after=()) -> JobRef:
        live = live_chain_job(self.run_dir, executor_) if (self.run_dir / cs.STATE_NAME).exists() else None
        if live:
            fid = attach_finisher(self.plan, live, jobs=executor_)
            self.result = {"submitted": False, "live_job": live, "finisher_id": fid, "run_dir": self.plan.run_dir}
        else:
            self.result = submit_chain(self.plan, list(after), finisher=True, jobs=executor_)
            fid = self.result["finisher_id"]
        return JobRef(fid, executor_.backend, finisher_spec(self.plan).name)

    def describe(self) -> dict[str, Any]:
        return {"stage": self.name, "complete": self.is_complete(), "run_dir": self.plan.run_dir,
                "sbatch": shell_line(sbatch_argv(self.plan, "afterok:<previous stage>"))}


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
