"""The log files the users' own reward managers write, with their exact field names and shapes.

Facts from the users' code (public repository eoeldroal/DDAI_cleaned; the records here are
built independently, field for field):

* ``verl/workers/reward_manager/rm_phase2.py`` (Gemini judge of the ``<answer>``):
  - per-rollout detail log, ``FLASH_RM_LOG=1`` -> ``./logs/flash_rm_detail.jsonl``: ``uid``,
    ``local_idx``, ``sample_idx``, ``query``, ``generated_answer``, ``reference_answer``,
    ``retrieved_basenames``, ``reference_basenames``, ``judge_score``, ``ndcg``, ``final_score``,
    ``latency_s``, ``gemini_raw``, ``error``, plus ``timestamp`` (epoch float) and ``pid``;
  - batch-mode log ``./logs/grpo_log.jsonl``: ``query``, ``generated_answer``,
    ``reference_answer``, ``judge_score``, ``ndcg``, ``final_score`` -- no uid;
  - judge detail ``<log>_gemini_detail.jsonl``: ``timestamp`` (ISO text), ``sample_idx``,
    ``query``, ``generated_answer``, ``reference_answer``, ``gemini_prompt``,
    ``gemini_response``, ``parsed_score``, ``error``;
  - with ``UNIFIED_LOG_ENABLE=1`` (their scripts set it) the same payloads go, instead, to one
    event log ``./logs/unified_trajectory.jsonl`` (``verl/utils/unified_logger.py``): each
    event is ``{"ts", "host", "pid", "event_type", ...payload}`` with event types
    ``rm.flash.detail``, ``rm.batch.summary``, ``rm.gemini.detail`` and ``rm.ndcg.debug``.
* ``verl/workers/reward_manager/rm_phase2_trajectory.py`` (VLM judge of the whole trajectory):
  ``query``, ``response`` (first 1,000 characters), ``vlm_result`` {``answer_accuracy``,
  ``visual_grounding``, ``reasoning_consistency``, ``final_score`` (the judge's score),
  ``error``/``parse_error`` on failure}, ``ndcg``, ``final_score`` (0.8 judge + 0.2 NDCG).

Each test writes such a log (~1 KB rollouts), checks the shape is recognised, the scores land
on the canonical names, and a curriculum run links it to the dataset with the default matcher.
"""

from __future__ import annotations

import datetime
import json
import random
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from engine_helpers import make_cfg

from ddai.curriculum import pipeline
from ddai.curriculum.match import normalize_question
from ddai.curriculum.read import ReadStats, detect_format, iter_rollouts, read_groups
from ddai.examples.generate import write_example_set

DATASET = "slidevqa_train_example.parquet"
N_AGENTS = 4


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """A dataset and, per row, what its rollouts were scored (the truth the logs are built from)."""
    d = tmp_path_factory.mktemp("users")
    write_example_set(d, 40, seed=21, shapes=("steps_json",), response_bytes=50, write_truth=False)
    table = pq.read_table(d / DATASET).to_pylist()
    rng = random.Random(3)
    out = []
    for r in table[:30]:
        ndcg = [round(rng.random(), 3) for _ in range(N_AGENTS)]
        judge = [rng.choice([0.0, 0.5, 1.0]) for _ in range(N_AGENTS)]
        out.append({"id": r["id"], "question": r["extra_info"]["question"], "answer": r["extra_info"]["answer"],
                    "refs": [f"{r['file_name'].split('.pdf')[0]}_{p}" for p in r["reference_page"]],
                    "ndcg": ndcg, "judge": judge,
                    "final": [0.8 * j + 0.2 * n for j, n in zip(judge, ndcg)]})
    return d, out


def _pad(text: str, size: int = 700) -> str:
    return (text + " " + "lorem ipsum " * 100)[:size]


def flash_detail(row: dict, k: int, uid: str) -> dict:
    return {"uid": uid, "local_idx": k, "sample_idx": k, "query": row["question"],
            "generated_answer": _pad("the answer"), "reference_answer": row["answer"],
            "retrieved_basenames": row["refs"][:1], "reference_basenames": row["refs"],
            "judge_score": row["judge"][k], "ndcg": row["ndcg"][k], "final_score": row["final"][k],
            "latency_s": 1.25, "gemini_raw": '{"score": %s}' % row["judge"][k], "error": None,
            "timestamp": 1767000000.0 + k, "pid": 4242}


def batch_summary(row: dict, k: int) -> dict:
    return {"query": row["question"], "generated_answer": _pad("an answer"), "reference_answer": row["answer"],
            "judge_score": row["judge"][k], "ndcg": row["ndcg"][k], "final_score": row["final"][k]}


def trajectory(row: dict, k: int) -> dict:
    return {"query": row["question"], "response": _pad("<think>look</think><search>q</search>", 1000),
            "vlm_result": {"answer_accuracy": row["judge"][k], "visual_grounding": 0.5,
                           "reasoning_consistency": 0.25, "final_score": row["judge"][k]},
            "ndcg": row["ndcg"][k], "final_score": row["final"][k]}


def gemini_detail(row: dict, k: int) -> dict:
    return {"timestamp": datetime.datetime(2026, 1, 2, 3, 4, 5).isoformat(), "sample_idx": k,
            "query": row["question"], "generated_answer": _pad("x"), "reference_answer": row["answer"],
            "gemini_prompt": _pad("You are an expert evaluation system"), "gemini_response": '{"score": 1.0}',
            "parsed_score": row["judge"][k], "error": None}


def event(event_type: str, payload: dict) -> dict:
    return {"ts": 1767000000.5, "host": "node-3", "pid": 777, "event_type": event_type, **payload}


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def _by_question(groups) -> dict[str, dict[str, list]]:
    return {g.raw_questions[0]: g.scores for g in groups}


def _run(d: Path, log: Path, out: Path, **kw) -> dict:
    c = make_cfg(phase1_log=str(log), dataset=str(d / DATASET), out_dir=str(out), allow_empty_train=True,
                 train_batch_size=1, **kw)
    pipeline.run(c)
    return json.loads((out / "manifest.json").read_text())


def test_flash_detail_log(rows, tmp_path):
    d, truth = rows
    recs = [flash_detail(r, k, f"uid-{i}") for i, r in enumerate(truth) for k in range(N_AGENTS)]
    log = _write(tmp_path / "flash_rm_detail.jsonl", recs)
    assert 800 < log.stat().st_size / len(recs) < 1400
    assert detect_format(log) == "jsonl"
    got = list(iter_rollouts(log))
    assert [(r.group, r.sample_idx, r.scores["judge"], r.scores["ndcg"], r.scores["final"]) for r in got] == \
           [(x["uid"], x["sample_idx"], x["judge_score"], x["ndcg"], x["final_score"]) for x in recs]
    assert got[0].latency_s == 1.25 and got[0].reference_docs == tuple(truth[0]["refs"])
    man = _run(d, log, tmp_path / "out")
    assert man["match"]["matched_rows"] == len(truth) and man["match"]["ambiguous_groups"] == 0


@pytest.mark.parametrize("kind", ["flash", "batch"])
def test_unified_trajectory_log(rows, tmp_path, kind):
    """UNIFIED_LOG_ENABLE=1: reward events among the judge's and NDCG debug events."""
    d, truth = rows
    recs = []
    for i, r in enumerate(truth):
        for k in range(N_AGENTS):
            recs.append(event("rm.gemini.detail", gemini_detail(r, k)))       # the same rollout, again: skipped
            recs.append(event("rm.ndcg.debug", {"event": "ndcg", "kind": "computed", "hits": 1, "ndcg": 0.5}))
            if kind == "flash":
                recs.append(event("rm.flash.detail", flash_detail(r, k, f"uid-{i}")))
            else:
                recs.append(event("rm.batch.summary", batch_summary(r, k)))
    log = _write(tmp_path / "unified_trajectory.jsonl", recs)
    assert detect_format(log) == "events"
    stats = ReadStats()
    groups = read_groups(log, normalize_question, stats=stats)
    assert stats.records == len(truth) * N_AGENTS and stats.malformed == 0
    scores = _by_question(groups)
    for r in truth:
        assert scores[r["question"]] == {"ndcg": r["ndcg"], "judge": r["judge"], "final": r["final"]}
    man = _run(d, log, tmp_path / "out")
    assert man["match"]["matched_rows"] == len(truth) and man["match"]["ambiguous_groups"] == 0


def test_batch_log_without_uid_groups_by_question(rows, tmp_path):
    d, truth = rows
    log = _write(tmp_path / "grpo_log.jsonl", [batch_summary(r, k) for r in truth for k in range(N_AGENTS)])
    groups = read_groups(log, normalize_question)
    assert len(groups) == len(truth)
    assert _by_question(groups)[truth[3]["question"]]["ndcg"] == truth[3]["ndcg"]
    man = _run(d, log, tmp_path / "out")
    assert man["match"]["matched_rows"] == len(truth)


def test_trajectory_reward_log_reads_the_judge_from_vlm_result(rows, tmp_path):
    d, truth = rows
    log = _write(tmp_path / "grpo_log.jsonl", [trajectory(r, k) for r in truth for k in range(N_AGENTS)])
    got = list(iter_rollouts(log))
    first = got[0].scores
    assert first["judge"] == truth[0]["judge"][0]            # vlm_result.final_score: the judge
    assert first["final"] == truth[0]["final"][0]            # the record's final_score: the mix
    assert first["visual_grounding"] == 0.5 and first["reasoning_consistency"] == 0.25
    man = _run(d, log, tmp_path / "out", score="judge")
    assert man["match"]["matched_rows"] == len(truth) and man["score"] == "judge"


def test_gemini_detail_log(rows, tmp_path):
    d, truth = rows
    log = _write(tmp_path / "grpo_log_gemini_detail.jsonl",
                 [gemini_detail(r, k) for r in truth for k in range(N_AGENTS)])
    groups = read_groups(log, normalize_question)
    assert _by_question(groups)[truth[5]["question"]]["judge"] == truth[5]["judge"]
    man = _run(d, log, tmp_path / "out", score="judge")
    assert man["match"]["matched_rows"] == len(truth)
