"""End to end through ``python -m ddai.launch`` (subprocess, real reader, real parquet)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from engine_helpers import REPO, run_launch  # noqa: E402

from ddai.examples.generate import write_example_set

DATASET = "slidevqa_train_example.parquet"


def summary_line(stdout: str) -> dict:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    assert lines, stdout
    return json.loads(lines[-1])


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    d = tmp_path_factory.mktemp("shapes")
    truth = write_example_set(d, 300, seed=21, shapes=("steps_json", "jsonl", "events", "parquet_log"),
                              response_bytes=400, bad_score_fraction=0.03, repeat_fraction=0.15)
    return d, truth


def test_no_arguments_buckets_the_bundled_example(tmp_path):
    proc = run_launch(cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    s = summary_line(proc.stdout)
    assert s["buckets"]["A"] > 0 and s["buckets"]["B"] > 0 and s["buckets"]["unmatched"] > 0
    out = Path(s["out_dir"])
    assert out.is_relative_to(tmp_path / "outputs") and (out / "manifest.json").is_file()
    assert (out / "curriculum_bucket_a.parquet").is_file() and (out / "prompt_stats.parquet").is_file()
    assert "bucket" in proc.stderr and "Traceback" not in proc.stderr
    man = json.loads((out / "manifest.json").read_text())
    assert man["inputs"][0]["format"] == "steps_json" and len(man["inputs"][0]["sha256"]) == 64
    assert man["read"]["records"] > 0


@pytest.mark.parametrize("log, fmt", [("gspo_phase1.json", "steps_json"), ("gspo_phase1.jsonl", "jsonl"),
                                      ("unified_events.jsonl", "events"), ("gspo_phase1_log.parquet", "parquet")])
def test_every_log_shape_gives_the_true_pooled_means(shapes, tmp_path, log, fmt):
    d, truth = shapes
    out = tmp_path / "out"
    proc = run_launch(f"curriculum.phase1_log={d / log}", f"curriculum.dataset={d / DATASET}",
                      f"curriculum.out_dir={out}", "curriculum.train_batch_size=8", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    man = json.loads((out / "manifest.json").read_text())
    assert man["inputs"][0]["format"] == fmt
    assert man["match"]["ambiguous_groups"] == 0
    assert man["match"]["groups_without_row"] == sum(g.dataset_id is None for g in truth.groups)
    assert man["match"]["matched_rows"] == len(truth.groups_by_dataset_id())
    pooled = truth.pooled_mean_ndcg()
    stats = pq.read_table(out / "prompt_stats.parquet").to_pylist()
    by_id = {r["dataset_id"]: r for r in stats if r["dataset_id"]}
    for did, mean in pooled.items():
        row = by_id[did]
        if mean is None:
            assert row["bucket"] == "no_score" and row["n"] == 0
        else:
            assert row["mean"] == pytest.approx(mean, abs=1e-12)
            t = 0.1 <= mean <= 0.7
            assert (row["bucket"] == "A") == t
    assert man["score_stats"]["invalid_scores"] + man["score_stats"]["missing_scores"] > 0


def test_directory_of_logs_and_rerun_byte_identical(shapes, tmp_path):
    d, _ = shapes
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "gspo_phase1.jsonl").write_bytes((d / "gspo_phase1.jsonl").read_bytes())
    args = [f"curriculum.phase1_log={logs}", f"curriculum.dataset={d / DATASET}", f"curriculum.out_dir={tmp_path / 'out'}",
            "curriculum.train_batch_size=8", "curriculum.sort=interleave", "curriculum.remainder=pad"]
    first = run_launch(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    files1 = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    second = run_launch(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    files2 = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    assert files1 == files2
    man = json.loads(files1["manifest.json"])
    assert man["batch"]["rows_written"] % 8 == 0 and man["batch"]["dropped_ids"] == []


def test_hydra_cfg_help_and_multirun_still_work(shapes, tmp_path):
    d, _ = shapes
    cfg = run_launch("--cfg", "job", cwd=tmp_path)
    assert cfg.returncode == 0 and "theta_easy: 0.7" in cfg.stdout and "phase1_log:" in cfg.stdout
    helptext = run_launch("--help", cwd=tmp_path)
    assert helptext.returncode == 0 and "curriculum" in helptext.stdout
    multi = run_launch("-m", "curriculum.theta1=0.05,0.2", f"curriculum.phase1_log={d / 'gspo_phase1.json'}",
                       f"curriculum.dataset={d / DATASET}", "curriculum.allow_empty_train=true", cwd=tmp_path)
    assert multi.returncode == 0, multi.stderr
    lines = [json.loads(ln) for ln in multi.stdout.splitlines() if ln.startswith('{"out_dir"')]
    assert len(lines) == 2 and lines[0]["out_dir"] != lines[1]["out_dir"]
    a = [ln["buckets"]["A"] for ln in lines]
    assert a[0] > a[1]          # a higher θ1 moves prompts from A to 0
    for ln in lines:
        man = json.loads(Path(ln["manifest"]).read_text())
        assert man["thresholds"]["theta1"] in (0.05, 0.2)
