"""The local twin of the Slurm executor: the same calls, jobs run as detached processes.

WHY: the stage logic (what is complete, what waits for what, what a failed dependency
cancels) must be testable on a machine without Slurm, in seconds. Each job is a directory
under ``DDAI_JOBS_LOCAL_DIR`` (default ``~/.cache/ddai/jobs``) holding its spec, its
dependency and a ``state.json``; a small runner process (``python -m ddai.jobs.local RUN``)
waits for the dependency as Slurm would (``afterok`` on a failed job cancels), then runs the
command. Resources are not enforced: this is for tests and laptops, not for GPUs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ddai.atomic import atomic_write_text
from ddai.jobs.spec import Dependency, JobRef, JobSpec, JobState

POLL_S = 0.1


def root() -> Path:
    return Path(os.environ.get("DDAI_JOBS_LOCAL_DIR", Path.home() / ".cache" / "ddai" / "jobs"))


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


@contextlib.contextmanager
def _locked(job_dir: Path):
    with open(job_dir / ".lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _update(job_dir: Path, **fields: Any) -> dict[str, Any]:
    with _locked(job_dir):
        st = _read(job_dir / "state.json")
        st.update(fields)
        atomic_write_text(job_dir / "state.json", json.dumps(st, sort_keys=True) + "\n")
        return st


class LocalExecutor:
    """Same interface as :class:`ddai.jobs.slurm.SlurmExecutor`."""

    backend = "local"

    def __init__(self, base: Path | None = None):
        self.base = base or root()

    def available(self) -> bool:
        return True

    def _new_id(self) -> str:
        self.base.mkdir(parents=True, exist_ok=True)
        with open(self.base / ".counter.lock", "a+") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            path = self.base / "counter"
            n = int(path.read_text() or 0) + 1 if path.exists() else 1
            atomic_write_text(path, str(n))
        return str(n)

    def _dir(self, ref: JobRef | str) -> Path:
        return self.base / str(ref)

    def submit(self, spec: JobSpec, after: Sequence[JobRef | str] = (), kind: str = "afterok", *,
               hold: bool = False, cwd: str | os.PathLike[str] | None = None,
               env: dict[str, str] | None = None) -> JobRef:
        jid = self._new_id()
        d = self._dir(jid)
        d.mkdir(parents=True)
        dep = Dependency.on(list(after), kind)
        full_env = dict(os.environ if env is None else env)
        full_env.update(spec.env)
        atomic_write_text(d / "job.json", json.dumps({"spec": spec.to_json(), "kind": dep.kind, "after": list(dep.jobs),
                                                      "cwd": str(cwd or spec.chdir or os.getcwd()),
                                                      "env": full_env}, sort_keys=True))
        _update(d, state=JobState.PENDING.value, held=hold, rc=None, pid=None)
        subprocess.Popen([sys.executable, "-m", "ddai.jobs.local", str(d)], start_new_session=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=full_env)
        return JobRef(jid, self.backend, spec.name)

    def state(self, ref: JobRef | str) -> JobState:
        st = _read(self._dir(ref) / "state.json")
        return JobState(st["state"]) if st.get("state") else JobState.UNKNOWN

    def alive(self, ref: JobRef | str | None) -> bool:
        return bool(ref) and self.state(str(ref)).live

    def exit_code(self, ref: JobRef | str) -> int | None:
        return _read(self._dir(ref) / "state.json").get("rc")

    def cancel(self, ref: JobRef | str) -> None:
        d = self._dir(ref)
        if not d.is_dir():
            return
        st = _update(d, cancel=True)
        if st.get("state") == JobState.RUNNING.value and st.get("pid"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(st["pid"]), signal.SIGTERM)

    def release(self, ref: JobRef | str) -> None:
        _update(self._dir(ref), held=False)

    def set_dependency(self, ref: JobRef | str, after: Sequence[JobRef | str], kind: str = "afterany") -> bool:
        d = self._dir(ref)
        with _locked(d):
            st = _read(d / "state.json")
            if st.get("state") != JobState.PENDING.value:
                return False
            job = _read(d / "job.json")
            job["after"], job["kind"] = [str(a) for a in after], kind
            atomic_write_text(d / "job.json", json.dumps(job, sort_keys=True))
        return True


def _run(job_dir: Path) -> int:
    """The runner: wait for the dependency (as Slurm does), then run the job and record its end."""
    ex = LocalExecutor(job_dir.parent)
    while True:
        st = _read(job_dir / "state.json")
        if st.get("cancel"):
            _update(job_dir, state=JobState.CANCELLED.value, reason="cancelled")
            return 0
        job = _read(job_dir / "job.json")
        states = [ex.state(a) for a in job["after"]]
        if job["kind"] == "afterok" and any(s in (JobState.FAILED, JobState.CANCELLED) for s in states):
            _update(job_dir, state=JobState.CANCELLED.value, reason="DependencyNeverSatisfied")
            return 0
        waiting = any(not s.ended for s in states if s is not JobState.UNKNOWN)
        if not st.get("held") and not waiting:
            break
        time.sleep(POLL_S)
    spec = JobSpec.from_json(job["spec"])
    jid = job_dir.name
    argv = ["bash", spec.script, *spec.command] if spec.script else ["bash", "-c", shlex.join(spec.command)]
    env = dict(job["env"], DDAI_JOB_ID=jid, DDAI_JOBS_BACKEND="local")
    out_path = Path((spec.output or str(job_dir / "output-%j.out")).replace("%j", jid))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "a") as out:
        proc = subprocess.Popen(argv, cwd=job["cwd"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        _update(job_dir, state=JobState.RUNNING.value, pid=proc.pid)
        if _read(job_dir / "state.json").get("cancel"):  # cancelled between the checks
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        rc = proc.wait()
    cancelled = _read(job_dir / "state.json").get("cancel")
    final = JobState.CANCELLED if cancelled else (JobState.COMPLETED if rc == 0 else JobState.FAILED)
    _update(job_dir, state=final.value, rc=rc)
    return 0


if __name__ == "__main__":
    sys.exit(_run(Path(sys.argv[1])))
