"""Process helpers for the kill tests: a process's state, and a killed process's pipes.

Importable because the root conftest puts ``tests/support`` on ``sys.path``.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable


def process_state(pid: int) -> str | None:
    """The process state letter from /proc (``Z`` for a zombie), None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def children(pid: int) -> list[int]:
    """The children of ``pid`` (of all its threads); [] when it is gone."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out.extend(int(c) for c in fh.read().split())
    except OSError:
        pass
    return out


def pids_where(test: Callable[[int], bool]) -> list[int]:
    """Every process for which ``test(pid)`` holds; a process that vanishes or cannot be read
    while it is tested (``OSError``) is left out."""
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if test(int(d)):
                    found.append(int(d))
            except OSError:
                continue
    return found


def pipes_after_exit(proc: subprocess.Popen) -> tuple[bytes, bytes]:
    """Everything left in a finished process's stdout and stderr, read to end of file.

    End of file comes only once no process holds the pipes any more, so a reader still alive
    after the wait means something outlived ``proc`` holding its stdout or stderr.
    """
    proc.wait()
    out: list[bytes] = []
    err: list[bytes] = []

    def drain(stream, into: list[bytes]) -> None:
        into.append(stream.read())

    readers = [threading.Thread(target=drain, args=(proc.stdout, out), daemon=True),
               threading.Thread(target=drain, args=(proc.stderr, err), daemon=True)]
    for t in readers:
        t.start()
    for t in readers:
        t.join(timeout=30)   # a guard against hanging the suite, not a timing assertion
    assert not any(t.is_alive() for t in readers), "something still holds the process's stdout/stderr"
    return out[0], err[0]
