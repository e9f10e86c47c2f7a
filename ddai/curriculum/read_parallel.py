"""Reading one big step-keyed log on several cores: the document cut into segments at step keys.

WHY: decoding a step is CPU work that holds the GIL (msgspec, orjson), so a thread cannot share
it; a log of 400 MB keeps one core busy for a second or more while the other idles. The
document is cut at top-level step keys into a few byte ranges; the main process decodes the
first range while worker processes (``python -m ddai.curriculum.read_worker``) decode the others
with the same typed decoder and send back, per step, exactly the arguments the main process
would have given :meth:`GroupCollector.add_step`. The main process replays them in document
order, so the groups are the same objects in the same order as a sequential read.

WHY it stops at the first doubt: the fast lane takes only what the typed decoder reads exactly.
At the first step it does not -- a malformed or unreadable step, a NaN literal, a step-like key
nested inside a step where a cut was made, a worker that died or answered garbage -- the
workers are stopped, the steps before it stay, and the caller's sequential reader goes on from
that step with the full rules (counting and locating every problem). A correct result never
depends on the fast lane.

WHY the workers may start before the read (:func:`start_early`): ``python -m ddai.launch`` spends
its first second on one core composing its configuration; when its command line names the log,
the workers decode meanwhile and the read takes them over if it reads that very file.

WHY worker processes started fresh (not forked): a fork would copy the caller's state (Hydra,
a progress thread's locks) and its memory; a fresh interpreter imports only the reader and
costs ~0.15 s, paid while the main process decodes its own range. Workers never hold the
caller's stdout/stderr (their output is a private pipe, stderr goes to /dev/null) and never
outlive it: on Linux the kernel kills them when the caller dies (``PR_SET_PDEATHSIG``), and
everywhere they exit when their stdin -- a pipe from the caller -- reaches end of file.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ddai.curriculum import read_steps as rs
from ddai.curriculum.read_io import compression_of, open_raw
from ddai.errors import ConfigError

# Below this size a worker's start-up (~0.15 s) costs more than the share it takes.
MIN_PARALLEL_BYTES = 48 * 1024 * 1024
MAX_WORKERS = 4
# The main process also replays every step into the collector: it takes a smaller share of the
# decoding than each worker.
MAIN_SHARE = 0.4
# Workers started early (:func:`start_early`) have decoded much of the file by the time the main
# process reads: it keeps only the first step and takes over the end of the last worker's segment
# if it catches up (TakeOver below; which side waited for the other changed from run to run).
EARLY_MAIN_SHARE = 0.0
# The caller takes over the end of the last worker's segment when it has replayed everything the
# worker sent and waits (:func:`_replay`): the share of what is left that it takes, and the least
# worth taking. Balanced so both finish together: after its share the caller still replays the
# worker's steps and decides (~0.3 s), while the worker hashes the file (~0.27 s per 400 MB).
TAKE_SHARE = 0.55
MIN_TAKE_BYTES = 8 * 1024 * 1024
_BOUNDARY_SEARCH = 64 * 1024 * 1024   # how far past a cut point to look for a step key
_WINDOW = 1 << 20
_HASH_CHUNK = 4 << 20
_PIPE_BYTES = 1 << 20      # Linux's default limit for an unprivileged process (fs.pipe-max-size)


def process_count(override: int | None = None) -> int:
    """How many processes read one file: ``override``, else ``DDAI_READ_WORKERS``, else one per
    core that is free right now -- every core of the allocation inside a Slurm job -- at most
    :data:`MAX_WORKERS`. 1 means sequential.

    WHY only free cores: the parallel read spends ~20 % more CPU in total (a second interpreter,
    the hand-over of the results) to finish sooner; on a machine whose cores are all busy (a
    shared login node) that extra work only slows everyone down, this run included.
    """
    if override is not None:
        return max(1, int(override))
    env = os.environ.get("DDAI_READ_WORKERS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ConfigError(f"DDAI_READ_WORKERS={env!r} is not a number", where="DDAI_READ_WORKERS",
                              expected="a whole number of processes to read a log with (1: one process)") from None
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    if os.environ.get("SLURM_JOB_ID"):
        # inside a Slurm job the cores in this process's affinity mask are the job's own; the
        # load average counts the whole node (other jobs' work on other cores)
        return max(1, min(cores, MAX_WORKERS))
    busy = _others_running()
    free = cores - busy * cores / (os.cpu_count() or cores)
    return max(1, min(cores, MAX_WORKERS, 1 + int(free + 0.25)))


def _others_running() -> float:
    """How many other tasks run right now: the kernel's count of runnable tasks (Linux
    ``/proc/loadavg``), this one excluded; elsewhere the 1-minute load average.

    WHY the instantaneous count: the load average trails by a minute, so a job that just
    finished (the previous step of a script, the previous run of a sweep) would still make
    every core look busy.
    """
    try:
        with open("/proc/loadavg") as fh:
            running = int(fh.read().split()[3].split("/")[0])
        return max(0, running - 1)
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except OSError:  # pragma: no cover - no load average either
            return 1.0


# --- the plan: where to cut ---------------------------------------------------------------------

def first_typed(path: Path) -> Any | None:
    """The typed decoder built from the document's first step, as the sequential reader builds
    it; None when the file does not start like a step-keyed document the typed decoder reads."""
    from ddai.curriculum.read_typed import typed_or_none

    splitter = rs.StepSplitter(path)
    fed = 0
    with open_raw(path) as fh:
        while fed < 256 * 1024 * 1024:
            data = fh.read(rs.BLOCK)
            if not data:
                return None
            fed += len(data)
            for _key, number, _key_text, text, last in splitter.feed(data):
                view = rs._object_view(text, last)
                if number is None or view is None:
                    return None
                try:
                    step = rs.loads_general(view)
                except (rs._Incomplete, rs.Unrepresentable):
                    return None
                typed = typed_or_none(step)
                return typed
    return None


def _boundary(fh: Any, target: int, size: int) -> int | None:
    """Offset of the first top-level-looking step key (``"step_N": {`` after a ``,``) at or after
    ``target``; None when none is found within :data:`_BOUNDARY_SEARCH` bytes."""
    pos = max(0, target - 64)
    stop = min(size, target + _BOUNDARY_SEARCH)
    carry = b""
    carry_at = pos
    while pos < stop:
        fh.seek(pos)
        chunk = fh.read(min(_WINDOW, stop - pos))
        if not chunk:
            return None
        data = carry + chunk
        base = carry_at
        s = data.find(b'"step_')
        while s >= 0:
            at = base + s
            if at >= target:
                m = rs._STEP_KEY.match(data, s)
                if m is not None:
                    j = s - 1
                    while j >= 0 and data[j] in rs._SPACE:
                        j -= 1
                    if j >= 0 and data[j] == 0x2C:
                        return at
            s = data.find(b'"step_', s + 1)
        keep = 128
        carry = data[-keep:]
        pos += len(chunk)
        carry_at = pos - len(carry)
    return None


def plan(path: Path, size: int, processes: int, main_share: float = MAIN_SHARE) -> list[int] | None:
    """Cut offsets ``[0, b1, ..., size]`` for ``processes`` readers, or None (read sequentially);
    the main process's segment, the first, is ``main_share`` of the file."""
    if processes < 2 or size < MIN_PARALLEL_BYTES:
        return None
    with open_raw(path) as fh:
        if compression_of(fh.read(4)) is not None:
            return None
        n = processes
        shares = [main_share] + [(1 - main_share) / (n - 1)] * (n - 1)
        cuts = [0]
        acc = 0.0
        for share in shares[:-1]:
            acc += share
            b = _boundary(fh, int(size * acc), size)
            if b is None or b <= cuts[-1]:
                break
            cuts.append(b)
    if len(cuts) < 2:
        return None
    return cuts + [size]


# --- one segment (the main process's and each worker's work) ----------------------------------------

def scan_segment(path: Path, source: str, start: int, end: int, last: bool, typed: Any, sink: Any,
                 advance: Callable[[int], None] = lambda n: None,
                 after_step: Callable[[int], None] = lambda at: None,
                 stop_before: Callable[[int], bool] | None = None) -> tuple[int, int | None]:
    """Feed bytes ``[start, end)`` step by step to ``sink.add_step`` (a collector, or a worker's
    sender); returns ``(rollouts, resume_at)``. ``resume_at`` is None when the whole segment was
    read, else the offset of the first step the typed decoder does not read exactly (nothing of
    it reached ``sink``): the sequential reader takes over there. ``after_step(offset)`` follows
    each step, with the offset where the next one begins; ``stop_before(offset)`` is asked before
    each step (the offset of its key) and a True stops the read there, that offset its
    ``resume_at`` (a worker whose caller took over the rest)."""
    from ddai.curriculum.read_typed import DecodeErrors

    n_records = 0
    splitter = rs.StepSplitter(path, mid=start > 0, offset=start)
    collect = typed.collect
    decode = typed.decode
    object_view = rs._object_view

    def take(raw: rs.RawStep) -> bool:
        nonlocal n_records
        _key, number, _key_text, text, is_last = raw
        if number is None or (stop_before is not None and stop_before(splitter.yield_at)):
            return False
        view = object_view(text, is_last)
        if view is None:
            return False
        try:
            n_records += collect(number, source, decode(view), sink)
        except DecodeErrors:
            return False
        after_step(splitter.next_at)
        return True

    try:
        with open_raw(path) as fh:
            fh.seek(start)
            remaining = end - start
            while remaining > 0:
                data = fh.read(min(rs.BLOCK, remaining))
                if not data:
                    return n_records, start if splitter.cur_at < 0 else splitter.cur_at
                remaining -= len(data)
                advance(len(data))
                for raw in splitter.feed(data):
                    if not take(raw):
                        return n_records, splitter.yield_at
            for raw in splitter.close(end, last=last):
                if not take(raw):
                    return n_records, splitter.yield_at
    except (rs.SegmentMismatch, rs.InputError):
        return n_records, start if splitter.cur_at < 0 else splitter.cur_at
    return n_records, None


def sha256_of(path: Path, stop: threading.Event | None = None) -> str | None:
    """The file's SHA-256 in hex, read into one reused buffer; None when ``stop`` is set before
    the end.

    WHY not mmap: mapped file pages count as the process's resident memory (the whole file, by
    the end)."""
    h = hashlib.sha256()
    buf = bytearray(_HASH_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            if stop is not None and stop.is_set():
                return None
            h.update(view[:n])
    view.release()
    return h.hexdigest()


_MAP_WINDOW = 32 << 20


def sha256_mapped(path: Path) -> str:
    """The file's SHA-256 in hex, hashed straight from the page cache (a read-only mapping, one
    window at a time); :func:`sha256_of` where the file cannot be mapped.

    WHY: reading a 400 MB log into a buffer to hash it copies every byte once more; hashing the
    mapped pages took 0.33 CPU s against 0.49-0.58 s for the copying read here. Each window is
    dropped from the mapping once hashed (``MADV_DONTNEED``; the pages stay cached), so resident
    memory grows by one window, not by the file.
    WHY only in a worker: a file truncated while it is mapped kills the process that touches the
    lost pages (SIGBUS). A worker that dies sends no digest, and the caller hashes the file
    itself by reading it (:class:`_WorkerDigest`).
    """
    import mmap

    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                raise ValueError("nothing to map")   # (a pseudo-file may still have content: read it)
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                view = memoryview(mm)
                try:
                    for at in range(0, size, _MAP_WINDOW):
                        stop = min(size, at + _MAP_WINDOW)
                        h.update(view[at:stop])
                        if hasattr(mm, "madvise"):
                            mm.madvise(mmap.MADV_DONTNEED, at, stop - at)
                finally:
                    view.release()
    except (OSError, ValueError, AttributeError):   # not mappable here: hash it by reading
        digest = sha256_of(path)
        assert digest is not None
        return digest
    return h.hexdigest()


# --- the main process's side ---------------------------------------------------------------------

class _Hasher(threading.Thread):
    """SHA-256 of the whole file (what the manifest records) in a thread beside the caller's work,
    for a read whose workers were stopped before the end (else the first worker hashes it, see
    :class:`_WorkerDigest`)."""

    def __init__(self, path: Path):
        super().__init__(name="ddai-hash", daemon=True)
        self.path = path
        self.digest: str | None = None
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def start_once(self) -> None:
        """Start hashing unless it started already or was called off (a cancelled early start)."""
        if self.ident is None and not self.stop.is_set():
            self.start()

    def run(self) -> None:
        try:
            self.digest = sha256_of(self.path, self.stop)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            self.error = exc

    def result(self) -> str:
        self.join()
        if self.error is not None:
            raise self.error
        assert self.digest is not None
        return self.digest


def _package_root() -> str:
    import ddai

    return str(Path(ddai.__file__).resolve().parent.parent)


def _worker_path() -> str:
    """The worker's import path: this package's root, then every directory this process imports from.

    WHY: the worker starts with ``-S`` (no ``site``): processing the interpreter's ``.pth`` files
    took ~50 of its ~60 ms start-up here, on the critical path of a read whose worker is the one
    waited for. Handing it this process's path (which the ``.pth`` files already shaped) keeps
    the same imports.
    """
    entries = [_package_root()] + [p for p in sys.path if p and os.path.isdir(p)]
    return os.pathsep.join(dict.fromkeys(entries))


def _start_worker(path: Path, source: str, start: int, end: int, last: bool, hash_file: bool = False) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = _worker_path()
    proc = subprocess.Popen(
        [sys.executable, "-S", "-m", "ddai.curriculum.read_worker", str(path), source, str(start), str(end),
         "1" if last else "0", str(os.getpid()), "1" if hash_file else "0"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, close_fds=True,
        bufsize=1 << 20)
    _widen_pipe(proc.stdout.fileno())  # type: ignore[union-attr]
    return proc


def _widen_pipe(fd: int) -> None:
    """Let the pipe hold up to a MiB (Linux; elsewhere, or above the system's limit, it stays as is).

    WHY: the drain thread needs the GIL for every read it hands over; while the main process
    composes its configuration (pure Python), it gets the GIL only every few milliseconds. A
    64 KiB pipe then fills between two reads and the worker stalls: on a 2-core machine, 20-30 %
    of the CPU sat idle during the read; with a 1 MiB pipe the whole run took 8 % less.
    """
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)
    except (ImportError, OSError):
        pass


class _Drain(threading.Thread):
    """Reads a worker's output as it comes, whatever the main process is doing.

    WHY: a pipe holds 64 KB; a worker whose answer waits in a full pipe stops decoding until
    the main process, busy with its own segment, gets round to reading it. Draining in a
    thread (reading releases the GIL) lets every worker run at full speed from the start.
    Offers the ``read``/``readline`` an Unpickler needs, blocking until the bytes are there.
    """

    def __init__(self, fd: int):
        super().__init__(name="ddai-drain", daemon=True)
        self.fd = fd
        self.buf = bytearray()
        self.pos = 0
        self.eof = False
        self.cond = threading.Condition()

    def run(self) -> None:
        try:
            while True:
                chunk = os.read(self.fd, 1 << 20)
                with self.cond:
                    if not chunk:
                        break
                    self.buf += chunk
                    self.cond.notify()
        except OSError:
            pass
        with self.cond:
            self.eof = True
            self.cond.notify()

    def _wait(self, n: int) -> None:
        with self.cond:
            while len(self.buf) - self.pos < n and not self.eof:
                self.cond.wait()
            if self.pos > (1 << 22):     # forget what was read already
                del self.buf[: self.pos]
                self.pos = 0

    def read(self, n: int = -1) -> bytes:
        self._wait(n if n >= 0 else 1 << 62)
        with self.cond:
            end = len(self.buf) if n < 0 else min(len(self.buf), self.pos + n)
            out = bytes(self.buf[self.pos:end])
            self.pos = end
        return out

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readline(self) -> bytes:
        while True:
            with self.cond:
                i = self.buf.find(b"\n", self.pos)
                if i >= 0 or self.eof:
                    end = i + 1 if i >= 0 else len(self.buf)
                    out = bytes(self.buf[self.pos:end])
                    self.pos = end
                    return out
                self.cond.wait()

    def waiting(self) -> bool:
        """Nothing received is left unread and the worker is still running: a read would wait."""
        with self.cond:
            return self.pos >= len(self.buf) and not self.eof


@dataclass
class TakeOver:
    """What the caller needs to decode the end of the last worker's segment itself: the file, the
    segment's end, the typed decoder. ``offset`` and ``steps`` are set once it has done so
    (``steps`` None: its own decode stopped early, so the steps it took are read sequentially)."""

    path: Path
    source: str
    end: int
    typed: Any
    offset: int | None = None
    steps: list[tuple[Any, ...]] | None = None
    rollouts: int = 0

    def add_step(self, *args: Any) -> None:      # the collector's method, for scan_segment
        self.steps.append(args)  # type: ignore[union-attr]

    def take(self, proc: subprocess.Popen, seen_to: int, lag: int) -> None:
        """Tell the worker to stop at a step key in the last :data:`TAKE_SHARE` of what it has left,
        then decode from there to the end; nothing when too little is left or the worker is gone.

        ``seen_to``: where the steps replayed so far end; ``lag``: how far the worker may be past
        that (it sends a message every few steps)."""
        ahead = seen_to + lag
        left = self.end - ahead
        if left < MIN_TAKE_BYTES / TAKE_SHARE:
            self.offset = -1          # not worth it now, nor later (less is left then)
            return
        with open_raw(self.path) as fh:
            at = _boundary(fh, self.end - int(left * TAKE_SHARE), self.end)
        if at is None or at <= ahead or at >= self.end:
            self.offset = -1
            return
        try:
            proc.stdin.write(b"limit %d\n" % at)  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        except (OSError, ValueError):  # the worker is gone: its replay ends at what it sent
            self.offset = -1
            return
        self.offset, self.steps = at, []
        n, resume = scan_segment(self.path, self.source, at, self.end, True, self.typed, self)
        if resume is None:
            self.rollouts = n
        else:
            self.steps = None


def _replay(proc: subprocess.Popen, drain: _Drain, start: int, collector: Any,
            take_over: TakeOver | None = None) -> tuple[int, int | None]:
    """Replay a worker's stream of steps into ``collector`` as it arrives; ``(rollouts, resume_at)``
    as :func:`scan_segment` gives them (a worker that dies or answers garbage: resume where its
    last complete message left off).

    With ``take_over`` (the last worker, whose segment ends the file): the first time this would
    wait for the worker, the caller decodes the end of the segment itself (:meth:`TakeOver.take`)
    and adds those steps after the worker's, once the worker says it stopped just before them.
    A worker that had read past that point already sends all its steps; the caller's are dropped.
    """
    unpickler = pickle.Unpickler(drain)  # type: ignore[arg-type]
    add_step = collector.add_step
    n_records = 0
    resume = start
    lag = 0
    while True:
        if take_over is not None and take_over.offset is None and drain.waiting():
            take_over.take(proc, resume, lag)
        try:
            msg = unpickler.load()
        except Exception:  # noqa: BLE001 - EOF or garbage: the worker is gone; read on sequentially
            return n_records, resume
        kind = msg[0]
        if kind == "steps":
            for args in msg[1]:
                add_step(*args)
            n_records += msg[2]
            lag = max(lag, msg[3] - resume)
            resume = msg[3]
        elif kind == "end":
            return n_records, None
        elif kind == "limit" and take_over is not None and take_over.steps is not None and msg[1] == take_over.offset:
            for args in take_over.steps:
                add_step(*args)
            return n_records + take_over.rollouts, None
        else:   # "stop": the worker met a step it does not read exactly (or "limit" where this side's read failed)
            return n_records, msg[1]


def _stop(procs: list[subprocess.Popen], drains: list[_Drain]) -> None:
    """Kill the workers still running, let their drains see end of file, then close and reap."""
    for p in procs:
        if p.poll() is None:
            p.kill()
    for d in drains:
        if d.is_alive():
            d.join()      # the writer is gone: its read returns end of file
    for p in procs:
        for f in (p.stdin, p.stdout):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass
        p.wait()


class _WorkerDigest:
    """The file's SHA-256 as the first worker sends it once its segment is read (read_worker's
    ``HASH``; the module's WHY there); computed here when that worker cannot give it. The worker
    runs until the digest is asked for, and is stopped and reaped then (or when this is dropped)."""

    def __init__(self, path: Path, proc: subprocess.Popen, drain: _Drain):
        self.path = path
        self.proc = proc
        self.drain = drain
        self.digest: str | None = None
        self._reap = weakref.finalize(self, _stop, [proc], [drain])

    def result(self) -> str:
        if self.digest is None:
            got = None
            try:
                msg = pickle.Unpickler(self.drain).load()  # type: ignore[arg-type]
                if (isinstance(msg, tuple) and len(msg) == 2 and msg[0] == "sha256" and isinstance(msg[1], str)
                        and len(msg[1]) == 64):
                    got = msg[1]
            except Exception:  # noqa: BLE001, S110 - the worker died or answered garbage: hash here
                pass
            self._reap()
            digest = got if got is not None else sha256_of(self.path)
            assert digest is not None        # (no stop: read to the end)
            self.digest = digest
        return self.digest


@dataclass
class Started:
    """A parallel read under way: the segments, their workers (each with its drain; the first one
    hashes the file after its segment) and the hash to compute here if the workers are stopped."""

    cuts: list[int]
    procs: list[subprocess.Popen]
    drains: list[_Drain]
    hasher: _Hasher

    @classmethod
    def start(cls, path: Path, source: str, cuts: list[int]) -> Started:
        procs = [_start_worker(path, source, cuts[i], cuts[i + 1], i == len(cuts) - 2, hash_file=i == 1)
                 for i in range(1, len(cuts) - 1)]
        drains = [_Drain(p.stdout.fileno()) for p in procs]  # type: ignore[union-attr]
        for d in drains:
            d.start()
        return cls(cuts, procs, drains, _Hasher(path))

    def cancel(self) -> None:
        self.hasher.stop.set()
        _stop(self.procs, self.drains)


def read_parallel(path: Path, source: str, size: int, cuts: list[int], collector: Any,
                  advance: Callable[[int], None],
                  started: Started | None = None) -> tuple[int, int | None, Any, Any] | None:
    """Read the file in the segments ``cuts`` gives, the main process's segment straight into
    ``collector``, the workers' replayed after it in document order (``started``: workers already
    under way for this file, see :func:`start_early`; their cuts are used).

    Returns None when not even the first step suits the typed decoder (nothing was consumed),
    else ``(rollouts, resume_at, digest, typed)``: ``resume_at`` is None when the whole file was
    read, else the offset of a top-level step key from which the sequential reader must go on
    (with ``typed``, the decoder built here); ``digest.result()`` gives the file's SHA-256 either
    way (from the first worker, which hashes once done; from a thread here when the workers were
    stopped early).
    """
    typed = first_typed(path)
    if typed is None:
        if started is not None:
            started.cancel()
        return None
    run = started if started is not None else Started.start(path, source, cuts)
    cuts, procs, drains, hasher = run.cuts, run.procs, run.drains, run.hasher
    keep: _WorkerDigest | None = None
    try:
        n_records, resume = scan_segment(path, source, cuts[0], cuts[1], len(cuts) == 2, typed, collector, advance)
        for i, proc in enumerate(procs, 1):
            if resume is not None:
                break
            last = i == len(procs)
            n, resume = _replay(proc, drains[i - 1], cuts[i], collector,
                                TakeOver(path, source, cuts[-1], typed) if last else None)
            n_records += n
            if resume is None:
                advance(cuts[i + 1] - cuts[i])
        if resume is None and procs:
            keep = _WorkerDigest(path, procs[0], drains[0])
            return n_records, resume, keep, typed
        hasher.start_once()     # the workers are stopped: the hash is made here
        return n_records, resume, hasher, typed
    except BaseException:
        hasher.stop.set()
        raise
    finally:
        skip = 0 if keep is None else 1      # the first worker, still hashing: reaped by ``keep``
        _stop(procs[skip:], drains[skip:])


# --- an early start: the workers begin while the caller is still starting up ------------------------

_EARLY: tuple[tuple[Any, ...], str, Started] | None = None


def _identity(path: Path) -> tuple[Any, ...] | None:
    """What makes "the same file" for an early start: where it really is, and its inode, size and
    modification time (a file rewritten or appended in between is a different one)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def start_early(path: Path, processes: int | None = None) -> bool:
    """Start reading ``path`` in worker processes now, for a read that comes later in this process.

    WHY: ``python -m ddai.launch`` spends its first second importing and composing its
    configuration on one core while the others idle; a command line that names a big log lets
    the workers decode it meanwhile. The later read takes them over only if it reads the very same
    file under the same name (:func:`claim_early`); anything else cancels them. True when started.
    """
    global _EARLY
    if _EARLY is not None:
        return False
    ident = _identity(path)
    if ident is None:
        return False
    cuts = plan(path, ident[3], process_count(processes), main_share=EARLY_MAIN_SHARE)
    if cuts is None:
        return False
    source = str(path)
    _EARLY = (ident, source, Started.start(path, source, cuts))
    return True


def claim_early(path: Path, source: str) -> Started | None:
    """The early-started read of ``path`` when it is this file under this name, unchanged; any other
    early start is cancelled (its workers stopped and reaped)."""
    global _EARLY
    early, _EARLY = _EARLY, None
    if early is None:
        return None
    ident, early_source, started = early
    if early_source == source and _identity(path) == ident:
        return started
    started.cancel()
    return None


def cancel_early() -> None:
    """Stop an early start nobody claimed (its workers stopped and reaped)."""
    global _EARLY
    early, _EARLY = _EARLY, None
    if early is not None:
        early[2].cancel()
