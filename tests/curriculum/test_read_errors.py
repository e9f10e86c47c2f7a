"""Reader tests for bad input: one clear InputError (file, line or byte, expectation), or
skip-and-count for malformed JSON lines; never a traceback-worthy crash, never a silent 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ddai.curriculum.read import ReadStats, detect_format, iter_rollouts
from ddai.errors import ConfigError, InputError
from ddai.examples.generate import DEFAULT_NAMES, write_example_set


@pytest.fixture(scope="module")
def steps_doc(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("err")
    write_example_set(out, n_prompts=30, seed=5, shapes=("steps_json",), response_bytes=300, groups_per_step=6)
    return out / DEFAULT_NAMES["steps_json"]


@pytest.mark.parametrize("fraction", [0.999, 0.9, 0.5, 0.1, 0.01])
def test_truncated_document_names_file_and_byte(steps_doc, tmp_path, fraction):
    data = steps_doc.read_bytes()
    cut = data[: int(len(data) * fraction)]
    p = tmp_path / "trunc.json"
    p.write_bytes(cut)
    with pytest.raises(InputError) as info:
        list(iter_rollouts(p))
    msg = str(info.value)
    assert str(p) in msg and "truncated" in msg
    assert f"byte {len(cut)}" in msg


@pytest.mark.parametrize("block", [1, 97, 4096])
def test_truncated_document_read_in_small_blocks(steps_doc, tmp_path, monkeypatch, block):
    """Block boundaries anywhere (inside a key, a string, a number) change nothing."""
    import ddai.curriculum.read_steps as rs

    monkeypatch.setattr(rs, "BLOCK", block)
    p = tmp_path / "trunc.json"
    p.write_bytes(steps_doc.read_bytes()[:-5000])
    with pytest.raises(InputError, match="truncated"):
        list(iter_rollouts(p))


def test_malformed_document_names_byte_offset(steps_doc, tmp_path):
    data = steps_doc.read_bytes()
    at = data.index(b'"scores"', len(data) // 2)
    bad = data[:at] + b"@@" + data[at:]
    p = tmp_path / "bad.json"
    p.write_bytes(bad)
    with pytest.raises(InputError) as info:
        list(iter_rollouts(p))
    msg = str(info.value)
    assert str(p) in msg and "malformed JSON at byte" in msg
    byte = int(msg.split("at byte ")[1].split()[0])
    assert abs(byte - at) <= 2


def test_group_without_agents_is_an_input_error(tmp_path):
    p = tmp_path / "noagents.json"
    p.write_text(json.dumps({"step_1": {"u1": {"prompt": "Question: a?"}}}))
    with pytest.raises(InputError, match="'agents'"):
        list(iter_rollouts(p))


def test_agent_without_scores_is_a_rollout_without_scores(tmp_path):
    p = tmp_path / "noscores.json"
    p.write_text(json.dumps({"step_2": {"u1": {"prompt": "Question: a?", "agents": [{"agent_id": 1, "response": "x"}]}}}))
    (r,) = list(iter_rollouts(p))
    assert r.scores == {} and r.step == 2 and r.question == "a?"


def _jsonl_with_bad_lines(tmp_path: Path) -> Path:
    p = tmp_path / "log.jsonl"
    good = {"uid": "g", "sample_idx": 0, "ndcg": 0.5}
    lines = [json.dumps(good), "{not json", json.dumps(good), "", json.dumps({"sample_idx": 1, "ndcg": 0.2}),
             "[1, 2]", json.dumps(good)[:-3]]
    p.write_text("\n".join(lines) + "\n")
    return p


def test_malformed_lines_are_skipped_and_counted(tmp_path):
    p = _jsonl_with_bad_lines(tmp_path)
    stats = ReadStats()
    rs = list(iter_rollouts(p, stats=stats))
    assert [r.line for r in rs] == [1, 3]
    assert stats.records == 2 and stats.malformed == 4
    assert [e["line"] for e in stats.malformed_examples] == [2, 5, 6, 7]
    assert all(e["file"] == str(p) and e["reason"] for e in stats.malformed_examples)
    assert "uid" in stats.malformed_examples[1]["reason"]


def test_strict_mode_stops_at_first_bad_line(tmp_path):
    p = _jsonl_with_bad_lines(tmp_path)
    with pytest.raises(InputError) as info:
        list(iter_rollouts(p, strict=True))
    assert str(p) in str(info.value) and "line 2" in str(info.value)


def test_malformed_examples_are_capped(tmp_path):
    p = tmp_path / "many.jsonl"
    p.write_text("garbage\n" * 100 + '{"uid": "g", "ndcg": 1}\n')
    stats = ReadStats()
    assert len(list(iter_rollouts(p, stats=stats))) == 1
    assert stats.malformed == 100 and len(stats.malformed_examples) == 20


def test_unknown_and_missing_inputs(tmp_path):
    csv = tmp_path / "scores.csv"
    csv.write_text("uid,ndcg\ng,0.5\n")
    with pytest.raises(InputError, match="unrecognised"):
        detect_format(csv)
    with pytest.raises(InputError, match="not found"):
        list(iter_rollouts(tmp_path / "missing.json"))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(InputError, match="no log files"):
        list(iter_rollouts(empty_dir))
    other = tmp_path / "list.json"
    other.write_text(json.dumps({"config": {"a": 1}, "results": [1, 2]}, indent=2))
    with pytest.raises(InputError):
        list(iter_rollouts(other))
    with pytest.raises(ConfigError):
        list(iter_rollouts(csv, fmt="xml"))


def test_training_dataset_given_as_log_is_refused(tmp_path):
    from ddai.examples.generate import generate_dataset, write_dataset

    p = tmp_path / "train.parquet"
    write_dataset(p, generate_dataset(5, 0))
    assert detect_format(p) == "parquet"
    with pytest.raises(InputError, match="training dataset"):
        list(iter_rollouts(p))


def test_non_step_document_forced_as_steps(tmp_path):
    p = tmp_path / "doc.json"
    p.write_text('{"results": {"a": 1}}')
    with pytest.raises(InputError, match="step"):
        list(iter_rollouts(p, fmt="steps_json"))
