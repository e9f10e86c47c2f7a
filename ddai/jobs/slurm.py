"""The Slurm executor: ``sbatch``/``squeue``/``sacct``/``scontrol``/``scancel`` behind one object.

WHY dependencies are filtered before submission: Slurm refuses ``--dependency`` on a job it
has already forgotten (``MinJobAge`` after its end), and a finished-OK job needs no waiting
anyway. A dependency that already failed can never be satisfied, so submitting behind it is
an error the caller hears about at once instead of a job that is cancelled later.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ddai.errors import DdaiError
from ddai.jobs.spec import (
    Dependency,
    JobRef,
    JobSpec,
    JobState,
    parse_job_id,
    slurm_state,
)

SUBMIT_EXPECTED = "a reachable Slurm controller and valid sbatch settings"


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, **kw)


class SlurmExecutor:
    """Submit and inspect jobs on the Slurm cluster this machine talks to."""

    backend = "slurm"

    def available(self) -> bool:
        return shutil.which("sbatch") is not None

    # --- submission -------------------------------------------------------------------
    def live_dependencies(self, after: Sequence[JobRef | str], kind: str) -> list[str]:
        """The ids among ``after`` that still need waiting for (see module doc)."""
        out = []
        for ref in after:
            jid = str(ref)
            state = self.state(jid)
            if state.live:
                out.append(jid)
            elif kind == "afterok" and state in (JobState.FAILED, JobState.CANCELLED):
                raise DdaiError(f"job {jid} ended {state.value}: a job depending on its success would never run",
                                where="slurm", expected="a dependency that is pending, running or completed")
        return out

    def submit(self, spec: JobSpec, after: Sequence[JobRef | str] = (), kind: str = "afterok", *,
               hold: bool = False, cwd: str | os.PathLike[str] | None = None,
               env: dict[str, str] | None = None) -> JobRef:
        """``sbatch --parsable`` the spec behind ``after``; returns the new job's reference."""
        dep = Dependency(kind, tuple(self.live_dependencies(after, kind)))
        argv = spec.argv(dep, hold=hold)
        if spec.output:
            Path(spec.output).parent.mkdir(parents=True, exist_ok=True)  # sbatch does not create it
        full_env = dict(os.environ if env is None else env)
        full_env.update(spec.env)
        res = _run(argv, cwd=str(cwd) if cwd else None, env=full_env)
        if res.returncode != 0:
            raise DdaiError(f"sbatch of {spec.name} failed: {res.stderr.strip()}", where="slurm",
                            expected=SUBMIT_EXPECTED)
        return JobRef(parse_job_id(res.stdout), self.backend, spec.name)

    # --- state ------------------------------------------------------------------------
    def state(self, ref: JobRef | str) -> JobState:
        """squeue while Slurm holds the job in memory, else sacct (accounting), else UNKNOWN."""
        jid = str(ref)
        if shutil.which("squeue"):
            res = _run(["squeue", "-h", "-j", jid, "-o", "%T"])
            word = res.stdout.strip().splitlines()[0] if res.returncode == 0 and res.stdout.strip() else ""
            if word:
                return slurm_state(word)
        if shutil.which("sacct"):
            res = _run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", jid])
            for line in res.stdout.splitlines():
                got, _, st = line.partition("|")
                if got.strip() == jid:
                    return slurm_state(st)
        return JobState.UNKNOWN

    def alive(self, ref: JobRef | str | None) -> bool:
        return bool(ref) and self.state(str(ref)).live

    # --- control ----------------------------------------------------------------------
    def cancel(self, ref: JobRef | str) -> None:
        if shutil.which("scancel"):
            _run(["scancel", str(ref)])

    def release(self, ref: JobRef | str) -> None:
        res = _run(["scontrol", "release", str(ref)])
        if res.returncode != 0:
            raise DdaiError(f"scontrol release {ref} failed: {res.stderr.strip()}", where="slurm",
                            expected="a held job of yours")

    def set_dependency(self, ref: JobRef | str, after: Sequence[JobRef | str], kind: str = "afterany") -> bool:
        """Point a PENDING job's dependency elsewhere (``scontrol update``); False when it cannot be."""
        dep = Dependency.on(list(after), kind).render()
        res = _run(["scontrol", "update", f"JobId={ref}", f"Dependency={dep}"])
        return res.returncode == 0
