"""A worker of a parallel read: ``python -m ddai.curriculum.read_worker PATH SOURCE START END LAST PARENT [HASH]``.

Decodes bytes ``[START, END)`` of a step-keyed log (see :mod:`ddai.curriculum.read_parallel`) and
streams pickles to stdout, all from one pickler (repeated prompts and page tuples are sent once):
``("steps", add_step calls, rollouts, offset after them)`` every few steps, then ``("end",)``, or
``("stop", offset)`` at the first step the typed decoder does not read exactly, or
``("limit", offset)`` when it stopped at a step the caller took over (below). It builds its
typed decoder from the document's first step itself, exactly as the caller did. With ``HASH``
``1``, a worker that reached ``("end",)`` or ``("limit", offset)`` then hashes the whole file
(a read-only mapping, :func:`~ddai.curriculum.read_parallel.sha256_mapped`) and sends
``("sha256", hex digest)`` from a fresh pickler (no reference into the steps' memo).

WHY the hash is here: when a worker is done, its core is free while the caller replays and
decides; hashing there leaves the caller's GIL alone (a hashing thread in the caller needs the
GIL back after every chunk and waited up to 5 ms for it each time while the caller ran Python:
0.33 s of hashing took over a second).

WHY the caller may take the end of the segment (``limit N`` on stdin): the caller reads what
the worker sends as it comes; when it has caught up and waits, the worker still has work left
and the caller's core idles. The caller then writes ``limit N\n`` (``N`` the offset of a step
key) and decodes ``[N, END)`` itself; the worker stops before the first step at or past ``N``
and says so with ``("limit", offset)``. A worker already past ``N`` ignores the line and reads
on to the end (the caller drops what it decoded). :mod:`ddai.curriculum.read_parallel` holds
the caller's side.

WHY it watches its parent: it must never outlive the run that started it. On Linux the kernel
sends it SIGKILL when the parent dies; everywhere, a thread waits for end of file on stdin (a
pipe only the parent holds) and ends the process then.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import sys
import threading
from pathlib import Path
from typing import Any

STEPS_PER_MESSAGE = 8   # also how far the caller's idea of this worker's progress may lag


# The offset the caller took over from (``limit N`` on stdin); past the end of any file until then.
LIMIT = [1 << 62]


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)   # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl
            pass
    if os.getppid() != parent:   # the parent died before the line above took effect
        os._exit(1)

    fd = sys.stdin.fileno()
    # what the parent wrote before this process started is applied before the first step is read
    pending = b""
    os.set_blocking(fd, False)
    try:
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:        # end of file already: the parent is gone
                os._exit(1)
            pending = _apply_lines(pending + chunk)
    except BlockingIOError:
        pass
    finally:
        os.set_blocking(fd, True)

    def watch() -> None:
        rest = pending
        try:
            while chunk := os.read(fd, 1 << 16):     # until end of file: the parent is gone
                rest = _apply_lines(rest + chunk)
        finally:
            os._exit(1)

    threading.Thread(target=watch, name="ddai-parent-watch", daemon=True).start()


def _apply_lines(data: bytes) -> bytes:
    """Apply the complete ``limit N`` lines in ``data``; returns the incomplete last line."""
    *lines, rest = data.split(b"\n")
    for line in lines:
        if line.startswith(b"limit "):
            try:
                LIMIT[0] = int(line[6:])
            except ValueError:
                pass
    return rest


class _Sender:
    """Stands in for the collector: ``add_step`` calls go out in messages of a few steps, each
    saying where the step after them begins (where the caller resumes if this process dies)."""

    def __init__(self, out: Any, start: int):
        self.out = out
        self.pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
        self.batch: list[tuple[Any, ...]] = []
        self.n = 0
        self.next_at = start   # where the step after the last one added begins

    def add_step(self, *args: Any) -> None:
        self.batch.append(args)
        self.n += sum(args[-1])   # the step's rollouts: the sum of its groups' sizes

    def after_step(self, next_at: int) -> None:
        self.next_at = next_at
        if len(self.batch) >= STEPS_PER_MESSAGE:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            self.pickler.dump(("steps", self.batch, self.n, self.next_at))
            self.out.flush()
            self.batch = []
            self.n = 0

    def send(self, msg: tuple[Any, ...]) -> None:
        self.pickler.dump(msg)
        self.out.flush()


def main(argv: list[str]) -> None:
    path, source, start, end, last, parent, *more = argv
    hash_file = more == ["1"]
    _die_with_parent(int(parent))
    gc.disable()   # millions of small acyclic objects, as in the main reader
    from ddai.curriculum import read_parallel as rp

    sender = _Sender(sys.stdout.buffer, int(start))
    try:
        typed = rp.first_typed(Path(path))
        if typed is None:
            sender.send(("stop", int(start)))
        else:
            limited: list[int] = []

            def at_limit(offset: int) -> bool:
                if offset >= LIMIT[0]:
                    limited.append(offset)
                    return True
                return False

            _, resume = rp.scan_segment(Path(path), source, int(start), int(end), last == "1", typed, sender,
                                        after_step=sender.after_step, stop_before=at_limit)
            sender.flush()
            for_caller = resume is not None and limited[-1:] == [resume]   # stopped where the caller took over
            if resume is None:
                sender.send(("end",))
            elif for_caller:
                sender.send(("limit", resume))
            else:
                sender.send(("stop", resume))
            if hash_file and (resume is None or for_caller):
                sender.out.write(pickle.dumps(("sha256", rp.sha256_mapped(Path(path))), protocol=pickle.HIGHEST_PROTOCOL))
                sender.out.flush()
    except Exception:  # noqa: BLE001, S110 - the caller resumes after the last message it got
        pass
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
