"""Decisions of the self-resuming job chain, called by ``slurm/phase2.slurm``.

``begin`` (first thing a job does): stop at once if the run is finished or has used up its
budgets, refuse to run beside another live job of the same run, otherwise record the job and
pre-submit its successor with ``--dependency=afterany:<this job>``. The successor is what
continues the run after *any* end of this job — time-limit signal, trainer crash, ``scancel
--signal=KILL``, node failure — because none of those needs a trap to have run.

``end`` (after the trainer exits, when the shell still lives): record the exit and the
newest checkpoint; when training is complete write the DONE marker and cancel the successor.

A *finisher* job (see :mod:`ddai.phase2.submit`) may wait on the chain: whenever a job submits
a successor it re-points the finisher's ``afterany`` dependency at that successor, so the
finisher runs only after the chain's last job, and ``finish`` exits 0 only at DONE.

Budgets: ``max_restarts`` caps the number of jobs after the first; ``max_no_progress`` stops a
run whose last N jobs each ended without a new checkpoint (a trainer that crashes at once).
Both end with a FAILED marker whose message says what to look at.

CLI: ``python -m ddai.phase2.chain {prepare,begin,end,fail-preflight,argv,env,wandb-id,finish} ...``
(used by the script and the finisher). Every Slurm call goes through :mod:`ddai.jobs`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ddai import jobs
from ddai.errors import DdaiError
from ddai.phase2 import chain_state as cs
from ddai.phase2.plan import PLAN_NAME, finalize_deferred, read_plan

EXIT_RUN = 0
EXIT_STOP_OK = 10  # nothing to do (finished, or another job of this run is live)
EXIT_STOP_FAILED = 11  # budget exhausted: the chain ends with a message


def _squeue_alive(job_id: str) -> bool:
    """True while the scheduler still knows the job as pending or running."""
    return jobs.executor().alive(str(job_id))


def submit_successor(run_dir: Path, plan: dict[str, Any], job_id: str, script: str, time_limit: str | None) -> str:
    """``sbatch --dependency=afterany:<job>`` with the plan's sbatch settings; returns the new id."""
    from ddai.phase2.submit import chain_spec

    # The limit this job really got (a user's `sbatch --time=` wins over the plan).
    spec = chain_spec(plan, script=script, time_limit=time_limit)
    spec.command = []  # a successor finds its run through DDAI_PHASE2_RUN_DIR
    env = dict(os.environ)
    env["DDAI_PHASE2_RUN_DIR"] = str(run_dir)
    env["DDAI_PHASE2_SCRIPT"] = script
    # A successor must not inherit this job's SLURM_* settings (sbatch reads some as defaults).
    for k in list(env):
        if k.startswith(("SLURM_", "SBATCH_")):
            env.pop(k)
    ex = jobs.executor()
    try:
        ref = ex.submit(spec, [str(job_id)], "afterany", env=env, cwd=str(run_dir))
    except DdaiError as exc:
        raise DdaiError(f"sbatch of the successor failed: {exc.what}", where="slurm",
                        expected="a working sbatch (the chain cannot continue by itself without it)") from None
    return ref.job_id


def point_finisher(run_dir: Path, successor: str) -> None:
    """Make the run's finisher (if any) wait for ``successor`` instead of its predecessor."""
    fid = cs.finisher_id(run_dir)
    if not fid or not successor:
        return
    if jobs.executor().set_dependency(str(fid), [str(successor)], "afterany"):
        cs.log(run_dir, f"finisher {fid} now waits for job {successor}")
    else:
        cs.log(run_dir, f"warning: could not re-point finisher {fid} at job {successor} (no longer pending)")


def _record_progress(st: dict, ckpt: Path, plan: dict) -> tuple[int, int]:
    """Refresh the state's progress from the checkpoints on disk (they, not the state, are the truth)."""
    latest = cs.latest_checkpoint(ckpt)
    total = int(plan["total_steps"])
    st["progress"] = {"step": latest, "total": total}
    st["checkpoints"] = cs.checkpoint_steps(ckpt)
    return latest, total


def begin(run_dir: Path, job_id: str, restart_count: int, script: str, time_limit: str | None,
          submit: bool = True) -> int:
    plan = finalize_deferred(run_dir / PLAN_NAME)
    ckpt = Path(plan["checkpoint_dir"])
    with cs.locked(run_dir) as st:
        latest, total = _record_progress(st, ckpt, plan)
        if cs.marker(run_dir, cs.DONE_NAME) is not None:
            cs.log(run_dir, f"job {job_id}: run already finished (DONE marker) - exiting at once")
            return EXIT_STOP_OK
        failed = cs.marker(run_dir, cs.FAILED_NAME)
        if failed is not None:
            cs.log(run_dir, f"job {job_id}: run stopped earlier: {failed.strip()}")
            return EXIT_STOP_FAILED
        if total and latest >= total:
            _finish(run_dir, st, f"checkpoint {latest} of {total} steps exists")
            return EXIT_STOP_OK
        other = st.get("running_job")
        if other and str(other) != str(job_id) and _squeue_alive(other):
            cs.log(run_dir, f"job {job_id}: job {other} of this run is still live - exiting at once")
            return EXIT_STOP_OK
        jobs = st["jobs"]
        if st.get("status") == "failed":  # FAILED was removed: the user retries with fresh budgets
            st["no_progress"] = -1 if jobs else 0  # the failed job itself is not counted again
            st["restart_base"] = len(jobs)
            cs.log(run_dir, f"job {job_id}: FAILED marker removed - budgets reset")
        requeued = bool(jobs) and str(jobs[-1]["job_id"]) == str(job_id)
        if jobs:
            prev = jobs[-1]
            if prev.get("ended") is None:
                prev["ended"] = cs.now()
                prev["end_reason"] = "no end record (hard kill, node failure or requeue)"
                prev["ckpt_at_end"] = latest
            if latest > int(prev.get("ckpt_at_start", 0)):
                st["no_progress"] = 0
            else:
                st["no_progress"] = int(st.get("no_progress", 0)) + 1
        st["restarts"] = len(jobs) - int(st.get("restart_base", 0))
        if st["no_progress"] >= int(plan["max_no_progress"]):
            rc = jobs[-1].get("rc") if jobs else None
            return _fail(run_dir, st, job_id,
                         f"no progress: the last {st['no_progress']} job(s) ended without a new checkpoint "
                         f"(latest step {latest} of {total}, last trainer exit code {rc}); "
                         f"see {run_dir / cs.LOG_NAME} and fix the trainer before resubmitting")
        if st["restarts"] > int(plan["max_restarts"]):
            return _fail(run_dir, st, job_id,
                         f"restart budget exhausted: {st['restarts']} restarts > max_restarts="
                         f"{plan['max_restarts']} (latest step {latest} of {total})")
        record = {"job_id": str(job_id), "slurm_restart_count": restart_count, "started": cs.now(),
                  "ended": None, "ckpt_at_start": latest, "ckpt_at_end": None, "rc": None,
                  "end_reason": None, "successor_id": None, "host": os.uname().nodename}
        if requeued:
            record["successor_id"] = jobs[-1].get("successor_id")
        jobs.append(record)
        st["running_job"] = str(job_id)
        st["status"] = "running"
        st["message"] = f"job {job_id} training from step {latest} of {total}"
        record["script"], record["time_limit"] = script, time_limit
        succ = record["successor_id"]
        if submit and not (succ and _squeue_alive(succ)):
            try:
                record["successor_id"] = submit_successor(run_dir, plan, job_id, script, time_limit)
                point_finisher(run_dir, record["successor_id"])
            except DdaiError as exc:  # train anyway; `end` tries again while this job still runs
                record["successor_id"] = None
                cs.log(run_dir, f"warning: {exc}")
        cs.log(run_dir, f"job {job_id} begins (restart {st['restarts']}, Slurm restart count {restart_count}) "
                        f"at checkpoint {latest}/{total}; successor {record['successor_id']} waits (afterany)")
    return EXIT_RUN


def end(run_dir: Path, job_id: str, rc: int, signalled: bool) -> int:
    plan = read_plan(run_dir / PLAN_NAME)
    ckpt = Path(plan["checkpoint_dir"])
    with cs.locked(run_dir) as st:
        latest, total = _record_progress(st, ckpt, plan)
        rec = next((j for j in reversed(st["jobs"]) if str(j["job_id"]) == str(job_id)), None)
        if rec is not None:
            rec.update(ended=cs.now(), rc=rc, ckpt_at_end=latest,
                       end_reason="stop signal" if signalled else ("trainer exited 0" if rc == 0 else f"trainer failed rc={rc}"))
        st["running_job"] = None
        finished = (total and latest >= total) or (rc == 0 and not signalled)
        if finished:
            if total and latest < total:
                cs.log(run_dir, f"warning: trainer exited 0 at checkpoint {latest} < {total} steps")
            _finish(run_dir, st, f"job {job_id}: trainer finished at checkpoint {latest}/{total}")
            succ = rec.get("successor_id") if rec else None
            if succ:
                jobs.executor().cancel(str(succ))
            return 0
        st["status"] = "waiting"
        succ = rec.get("successor_id") if rec else None
        if rec is not None and not succ and rec.get("script"):
            try:
                succ = rec["successor_id"] = submit_successor(run_dir, plan, job_id, rec["script"],
                                                              rec.get("time_limit"))
                point_finisher(run_dir, succ)
            except DdaiError as exc:
                st["message"] = f"job {job_id} ended at checkpoint {latest}/{total} and no successor could be " \
                                f"submitted ({exc}); resubmit the run to continue"
                cs.log(run_dir, st["message"])
                return 1
        st["message"] = f"job {job_id} ended at checkpoint {latest}/{total}; successor {succ} continues"
        cs.log(run_dir, st["message"] + (" (stop signal)" if signalled else f" (trainer rc={rc})"))
    return 0


def _finish(run_dir: Path, st: dict[str, Any], why: str) -> None:
    st["status"] = "done"
    st["running_job"] = None
    st["message"] = f"finished: {why}"
    cs.set_marker(run_dir, cs.DONE_NAME, st["message"])
    cs.log(run_dir, st["message"])


def _fail(run_dir: Path, st: dict[str, Any], job_id: str, why: str) -> int:
    st["status"] = "failed"
    st["running_job"] = None
    st["message"] = f"stopped: {why}"
    cs.set_marker(run_dir, cs.FAILED_NAME, st["message"])
    cs.log(run_dir, f"job {job_id}: {st['message']}")
    print(f"ddai: error: {st['message']}", file=sys.stderr)
    return EXIT_STOP_FAILED


def fail_preflight(run_dir: Path, job_id: str, table: str) -> int:
    """The preflight refused this node: FAILED with its table, successor cancelled, no budget used.

    WHY not `end`: a setup mistake would fail the same way in every successor; retrying it
    only burns allocations. Removing FAILED (after fixing) resumes with fresh budgets.
    """
    with cs.locked(run_dir) as st:
        rec = next((j for j in reversed(st["jobs"]) if str(j["job_id"]) == str(job_id)), None)
        if rec is not None:
            rec.update(ended=cs.now(), rc=None, end_reason="preflight failed")
            succ = rec.get("successor_id")
            if succ:
                jobs.executor().cancel(str(succ))
        _fail(run_dir, st, job_id, f"preflight failed on {os.uname().nodename} - nothing was started; "
                                   f"fix the items below, remove FAILED and resubmit\n{table.rstrip()}")
    return EXIT_STOP_FAILED


def finish(run_dir: Path) -> int:
    """The finisher's verdict: 0 when the run is DONE, 1 (with the reason on stderr) otherwise."""
    done = cs.marker(run_dir, cs.DONE_NAME)
    if done is not None:
        print(f"phase2 run {run_dir}: {done.strip()}")
        return 0
    failed = cs.marker(run_dir, cs.FAILED_NAME)
    if failed is not None:
        print(f"ddai: error: phase2 run {run_dir} {failed.strip()}", file=sys.stderr)
        return 1
    st = cs.read(run_dir)
    print(f"ddai: error: phase2 run {run_dir} ended without DONE (status {st.get('status')!r}: "
          f"{st.get('message') or 'no job of the chain ran'}); its jobs were cancelled or never started - "
          f"submit the run again to continue", file=sys.stderr)
    return 1


def trainer_argv(run_dir: Path) -> list[str]:
    """The trainer's argv after the interpreter (the fake switch is applied here, and only here)."""
    plan = read_plan(run_dir / PLAN_NAME)
    argv = list(plan["command"])
    if os.environ.get("DDAI_PHASE2_TRAINER", "verl") == "fake":
        argv[1] = "ddai.phase2.fake_trainer"
    return argv


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m ddai.phase2.chain {prepare,begin,end,fail-preflight,argv,env,wandb-id,finish} ...", file=sys.stderr)
        return 2
    cmd, rest = args[0], args[1:]
    try:
        if cmd == "prepare":
            from ddai.phase2.prepare import prepare

            print(prepare(rest))
            return 0
        run_dir = Path(rest[0]).resolve()
        if cmd == "begin":
            job_id, restart, script, tlimit = rest[1], int(rest[2] or 0), rest[3], (rest[4] if len(rest) > 4 else "")
            return begin(run_dir, job_id, restart, script, tlimit or None)
        if cmd == "end":
            return end(run_dir, rest[1], int(rest[2]), rest[3] == "1")
        if cmd == "fail-preflight":  # RUN_DIR JOB TABLE_FILE
            table = Path(rest[2]).read_text(encoding="utf-8") if len(rest) > 2 and Path(rest[2]).exists() else ""
            return fail_preflight(run_dir, rest[1], table)
        if cmd == "finish":
            return finish(run_dir)
        if cmd == "argv":
            sys.stdout.write("\0".join(trainer_argv(run_dir)) + "\0")
            return 0
        if cmd == "wandb-id":
            print(read_plan(run_dir / PLAN_NAME).get("wandb_run_id", ""))
            return 0
        if cmd == "env":
            # Names of required secrets that are missing (names only, never values).
            from ddai.phase2.validate import describe, missing_env

            missing = missing_env(list(read_plan(run_dir / PLAN_NAME)["required_env"]))
            print(describe(missing))
            return 1 if missing else 0
    except DdaiError as exc:
        print(f"ddai: error: {exc}", file=sys.stderr)
        return 2
    print(f"ddai: error: unknown chain command {cmd!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
