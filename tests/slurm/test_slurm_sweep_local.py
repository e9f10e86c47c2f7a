"""Sweep validation and the sweep summary without a cluster (submitit_local / Hydra's basic launcher).

The runs are real: ``python -m ddai.launch -m ...`` in a subprocess on the bundled example
data; the summary is checked against the manifests the runs wrote.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ddai.launch.sweep_summary import manifest_metrics, phase2_cost

REPO = Path(__file__).resolve().parents[2]


def launch(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run([sys.executable, "-m", "ddai.launch", "-m", *args, "curriculum.progress=off"],
                          cwd=cwd, capture_output=True, text=True, env=full_env, timeout=600)


def read_summary(sweep_dir: Path) -> tuple[dict, list[dict[str, str]]]:
    summary = json.loads((sweep_dir / "sweep_summary.json").read_text())
    with open(sweep_dir / "sweep_summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return summary, rows


def check_against_manifests(summary: dict, rows: list[dict[str, str]], settings: dict) -> None:
    """Every completed run's numbers are the ones its manifest holds; costs follow from them."""
    assert len(rows) == len(summary["runs"])
    for run, row in zip(summary["runs"], rows):
        assert run["status"] == "COMPLETED", run
        manifest = json.loads(Path(run["manifest"]).read_text())
        assert run["buckets"] == manifest["buckets"]
        assert run["steps_per_epoch"] == manifest["batch"]["steps_per_epoch"]
        assert run["dropped"] == len(manifest["batch"]["dropped_ids"])
        assert run["matched"] == manifest["match"]["matched_rows"]
        trained = manifest["batch"]["steps_per_epoch"] * manifest["batch"]["train_batch_size"]
        p2 = run["phase2"]
        assert p2["judge_calls_per_epoch"] == trained * settings["rollouts_per_prompt"]
        assert p2["generator_calls_total"] == trained * settings["rollouts_per_prompt"] * settings["epochs"]
        for name, n in manifest["buckets"].items():
            assert int(row[f"bucket_{name}"]) == n
        assert int(row["steps_per_epoch"]) == manifest["batch"]["steps_per_epoch"]
        assert row["overrides"] == " ".join(run["overrides"])


def test_local_multirun_summary_matches_manifests(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = launch("curriculum.theta1=0.05,0.3", "curriculum.train_batch_size=16",
                  "sweep.rollouts_per_prompt=5", "sweep.epochs=2",
                  f"hydra.sweep.dir={sweep}", "hydra/launcher=submitit_local", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary, rows = read_summary(sweep)
    assert summary["runs_total"] == 2 and summary["runs_failed"] == 0
    check_against_manifests(summary, rows, {"rollouts_per_prompt": 5, "epochs": 2})
    out_dirs = {r["out_dir"] for r in summary["runs"]}
    assert out_dirs == {str(sweep / "0" / "curriculum"), str(sweep / "1" / "curriculum")}
    # a higher θ1 moves prompts from A into bucket 0: the comparison must show it
    low, high = summary["runs"]
    assert high["buckets"]["0"] >= low["buckets"]["0"]
    assert high["buckets"]["A"] <= low["buckets"]["A"]
    assert "ddai sweep: 2 runs, 0 failed" in proc.stderr


def test_basic_launcher_multirun_also_summarized(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = launch("curriculum.sort=easy_to_hard,frontier", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary, rows = read_summary(sweep)
    check_against_manifests(summary, rows, {"rollouts_per_prompt": 8, "epochs": 1})
    # same buckets, different order: counts agree, training files differ
    a, b = summary["runs"]
    assert a["buckets"] == b["buckets"]
    assert (Path(a["out_dir"]) / "manifest.json").read_bytes() != (Path(b["out_dir"]) / "manifest.json").read_bytes()


def test_bad_combination_rejects_whole_sweep(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = launch("curriculum.theta1=0.05,0.9", f"hydra.sweep.dir={sweep}", "hydra/launcher=submitit_local",
                  cwd=tmp_path)
    assert proc.returncode == 2
    assert "nothing was submitted" in proc.stderr
    assert "#1 curriculum.theta1=0.9" in proc.stderr and "theta_easy" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (sweep / ".submitit").exists() and not (sweep / "0").exists()


def test_missing_input_and_shared_out_dir_rejected(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    missing = tmp_path / "nope.json"
    proc = launch(f"curriculum.phase1_log={missing}", "curriculum.theta1=0.05,0.1", f"hydra.sweep.dir={sweep}",
                  "hydra/launcher=submitit_local", cwd=tmp_path)
    assert proc.returncode == 2
    assert str(missing) in proc.stderr and "2 of 2" in proc.stderr
    shared = tmp_path / "same_out"
    proc = launch(f"curriculum.out_dir={shared}", "curriculum.theta1=0.05,0.1", f"hydra.sweep.dir={sweep}",
                  "hydra/launcher=submitit_local", cwd=tmp_path)
    assert proc.returncode == 2
    assert "is also the output of #0" in proc.stderr
    assert not shared.exists()


def test_failed_local_run_reported_others_summarized(tmp_path: Path) -> None:
    good = Path(__import__("ddai.curriculum.config", fromlist=["x"]).example_path("gspo_phase1.json"))
    bad = tmp_path / "truncated.json"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    sweep = tmp_path / "sweep"
    proc = launch(f"curriculum.phase1_log={good},{bad}", f"hydra.sweep.dir={sweep}",
                  "hydra/launcher=submitit_local", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]
    summary, rows = read_summary(sweep)
    ok, failed = summary["runs"]
    assert ok["status"] == "COMPLETED" and ok["buckets"]
    assert failed["status"] == "FAILED" and failed["job_id"]
    assert str(bad) in failed["error"]
    assert Path(failed["log"]).exists()
    assert rows[1]["status"] == "FAILED" and rows[1]["job_id"] == failed["job_id"]
    assert "1 of 2 sweep runs failed" in proc.stderr


@pytest.mark.parametrize(
    "api, expected",
    [
        ({"price_per_call": 0.002, "calls_per_rollout": 1}, 0.002),
        ({"price_per_call": None, "calls_per_rollout": 1, "input_tokens_per_call": 1000,
          "output_tokens_per_call": 100, "price_per_1m_input_tokens": 1.0, "price_per_1m_output_tokens": 10.0},
         0.002),
    ],
)
def test_phase2_cost_per_call_and_per_token(api: dict, expected: float) -> None:
    none = {"price_per_call": None, "price_per_1m_input_tokens": None, "price_per_1m_output_tokens": None,
            "calls_per_rollout": 2}
    cost = phase2_cost(64 * 3, {"rollouts_per_prompt": 5, "epochs": 2, "judge": api, "generator": none})
    assert cost["judge_calls_per_epoch"] == 64 * 3 * 5
    assert cost["generator_calls_per_epoch"] == 64 * 3 * 5 * 2
    assert cost["judge_calls_total"] == 64 * 3 * 5 * 2
    assert cost["judge_price_per_call"] == pytest.approx(expected)
    assert cost["est_price_total"] is None          # the generator has no price: no total is invented
    cost = phase2_cost(64 * 3, {"rollouts_per_prompt": 5, "epochs": 2, "judge": api, "generator": api})
    assert cost["est_price_total"] == pytest.approx(2 * 2 * 64 * 3 * 5 * expected)


def test_manifest_metrics_reads_batch_and_match() -> None:
    manifest = {"buckets": {"A": 100, "B": 3, "0": 7, "unmatched": 2}, "train_bucket": "A",
                "match": {"matched_rows": 110, "unmatched_rows": 2},
                "batch": {"train_batch_size": 64, "steps_per_epoch": 1, "intended_rows": 100, "rows_written": 100,
                          "dropped_ids": [f"train_{i}" for i in range(36)], "policy": "warn"}}
    m = manifest_metrics(manifest)
    assert (m["steps_per_epoch"], m["dropped"], m["prompts_per_epoch"], m["matched"]) == (1, 36, 64, 110)


def test_wandb_offline_table(tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    sweep = tmp_path / "sweep"
    proc = launch("curriculum.theta1=0.05,0.1", f"hydra.sweep.dir={sweep}", "sweep.wandb.project=ddai-test",
                  "sweep.wandb.mode=offline", cwd=tmp_path,
                  env={"WANDB_DIR": str(tmp_path / "wandb"), "WANDB_SILENT": "true"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    tables = list(sweep.rglob("sweep_summary_*.table.json"))
    assert len(tables) == 1, list(sweep.rglob("*"))[:50]
    table = json.loads(tables[0].read_text())
    assert len(table["data"]) == 2
    assert "bucket_A" in table["columns"] and "judge_calls_per_epoch" in table["columns"]


def test_reused_sweep_dir_summarizes_only_this_sweep(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    first = launch("curriculum.theta1=0.05,0.1,0.2", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    second = launch("curriculum.theta1=0.2", "curriculum.train_batch_size=16", f"hydra.sweep.dir={sweep}",
                    "hydra/launcher=submitit_local", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    summary, rows = read_summary(sweep)
    assert summary["runs_total"] == 1 and len(rows) == 1
    assert summary["runs"][0]["overrides"] == ["curriculum.theta1=0.2", "curriculum.train_batch_size=16",
                                               "curriculum.progress=off"]
