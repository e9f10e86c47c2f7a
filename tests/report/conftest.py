"""Fixtures for the report tests: small hand-computed logs, curricula and sweeps.

The curriculum files follow the contract of the curriculum engine (manifest.json with
``buckets``/``files``/``thresholds``; bucket parquets in the users' nested training schema
written by pyarrow with HF datasets' metadata) so the report is tested against the shapes
it will meet, not against its own guesses of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

# (prompt, step, judge, ndcg, latency_s, extra fields)
HAND_ROWS: list[tuple[str, int, float | None, float | None, float, dict[str, Any]]] = [
    ("train_1", 1, 1.0, 1.0, 1.0, {"cache_hit": True}),
    ("train_1", 1, 0.8, 0.0, 2.0, {"cache_hit": False}),
    ("train_2", 1, 0.0, 1.0, 3.0, {}),
    ("train_2", 1, 0.2, 0.631, 4.0, {}),
    ("train_3", 1, 0.0, 0.0, 5.0, {}),
    ("train_3", 1, None, 0.5, 6.0, {"judge_failed": True, "error": "judge timeout after 3 attempts"}),
    ("train_1", 2, 1.0, 1.0, 7.0, {"tokens": {"input": 100, "output": 10, "thinking": 5, "total": 115},
                                   "cost_usd": 0.25}),
    ("train_1", 2, 1.0, 0.5, 8.0, {"tokens": {"input": 200, "output": 20, "thinking": 0, "total": 220},
                                   "cost_usd": 0.5}),
    ("train_2", 2, 0.6, 1.0, 9.0, {}),
    ("train_2", 2, 0.0, 1.0, 10.0, {"generator_cost_usd": 0.125}),
]


def hand_records() -> list[dict[str, Any]]:
    """The Phase 2 judge-log records of HAND_ROWS (the field set ddai.reward writes)."""
    out = []
    for i, (pid, step, j, n, lat, extra) in enumerate(HAND_ROWS):
        rec = {
            "uid": f"uid-{pid}-{step}", "dataset_id": pid, "sample_idx": i % 2, "step": step,
            "query": f"Question for {pid}?", "generated_answer": "an answer with \"quotes\" and \\n",
            "reference_answer": "42%", "retrieved_basenames": ["1_2", "1_3"], "reference_basenames": ["1_2"],
            "judge_score": j, "judge_subscores": None if j is None else
            {"answer_accuracy": j, "visual_grounding": 0.5, "reasoning_consistency": 1.0},
            "ndcg": n, "final_score": None if j is None else round(0.8 * j + 0.2 * n, 6),
            "latency_s": lat, "tokens": None, "cost_usd": None, "cache_hit": None, "judge_failed": False,
            "error": None, "timestamp": f"2026-11-20T10:00:{i:02d}Z", "judge_model": "gemini-3-flash-preview",
            "prompt_version": "v1",
        }
        rec.update(extra)
        out.append(rec)
    return out


def write_jsonl(path: Path, records: list[Any], *, tail: bytes = b"") -> Path:
    """One line per record (dicts as JSON, bytes/str verbatim), then ``tail`` unterminated."""
    with open(path, "wb") as fh:
        for r in records:
            line = r if isinstance(r, bytes) else r.encode() if isinstance(r, str) else json.dumps(r).encode()
            fh.write(line + b"\n")
        fh.write(tail)
    return path


@pytest.fixture
def records() -> list[dict[str, Any]]:
    return hand_records()


@pytest.fixture(name="write_jsonl")
def _write_jsonl_fixture():
    return write_jsonl


@pytest.fixture(name="write_curriculum")
def _write_curriculum_fixture():
    return write_curriculum


@pytest.fixture
def hand_log(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "gspo_gemini_output.jsonl", hand_records())


# --- curriculum fixtures ------------------------------------------------------------------

PHASE1 = {"train_1": ("B", 0.9), "train_2": ("A", 0.5), "train_3": ("0", 0.05), "train_4": ("A", 0.3)}

EXTRA_TYPE = pa.struct([("answer", pa.string()), ("file_name", pa.string()), ("index", pa.int64()),
                        ("question", pa.string()), ("reference_page", pa.list_(pa.int64())),
                        ("split", pa.string()), ("phase1_ndcg", pa.float64())])
SCHEMA = pa.schema([
    ("id", pa.string()), ("file_name", pa.string()), ("reference_page", pa.list_(pa.int64())),
    ("data_source", pa.string()),
    ("prompt", pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))),
    ("reward_model", pa.struct([("ground_truth", pa.string()), ("style", pa.string())])),
    ("extra_info", EXTRA_TYPE),
])
HF_META = {"info": {"features": {
    "id": {"dtype": "string", "_type": "Value"}, "file_name": {"dtype": "string", "_type": "Value"},
    "reference_page": {"feature": {"dtype": "int64", "_type": "Value"}, "_type": "Sequence"},
    "data_source": {"dtype": "string", "_type": "Value"},
    "prompt": [{"content": {"dtype": "string", "_type": "Value"}, "role": {"dtype": "string", "_type": "Value"}}],
    "reward_model": {"ground_truth": {"dtype": "string", "_type": "Value"}, "style": {"dtype": "string", "_type": "Value"}},
    "extra_info": {"answer": {"dtype": "string", "_type": "Value"}, "file_name": {"dtype": "string", "_type": "Value"},
                   "index": {"dtype": "int64", "_type": "Value"}, "question": {"dtype": "string", "_type": "Value"},
                   "reference_page": {"feature": {"dtype": "int64", "_type": "Value"}, "_type": "Sequence"},
                   "split": {"dtype": "string", "_type": "Value"},
                   "phase1_ndcg": {"dtype": "float64", "_type": "Value"}}}}}


def training_rows(ids: list[str]) -> pa.Table:
    rows = []
    for i, pid in enumerate(ids):
        deck = pid.split("_")[1]
        q = f"Question for {pid}?"
        rows.append({
            "id": pid, "file_name": f"{deck}.pdf", "reference_page": [2], "data_source": "slidevqa_train",
            "prompt": [{"content": "You are a search agent.", "role": "system"},
                       {"content": f"Question: {q}", "role": "user"}],
            "reward_model": {"ground_truth": "42%", "style": "rule"},
            "extra_info": {"answer": "42%", "file_name": f"{deck}.pdf", "index": i, "question": q,
                           "reference_page": [2], "split": "test", "phase1_ndcg": PHASE1[pid][1]},
        })
    t = pa.Table.from_pylist(rows, schema=SCHEMA)
    return t.replace_schema_metadata({b"huggingface": json.dumps(HF_META).encode()})


def write_curriculum(d: Path, *, with_stats: bool = True, buckets: dict[str, int] | None = None) -> Path:
    """A curriculum output directory: bucket parquets, prompt_stats.parquet, manifest.json."""
    d.mkdir(parents=True, exist_ok=True)
    by_bucket: dict[str, list[str]] = {}
    for pid, (b, _) in PHASE1.items():
        by_bucket.setdefault(b, []).append(pid)
    files = {}
    for b, ids in by_bucket.items():
        name = f"curriculum_bucket_{b.lower()}.parquet"
        pq.write_table(training_rows(ids), d / name)
        files[b] = name
    if with_stats:
        pq.write_table(pa.table({
            "dataset_id": list(PHASE1), "bucket": [b for b, _ in PHASE1.values()],
            "n": [5] * len(PHASE1), "mean": [m for _, m in PHASE1.values()],
            "std": [0.1] * len(PHASE1)}), d / "prompt_stats.parquet")
    manifest = {
        "ddai_version": "0.1.0", "manifest_version": 1,
        "buckets": buckets or {"A": 2, "B": 1, "0": 1, "unmatched": 3},
        "files": files, "train_bucket": "A", "train_file": files["A"],
        "rule": {"name": "threshold", "params": {"theta1": 0.1, "theta_easy": 0.7}},
        "thresholds": {"theta1": 0.1, "theta_easy": 0.7}, "sort": "easy_to_hard", "score": "ndcg",
        "match": {"strategy": "auto"}, "batch": {"train_batch_size": 64, "steps_per_epoch": 0, "remainder": 2,
                                                "dropped_ids": []},
        "inputs": [], "config": {},
    }
    (d / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return d


@pytest.fixture
def curriculum_dir(tmp_path: Path) -> Path:
    return write_curriculum(tmp_path / "run1" / "curriculum")


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    root = tmp_path / "multirun" / "2026-11-21" / "10-00-00"
    write_curriculum(root / "0" / "curriculum", buckets={"A": 2, "B": 1, "0": 1, "unmatched": 3})
    write_curriculum(root / "1" / "curriculum", buckets={"A": 3, "B": 1, "0": 0, "unmatched": 3})
    write_curriculum(root / "10" / "curriculum", buckets={"A": 1, "B": 2, "0": 1, "unmatched": 3})
    (root / "sweep_summary.json").write_text(json.dumps([{"job": 0, "A": 2}, {"job": 1, "A": 3}, {"job": 10, "A": 1}]))
    return root


# --- Phase 2 run directory (reportui: live view, --watch, --wandb into the training run) ----

def write_phase2_run(run_dir: Path, log: Path, *, total_steps: int = 10, step: int = 2,
                     wandb_run_id: str = "0123abcdstable42") -> Path:
    """A run directory as ``task=phase2`` and the job chain leave it: plan.json (with the
    judge log's path among the verl overrides and the chain's W&B run id), chain_state.json
    with two jobs (one restart) and verl's checkpoint folders up to ``step``."""
    ckpt = run_dir / "checkpoints"
    for s in range(1, step + 1):
        (ckpt / f"global_step_{s}").mkdir(parents=True, exist_ok=True)
    (ckpt / "latest_checkpointed_iteration.txt").write_text(str(step))
    plan = {"version": 1, "run_dir": str(run_dir), "checkpoint_dir": str(ckpt), "train_file": "/data/a.parquet",
            "train_rows": 640, "steps_per_epoch": 10, "total_steps": total_steps, "save_freq": 1,
            "overrides": ["trainer.project_name=ddai-test", "trainer.experiment_name=week1",
                          f"+reward.custom_reward_function.reward_kwargs.log_path={log}"],
            "command": [], "required_env": [], "sbatch_args": [], "max_restarts": 5, "max_no_progress": 2,
            "nodes": 1, "gpus_per_node": 8, "wandb_run_id": wandb_run_id, "notes": []}
    (run_dir / "plan.json").write_text(json.dumps(plan, indent=2))
    t0 = 1_790_000_000.0
    state = {"version": 1, "status": "running", "message": "job 102 training from step 1 of 10",
             "restarts": 1, "no_progress": 0, "checkpoints": [], "progress": {"step": step, "total": total_steps},
             "running_job": "102",
             "jobs": [{"job_id": "101", "slurm_restart_count": 0, "started": t0, "ended": t0 + 3600,
                       "ckpt_at_start": 0, "ckpt_at_end": 1, "rc": 143, "end_reason": "time limit"},
                      {"job_id": "102", "slurm_restart_count": 0, "started": t0 + 3700, "ended": None,
                       "ckpt_at_start": 1, "ckpt_at_end": None, "rc": None}]}
    (run_dir / "chain_state.json").write_text(json.dumps(state, indent=2))
    return run_dir


@pytest.fixture
def phase2_run(tmp_path: Path, hand_log: Path) -> Path:
    return write_phase2_run(tmp_path / "runs" / "week1", hand_log)
