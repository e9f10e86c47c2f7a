"""ddai-report's reading side against the fault corpus of issue 10 and the usable-score rule.

Each case is a real file on disk read through ``ddai-report --json`` (or the scanner the
command uses); the figures asserted are those of the hand log plus what the fault should
add to the counters, so a fault that is silently averaged in, or that crashes the run,
fails the test.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from ddai.report import decode, logstats
from ddai.report.cli import main
from ddai.report.discover import discover
from ddai.report.logstats import Thresholds, scan_bytes, scan_jsonl


def _report(capsys, *args) -> dict:
    assert main([*map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)["logs"][0]


def test_typed_and_line_paths_agree(hand_log, records):
    """The msgspec path and the tolerant line path give the same aggregate on the hand log."""
    data = hand_log.read_bytes()
    fast = logstats.Partial(Thresholds())
    decode.fold(fast, decode.decode(data))
    fast.flush()
    slow = scan_bytes(data, Thresholds(), base_offset=0, at_eof=True)
    assert fast.rollouts == slow.rollouts == 10
    assert fast.keys == slow.keys
    np.testing.assert_allclose(fast.per_prompt, slow.per_prompt)
    np.testing.assert_allclose(fast.groups(), slow.groups())
    assert fast.cache == slow.cache and fast.tokens == slow.tokens and fast.cost == slow.cost
    assert {k: pytest.approx(v) for k, v in fast.subscores.items()} == slow.subscores
    assert fast.labels == slow.labels and fast.generator_cost == slow.generator_cost
    assert fast.missing == slow.missing and fast.skipped == slow.skipped


def test_typed_path_refuses_what_it_cannot_type(records):
    """A score as text, NaN or an unknown sub-score name: the chunk goes the tolerant way."""
    for bad in (b'{"uid": "a", "judge_score": "high"}', b'{"uid": "a", "judge_score": NaN}',
                b'{"uid": "a", "judge_score": 0.5, "judge_subscores": {"style": 1.0}}', b"null"):
        with pytest.raises(decode.Refused):
            decode.decode(json.dumps(records[0]).encode() + b"\n" + bad + b"\n")


BIG_INT = b"1" + b"0" * 400
HUGE = b"9" * 5000
DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("line", [
    b'{"dataset_id": "train_1", "step": 1, "judge_score": ' + BIG_INT + b', "ndcg": 0.5}',
    b'{"dataset_id": "train_1", "step": 1, "judge_score": ' + BIG_INT + b', "ndcg": NaN}',
    b'{"dataset_id": "train_1", "step": ' + HUGE + b', "judge_score": 0.5}',
    b'{"dataset_id": "train_1", "step": "step_' + HUGE + b'", "judge_score": 0.5}',
    b'{"dataset_id": "train_1", "judge_score": 0.5, "extra": ' + DEEP + b"}",
    b'{"dataset_id": "train_1", "judge_score": NaN, "extra": ' + DEEP + b"}",
    DEEP,
], ids=["400-digit-int", "400-digit-int-with-NaN", "5000-digit-step", "5000-digit-step-key", "deep",
        "deep-with-NaN", "deep-array"])
def test_absurd_numbers_and_nesting_are_malformed_lines(tmp_path, records, write_jsonl, capsys, line):
    path = write_jsonl(tmp_path / "log.jsonl", [*records[:5], line, *records[5:]])
    s = _report(capsys, path)
    assert s["rollouts"] == 10 and s["read"]["malformed_lines"] == 1
    assert s["read"]["problems"][0]["line"] == 6
    assert s["scores"]["judge"]["n"] == 9   # the hand log's figures, untouched


def test_out_of_range_scores_are_counted_not_averaged(tmp_path, records, write_jsonl, capsys):
    """Reference-style NDCG of a page viewed twice (1.7) and a negative score: counted, shown,
    never in a mean, a quantile or a quadrant."""
    extra = [dict(records[0], ndcg=1.7, dataset_id="train_9"), dict(records[1], ndcg=-0.25, judge_score=1.2)]
    assert main([str(write_jsonl(tmp_path / "log.jsonl", [*records, *extra])), "--json"]) == 0
    out = capsys.readouterr()
    s = json.loads(out.out)["logs"][0]
    assert "2 ndcg values outside [0, 1] (min -0.25, max 1.7)" in out.err
    nd, j = s["scores"]["ndcg"], s["scores"]["judge"]
    assert s["rollouts"] == 12
    assert nd["out_of_range"] == 2 and nd["out_of_range_min"] == -0.25 and nd["out_of_range_max"] == 1.7
    assert j["out_of_range"] == 1 and j["out_of_range_max"] == 1.2
    assert nd["n"] == 10 and nd["max"] == 1.0 and nd["min"] == 0.0
    assert nd["mean"] == pytest.approx(sum([1.0, 0.0, 1.0, 0.631, 0.0, 0.5, 1.0, 0.5, 1.0, 1.0]) / 10, abs=1e-6)
    q = s["quadrants"]["rollouts"]
    assert q["scored"] == 9 and q["unscored"] == 3      # the two extra rollouts have an unusable score


def _valid_log(records) -> list[bytes]:
    return [json.dumps(r).encode() for r in records]


@pytest.mark.parametrize("first", [
    "long", "malformed", "non-utf8", "deep", "bom",
])
def test_sniffing_is_not_fooled_by_the_first_line(tmp_path, records, capsys, first):
    lines = _valid_log(records)
    if first == "long":
        lines[0] = json.dumps(dict(records[0], query="q" * 70_000)).encode()    # > 64 KiB
        want = (10, 0)
    elif first == "malformed":
        lines.insert(0, b'{"uid": "x", "judge_score": oops}')
        want = (10, 1)
    elif first == "non-utf8":
        lines.insert(0, b'{"uid": "x", "query": "\xff\xfe", "judge_score": 0.5}')
        want = (11, 0)   # a stray byte in free text does not cost the record (either path)
    elif first == "deep":
        lines.insert(0, DEEP)
        want = (10, 1)
    else:
        lines[0] = b"\xef\xbb\xbf" + lines[0]
        want = (10, 0)
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    fd = discover(str(path))
    assert fd.kind == "log" and fd.fmt == "jsonl"
    s = _report(capsys, path)
    assert (s["rollouts"], s["read"]["malformed_lines"]) == want


def test_first_line_beyond_every_peek(tmp_path, records, monkeypatch):
    """A first line longer than the whole-document limit and the far peek (64 MB each in
    production, shrunk here): its first key still says "records"."""
    from ddai.report import discover as disc

    monkeypatch.setattr(disc, "SMALL_JSON", 1000)
    monkeypatch.setattr(disc, "FAR_PEEK", 100_000)
    path = tmp_path / "log.jsonl"
    lines = _valid_log(records)
    lines[0] = json.dumps(dict(records[0], query="q" * 300_000)).encode()
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert discover(str(path)).fmt == "jsonl"
    path.write_bytes(lines[0] + b"\n")          # the log is that one line
    assert discover(str(path)).fmt == "jsonl"


def test_step_keyed_document_still_recognised(tmp_path):
    compact = tmp_path / "steps.json"
    compact.write_text(json.dumps({"step_1": {"g": {"prompt": "Question: q?", "agents": []}}}))
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps({"step_1": {"g": {"prompt": "Question: q?", "agents": []}}}, indent=2))
    assert discover(str(compact)).fmt == discover(str(pretty)).fmt == "steps_json"
    # a JSON Lines record whose first key merely starts with "step_" is still a record
    rec = tmp_path / "rec.jsonl"
    rec.write_text(json.dumps({"step_count": 3, "uid": "a", "judge_score": 0.5}) + "\n")
    assert discover(str(rec)).fmt == "jsonl"


class _CountingStream:
    """A binary stream that records how many bytes it handed out, and in how many reads."""

    def __init__(self, data: bytes):
        self.data, self.pos, self.reads = data, 0, 0

    def read(self, n: int) -> bytes:
        self.reads += 1
        out = self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out


def test_a_64_mb_line_is_read_once(tmp_path, records):
    """A single line of 64 MB: every byte is read and searched for a newline once (no rescan of
    the growing line), and the log around it is still summarized."""
    from ddai.report.source import split_lines

    big = b'{"dataset_id": "train_7", "judge_score": 0.5, "query": "' + b"x" * (64 << 20) + b'"}'
    data = b"\n".join([*_valid_log(records[:3]), big, *_valid_log(records[3:])]) + b"\n"
    stream = _CountingStream(data)
    chunk = 1 << 20
    out = list(split_lines(stream, chunk))
    assert b"".join(d for _, d, _ in out) == data
    assert stream.reads == len(data) // chunk + 2                 # each byte handed out once
    assert [o for o, _, _ in out] == [sum(len(d) for _, d, _ in out[:i]) for i in range(len(out))]
    assert all(d.endswith(b"\n") for _, d, _ in out[:-1])
    path = tmp_path / "long.jsonl"
    path.write_bytes(data)
    part = scan_jsonl(str(path), Thresholds())
    assert part.rollouts == 11 and part.malformed == 0 and "train_7" in part.keys


def test_gzip_and_zstd_logs_read_streaming(tmp_path, hand_log, capsys):
    plain = _report(capsys, hand_log)
    gz = tmp_path / "log.jsonl.gz"
    gz.write_bytes(gzip.compress(hand_log.read_bytes()))
    assert discover(str(gz)).fmt == "jsonl"
    s = _report(capsys, gz)
    assert s["scores"] == plain["scores"] and s["rollouts"] == 10
    zstandard = pytest.importorskip("zstandard")
    zst = tmp_path / "log.jsonl.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(hand_log.read_bytes()))
    s = _report(capsys, zst)
    assert s["scores"] == plain["scores"]


def test_gzip_log_in_small_chunks_matches(tmp_path, records, write_jsonl, monkeypatch):
    many = write_jsonl(tmp_path / "many.jsonl", records * 40)
    gz = tmp_path / "many.jsonl.gz"
    gz.write_bytes(gzip.compress(many.read_bytes()))
    whole = scan_jsonl(str(many), Thresholds())
    monkeypatch.setattr(logstats, "CHUNK_BYTES", 900)
    chunked = scan_jsonl(str(gz), Thresholds())
    assert chunked.rollouts == whole.rollouts == 400 and chunked.lines == 400
    np.testing.assert_allclose(chunked.groups(), whole.groups())


def test_stray_byte_counts_the_same_on_both_paths(records):
    odd = b'{"uid": "x", "query": "\xff\xfe", "judge_score": 0.5}'
    data = b"\n".join([*_valid_log(records), odd]) + b"\n"
    slow = scan_bytes(data + b"{broken\n", Thresholds(), base_offset=0, at_eof=True)
    fast = logstats._scan_chunk(data, 0, True, Thresholds())
    assert fast.rollouts == slow.rollouts == 11 and slow.malformed == 1 and fast.malformed == 0


def _steps_doc(bad: bytes) -> bytes:
    good = (b'{"prompt": "Question: q%d?", "agents": [{"agent_id": 1, "response": "r", "scores": '
            b'{"ndcg_value": 0.5, "model_eval_score": 0.75, "ndcg_details": {"retrieved_documents": ["%d_7"], '
            b'"reference_documents": ["%d_7"]}}}]}')
    return (b'{"step_1": {"g1": ' + good % (1, 1, 1) + b', "g2": ' + good % (2, 2, 2) + b'}, ' + bad
            + b', "step_3": {"g3": ' + good % (3, 3, 3) + b"}}")


@pytest.mark.parametrize("bad", [
    b'"step_2": {"g9": {"prompt": "Question: x?", "agents": [{"agent_id": 1, "scores": {"ndcg_value": 0.5, '
    b'"model_eval_score": ' + BIG_INT + b"}}]}}",
    b'"step_' + HUGE + b'": {}',
    b'"step_2": {"g9": {"prompt": "x", "agents": ' + DEEP + b"}}",
], ids=["400-digit-score", "5000-digit-step-key", "deep"])
def test_step_keyed_absurd_values_are_malformed_not_fatal(tmp_path, capsys, bad):
    path = tmp_path / "steps.json"
    path.write_bytes(_steps_doc(bad))
    assert main([str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["logs"][0]
    assert s["rollouts"] == 3 and s["read"]["malformed_lines"] >= 1
