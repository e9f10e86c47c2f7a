"""A big step-keyed log read by several processes gives exactly what one process gives.

The parallel read (ddai.curriculum.read_parallel) cuts the document at step keys, decodes the
first segment in the caller and the others in worker processes, and hands anything the typed
decoder does not read exactly back to the sequential reader from that step on. Every test here
compares against a sequential read of the same file (processes=1): groups, record and malformed
counts, the file's SHA-256, and the errors raised. The workers are real processes
(``python -m ddai.curriculum.read_worker``); only the size threshold is lowered so that small
files take the parallel path.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from proc_support import process_state
from step_logs import _fingerprint, _read, _steps, spy_workers, write_log

from ddai.curriculum import read_parallel as rp
from ddai.curriculum.match import normalize_question
from ddai.curriculum.read import ReadStats, iter_rollouts, read_groups
from ddai.curriculum.stats import collect_groups
from ddai.errors import ConfigError, InputError
from ddai.examples import EXAMPLE_PHASE1_LOG

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _small_files_go_parallel(monkeypatch):
    monkeypatch.setattr(rp, "MIN_PARALLEL_BYTES", 0)


@pytest.fixture
def outcome(monkeypatch) -> list:
    """What each parallel attempt returned: (rollouts, resume offset or None, hasher) or None."""
    seen: list = []
    real = rp.read_parallel

    def spy(*args, **kwargs):
        got = real(*args, **kwargs)
        seen.append(None if got is None else got[:2])
        return got

    monkeypatch.setattr(rp, "read_parallel", spy)
    return seen


@pytest.fixture
def started(monkeypatch) -> list:
    """The worker processes the reads below start."""
    return spy_workers(monkeypatch, rp)


def _assert_same(path: Path, processes: int) -> ReadStats:
    """Parallel == sequential == the general rules record by record (``iter_rollouts``)."""
    seq, seq_stats = _read(path, 1)
    par, par_stats = _read(path, processes)
    assert par == seq
    assert par == _fingerprint(collect_groups(iter_rollouts(path, progress=False), normalize_question))
    assert (par_stats.records, par_stats.malformed) == (seq_stats.records, seq_stats.malformed)
    assert par_stats.malformed_examples == seq_stats.malformed_examples
    assert par_stats.files[0].sha256 == seq_stats.files[0].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    return par_stats


@pytest.mark.parametrize("processes", [2, 3, 4])
def test_parallel_read_equals_the_sequential_one(tmp_path, started, outcome, processes):
    log = write_log(tmp_path / "log.json", 60)
    stats = _assert_same(log, processes)
    assert len(started) == processes - 1          # the workers really read their segments ...
    assert outcome == [(stats.records, None)]     # ... all of them, nothing left to the sequential reader
    assert stats.records == sum(len(g["agents"]) for s in (_steps() * 60)[:60] for g in s.values())


def test_newlines_and_indentation_between_steps(tmp_path, started, outcome):
    log = write_log(tmp_path / "log.json", 40, sep=",\n\n  ")
    stats = _assert_same(log, 2)
    assert started and outcome == [(stats.records, None)]


def test_a_step_the_typed_decoder_refuses_is_read_by_the_rules_in_a_worker_segment(tmp_path, started, outcome):
    raw = json.loads(EXAMPLE_PHASE1_LOG.read_bytes())
    odd = next(json.dumps(s) for s in raw.values() if "NaN" in json.dumps(s))   # a NaN literal: not JSON
    log = write_log(tmp_path / "log.json", 40, replace={33: odd})
    offset = log.read_bytes().index(b'"step_33"')
    _assert_same(log, 2)
    assert started and outcome[0][1] == offset    # the sequential reader took over at that step


def test_reference_pages_that_are_not_all_strings_are_read_by_the_rules(tmp_path, outcome):
    """The typed decoder checks reference pages once per distinct text; a list holding a number
    sends the step to the general rules (which keep the strings), in a worker and in the caller."""
    steps = _steps()
    odd = json.dumps(steps[3]).replace('"reference_documents": [', '"reference_documents": [7, ', 1)
    assert odd != json.dumps(steps[3])
    for planted in (31, 2):     # a worker's segment, the caller's
        log = write_log(tmp_path / f"log{planted}.json", 40, replace={planted: odd})
        outcome.clear()
        _assert_same(log, 2)
        assert outcome[0][1] == log.read_bytes().index(b'"step_%d"' % planted)


def test_unreadable_records_in_a_worker_segment_are_skipped_and_counted_once(tmp_path):
    steps = _steps()
    groups = dict(steps[1])
    uid = next(iter(groups))
    bad_group = json.dumps(groups[uid]).replace('"agents": [', '"agents": [' + "[" * 100_000 + "]" * 100_000 + ", ", 1)
    text = "{" + json.dumps(uid) + ": " + bad_group + ", " + json.dumps(dict(list(groups.items())[1:]))[1:]
    log = write_log(tmp_path / "log.json", 40, replace={35: text, 36: '{"g": {"agents": [{"scores": '
                                                                       '{"ndcg_value": ' + "9" * 400 + "}}]}}"})
    stats = _assert_same(log, 3)
    assert stats.malformed == 2


def test_malformed_json_in_a_worker_segment_raises_what_the_sequential_read_raises(tmp_path):
    log = write_log(tmp_path / "log.json", 40, replace={30: '{"g": {"agents": [}'})
    with pytest.raises(InputError) as seq:
        _read(log, 1)
    with pytest.raises(InputError) as par:
        _read(log, 2)
    assert str(par.value) == str(seq.value)
    assert "step_30" in str(par.value)


def test_a_cut_at_a_nested_step_like_key_is_joined_again(tmp_path, monkeypatch):
    """A group may hold a key spelled like a step key; a cut made there is not a step boundary."""
    steps = _steps()
    uid, group = next(iter(steps[0].items()))
    nested = {uid: {**group, "history": {"step_7": {"note": "a nested object"}}}}
    log = write_log(tmp_path / "log.json", 30, replace={20: json.dumps(nested)})
    raw = log.read_bytes()
    at = raw.index(b'"step_7": {"note"')
    real_plan = rp.plan
    monkeypatch.setattr(rp, "plan", lambda path, size, n: None if n < 2 else [0, at, size])
    _assert_same(log, 2)
    monkeypatch.setattr(rp, "plan", real_plan)


def test_a_worker_that_dies_without_a_word_is_replaced_by_the_sequential_reader(tmp_path, monkeypatch):
    log = write_log(tmp_path / "log.json", 40)

    def garbage(*args, **kwargs):
        return subprocess.Popen([sys.executable, "-c", ("import sys; sys.stdout.buffer.write(b'not a pickle'); "
                                  "sys.exit(3)")], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    monkeypatch.setattr(rp, "_start_worker", garbage)
    _assert_same(log, 2)


def test_a_worker_that_dies_after_its_first_message_is_resumed_where_it_stopped(tmp_path, monkeypatch, outcome):
    """The worker's first message (some steps, and where the next one starts) arrives, then
    nothing: those steps count once, the rest is read sequentially."""
    log = write_log(tmp_path / "log.json", 80)
    real = rp._start_worker
    seen: list[int] = []

    def first_message_only(path, source, start, end, last, **kwargs):
        proc = real(path, source, start, end, last, **kwargs)
        data = proc.stdout.read()
        proc.wait()
        buf = io.BytesIO(data)
        msg = pickle.Unpickler(buf).load()
        assert msg[0] == "steps"
        seen.append(msg[3])
        first = tmp_path / "first_message.bin"
        first.write_bytes(data[: buf.tell()])
        return subprocess.Popen(["cat", str(first)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    monkeypatch.setattr(rp, "_start_worker", first_message_only)
    _assert_same(log, 2)
    assert seen and seen[0] > 0
    assert outcome[0][1] == seen[0]               # resumed exactly after the steps it had sent


def test_one_process_when_asked(tmp_path, monkeypatch, started):
    log = write_log(tmp_path / "log.json", 20)
    monkeypatch.setenv("DDAI_READ_WORKERS", "1")
    read_groups(log, normalize_question, progress=False)
    assert started == []
    monkeypatch.setenv("DDAI_READ_WORKERS", "2")
    read_groups(log, normalize_question, progress=False)
    assert len(started) == 1
    monkeypatch.setenv("DDAI_READ_WORKERS", "two")
    with pytest.raises(ConfigError, match="DDAI_READ_WORKERS"):
        read_groups(log, normalize_question, progress=False)


def test_compressed_logs_are_read_by_one_process(tmp_path, started):
    import gzip

    log = write_log(tmp_path / "log.json", 20)
    packed = tmp_path / "log.json.gz"
    packed.write_bytes(gzip.compress(log.read_bytes()))
    assert _read(packed, 2)[0] == _read(packed, 1)[0]
    assert started == []


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_worker_never_outlives_the_process_that_started_it(tmp_path, sig):
    """The caller starts a worker and stops reading its answer (the worker blocks writing it);
    the caller is killed; the worker must end as well."""
    log = write_log(tmp_path / "log.json", 120)
    size = log.stat().st_size
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from ddai.curriculum import read_parallel as rp
        path = Path({str(log)!r})
        rp.MIN_PARALLEL_BYTES = 0
        cuts = rp.plan(path, {size}, 2)
        proc = rp._start_worker(path, str(path), cuts[1], cuts[2], True)
        print(proc.pid, flush=True)
        time.sleep(3600)
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    caller = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    try:
        worker = int(caller.stdout.readline())
        assert process_state(worker) not in (None, "Z")       # it is there, waiting to hand over its answer
        caller.send_signal(sig)
        caller.wait()
        for _ in range(60_000):                        # the event: the worker has ended (or is a zombie)
            if process_state(worker) in (None, "Z"):
                break
            time.sleep(0.001)
        assert process_state(worker) in (None, "Z")
    finally:
        if caller.poll() is None:
            caller.kill()
            caller.wait()


def test_process_count_follows_free_cores_and_slurm(monkeypatch):
    monkeypatch.delenv("DDAI_READ_WORKERS", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(rp, "_others_running", lambda: 0)
    assert rp.process_count() == 2                   # a calm machine: both cores
    monkeypatch.setattr(rp, "_others_running", lambda: 2)
    assert rp.process_count() == 1                   # both cores busy: one process
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert rp.process_count() == 2                   # a Slurm allocation's cores are its own
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    assert rp.process_count() == rp.MAX_WORKERS
    assert rp.process_count(1) == 1                  # an explicit count wins


def test_busy_processes_are_counted():
    """Two processes spinning beside this one are seen as running right now."""
    spinners = [subprocess.Popen([sys.executable, "-c", "import sys\nprint(flush=True)\nwhile True: pass"],
                                 stdout=subprocess.PIPE) for _ in range(2)]
    try:
        for p in spinners:
            p.stdout.readline()                      # the event: each spinner is up
        seen = max(rp._others_running() for _ in range(200))
        assert seen >= 1
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def test_the_curriculum_outputs_are_the_same_bytes_with_a_parallel_read(tmp_path, monkeypatch, outcome):
    """The whole job (buckets, parquet files, manifest, prompt statistics) on a log read by one
    and by three processes: every output file byte for byte."""
    sys.path.insert(0, str(Path(__file__).parent))
    from engine_helpers import make_cfg

    from ddai.curriculum import pipeline
    from ddai.examples import EXAMPLE_DATASET

    log = write_log(tmp_path / "log.json", 60)
    files = {}
    for processes in ("1", "3"):
        monkeypatch.setenv("DDAI_READ_WORKERS", processes)
        out = tmp_path / f"out{processes}"
        pipeline.run(make_cfg(phase1_log=str(log), dataset=str(EXAMPLE_DATASET), out_dir=str(out),
                              allow_empty_train=True, train_batch_size=8))
        files[processes] = {f.name: f.read_bytes() for f in sorted(out.iterdir()) if f.is_file()}
    assert outcome == [(outcome[0][0], None)]        # the three-process run read the whole log in parallel
    assert files["1"].keys() == files["3"].keys() and len(files["1"]) >= 5
    assert files["1"] == files["3"]


def test_a_workers_pipe_holds_a_mebibyte(tmp_path):
    """A worker whose answers wait in a full 64 KiB pipe stops decoding until the caller, busy
    composing its configuration, gets round to reading: its pipe is widened where Linux allows."""
    import fcntl

    limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    log = write_log(tmp_path / "log.json", 30)
    cuts = rp.plan(log, log.stat().st_size, 2)
    proc = rp._start_worker(log, str(log), cuts[1], cuts[2], True)
    try:
        size = fcntl.fcntl(proc.stdout.fileno(), 1032)      # F_GETPIPE_SZ
        if limit >= rp._PIPE_BYTES or os.geteuid() == 0:     # root may exceed the system's limit
            assert size == rp._PIPE_BYTES
        else:
            assert size >= 64 * 1024
    finally:
        proc.kill()
        proc.communicate()


def test_a_worker_starts_without_site_and_finds_every_import(tmp_path):
    """The worker skips ``site`` (``-S``, its .pth files were most of its start-up) and is handed
    this process's import path instead: it still decodes its whole segment and ends."""
    log = write_log(tmp_path / "log.json", 30)
    cuts = rp.plan(log, log.stat().st_size, 2)
    proc = rp._start_worker(log, str(log), cuts[1], cuts[2], True, hash_file=True)
    try:
        out = proc.stdout.read()          # stdin stays open: its end of file would tell the worker to stop
        assert proc.wait() == 0
    finally:
        proc.stdin.close()
        proc.stdout.close()
    assert proc.args[1] == "-S"
    stream = io.BytesIO(out)
    steps = pickle.Unpickler(stream)          # one pickler's stream (shared memo), then the digest on its own
    msgs = [steps.load()]
    while msgs[-1][0] == "steps":
        msgs.append(steps.load())
    msgs.append(pickle.load(stream))
    assert [m[0] for m in msgs[-2:]] == ["end", "sha256"]
    assert msgs[-1][1] == hashlib.sha256(log.read_bytes()).hexdigest()
    assert sum(m[2] for m in msgs if m[0] == "steps") > 0


def _hashing_read(log: Path, monkeypatch) -> tuple[list, list]:
    """A two-process read of ``log``: (what read_parallel returned, the hash threads started here)."""
    got: list = []
    threads: list = []
    real_read, real_once = rp.read_parallel, rp._Hasher.start_once

    def spy_read(*args, **kwargs):
        out = real_read(*args, **kwargs)
        got.append(out)
        return out

    def spy_once(self):
        threads.append(self)
        real_once(self)

    monkeypatch.setattr(rp, "read_parallel", spy_read)
    monkeypatch.setattr(rp._Hasher, "start_once", spy_once)
    return got, threads


def test_the_first_worker_hashes_the_file_once_its_segment_is_read(tmp_path, monkeypatch, started):
    """A whole-file parallel read takes the SHA-256 from the worker (no hashing thread here, which
    would fight the caller for the GIL); the worker is reaped once the digest is taken."""
    log = write_log(tmp_path / "log.json", 60)
    got, threads = _hashing_read(log, monkeypatch)
    _, stats = _read(log, 2)
    assert got[0][1] is None                                  # read to the end in parallel
    assert isinstance(got[0][2], rp._WorkerDigest) and got[0][2].proc is started[0]
    assert started[0].args[-1] == "1"                          # told to hash
    assert stats.files[0].sha256 == hashlib.sha256(log.read_bytes()).hexdigest()
    assert threads == []                                       # nothing hashed in this process
    assert started[0].returncode is not None                   # reaped once the digest was taken


def test_only_the_first_of_several_workers_hashes(tmp_path, monkeypatch, started):
    log = write_log(tmp_path / "log.json", 90)
    got, _ = _hashing_read(log, monkeypatch)
    _, stats = _read(log, 3)
    assert [p.args[-1] for p in started] == ["1", "0"]
    assert all(p.returncode is not None for p in started[1:])  # the others are reaped with the read
    assert stats.files[0].sha256 == hashlib.sha256(log.read_bytes()).hexdigest()


def test_a_hashing_worker_that_dies_before_its_digest_leaves_the_hash_to_the_caller(tmp_path, monkeypatch):
    """The worker's steps and end arrive, then it dies without a digest: the steps count once
    and the caller hashes the file itself (the manifest's digest is never a guess)."""
    log = write_log(tmp_path / "log.json", 60)
    real = rp._start_worker
    cut: list[int] = []

    def no_digest(path, source, start, end, last, **kwargs):
        proc = real(path, source, start, end, last, **kwargs)
        data = proc.stdout.read()              # (its stdin stays open: closing it ends the worker)
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()
        buf = io.BytesIO(data)
        unpickler = pickle.Unpickler(buf)
        while unpickler.load()[0] != "end":
            pass
        cut.append(buf.tell())
        assert pickle.loads(data[buf.tell():])[0] == "sha256"   # the real worker did send one
        stream = tmp_path / "without_digest.bin"
        stream.write_bytes(data[: buf.tell()])
        return subprocess.Popen(["cat", str(stream)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    monkeypatch.setattr(rp, "_start_worker", no_digest)
    got, _ = _hashing_read(log, monkeypatch)
    stats = _assert_same(log, 2)
    assert cut and got[0][1] is None                           # the steps were all taken from the worker
    assert stats.files[0].sha256 == hashlib.sha256(log.read_bytes()).hexdigest()


def test_a_read_whose_workers_were_stopped_hashes_here(tmp_path, monkeypatch):
    """A worker that stops at a step it does not read exactly never hashes: the caller does."""
    raw = json.loads(EXAMPLE_PHASE1_LOG.read_bytes())
    odd = next(json.dumps(s) for s in raw.values() if "NaN" in json.dumps(s))   # a NaN literal: not JSON
    log = write_log(tmp_path / "log.json", 60, replace={45: odd})
    got, threads = _hashing_read(log, monkeypatch)
    _assert_same(log, 2)
    assert got[0][1] is not None and not isinstance(got[0][2], rp._WorkerDigest)
    assert len(threads) == 1                                   # resumed sequentially; hashed here


# --- the caller takes over the end of the last worker's segment ---------------------------------

def _worker_messages(out: bytes) -> list:
    stream = io.BytesIO(out)
    steps = pickle.Unpickler(stream)
    msgs = [steps.load()]
    while msgs[-1][0] == "steps":
        msgs.append(steps.load())
    rest = stream.read()
    if rest:
        msgs.append(pickle.loads(rest))
    return msgs


class _Steps:
    def __init__(self):
        self.calls: list = []

    def add_step(self, *args):
        self.calls.append(args)


def _worker_output(log: Path, start: int, limit: int | None) -> bytes:
    """Everything a hashing worker for ``[start, end of file)`` writes; ``limit``: a ``limit N``
    line written to its stdin before it starts (so it applies from its first step)."""
    r, w = os.pipe()
    if limit is not None:
        os.write(w, b"limit %d\n" % limit)
    env = {**os.environ, "PYTHONPATH": rp._worker_path()}
    proc = subprocess.Popen([sys.executable, "-S", "-m", "ddai.curriculum.read_worker", str(log), str(log),
                             str(start), str(log.stat().st_size), "1", str(os.getpid()), "1"],
                            stdin=r, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    os.close(r)
    try:
        out = proc.stdout.read()       # the write end stays open here: its end of file would stop the worker
        assert proc.wait() == 0
    finally:
        os.close(w)
        proc.stdout.close()
    return out


def _middle_step(log: Path, start: int) -> int:
    size = log.stat().st_size
    with open(log, "rb") as fh:
        at = rp._boundary(fh, (start + size) // 2, size)
    assert start < at < size
    return at


def test_a_worker_stops_before_the_step_it_was_told_to_leave(tmp_path):
    """``limit N`` on the worker's stdin: it sends exactly the steps before the one at N, says
    ``("limit", N)``, and still hashes the whole file."""
    log = write_log(tmp_path / "log.json", 40)
    start = rp.plan(log, log.stat().st_size, 2)[1]
    at = _middle_step(log, start)
    msgs = _worker_messages(_worker_output(log, start, at))
    assert [m[0] for m in msgs[-2:]] == ["limit", "sha256"] and msgs[-2][1] == at
    assert msgs[-3][3] == at                                  # the steps sent end where the caller begins
    assert msgs[-1][1] == hashlib.sha256(log.read_bytes()).hexdigest()
    expected = _Steps()
    assert rp.scan_segment(log, str(log), start, at, False, rp.first_typed(log), expected) == (
        sum(m[2] for m in msgs if m[0] == "steps"), None)
    assert repr([a for m in msgs if m[0] == "steps" for a in m[1]]) == repr(expected.calls)   # (NaN scores)


def _replayed(tmp_path: Path, log: Path, start: int, out: bytes, take: rp.TakeOver) -> tuple[int, int | None, list]:
    """``_replay`` of a recorded worker stream (played back by ``cat``) with a take-over already done."""
    stream = tmp_path / "stream.bin"
    stream.write_bytes(out)
    proc = subprocess.Popen(["cat", str(stream)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    drain = rp._Drain(proc.stdout.fileno())
    drain.start()
    got = _Steps()
    try:
        n, resume = rp._replay(proc, drain, start, got, take)
    finally:
        rp._stop([proc], [drain])
    return n, resume, got.calls


def _taken(log: Path, at: int) -> rp.TakeOver:
    take = rp.TakeOver(log, str(log), log.stat().st_size, rp.first_typed(log), offset=at, steps=[])
    n, resume = rp.scan_segment(log, str(log), at, log.stat().st_size, True, take.typed, take)
    assert resume is None and take.steps
    take.rollouts = n
    return take


@pytest.mark.parametrize("heard", [True, False], ids=["worker stopped for the caller", "worker had read past"])
def test_the_replay_adds_each_step_once_in_document_order(tmp_path, heard):
    """The worker stopped before the caller's step: its steps, then the caller's. Or it had passed
    that step before it heard of it: it sends everything and ends, and what the caller decoded of
    that part is dropped, not added twice."""
    log = write_log(tmp_path / "log.json", 40)
    start = rp.plan(log, log.stat().st_size, 2)[1]
    at = _middle_step(log, start)
    whole = _Steps()
    total, _ = rp.scan_segment(log, str(log), start, log.stat().st_size, True, rp.first_typed(log), whole)
    out = _worker_output(log, start, at if heard else None)
    n, resume, calls = _replayed(tmp_path, log, start, out, _taken(log, at))
    assert (n, resume) == (total, None)
    assert repr(calls) == repr(whole.calls)


def test_a_limit_the_caller_could_not_decode_past_is_read_sequentially(tmp_path):
    """The worker stopped for the caller, but the caller's own decode of that part stopped early:
    the read resumes (sequentially) at the caller's step."""
    log = write_log(tmp_path / "log.json", 40)
    start = rp.plan(log, log.stat().st_size, 2)[1]
    at = _middle_step(log, start)
    failed = _taken(log, at)
    failed.steps = None
    n, resume, calls = _replayed(tmp_path, log, start, _worker_output(log, start, at), failed)
    before = _Steps()
    assert (n, resume) == (rp.scan_segment(log, str(log), start, at, False, rp.first_typed(log), before)[0], at)
    assert repr(calls) == repr(before.calls)


def _take_spy(monkeypatch) -> list:
    """Every take-over attempt (offset, whether the caller's own decode succeeded); the caller
    tries as soon as it reads the last worker's stream, whatever is left."""
    seen: list = []
    real = rp.TakeOver.take

    def spy(self, proc, seen_to, lag):
        real(self, proc, seen_to, lag)
        seen.append((self.offset, self.steps is not None))

    monkeypatch.setattr(rp.TakeOver, "take", spy)
    monkeypatch.setattr(rp, "MIN_TAKE_BYTES", 0)
    monkeypatch.setattr(rp._Drain, "waiting", lambda self: True)
    return seen


@pytest.mark.parametrize("processes", [2, 3])
def test_a_read_whose_caller_takes_over_equals_the_sequential_one(tmp_path, monkeypatch, processes):
    """Whatever the race gives -- the worker stops for the caller, had passed its step, or had
    ended already -- groups, counts and digest are the sequential read's."""
    log = write_log(tmp_path / "log.json", 90)
    seen = _take_spy(monkeypatch)
    _assert_same(log, processes)
    assert len(seen) == 1                                     # one attempt, on the last worker only


def test_a_take_over_whose_own_decode_fails_reads_the_same(tmp_path, monkeypatch):
    log = write_log(tmp_path / "log.json", 60)
    seen = _take_spy(monkeypatch)
    real_scan = rp.scan_segment

    def failing(path, source, start, end, last, typed, sink, *args, **kwargs):
        if isinstance(sink, rp.TakeOver):
            return 0, start              # as if its first step were not read exactly
        return real_scan(path, source, start, end, last, typed, sink, *args, **kwargs)

    monkeypatch.setattr(rp, "scan_segment", failing)
    _assert_same(log, 2)
    assert len(seen) == 1 and seen[0][1] is False


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 50_000])
def test_the_workers_mapped_hash_is_sha256(tmp_path, monkeypatch, size):
    """The worker hashes the mapped file window by window (several windows here) -- the digest
    is hashlib's of the bytes; an empty file is hashed by reading it."""
    import mmap

    monkeypatch.setattr(rp, "_MAP_WINDOW", mmap.ALLOCATIONGRANULARITY)
    f = tmp_path / "f.bin"
    f.write_bytes(os.urandom(size))
    assert rp.sha256_mapped(f) == hashlib.sha256(f.read_bytes()).hexdigest()


def test_a_file_that_cannot_be_mapped_is_hashed_by_reading(tmp_path):
    """A pseudo-file (size 0 by stat, content when read) is hashed by reading it."""
    got = rp.sha256_mapped(Path("/proc/self/cmdline"))
    assert got == hashlib.sha256(Path("/proc/self/cmdline").read_bytes()).hexdigest()
