"""ddai-report reads the users' own log writers (issue 11), auto-detected.

Shapes written here from the field lists of their reward manager
(``verl/workers/reward_manager/rm_phase2.py`` in eoeldroal/DDAI_cleaned; see docs/logs.md):

- the per-rollout detail log (``FLASH_RM_LOG=1`` → ``logs/flash_rm_detail.jsonl``): ``uid`` is
  the dataset id, no step;
- the batch-mode log (``reward_model.log_path``, e.g. ``logs/grpo_log.jsonl``): no id at all,
  the question is the only key;
- the unified trajectory event log (``UNIFIED_LOG_ENABLE=1``): every line carries the run's
  static fields and an ``event_type``; judged rollouts are ``rm.flash.detail`` /
  ``rm.batch.summary`` events, and other events — some with score-like keys
  (``rm.ndcg.debug`` has ``ndcg``, ``rm.gemini.detail`` has ``parsed_score``) — are skipped.

Each is checked on the typed (msgspec) path and the tolerant line path alike.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ddai.report import logstats
from ddai.report.cli import main
from ddai.report.discover import discover
from ddai.report.logstats import Thresholds, scan_bytes

# (dataset id, question, judge, ndcg)
ROWS = [("train_1", "What is A?", 1.0, 1.0), ("train_1", "What is A?", 0.5, 0.0),
        ("train_2", "What is B?", 0.0, 1.0), ("train_2", "What is B?", 0.25, 0.5),
        ("train_3", "What is C?", 0.75, 0.25)]


def _final(j: float, n: float) -> float:
    return 0.8 * j + 0.2 * n


def detail_records() -> list[dict]:
    return [{"uid": pid, "local_idx": i % 2, "sample_idx": i, "query": q, "generated_answer": "ans",
             "reference_answer": "ref", "retrieved_basenames": ["1_2"], "reference_basenames": ["1_2"],
             "judge_score": j, "ndcg": n, "final_score": _final(j, n), "latency_s": 1.5 + i,
             "gemini_raw": json.dumps({"score": j}), "error": None, "timestamp": 1732000000.0 + i, "pid": 4242}
            for i, (pid, q, j, n) in enumerate(ROWS)]


def batch_records() -> list[dict]:
    return [{"query": q, "generated_answer": "ans", "reference_answer": "ref", "judge_score": j, "ndcg": n,
             "final_score": _final(j, n)} for _, q, j, n in ROWS]


def unified_records() -> list[dict]:
    static = {"ts": 1732000000.0, "host": "node07", "pid": 4242, "run_id": "r1", "project_name": "ddai",
              "experiment_name": "gspo_phase2", "n_agent": 5, "epoch": 0}
    out = [{**static, "global_step": 0, "event_type": "run.start", "config": {"n_agent": 5}}]
    for step, recs in ((1, detail_records()[:3]), (2, detail_records()[3:])):
        out.append({**static, "global_step": step, "event_type": "train.step.start", "ids": ["a"]})
        for r in recs:
            out.append({**static, "global_step": step, "event_type": "tool.search.request", "uid": r["uid"],
                        "sample_idx": r["sample_idx"], "query": r["query"], "search_id": 1})
            out.append({**static, "global_step": step, "event_type": "rm.ndcg.debug", "event": "ndcg",
                        "kind": "computed", "ndcg": 0.123, "dcg": 1.0, "idcg": 1.0})
            out.append({**static, "global_step": step, "event_type": "rm.gemini.detail",
                        "sample_idx": r["sample_idx"], "query": r["query"], "parsed_score": 0.9, "error": None})
            out.append({**static, **{k: v for k, v in r.items() if k not in ("pid", "timestamp")},
                        "global_step": step, "event_type": "rm.flash.detail"})
    return out


def _both_paths(data: bytes):
    fast = logstats._scan_chunk(data, 0, True, Thresholds())
    slow = scan_bytes(data, Thresholds(), base_offset=0, at_eof=True)
    assert fast.rollouts == slow.rollouts and fast.skipped == slow.skipped and fast.keys == slow.keys
    np.testing.assert_allclose(fast.groups(), slow.groups())
    return fast


def _lines(records) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def test_detail_log(tmp_path, capsys):
    data = _lines(detail_records())
    part = _both_paths(data)
    assert part.rollouts == 5 and part.keys == ["train_1", "train_2", "train_3"]
    path = tmp_path / "flash_rm_detail.jsonl"
    path.write_bytes(data)
    assert discover(str(path)).fmt == "jsonl"
    assert main([str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["logs"][0]
    assert s["rollouts"] == 5 and s["prompts"] == 3 and s["steps"] is None
    assert s["scores"]["judge"]["mean"] == pytest.approx(2.5 / 5)
    assert s["scores"]["final"]["mean"] == pytest.approx(sum(_final(j, n) for *_, j, n in ROWS) / 5)
    assert s["latency_s"]["n"] == 5


def test_batch_log_without_ids_is_keyed_by_question(tmp_path, capsys):
    data = _lines(batch_records())
    part = _both_paths(data)
    assert part.rollouts == 5 and part.keys == ["What is A?", "What is B?", "What is C?"]
    path = tmp_path / "grpo_log.jsonl"
    path.write_bytes(data)
    assert main([str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["logs"][0]
    assert s["prompts"] == 3 and s["scores"]["ndcg"]["mean"] == pytest.approx(2.75 / 5)


def test_unified_event_log_counts_reward_events_only(tmp_path, capsys):
    data = _lines(unified_records())
    part = _both_paths(data)
    assert part.rollouts == 5
    # run.start, 2 x train.step.start, 5 x (search request, ndcg debug, gemini detail)
    assert part.skipped == 1 + 2 + 5 * 3
    path = tmp_path / "unified.jsonl"
    path.write_bytes(data)
    assert discover(str(path)).fmt == "events"
    assert main([str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["logs"][0]
    assert s["rollouts"] == 5 and s["steps"] == {"count": 2, "first": 1, "last": 2}
    nd = s["scores"]["ndcg"]
    assert nd["n"] == 5 and nd["mean"] == pytest.approx(2.75 / 5)   # the debug events' 0.123 never counted
    assert s["scores"]["judge"]["mean"] == pytest.approx(2.5 / 5)    # nor the judge detail's parsed_score


def test_unified_batch_summary_events(tmp_path):
    static = {"ts": 1.0, "host": "h", "pid": 1, "run_id": "r", "global_step": 3}
    recs = [{**static, **r, "event_type": "rm.batch.summary"} for r in batch_records()]
    recs.insert(2, {**static, "event_type": "api.gemini.latency", "p50": 1.0, "p95": 2.0})
    part = _both_paths(_lines(recs))
    assert part.rollouts == 5 and part.skipped == 1 and len(part.keys) == 3
