"""The judge log and the cache under concurrent writers: threads AND processes (one file each)."""

import json
import multiprocessing as mp
import threading

import pytest

from ddai.reward.cache import JudgeCache
from ddai.reward.judge_log import LOG_KEYS, JudgeLog, log_files


def _record(worker: int, i: int, pad: int) -> dict:
    rec = {k: None for k in LOG_KEYS}
    rec.update(uid=f"w{worker}", sample_idx=i, query="x" * pad, judge_subscores={}, tokens={})
    return rec


def _write_many(path: str, worker: int, n: int, pad: int) -> None:
    log = JudgeLog(path)
    threads = [
        threading.Thread(target=lambda t=t: [log.write(_record(worker, t * n + i, pad)) for i in range(n)])
        for t in range(4)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    log.close()


def test_lines_never_interleave_across_processes_and_threads(tmp_path):
    path = str(tmp_path / "logs" / "gspo_gemini_output.jsonl")
    (tmp_path / "logs").mkdir()
    pad = 70_000  # far beyond PIPE_BUF: atomicity comes from one O_APPEND write, not small lines
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_write_many, args=(path, w, 25, pad)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    files = log_files(path)
    assert len(files) == 4  # one file per writer process (the parent wrote none)
    records = []
    for f in files:
        lines = f.read_text(encoding="utf-8").split("\n")
        assert lines[-1] == ""
        records += [json.loads(line) for line in lines[:-1]]
    assert len(records) == 4 * 4 * 25
    assert {(r["uid"], r["sample_idx"]) for r in records} == {(f"w{w}", i) for w in range(4) for i in range(100)}
    assert all(len(r["query"]) == pad for r in records)


def test_a_record_without_the_contract_keys_is_refused(tmp_path):
    with pytest.raises(ValueError, match="lacks keys"):
        JudgeLog(tmp_path / "x.jsonl").write({"uid": "a"})


def _cache_writer(path: str, worker: int) -> None:
    cache = JudgeCache(path)
    for i in range(50):
        cache.put(f"k{i}", {"score": worker})
    cache.close()


def test_cache_is_shared_by_processes_and_first_writer_wins(tmp_path):
    path = str(tmp_path / "cache")
    JudgeCache(path).close()
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_cache_writer, args=(path, w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache = JudgeCache(path)
    assert len(cache) == 50
    assert cache.get("k7")["score"] in (0, 1, 2)
    assert cache.get("missing") is None
