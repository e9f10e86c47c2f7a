"""Helpers for tests against the real local Slurm cluster (``tools/slurm_cluster.sh up``).

Shared by the cluster, sweep and Phase 2 job-chain tests; importable because the root
conftest puts ``tests/support`` on ``sys.path`` (conftests are not importable under
``--import-mode=importlib``).
"""

from __future__ import annotations

import shutil
import os
import subprocess
import time
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parents[2]
UP_COMMAND = f"bash {REPO / 'tools' / 'slurm_cluster.sh'} up"
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
            "BOOT_FAIL", "DEADLINE", "PREEMPTED"}


def cluster_problem() -> str | None:
    """Why the local cluster cannot be used, or None when sinfo shows a usable node."""
    if shutil.which("sinfo") is None:
        return "sinfo not found: Slurm is not installed"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s"
    if out.returncode != 0:
        return f"sinfo failed: {out.stderr.strip()}"
    states = out.stdout.split()
    if not any(s.rstrip("*~#") in ("idle", "mixed", "allocated", "completing") for s in states):
        return f"no usable node (states: {states or 'none'})"
    acct = subprocess.run(["sacct", "-o", "JobID,State", "--parsable2", "-j", "1"], capture_output=True, text=True)
    if acct.returncode != 0:
        return (f"sacct does not answer ({acct.stderr.strip()}); the shim /usr/local/bin/sacct must come "
                f"before /usr/bin in PATH (found {shutil.which('sacct')})")
    return None


def sbatch(*args: str, cwd: Path) -> str:
    """Submit with sbatch --parsable and return the job id (raises with sbatch's stderr)."""
    out = subprocess.run(["sbatch", "--parsable", *args], cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"sbatch {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip().split(";")[0]


def job_state(job_id: str) -> str:
    """State of one job (array task ids as ``123_0``), as submitit would see it via sacct."""
    out = subprocess.run(["sacct", "-o", "JobID,State", "--parsable2", "-n", "-j", job_id],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        jid, _, state = line.partition("|")
        if jid == job_id:
            return state.split()[0]
    return "UNKNOWN"


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 120.0, every: float = 0.5) -> None:
    """Poll until ``predicate()``; fail naming ``what`` on timeout (a hang, not a timing check).

    The bound only ends a hung test: it is scaled (DDAI_TEST_HANG_SCALE, default 5) so that a
    loaded machine, where every job start and step is slower, never turns slowness into a failure.
    """
    timeout *= float(os.environ.get("DDAI_TEST_HANG_SCALE", "5"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_done(job_id: str, timeout: float = 120.0) -> str:
    """Wait until the job reaches a terminal state and return it."""
    state = {"v": "UNKNOWN"}

    def done() -> bool:
        state["v"] = job_state(job_id)
        return state["v"] in TERMINAL

    wait_for(done, f"job {job_id} to finish", timeout)
    return state["v"]


def jobs_named(name: str) -> list[str]:
    """Ids of the queued or running jobs called ``name``."""
    out = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i"], capture_output=True, text=True).stdout
    return out.split()
