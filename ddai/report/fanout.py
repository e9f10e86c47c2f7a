"""The chunks of one plain JSON Lines log decoded by forked worker processes, merged in order.

WHY processes, and why this shape: decoding and folding a chunk holds the GIL the whole time
(msgspec builds Python objects), so threads cannot share the work; on the 2-CPU login nodes
the report runs on, two processes read a big log in about half the time when the machine is
calm, and on a busy node two processes get a larger share of the CPUs than one does. The
result must not depend on how the work was split: the merge adds each chunk's partial sums
in file order, exactly as one process reading chunk after chunk would, so every float of the
report is the same bit for bit (floating-point sums depend on their order).

The pieces:
- chunk boundaries are computed up front from the file (the last newline of every
  ``CHUNK_BYTES`` block: the same chunks :func:`ddai.report.source.split_lines` yields);
- a pipe holds the task numbers; each worker takes the next one when it is free (so a worker
  that the scheduler neglects simply takes fewer chunks);
- each worker reads its chunks with ``pread``, decodes and folds them into one partial per
  chunk, and sends it back pickled;
- this process only merges, in chunk order, holding at most a few finished chunks that
  arrived early.

Nothing may outlive the report: each worker asks the kernel to kill it when its parent dies
(``PR_SET_PDEATHSIG``, also when the parent was SIGKILLed), closes its copies of stdin,
stdout and stderr (so a caller waiting for end-of-file on the report's pipes is never held
up by a worker), and leaves with ``os._exit`` (no flushing of the parent's buffered output,
no exit handlers). On any error or interruption here the workers are killed and reaped.
Only plain files are split (a compressed stream can only be read from its start).
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
from collections.abc import Callable, Iterator
from typing import Any

MIN_CHUNKS = 3          # below this, forking costs more than it saves
MAX_WORKERS = 4         # a login node is shared: never more than this many readers
MAX_EARLY = 8           # finished chunks held while an earlier one is still being read
_TASK = struct.Struct("<I")
_HEAD = struct.Struct("<iQ")   # chunk index (-1: error), payload length
BOM = b"\xef\xbb\xbf"


def workers_wanted() -> int:
    """Worker processes for a big plain log: ``DDAI_REPORT_WORKERS``, else the usable CPUs (≤ 4)."""
    env = os.environ.get("DDAI_REPORT_WORKERS", "").strip()
    if env.isdigit():
        return int(env)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return min(cpus, MAX_WORKERS)


def plan(path: str, chunk: int) -> list[tuple[int, int, bool]] | None:
    """``(start, end, last)`` of every chunk of a plain regular file, in order; None when the
    file is not one (compressed, a pipe) or too small to be worth splitting."""
    from ddai.report.source import compression

    try:
        st = os.stat(path)
    except OSError:
        return None
    import stat as _stat

    if not _stat.S_ISREG(st.st_mode) or st.st_size < MIN_CHUNKS * chunk or compression(path) is not None:
        return None
    out: list[tuple[int, int, bool]] = []
    with open(path, "rb") as fh:
        size = st.st_size
        start = 3 if fh.read(3) == BOM else 0
        block = 0
        while block < size:
            end = min(block + chunk, size)
            # the last newline of this block (split_lines cuts each block read there)
            lo = max(block, start)
            cut = _rfind_newline(fh, lo, end)
            if cut >= 0:
                out.append((start, cut + 1, False))
                start = cut + 1
            block = end
        out.append((start, size, True))   # the rest after the last newline (maybe empty)
    return out


def _rfind_newline(fh: Any, lo: int, hi: int) -> int:
    """Offset of the last b"\\n" in [lo, hi) of the file, or -1; reads backwards in 64 KiB steps."""
    step = 1 << 16
    pos = hi
    while pos > lo:
        a = max(lo, pos - step)
        fh.seek(a)
        buf = fh.read(pos - a)
        i = buf.rfind(b"\n")
        if i >= 0:
            return a + i
        pos = a
    return -1


def _set_pdeathsig() -> None:
    """Ask Linux to SIGKILL this process when the parent dies (no-op elsewhere)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # noqa: BLE001, S110 - not Linux: the parent still kills us on every exit path
        pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, n: int) -> bytes | None:
    parts = []
    while n:
        b = os.read(fd, min(n, 1 << 22))
        if not b:
            return None
        parts.append(b)
        n -= len(b)
    return b"".join(parts)


def _worker(path: str, chunks: list[tuple[int, int, bool]], task_fd: int, out_fd: int,
            scan: Callable[[bytes, int, bool], Any]) -> None:
    """The body of a forked worker: take chunk numbers until the task pipe is empty."""
    with open(path, "rb") as fh:
        fd = fh.fileno()
        while True:
            b = os.read(task_fd, _TASK.size)   # ≤ PIPE_BUF: each read takes exactly one task
            if not b:
                return
            (i,) = _TASK.unpack(b)
            start, end, last = chunks[i]
            data = os.pread(fd, end - start, start) if end > start else b""
            if len(data) != end - start:
                raise OSError(f"{path} changed while it was read (chunk at byte {start} is short)")
            part = scan(data, start, last)
            for ex in part.examples:   # line numbers within the chunk; the parent adds the lines before
                if ex.offset is not None:
                    ex.line = data.count(b"\n", 0, ex.offset - start) + 1
                    ex.offset = None
            payload = pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL)
            _write_all(out_fd, _HEAD.pack(i, len(payload)) + payload)


def _spawn(path: str, chunks: list[tuple[int, int, bool]], task_r: int, keep: set[int],
           scan: Callable[[bytes, int, bool], Any]) -> tuple[int, int]:
    """Fork one worker; returns (pid, read end of its result pipe)."""
    import warnings

    r, w = os.pipe()
    parent = os.getpid()
    with warnings.catch_warnings():
        # Python ≥ 3.12 warns about fork in a process with threads (a progress bar's refresh
        # thread): the worker touches none of their locks and leaves with os._exit
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:   # the worker
        code = 0
        try:
            _set_pdeathsig()
            if os.getppid() != parent:   # the parent died before prctl took effect
                os._exit(1)
            devnull = os.open(os.devnull, os.O_RDWR)
            for std in (0, 1, 2):
                os.dup2(devnull, std)
            os.close(r)
            for fd in keep:
                if fd not in (task_r, w):
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            _worker(path, chunks, task_r, w, scan)
        except BaseException as exc:  # noqa: BLE001 - handed to the parent, which re-raises it
            code = 1
            try:
                payload = pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001
                payload = pickle.dumps(RuntimeError(f"reading worker failed: {type(exc).__name__}: {exc}"))
            try:
                _write_all(w, _HEAD.pack(-1, len(payload)) + payload)
            except OSError:
                pass
        finally:
            os._exit(code)
    os.close(w)
    return pid, r


def scan_parallel(path: str, chunks: list[tuple[int, int, bool]], n_workers: int,
                  scan: Callable[[bytes, int, bool], Any], meanwhile: Callable[[], None] | None = None,
                  ) -> Iterator[tuple[tuple[int, int, bool], Any]]:
    """Yield ``(chunk, partial)`` in chunk order; ``partial.examples`` carry line numbers
    counted from the chunk's start. ``meanwhile`` runs here once the workers are started (this
    process would only wait). The workers are gone when the iterator ends or is closed."""
    task_r, task_w = os.pipe()
    procs: dict[int, int] = {}      # result fd -> pid
    try:
        # all tasks written before any worker starts: the pipe holds 16,384 of them
        tasks = b"".join(_TASK.pack(i) for i in range(len(chunks)))
        if len(tasks) > 60_000:
            raise ValueError("too many chunks for the task pipe")
        _write_all(task_w, tasks)
        os.close(task_w)
        task_w = -1
        for _ in range(n_workers):
            pid, r = _spawn(path, chunks, task_r, set(procs) | {task_r}, scan)
            procs[r] = pid
        os.close(task_r)
        task_r = -1
        if meanwhile is not None:
            meanwhile()
        early: dict[int, Any] = {}
        last_seen = dict.fromkeys(procs, -1)
        nxt = 0
        open_fds = set(procs)
        while nxt < len(chunks):
            if nxt in early:
                yield chunks[nxt], early.pop(nxt)
                nxt += 1
                continue
            if not open_fds:
                raise RuntimeError("a reading worker ended without reporting chunk "
                                   f"{nxt} of {path} (killed? out of memory?)")
            # Bounded memory: with MAX_EARLY chunks waiting, read only from the workers that
            # may still owe chunk ``nxt`` (each worker reports in increasing chunk order, so one
            # that has reported a later chunk does not hold it); the others wait on their pipe.
            wanted = [fd for fd in open_fds if len(early) < MAX_EARLY or last_seen[fd] < nxt]
            if not wanted:
                raise RuntimeError(f"no reading worker holds chunk {nxt} of {path}")
            ready, _, _ = select.select(wanted, [], [])
            for fd in ready:
                head = _read_exact(fd, _HEAD.size)
                if head is None:      # this worker is done (its tasks all reported)
                    open_fds.discard(fd)
                    continue
                i, n = _HEAD.unpack(head)
                payload = _read_exact(fd, n)
                if payload is None:
                    raise RuntimeError(f"a reading worker of {path} died mid-message")
                obj = pickle.loads(payload)
                if i < 0:
                    raise obj
                early[i] = obj
                last_seen[fd] = i
    finally:
        for fd in (task_r, task_w):
            if fd >= 0:
                os.close(fd)
        for fd, pid in procs.items():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            os.close(fd)
