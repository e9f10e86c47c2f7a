"""Workers started before the configuration is composed (``python -m ddai.launch``'s early start).

The early start is a guess made from the command line: the read takes its workers over only when
it reads the very same file under the same name, unchanged; otherwise they are stopped and reaped
and the read goes its usual way. Every read here is compared with a one-process read of the same
file. The workers are real processes; only the size threshold is lowered.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from step_logs import _read, spy_workers, write_log

from ddai.curriculum import read_parallel as rp
from ddai.examples import EXAMPLE_DATASET
from ddai.launch import early_read

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _small_files_go_parallel(monkeypatch):
    monkeypatch.setattr(rp, "MIN_PARALLEL_BYTES", 0)
    monkeypatch.setenv("DDAI_READ_WORKERS", "2")   # not the free cores of a machine the suite keeps busy
    yield
    rp.cancel_early()     # nothing a failed test started outlives it


@pytest.fixture
def workers(monkeypatch) -> list:
    """Every worker process started from here on."""
    return spy_workers(monkeypatch, rp)


def test_the_read_takes_over_the_early_workers_and_gets_what_one_process_gets(tmp_path, workers):
    log = write_log(tmp_path / "log.json", 90)
    one, one_stats = _read(log, 1)
    assert workers == []
    assert rp.start_early(log, processes=3)
    assert len(workers) == 2                       # started now, before any read
    got, stats = _read(log, None)                  # processes=None: what the launcher's read asks
    assert len(workers) == 2                       # no new worker: the early ones were taken over
    assert got == one
    assert (stats.records, stats.malformed) == (one_stats.records, one_stats.malformed)
    assert stats.files[0].sha256 == hashlib.sha256(log.read_bytes()).hexdigest()
    assert all(p.returncode is not None for p in workers)      # reaped after the read
    assert rp._EARLY is None


def test_an_early_start_for_another_file_is_stopped(tmp_path, workers):
    guessed = write_log(tmp_path / "guessed.json", 60)
    read = write_log(tmp_path / "read.json", 45)
    assert rp.start_early(guessed, processes=2)
    early = list(workers)
    early_hash = rp._EARLY[2].hasher
    got, stats = _read(read, None)
    assert got == _read(read, 1)[0]
    assert all(p.returncode is not None for p in early)        # stopped and reaped
    assert early_hash.ident is None                            # its hash was called off, never started
    assert len(workers) == 2                       # the read started its own worker for its file
    assert stats.files[0].sha256 == hashlib.sha256(read.read_bytes()).hexdigest()


def test_a_file_rewritten_after_the_early_start_is_read_afresh(tmp_path, workers):
    log = write_log(tmp_path / "log.json", 60)
    assert rp.start_early(log, processes=2)
    early = list(workers)
    write_log(log, 75)                             # the same name, other bytes
    got, stats = _read(log, None)
    one, one_stats = _read(log, 1)
    assert got == one
    assert stats.records == one_stats.records
    assert all(p.returncode is not None for p in early)
    assert stats.files[0].sha256 == hashlib.sha256(log.read_bytes()).hexdigest()


def test_the_same_file_under_another_name_is_not_taken_over(tmp_path, workers):
    """Groups record the name the log was read under: workers that were told another name
    would label them wrongly."""
    log = write_log(tmp_path / "log.json", 60)
    link = tmp_path / "link.json"
    link.symlink_to(log)
    assert rp.start_early(link, processes=2)
    early = list(workers)
    got, _ = _read(log, None)
    assert got == _read(log, 1)[0]
    assert all(p.returncode is not None for p in early)


def test_a_read_of_other_formats_or_one_process_stops_the_early_workers(tmp_path, workers):
    log = write_log(tmp_path / "log.json", 60)
    lines = tmp_path / "log.jsonl"
    lines.write_text(json.dumps({"step": 1, "uid": "u", "prompt": "q", "ndcg": 0.5}) + "\n")
    assert rp.start_early(log, processes=2)
    _read(lines, None)
    assert all(p.returncode is not None for p in workers) and rp._EARLY is None
    assert rp.start_early(log, processes=2)
    got, _ = _read(log, 1)                         # an explicit one-process read
    assert all(p.returncode is not None for p in workers) and rp._EARLY is None
    assert got == _read(log, 1)[0]


def test_no_early_start_for_small_compressed_or_missing_files(tmp_path, monkeypatch, workers):
    import gzip

    log = write_log(tmp_path / "log.json", 60)
    assert not rp.start_early(tmp_path / "missing.json", processes=2)
    assert not rp.start_early(tmp_path, processes=2)                  # a directory
    packed = tmp_path / "log.json.gz"
    packed.write_bytes(gzip.compress(log.read_bytes()))
    assert not rp.start_early(packed, processes=2)
    assert not rp.start_early(log, processes=1)
    monkeypatch.setattr(rp, "MIN_PARALLEL_BYTES", log.stat().st_size + 1)
    assert not rp.start_early(log, processes=2)
    assert workers == [] and rp._EARLY is None


@pytest.mark.parametrize(("argv", "expected"), [
    (["curriculum.phase1_log=/data/p1.json"], "/data/p1.json"),
    (["curriculum.rule=threshold", "++curriculum.phase1_log=logs/p1.json", "task=curriculum"], "logs/p1.json"),
    (["curriculum.phase1_log=/data/p1.json", "curriculum.phase1_log=/data/p2.json"], "/data/p2.json"),  # the last wins
    (["curriculum.rule=threshold"], None),                           # the configured log: not guessed
    (["-m", "curriculum.phase1_log=/data/p1.json"], None),           # a sweep
    (["curriculum.phase1_log=/data/a.json,/data/b.json"], None),     # a sweep over logs
    (["--config-name=other", "curriculum.phase1_log=/data/p1.json"], None),
    (["task=phase2", "curriculum.phase1_log=/data/p1.json"], None),
    (["curriculum.phase1_log=${oc.env:LOG}"], None),                 # an interpolation
    (["curriculum.phase1_log='/data/p 1.json'"], None),              # quoted
    (["hydra.job.chdir=true", "curriculum.phase1_log=p1.json"], None),
    (["curriculum.phase1_log="], None),
    (["curriculum.phase1_log"], None),                               # not an override at all
])
def test_which_command_lines_name_a_log_plainly(argv, expected):
    assert early_read.log_override(argv) == expected


def test_a_guess_never_fails_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("DDAI_READ_WORKERS", "two")   # the read reports this; the guess just gives up
    log = write_log(tmp_path / "log.json", 60)
    assert early_read.start([f"curriculum.phase1_log={log}"]) is False
    assert rp._EARLY is None


def test_the_whole_job_from_the_command_line_writes_the_same_bytes(tmp_path):
    """``python -m ddai.launch`` as a user types it, with the size threshold lowered so that the
    early start happens: every output file equals the one-process run's, and the early workers
    were the ones that read the log."""
    log = write_log(tmp_path / "log.json", 60)
    script = textwrap.dedent("""
        import runpy, sys
        from ddai.curriculum import read_parallel as rp
        rp.MIN_PARALLEL_BYTES = 0
        real_claim, real_start = rp.claim_early, rp.Started.start
        def claim(path, source):
            got = real_claim(path, source)
            print("claimed" if got is not None else "not claimed", file=sys.stderr)
            return got
        rp.claim_early = claim
        sys.argv = ["ddai.launch"] + sys.argv[1:]
        runpy.run_module("ddai.launch", run_name="__main__", alter_sys=True)
    """)
    outs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"out{workers}"
        env = {**os.environ, "DDAI_READ_WORKERS": workers,
               "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        res = subprocess.run([sys.executable, "-c", script, f"curriculum.phase1_log={log}",
                              f"curriculum.dataset={EXAMPLE_DATASET}", f"curriculum.out_dir={out}",
                              f"hydra.run.dir={tmp_path}/run{workers}", "curriculum.allow_empty_train=true",
                              "curriculum.train_batch_size=8", "curriculum.progress=off"],
                             capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
        assert ("claimed" in res.stderr.splitlines()) == (workers == "2"), res.stderr[-3000:]
        outs[workers] = {f.name: f.read_bytes() for f in sorted(out.iterdir()) if f.is_file()}
    assert len(outs["1"]) >= 5
    assert outs["1"] == outs["2"]
