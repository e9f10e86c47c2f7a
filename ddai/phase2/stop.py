"""The stop request of a Phase 2 job: a file, because the trainer loop lives in another process.

WHY a file: verl's V1 trainer runs inside a Ray actor, not in the process Slurm signals.
The job script (and ddai's trainer entry point, on SIGTERM/SIGUSR1/SIGUSR2) create the file;
the trainer looks for it at every step boundary (``ddai.phase2.save_on_stop``). It works the
same on one node and on many (the run directory is on a shared filesystem) and needs no
extra Ray plumbing.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "DDAI_PHASE2_STOP_FILE"
DEFAULT_NAME = "STOP_REQUESTED"


def stop_file(default_local_dir: str | None = None) -> Path | None:
    """``$DDAI_PHASE2_STOP_FILE``, else ``<checkpoint dir>/STOP_REQUESTED``."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    return Path(default_local_dir) / DEFAULT_NAME if default_local_dir else None


def request(path: Path, why: str) -> None:
    """Create the stop file (idempotent; never raises: it runs in a signal handler)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(why.rstrip() + "\n")
    except OSError:
        pass


def requested(path: Path | None) -> bool:
    return path is not None and path.exists()


def clear_stale(path: Path | None, started_at: float) -> None:
    """Remove a request older than this process (left by the previous job), keep a fresh one."""
    if path is None:
        return
    try:
        if path.stat().st_mtime < started_at:
            path.unlink()
    except FileNotFoundError:
        pass
