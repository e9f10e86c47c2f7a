"""Reader tests: every log shape yields the rollouts the generator wrote (ground truth)."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest

from ddai.curriculum.fields import canonical_score, normalize_key, question_from_prompt
from ddai.curriculum.read import ReadStats, detect_format, iter_rollouts
from ddai.curriculum.read_steps import iter_steps
from ddai.examples.generate import DEFAULT_NAMES, SHAPES, write_example_set


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    out = tmp_path_factory.mktemp("ex")
    truth = write_example_set(out, n_prompts=60, seed=11, shapes=SHAPES, response_bytes=400,
                              bad_score_fraction=0.08, groups_per_step=8)
    return out, truth


def _same(a, b) -> bool:
    """Equal as read: NaN equals NaN, None equals None."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(b, str):  # a non-numeric string is read as NaN
        return isinstance(a, float) and math.isnan(a)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b


def _by_group(rollouts):
    out = {}
    for r in rollouts:
        out.setdefault(r.group, []).append(r)
    return out


@pytest.mark.parametrize("shape,fmt", [("steps_json", "steps_json"), ("jsonl", "jsonl"), ("events", "events"),
                                       ("phase2_jsonl", "jsonl"), ("parquet_log", "parquet")])
def test_every_shape_matches_ground_truth(example, shape, fmt):
    out, truth = example
    path = out / DEFAULT_NAMES[shape]
    assert detect_format(path) == fmt
    stats = ReadStats()
    got = _by_group(iter_rollouts(path, stats=stats))
    assert stats.records == sum(len(g.ndcg) for g in truth.groups)
    assert stats.malformed == 0
    assert [f.format for f in stats.files] == [fmt]
    assert stats.files[0].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert stats.files[0].size == path.stat().st_size
    assert set(got) == {g.uid for g in truth.groups}
    for g in truth.groups:
        rs = got[g.uid]
        assert len(rs) == len(g.ndcg)
        for r, nd, jd, fn, missing in zip(rs, g.ndcg, g.judge, g.final, g.missing_ndcg):
            assert r.step == g.step
            assert r.question == g.question
            assert r.deck_ids == (g.deck,)
            if missing:
                assert "ndcg" not in r.scores or (fmt == "parquet" and r.scores["ndcg"] is None)
            elif fmt == "parquet" and isinstance(nd, str):
                assert r.scores["ndcg"] is None  # the parquet log stores non-numbers as null
            else:
                assert _same(r.scores["ndcg"], nd), (shape, g.uid, r.scores, nd)
            assert r.scores["judge"] == jd
            assert r.scores["final"] == pytest.approx(fn)
            if shape == "phase2_jsonl":
                assert r.dataset_id == g.dataset_id or (g.dataset_id is None and r.dataset_id.startswith("train_"))
                assert r.tokens and r.tokens > 0 and r.cost_usd is not None
                assert isinstance(r.cache_hit, bool) and isinstance(r.judge_failed, bool)
                if not r.judge_failed:
                    assert "answer_accuracy" in r.scores and "visual_grounding" in r.scores
        if fmt == "steps_json":
            assert [r.sample_idx for r in rs] == list(range(1, len(rs) + 1))
            assert "format" in rs[0].scores  # raw_score alias
        else:
            assert [r.sample_idx for r in rs] == list(range(len(rs)))


def test_emoji_keys_and_aliases_map_to_canonical_names():
    assert normalize_key("\u2b50\ufe0ffinal_score\u2b50\ufe0f") == "final_score"
    assert normalize_key("\U0001f4e3generated_answer\U0001f4e3") == "generated_answer"
    assert canonical_score("\u2b50\ufe0ffinal_score\u2b50\ufe0f") == "final"
    assert canonical_score("\u2b50final_score") == "final"
    assert canonical_score("ndcg_value") == canonical_score("ndcg") == canonical_score("NDCG Value") == "ndcg"
    assert canonical_score("model_eval_score") == canonical_score("judge_score") == "judge"
    assert canonical_score("response") is None


def test_jsonl_aliases_and_values_kept_as_read(tmp_path):
    lines = [
        {"uid": "g1", "sample_idx": 0, "model_eval_score": 0.5, "ndcg_value": 0.25, "\u2b50\ufe0ffinal_score\u2b50\ufe0f": 0.4,
         "reference_documents": ["./img/77_3.jpg"], "global_step": 3, "prompt": "<|im_start|>user\nQuestion: Why?<|im_end|>"},
        {"uid": "g1", "sample_idx": 1, "judge_score": None, "ndcg": 1.5},
        {"uid": "g1", "sample_idx": 2, "judge_score": "n/a", "ndcg": -0.1, "final_score": "0.7"},
    ]
    p = tmp_path / "log.jsonl"
    p.write_text("\n".join(json.dumps(x) for x in lines) + "\n" + '{"uid": "g1", "ndcg": NaN}\n')
    rs = list(iter_rollouts(p))
    assert [r.line for r in rs] == [1, 2, 3, 4]
    assert rs[0].scores == {"judge": 0.5, "ndcg": 0.25, "final": 0.4}
    assert rs[0].step == 3 and rs[0].deck_ids == ("77",) and rs[0].question == "Why?"
    assert rs[1].scores["judge"] is None and rs[1].scores["ndcg"] == 1.5
    assert math.isnan(rs[2].scores["judge"]) and rs[2].scores["ndcg"] == -0.1 and rs[2].scores["final"] == 0.7
    assert math.isnan(rs[3].scores["ndcg"])


def test_events_other_types_ignored(tmp_path):
    p = tmp_path / "events.jsonl"
    recs = [{"event_type": "run.start", "config": {}},
            {"event_type": "tool.search.request", "uid": "g", "sample_idx": 0, "query": "q"},
            {"event_type": "rm.flash.detail", "uid": "g", "sample_idx": 0, "ndcg": 0.3, "judge_score": 1.0},
            {"event_type": "rm.ndcg.debug", "uid": "g", "ndcg": 0.9},
            {"event_type": "api.gemini.latency", "p50": 1.0}]
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert detect_format(p) == "events"
    stats = ReadStats()
    rs = list(iter_rollouts(p, stats=stats))
    assert len(rs) == 1 and rs[0].scores == {"ndcg": 0.3, "judge": 1.0} and rs[0].line == 3
    assert stats.records == 1 and stats.malformed == 0


def test_pretty_printed_and_ascii_escaped_documents_read_the_same(example, tmp_path):
    out, _ = example
    compact = list(iter_rollouts(out / DEFAULT_NAMES["steps_json"]))
    doc = json.loads((out / DEFAULT_NAMES["steps_json"]).read_text())
    for i, (indent, ascii_) in enumerate([(2, False), (None, True), (4, True)]):
        p = tmp_path / f"doc{i}.json"
        p.write_text(json.dumps(doc, indent=indent, ensure_ascii=ascii_))
        other = list(iter_rollouts(p))
        assert len(other) == len(compact)
        for a, b in zip(compact, other):
            assert (a.group, a.step, a.sample_idx, a.question, a.deck_ids, a.retrieved_docs) == \
                   (b.group, b.step, b.sample_idx, b.question, b.deck_ids, b.retrieved_docs)
            assert a.scores.keys() == b.scores.keys()
            assert all(_same(a.scores[k], b.scores[k]) for k in a.scores)


@pytest.mark.parametrize("compress", [None, "gzip", "zstd"])
def test_block_boundaries_and_compression_agree(example, tmp_path, compress):
    out, _ = example
    path = out / DEFAULT_NAMES["steps_json"]
    ref = json.loads(path.read_text())
    if compress == "gzip":
        import gzip

        src, path = path, tmp_path / "log.json.gz"
        path.write_bytes(gzip.compress(src.read_bytes()))
    elif compress == "zstd":
        import zstandard

        src, path = path, tmp_path / "log.json.zst"
        path.write_bytes(zstandard.ZstdCompressor().compress(src.read_bytes()))
    for chunk in (997, 4096, 1 << 20):
        digest: dict[str, str] = {}
        got = {(k, n): v for k, n, v in iter_steps(path, lambda n: None, digest, block=chunk)}
        assert digest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert [k for k, _ in got] == list(ref)
        for (k, n), groups in got.items():
            assert n == int(k.split("_")[1])
            assert list(groups) == list(ref[k])
            for uid, g in groups.items():
                assert g["prompt"] == ref[k][uid]["prompt"]
                for a, b in zip(g["agents"], ref[k][uid]["agents"]):
                    assert a["response"] == b["response"]
                    assert list(a["scores"]) == list(b["scores"])
                    for key, want in b["scores"].items():
                        have = a["scores"][key]
                        if isinstance(want, float) and math.isnan(want):
                            assert have == "NaN" or (isinstance(have, float) and math.isnan(have))
                        else:
                            assert have == want


def test_directory_input_is_sorted_and_accounted(example, tmp_path):
    out, truth = example
    d = tmp_path / "logs"
    d.mkdir()
    shutil.copy(out / DEFAULT_NAMES["jsonl"], d / "b_phase1.jsonl")
    shutil.copy(out / DEFAULT_NAMES["steps_json"], d / "a_phase1.json")
    (d / "notes.txt").write_text("not a log")
    (d / ".hidden.jsonl").write_text("{broken")
    stats = ReadStats()
    rs = list(iter_rollouts(d, stats=stats))
    n = sum(len(g.ndcg) for g in truth.groups)
    assert len(rs) == 2 * n
    assert [Path(f.path).name for f in stats.files] == ["a_phase1.json", "b_phase1.jsonl"]
    assert [f.format for f in stats.files] == ["steps_json", "jsonl"]
    assert rs[0].source.endswith("a_phase1.json") and rs[-1].source.endswith("b_phase1.jsonl")
    # a list of paths works the same and keeps the given order
    rs2 = list(iter_rollouts([d / "b_phase1.jsonl", str(d / "a_phase1.json")]))
    assert rs2[0].source.endswith("b_phase1.jsonl")


def test_forced_format_and_empty_inputs(example, tmp_path):
    out, _ = example
    assert len(list(iter_rollouts(out / DEFAULT_NAMES["events"], fmt="jsonl"))) > 0
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert list(iter_rollouts(empty)) == []
    doc = tmp_path / "nosteps.json"
    doc.write_text("{}")
    assert list(iter_rollouts(doc, fmt="steps_json")) == []


def test_question_from_prompt():
    assert question_from_prompt("<|im_start|>system\nx<|im_end|>\n<|im_start|>user\nQuestion: What is 2+2?"
                                "<|im_end|>\n<|im_start|>assistant\n") == "What is 2+2?"
    assert question_from_prompt("Question:  spaced  ") == "spaced"
    assert question_from_prompt("no question here") is None


def test_step_named_keys_below_top_level_do_not_split_steps(tmp_path):
    doc = {"step_1": {"step_7": {"prompt": "Question: nested?", "agents": [
        {"agent_id": 1, "response": 'say "step_3": {', "scores": {"ndcg_value": 0.5, "step_2": {"x": 1}}}]},
        "u2": {"prompt": "Question: b?", "agents": [{"agent_id": 1, "scores": {"ndcg": 0.25}}]}},
           "step_2": {"u3": {"prompt": "Question: c?", "agents": [{"agent_id": 1, "scores": {"ndcg": 1.0}}]}}}
    p = tmp_path / "nested.json"
    for indent in (None, 2):
        p.write_text(json.dumps(doc, indent=indent))
        rs = list(iter_rollouts(p))
        assert [(r.group, r.step, r.scores["ndcg"], r.question) for r in rs] == [
            ("step_7", 1, 0.5, "nested?"), ("u2", 1, 0.25, "b?"), ("u3", 2, 1.0, "c?")]


def test_documents_without_responses_and_tiny_blocks(tmp_path):
    groups = {f"u{i}": {"prompt": f"Question: q{i} \\\" {{ ?", "agents": [
        {"agent_id": 1, "scores": {"ndcg_value": i / 10, "note": "}" * i}}]} for i in range(10)}
    doc = {"step_1": groups, "step_2": {"v": {"prompt": "x", "agents": []}}}
    p = tmp_path / "noresp.json"
    p.write_text(json.dumps(doc))
    digest: dict[str, str] = {}
    got = list(iter_steps(p, lambda n: None, digest, block=64))
    assert [(k, obj) for k, _, obj in got] == list(doc.items())


def test_progress_bar_on_request_only_and_gc_restored(example, capsys):
    import gc

    out, _ = example
    path = out / DEFAULT_NAMES["steps_json"]
    assert gc.isenabled()
    list(iter_rollouts(path, progress=True))
    err = capsys.readouterr().err
    assert "reading logs" in err
    list(iter_rollouts(path))  # stderr is not a terminal under pytest: no bar
    assert capsys.readouterr().err == ""
    it = iter_rollouts(path)
    next(it)
    assert not gc.isenabled()  # paused while reading ...
    it.close()
    assert gc.isenabled()      # ... and restored when the caller stops early


def test_dataset_id_shaped_uids_are_offered_as_dataset_ids(tmp_path):
    p = tmp_path / "flash.jsonl"
    p.write_text('{"uid": "train_42", "sample_idx": 0, "ndcg": 1.0}\n'
                 '{"uid": "6f1c2a3e-0000-4000-8000-000000000000", "sample_idx": 0, "ndcg": 0.0}\n'
                 '{"uid": "train_7", "dataset_id": "train_8", "ndcg": 0.5}\n')
    assert [(r.group, r.dataset_id) for r in iter_rollouts(p)] == [
        ("train_42", "train_42"), ("6f1c2a3e-0000-4000-8000-000000000000", None), ("train_7", "train_8")]
    doc = tmp_path / "steps.json"
    doc.write_text(json.dumps({"step_1": {"train_5": {"prompt": "Question: q?", "agents": [{"scores": {"ndcg": 1}}]}}}))
    assert [(r.group, r.dataset_id) for r in iter_rollouts(doc)] == [("train_5", "train_5")]


def test_reading_thread_stops_when_the_reader_is_closed(example, monkeypatch):
    import threading

    import ddai.curriculum.read_steps as rs_mod

    out, truth = example
    monkeypatch.setattr(rs_mod, "BLOCK", 4096)   # many blocks: the thread is mid-file when closed
    stats = ReadStats()
    full = list(iter_rollouts(out / DEFAULT_NAMES["steps_json"], stats=stats))
    assert len(full) == sum(len(g.ndcg) for g in truth.groups)
    assert stats.files[0].sha256 == hashlib.sha256((out / DEFAULT_NAMES["steps_json"]).read_bytes()).hexdigest()
    it = iter_rollouts(out / DEFAULT_NAMES["steps_json"])
    next(it)
    assert any(t.name == "ddai-read" for t in threading.enumerate())
    it.close()
    assert not any(t.name == "ddai-read" for t in threading.enumerate())
