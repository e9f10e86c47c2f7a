"""Big plain logs read by worker processes (ddai.report.fanout) give the very same report.

The chunks are made small here (a few KiB) so that a log of a few MB is cut into hundreds
of chunks and every path of the fan-out runs: tasks taken by whichever worker is free, the
chunks merged in file order, malformed lines numbered across chunks, ``--strict`` stopping at
the first problem, a worker's error raised in the parent, and no worker left afterwards.
"""

from __future__ import annotations

import io
import json
import os
import random
from pathlib import Path

import pytest
from proc_support import children

from ddai.report import fanout, logstats
from ddai.report.cli import main
from ddai.report.source import split_lines

CHUNK = 4096


def _children() -> set[int]:
    """This process's children (other tests' long-lived helpers included)."""
    return set(children(os.getpid()))


@pytest.fixture
def no_new_children():
    """After the test, no child process the test started is left (the report's workers reaped)."""
    before = _children()
    yield
    assert _children() - before == set()


def _log(path: Path, n: int = 4000, *, bom: bool = False, problems: bool = True, tail: bytes = b"") -> Path:
    rng = random.Random(7)
    lines = []
    for i in range(n):
        rec = {"uid": f"u{i // 5}", "dataset_id": f"train_{(i // 5) % 97}", "step": i // 320 + 1,
               "judge_score": round(rng.random(), 2), "ndcg": rng.choice([0.0, 0.631, 1.0]),
               "final_score": round(rng.random(), 4), "latency_s": round(rng.lognormvariate(1, 0.5), 3),
               "tokens": {"input": rng.randint(900, 4000), "output": 50, "thinking": 7, "total": 5000},
               "cost_usd": 0.0012, "cache_hit": rng.random() < 0.1, "error": None if i % 97 else "judge: 503",
               "generated_answer": "x" * rng.randint(10, 900), "judge_model": "m", "prompt_version": "v2"}
        lines.append(json.dumps(rec).encode())
        if problems and i % 613 == 5:
            lines.append(b'{"uid": "torn", "judge_score": 0.')          # malformed: goes the tolerant way
        if problems and i % 401 == 9:
            lines.append(b"")                                             # blank
        if i == 1500:
            lines.append(b"x" * (3 * CHUNK) if problems else json.dumps({**rec, "q": "y" * 3 * CHUNK}).encode())
    data = (b"\xef\xbb\xbf" if bom else b"") + b"\n".join(lines) + b"\n" + tail
    path.write_bytes(data)
    return path


def _report(paths: list[Path], workers: int, monkeypatch, capsys, *extra: str) -> tuple[int, str, str]:
    monkeypatch.setenv("DDAI_REPORT_WORKERS", str(workers))
    monkeypatch.setattr(logstats, "CHUNK_BYTES", CHUNK)
    code = main([*map(str, paths), "--json", "--progress", "off", *extra])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("bom", [False, True], ids=["plain", "bom"])
@pytest.mark.parametrize("tail", [b"", b'{"uid": "cut", "judge_sc'], ids=["newline-end", "torn-end"])
def test_chunk_plan_is_the_streaming_chunking(tmp_path, bom, tail):
    """fanout.plan cuts the file exactly where source.split_lines does (the merge order relies on it)."""
    path = _log(tmp_path / "a.jsonl", 800, bom=bom, tail=tail)
    with open(path, "rb") as fh:
        streamed = [(off, off + len(data), last) for off, data, last in split_lines(fh, CHUNK)]
    assert fanout.plan(str(path), CHUNK) == streamed
    assert len(streamed) > 50


def test_small_or_compressed_files_are_not_split(tmp_path):
    import gzip

    small = _log(tmp_path / "s.jsonl", 10, problems=False)
    gz = tmp_path / "g.jsonl.gz"
    gz.write_bytes(gzip.compress(_log(tmp_path / "b.jsonl", 800).read_bytes()))
    assert fanout.plan(str(small), CHUNK) is None
    assert fanout.plan(str(gz), 64) is None
    assert fanout.plan(str(tmp_path / "b.jsonl"), CHUNK) is not None


@pytest.mark.parametrize("tail", [b"", b'{"uid": "cut", "judge_sc'], ids=["newline-end", "torn-end"])
def test_workers_give_the_same_document(tmp_path, monkeypatch, capsys, tail, no_new_children):
    path = _log(tmp_path / "judge.jsonl", bom=True, tail=tail)
    one = _report([path], 1, monkeypatch, capsys)
    two = _report([path], 2, monkeypatch, capsys)
    three = _report([path], 3, monkeypatch, capsys)
    assert one[0] == 0 and one == two == three
    doc = json.loads(one[1])["logs"][0]
    assert doc["read"]["malformed_lines"] >= 7 and doc["read"]["blank_lines"] >= 9
    # the problems are numbered across chunks: each named line really is that line of the file
    lines = path.read_bytes().split(b"\n")
    for p in doc["read"]["problems"]:
        assert not lines[p["line"] - 1].rstrip().endswith(b"}"), p


def test_workers_on_log_parts_name_the_part(tmp_path, monkeypatch, capsys):
    d = tmp_path / "logs"
    d.mkdir()
    _log(d / "judge.h1.1.10.jsonl", 1500)
    _log(d / "judge.h2.1.11.jsonl", 2500)
    one = _report([d], 1, monkeypatch, capsys)
    two = _report([d], 2, monkeypatch, capsys)
    assert one[0] == 0 and one == two
    files = {p.get("file") for p in json.loads(two[1])["logs"][0]["read"]["problems"]}
    assert len(files) == 2


def test_strict_stops_at_the_same_first_problem(tmp_path, monkeypatch, capsys, no_new_children):
    path = _log(tmp_path / "judge.jsonl")
    one = _report([path], 1, monkeypatch, capsys, "--strict")
    two = _report([path], 2, monkeypatch, capsys, "--strict")
    assert one[0] == 2 and one == two
    assert ":7:" in two[2] or "judge.jsonl:" in two[2]


def test_a_failing_worker_fails_the_read_and_leaves_no_process(tmp_path, monkeypatch, no_new_children):
    path = _log(tmp_path / "judge.jsonl", problems=False)
    real = logstats._scan_chunk

    def scan(data, offset, last, th):
        if offset > 20 * CHUNK:   # in a worker (fork keeps this patch)
            raise ValueError("boom in chunk")
        return real(data, offset, last, th)

    monkeypatch.setattr(logstats, "_scan_chunk", scan)
    monkeypatch.setattr(logstats, "CHUNK_BYTES", CHUNK)
    monkeypatch.setenv("DDAI_REPORT_WORKERS", "2")
    with pytest.raises(ValueError, match="boom in chunk"):
        logstats.scan_jsonl(str(path), logstats.Thresholds())


def test_the_parents_buffered_output_is_not_written_twice(tmp_path, monkeypatch):
    """A worker leaves with os._exit: text buffered in the parent before the fork never reappears."""
    path = _log(tmp_path / "judge.jsonl", problems=False)
    monkeypatch.setattr(logstats, "CHUNK_BYTES", CHUNK)
    monkeypatch.setenv("DDAI_REPORT_WORKERS", "2")
    r, w = os.pipe()
    buf = io.TextIOWrapper(os.fdopen(w, "wb"), write_through=False)
    buf.write("before the fork\n")          # buffered, not yet written
    logstats.scan_jsonl(str(path), logstats.Thresholds())
    buf.close()
    with os.fdopen(r, "rb") as fh:
        assert fh.read() == b"before the fork\n"


def test_next_round_names_are_the_curriculums():
    """The report spells out the curriculum's rule names so its command line builds without pandas."""
    from ddai.curriculum import nextround as core
    from ddai.report import nextround

    assert nextround.RULE_NAMES == tuple(core.RULES)
    assert nextround.SCORES == tuple(core.SCORES)
    assert nextround.ORDERS == tuple(core.ORDERS)
    assert nextround.SETS == tuple(core.StaysBelowRule.sets)


def test_the_command_line_is_checked_without_pandas():
    """Parsing and checking ``--json LOG`` imports no pandas: the parent imports it while its
    workers read (so its 0.3-0.4 s of start-up overlaps the reading)."""
    import subprocess
    import sys

    code = ("import sys\nfrom ddai.report.cli import build_parser, _check\n"
            "_check(build_parser().parse_args(['x.jsonl', '--json']))\n"
            "print(sorted(m for m in ('pandas', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert out.stdout.strip() == "[]"
