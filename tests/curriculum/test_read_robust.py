"""The reader under hostile input and hostile signals (issue 10's fault corpus, one test per case).

* A record Python cannot hold -- a 400-digit integer score, a 5,000-digit number or step key,
  100,000 levels of nesting -- is skipped and counted like any malformed record, in step-keyed
  documents (where a record is a group) and JSON Lines alike; the rest of the log is read.
* gzip and zstd logs are read streaming and give exactly what the plain file gives; the manifest
  hash is the hash of the bytes on disk.
* A run killed (SIGTERM or SIGKILL) while it reads a 64 MB log leaves no process behind and
  nothing holding the caller's stdout/stderr: ``communicate()`` returns because every holder of
  the pipes is gone (the reader uses a thread, never a helper process).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from proc_support import children, pids_where

sys.path.insert(0, str(Path(__file__).parent))
from engine_helpers import make_cfg

from ddai.curriculum import pipeline
from ddai.curriculum.match import normalize_question
from ddai.curriculum.read import ReadStats, iter_rollouts, read_groups
from ddai.curriculum.stats import collect_groups
from ddai.examples import EXAMPLE_DATASET, EXAMPLE_PHASE1_LOG

REPO = Path(__file__).resolve().parents[2]


def _agent(i: int, ndcg: object = 0.5) -> dict:
    return {"agent_id": i, "response": "<think>x</think><answer>y</answer>",
            "scores": {"model_eval_score": 0.5, "ndcg_value": ndcg, "\u2b50\ufe0ffinal_score\u2b50\ufe0f": 0.4,
                       "ndcg_details": {"retrieved_documents": ["7_1"], "reference_documents": ["7_1"]}}}


def _group(q: str, **agent_kw) -> dict:
    return {"prompt": f"system\nYou search.\nuser\nQuestion: {q}\nassistant\n",
            "agents": [_agent(i, **agent_kw) for i in range(1, 4)]}


BIG_INT = "9" * 400
HUGE = "1" * 5000
DEEP = "[" * 100_000 + "]" * 100_000

# case -> (raw JSON put in place of one value, where)
CASES = {
    "400-digit integer score": BIG_INT,
    "5000-digit number": HUGE,
    "100000 levels of nesting": DEEP,
}


def _steps_text(bad_value: str, where: str) -> str:
    """Three steps; step 2 group 'bad' holds the bad value (as a score or beside the scores)."""
    good = json.dumps(_group("good one"))
    other = json.dumps(_group("other one"))
    bad = json.dumps(_group("bad one"))
    if where == "score":
        bad = bad.replace('"ndcg_value": 0.5', f'"ndcg_value": {bad_value}', 1)
    else:
        bad = bad.replace('"agent_id": 1', f'"agent_id": 1, "extra": {bad_value}', 1)
    return ('{"step_1": {"u1": ' + good + '}, "step_2": {"u2": ' + good + ', "bad": ' + bad + ', "u3": ' + other
            + '}, "step_3": {"u4": ' + other + "}}")


def _both_readers(p: Path):
    """``(reader, groups, stats)`` of ``p`` read record by record and read grouped (the typed path)."""
    stats = ReadStats()
    yield "rollouts", collect_groups(iter_rollouts(p, stats=stats), normalize_question), stats
    stats = ReadStats()
    yield "groups", read_groups(p, normalize_question, stats=stats), stats


@pytest.mark.parametrize(("case", "where"), [(c, w) for c in CASES for w in ("score", "field")
                                             if (c, w) != ("400-digit integer score", "field")])
def test_unreadable_numbers_and_nesting_in_a_step_document_are_skipped_and_counted(tmp_path, case, where):
    p = tmp_path / "log.json"
    p.write_text(_steps_text(CASES[case], where))
    for read, groups, stats in _both_readers(p):
        assert [g.group for g in groups] == ["u1", "u2", "u3", "u4"], read
        assert stats.malformed == 1 and stats.records == 12
        assert "bad" in stats.malformed_examples[0]["reason"] and "step_2" in stats.malformed_examples[0]["reason"]


def test_a_5000_digit_step_key_is_skipped_and_counted(tmp_path):
    good = json.dumps(_group("good one"))
    p = tmp_path / "log.json"
    p.write_text('{"step_1": {"u1": ' + good + '}, "step_' + HUGE + '": {"u2": ' + good + '}, "step_3": {"u3": '
                 + good + "}}")
    for _read, groups, stats in _both_readers(p):
        assert [g.group for g in groups] == ["u1", "u3"]
        assert stats.malformed == 1 and "step" in stats.malformed_examples[0]["reason"]


@pytest.mark.parametrize("case", list(CASES))
def test_unreadable_numbers_and_nesting_in_json_lines_are_skipped_and_counted(tmp_path, case):
    rec = {"uid": "train_7", "query": "q", "judge_score": 0.5, "ndcg": 0.5, "final_score": 0.5}
    good = json.dumps(rec)
    bad = good.replace('"ndcg": 0.5', f'"ndcg": {CASES[case]}')
    p = tmp_path / "log.jsonl"
    p.write_text("\n".join([good, bad, good]) + "\n")
    stats = ReadStats()
    got = list(iter_rollouts(p, stats=stats))
    assert len(got) == 2 and [r.line for r in got] == [1, 3]
    assert stats.malformed == 1 and stats.malformed_examples[0]["line"] == 2


@pytest.mark.parametrize("digits", ["9223372036854775808", "99999999999999999999"])   # 2**63, 20 digits
def test_a_step_key_beyond_64_bits_is_skipped_and_counted_and_the_run_goes_through(tmp_path, digits):
    """Steps are written as int64 (prompt_stats.parquet): a larger step key is a malformed step,
    counted, never a crash when the outputs are written. 2**63 - 1 itself is a step."""
    good = json.dumps(_group("good one"))
    p = tmp_path / "log.json"
    p.write_text('{"step_1": {"u1": ' + good + '}, "step_' + digits + '": {"u2": ' + good + '}, "step_'
                 + str(2 ** 63 - 1) + '": {"u3": ' + good + "}}")
    for read, groups, stats in _both_readers(p):
        assert [(g.group, g.step) for g in groups] == [("u1", 1), ("u3", 2 ** 63 - 1)], read
        assert stats.malformed == 1 and "64 bits" in stats.malformed_examples[0]["reason"]
    c = make_cfg(phase1_log=str(p), dataset=str(EXAMPLE_DATASET), out_dir=str(tmp_path / "out"),
                 allow_empty_train=True, train_batch_size=1)
    assert pipeline.run(c)["read"] == {"records": 6, "malformed": 1}


def test_a_json_lines_step_beyond_64_bits_is_no_step_and_the_run_goes_through(tmp_path):
    """An integer field the outputs cannot hold (step, sample index) reads as absent, like a
    step that is not an integer."""
    recs = [{"uid": "train_7", "step": step, "query": "q", "judge_score": 0.5, "ndcg": 0.5, "final_score": 0.5}
            for step in (3, 10 ** 25, -(2 ** 65), 1e30, "9" * 30)]
    p = tmp_path / "log.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    assert [r.step for r in iter_rollouts(p)] == [3, None, None, None, None]
    c = make_cfg(phase1_log=str(p), dataset=str(EXAMPLE_DATASET), out_dir=str(tmp_path / "out"),
                 allow_empty_train=True, train_batch_size=1)
    assert pipeline.run(c)["read"] == {"records": 5, "malformed": 0}


def test_a_run_goes_through_a_log_with_every_unreadable_record(tmp_path):
    good = json.dumps(_group("good one"))
    big = json.dumps(_group("b")).replace('"ndcg_value": 0.5', f'"ndcg_value": {BIG_INT}', 1)
    deep = json.dumps(_group("d")).replace('"agent_id": 1', f'"agent_id": 1, "x": {DEEP}', 1)
    p = tmp_path / "log.json"
    p.write_text('{"step_1": {"u1": ' + good + ', "big": ' + big + '}, "step_' + HUGE + '": {"u2": ' + good
                 + '}, "step_3": {"deep": ' + deep + ', "u3": ' + good + "}}")
    c = make_cfg(phase1_log=str(p), dataset=str(EXAMPLE_DATASET), out_dir=str(tmp_path / "out"),
                 allow_empty_train=True, train_batch_size=1)
    out = pipeline.run(c)
    assert out["read"] == {"records": 6, "malformed": 3}


# --- compressed logs --------------------------------------------------------------------------------

def _view(g):
    return (g.group, g.step, sorted(g.deck_ids), g.raw_questions,
            {k: ["nan" if v != v else v for v in vs] for k, vs in g.scores.items()})


def _compress(data: bytes, how: str) -> bytes:
    if how == "gz":
        return gzip.compress(data)
    import zstandard

    return zstandard.ZstdCompressor().compress(data)


@pytest.mark.parametrize("how", ["gz", "zst"])
def test_compressed_step_document_reads_like_the_plain_one(tmp_path, how):
    plain = EXAMPLE_PHASE1_LOG
    packed = tmp_path / f"gspo_phase1.json.{how}"
    packed.write_bytes(_compress(plain.read_bytes(), how))
    s1, s2 = ReadStats(), ReadStats()
    a = read_groups(plain, normalize_question, stats=s1)
    b = read_groups(packed, normalize_question, stats=s2)
    assert [_view(g) for g in a] == [_view(g) for g in b]
    assert s1.records == s2.records
    assert s2.files[0].sha256 == hashlib.sha256(packed.read_bytes()).hexdigest()
    assert s2.files[0].size == packed.stat().st_size


@pytest.mark.parametrize("how", ["gz", "zst"])
def test_compressed_json_lines_in_a_directory(tmp_path, how):
    recs = [{"uid": f"train_{i % 3}", "query": "q", "judge_score": 0.25, "ndcg": i / 10, "final_score": 0.5}
            for i in range(9)]
    raw = ("\n".join(json.dumps(r) for r in recs) + "\n").encode()
    d = tmp_path / "logs"
    d.mkdir()
    (d / f"a.jsonl.{how}").write_bytes(_compress(raw, how))
    (d / "b.jsonl").write_bytes(raw)
    stats = ReadStats()
    got = list(iter_rollouts(d, stats=stats))
    assert len(got) == 18 and [r.scores["ndcg"] for r in got[:9]] == [r.scores["ndcg"] for r in got[9:]]
    assert [Path(f.path).name for f in stats.files] == [f"a.jsonl.{how}", "b.jsonl"]


def test_a_corrupt_gzip_log_is_one_input_error(tmp_path):
    from ddai.errors import InputError

    packed = tmp_path / "log.json.gz"
    packed.write_bytes(gzip.compress(EXAMPLE_PHASE1_LOG.read_bytes())[:-200])
    with pytest.raises(InputError, match="log.json.gz"):
        read_groups(packed, normalize_question)


# --- kills ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big_log(tmp_path_factory) -> Path:
    """A >= 64 MB step-keyed log: the bundled example's steps repeated under fresh step numbers."""
    doc = json.loads(EXAMPLE_PHASE1_LOG.read_bytes())
    steps = [json.dumps(groups) for groups in doc.values()]
    p = tmp_path_factory.mktemp("kill") / "big.json"
    n = 0
    with open(p, "w") as fh:
        fh.write("{")
        while fh.tell() < 64 * 1024 * 1024 + 1:
            for text in steps:
                n += 1
                fh.write(("" if n == 1 else ", ") + f'"step_{n}": ' + text)
        fh.write("}")
    return p


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children(p))
    return out


def _reading(pid: int, path: Path) -> bool:
    """Whether process ``pid`` or one of its descendants has ``path`` open (the reader is in the file)."""
    for p in _tree(pid):
        try:
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{p}/fd/{fd}") == str(path):
                    return True
            except OSError:
                continue
    return False


def _marked(token: str) -> list[int]:
    """Processes whose environment carries ``DDAI_KILL_TEST=token``."""
    mark = f"DDAI_KILL_TEST={token}".encode()

    def carries(pid: int) -> bool:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return mark in fh.read().split(b"\0")

    return pids_where(carries)


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")[:300]
    except OSError:
        return "?"


def _worker_running(pid: int) -> bool:
    """Whether a reading worker (``python -m ddai.curriculum.read_worker``) runs under ``pid``."""
    for p in _tree(pid)[1:]:
        try:
            with open(f"/proc/{p}/cmdline", "rb") as fh:
                if b"ddai.curriculum.read_worker" in fh.read():
                    return True
        except OSError:
            continue
    return False


@pytest.mark.parametrize("processes", ["1", "2"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_run_leaves_no_process_and_frees_the_callers_pipes(big_log, tmp_path, sig, processes):
    """With one reading process, and with a worker reading a segment beside it (killed while the
    worker runs): afterwards no process of the run is left and the caller's pipes close."""
    token = uuid.uuid4().hex
    env = {**os.environ, "DDAI_KILL_TEST": token, "PYTHONUNBUFFERED": "1", "DDAI_READ_WORKERS": processes}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ddai.launch", f"curriculum.phase1_log={big_log}",
         f"curriculum.dataset={EXAMPLE_DATASET}", f"curriculum.out_dir={tmp_path / 'out'}",
         f"hydra.run.dir={tmp_path / 'run'}", "curriculum.progress=off", "curriculum.allow_empty_train=true"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # the event: the log is open in the reader (and a worker reads beside it)
        while not (_reading(proc.pid, big_log) and (processes == "1" or _worker_running(proc.pid))):
            if proc.poll() is not None:
                pytest.fail(f"the run ended before reading: {proc.stderr.read().decode()[-2000:]}")
        proc.send_signal(sig)
        # communicate() returns only once no process holds the pipes any more
        proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -sig
    # A worker that was still starting when its parent died ends on its own first check of the
    # parent (or by the kernel's signal once armed): wait for that event, then nothing is left.
    for _ in range(60_000):
        if not _marked(token):
            break
        time.sleep(0.001)
    left = {p: _cmdline(p) for p in _marked(token)}
    assert left == {}
