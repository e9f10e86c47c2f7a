"""The chain's memory: one small JSON file per run, plus the DONE / FAILED markers.

WHY a file and not Slurm's accounting: the local and many real clusters run without
slurmdbd, a hard-killed job leaves no trace a successor could ask Slurm about, and a human
wants to read the history (``python -m ddai.phase2.status RUN_DIR``). Every update happens
under an exclusive ``flock`` and is written atomically, so two jobs of one run can never
interleave a write.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ddai.atomic import atomic_write_text

STATE_NAME = "chain_state.json"
DONE_NAME = "DONE"
FAILED_NAME = "FAILED"
LOG_NAME = "phase2.log"
LATEST_NAME = "latest_checkpointed_iteration.txt"
# Id of the job that waits for this run (see ddai.phase2.submit); a file of its own so that a
# run whose chain never began has no chain state.
FINISHER_NAME = "finisher_job"


def finisher_id(run_dir: Path) -> str | None:
    text = marker(run_dir, FINISHER_NAME)
    return text.strip() or None if text is not None else None


def now() -> float:
    return round(time.time(), 3)


def empty_state() -> dict[str, Any]:
    return {"version": 1, "status": "new", "message": "", "jobs": [], "restarts": 0, "no_progress": 0,
            "checkpoints": [], "progress": {"step": 0, "total": 0}, "running_job": None}


@contextlib.contextmanager
def locked(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Yield the state under an exclusive lock; write it back (atomically) on success."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".chain.lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            state = read(run_dir)
            yield state
            atomic_write_text(run_dir / STATE_NAME, json.dumps(state, indent=2, sort_keys=True) + "\n")
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def read(run_dir: Path) -> dict[str, Any]:
    path = run_dir / STATE_NAME
    if not path.exists():
        return empty_state()
    return json.loads(path.read_text(encoding="utf-8"))


def latest_checkpoint(ckpt_dir: Path) -> int:
    """Step of the newest complete verl checkpoint, 0 when there is none.

    Mirrors verl's ``find_latest_ckpt_path``: the tracker file names the step and its
    ``global_step_N`` folder must exist; anything else means "from scratch".
    """
    tracker = ckpt_dir / LATEST_NAME
    try:
        step = int(tracker.read_text().strip())
    except (FileNotFoundError, ValueError):
        return 0
    return step if (ckpt_dir / f"global_step_{step}").is_dir() else 0


def checkpoint_steps(ckpt_dir: Path) -> list[int]:
    """All ``global_step_N`` folders present (sorted)."""
    out = []
    if ckpt_dir.is_dir():
        for p in ckpt_dir.glob("global_step_*"):
            suffix = p.name.split("global_step_")[-1]
            if suffix.isdigit():
                out.append(int(suffix))
    return sorted(out)


def marker(run_dir: Path, name: str) -> str | None:
    path = run_dir / name
    return path.read_text(encoding="utf-8") if path.exists() else None


def set_marker(run_dir: Path, name: str, text: str) -> None:
    atomic_write_text(run_dir / name, text.rstrip("\n") + "\n")


def log(run_dir: Path, line: str) -> None:
    """Append one line to the run's single log (all jobs of the chain share it)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    with open(run_dir / LOG_NAME, "a", encoding="utf-8") as fh:
        fh.write(f"[ddai {stamp}Z] {line}\n")
