"""Curriculum sweeps on the real local Slurm (``hydra/launcher=submitit_slurm``).

Each test runs ``python -m ddai.launch -m ... hydra/launcher=submitit_slurm`` as a user
would, against slurmctld/slurmd started by ``tools/slurm_cluster.sh up``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from ddai.curriculum.config import example_path

pytestmark = pytest.mark.slurm

EXAMPLE_LOG = Path(example_path("gspo_phase1.json"))
EXAMPLE_DATASET = Path(example_path("slidevqa_train_example.parquet"))


def slurm_sweep(*args: str, cwd: Path, name: str, env: dict[str, str] | None = None,
                wait: bool = True) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "ddai.launch", "-m", *args, "curriculum.progress=off",
           "hydra/launcher=submitit_slurm", "hydra.launcher.mem_gb=1", "hydra.launcher.timeout_min=10",
           f"hydra.launcher.name={name}"]
    full_env = {**os.environ, **(env or {})}
    if not wait:
        return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=full_env, timeout=600)


def unique_name() -> str:
    return f"ddai-test-{uuid.uuid4().hex[:8]}"


def summary_of(sweep: Path) -> tuple[dict, list[dict[str, str]]]:
    summary = json.loads((sweep / "sweep_summary.json").read_text())
    with open(sweep / "sweep_summary.csv", newline="") as fh:
        return summary, list(csv.DictReader(fh))


def outputs(out_dir: Path) -> dict[str, bytes]:
    """Every file a curriculum run leaves (temporary files included, so leftovers show)."""
    return {p.name: p.read_bytes() for p in sorted(out_dir.iterdir()) if p.is_file()}


def test_two_by_two_sweep_runs_as_slurm_jobs(slurm, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    name = unique_name()
    proc = slurm_sweep("curriculum.theta1=0.05,0.1", "curriculum.sort=easy_to_hard,frontier",
                       "curriculum.train_batch_size=16", f"hydra.sweep.dir={sweep}", cwd=tmp_path, name=name)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary, rows = summary_of(sweep)
    runs = summary["runs"]
    assert [r["status"] for r in runs] == ["COMPLETED"] * 4

    # one Slurm array, four tasks, all COMPLETED according to the scheduler itself
    array_ids = {r["job_id"].split("_")[0] for r in runs}
    assert len(array_ids) == 1
    (array_id,) = array_ids
    assert [r["job_id"] for r in runs] == [f"{array_id}_{i}" for i in range(4)]
    for run in runs:
        assert slurm.job_state(run["job_id"]) == "COMPLETED"
        assert run["state"] == "COMPLETED"

    # four distinct output directories, each with its own manifest
    out_dirs = [Path(r["out_dir"]) for r in runs]
    assert len(set(out_dirs)) == 4
    for run, out_dir in zip(runs, out_dirs):
        manifest = json.loads((out_dir / "manifest.json").read_text())
        assert run["buckets"] == manifest["buckets"]
        assert run["steps_per_epoch"] == manifest["batch"]["steps_per_epoch"] == \
            manifest["buckets"][manifest["train_bucket"]] // 16
        assert run["dropped"] == len(manifest["batch"]["dropped_ids"])
        assert run["matched"] == manifest["match"]["matched_rows"]
        assert run["phase2"]["judge_calls_per_epoch"] == run["steps_per_epoch"] * 16 * 8
        cfg = manifest["config"]
        sets = dict(o.split("=", 1) for o in run["overrides"])
        assert str(cfg["theta1"]) == sets["curriculum.theta1"] and cfg["sort"] == sets["curriculum.sort"]
    assert [int(r["num"]) for r in rows] == [0, 1, 2, 3]
    assert {r["job_id"] for r in rows} == {r["job_id"] for r in runs}
    # the terminal table went to stderr
    assert "ddai sweep: 4 runs, 0 failed" in proc.stderr


def test_failing_combination_reported_with_job_id(slurm, tmp_path: Path) -> None:
    bad = tmp_path / "truncated_phase1.json"
    data = EXAMPLE_LOG.read_bytes()
    bad.write_bytes(data[: len(data) // 3])        # readable, passes validation, fails while read
    sweep = tmp_path / "sweep"
    proc = slurm_sweep(f"curriculum.phase1_log={EXAMPLE_LOG},{bad}", "curriculum.sort=easy_to_hard,frontier",
                       f"hydra.sweep.dir={sweep}", cwd=tmp_path, name=unique_name())
    assert proc.returncode == 1, proc.stderr[-4000:]
    summary, rows = summary_of(sweep)
    assert summary["runs_failed"] == 2 and summary["runs_total"] == 4
    for run in summary["runs"]:
        if str(bad) in " ".join(run["overrides"]):
            assert run["status"] == "FAILED"
            assert run["state"] == "FAILED" == slurm.job_state(run["job_id"])
            assert "_" in run["job_id"]
            assert str(bad) in run["error"]
            log = Path(run["log"])
            assert log.exists() and str(bad) in log.read_text()
        else:
            assert run["status"] == "COMPLETED" and run["buckets"]["A"] > 0
    assert "2 of 4 sweep runs failed" in proc.stderr
    failed_ids = [r["job_id"] for r in summary["runs"] if r["status"] == "FAILED"]
    for job_id in failed_ids:
        assert job_id in proc.stderr


def test_bad_combination_submits_nothing(slurm, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    name = unique_name()
    proc = slurm_sweep("curriculum.theta1=0.05,0.9", "curriculum.sort=easy_to_hard,nonsense",
                       f"hydra.sweep.dir={sweep}", cwd=tmp_path, name=name)
    assert proc.returncode == 2
    assert "3 of 4 sweep combination(s) invalid; nothing was submitted" in proc.stderr
    assert "curriculum.theta1=0.9 curriculum.sort=easy_to_hard" in proc.stderr
    assert "curriculum.sort=nonsense" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (sweep / ".submitit").exists()
    queued = subprocess.run(["squeue", "--all", "--states=all", "-h", "-n", name, "-o", "%i"],
                            capture_output=True, text=True, check=True).stdout
    assert queued.strip() == ""


# Test-only hook, loaded into the job through PYTHONPATH: on the job's FIRST run it stops
# right before the curriculum's first parquet is renamed into place (the write is half done:
# a temporary file exists, nothing is final) and signals the test, which then requeues the
# job with `scontrol requeue`. The requeued run (SLURM_RESTART_COUNT=1) is left alone.
PAUSE_HOOK = textwrap.dedent('''
    import os, time
    _marker = os.environ.get("DDAI_TEST_PAUSE_MARKER")
    if _marker and os.environ.get("SLURM_JOB_ID") and os.environ.get("SLURM_RESTART_COUNT", "0") == "0":
        _replace = os.replace
        def _paused_replace(src, dst, *args, **kwargs):
            if str(dst).endswith(".parquet"):
                with open(_marker, "w") as fh:
                    fh.write(os.environ["SLURM_JOB_ID"])
                time.sleep(600)
            return _replace(src, dst, *args, **kwargs)
        os.replace = _paused_replace
''')


def test_requeued_job_finishes_with_identical_outputs(slurm, tmp_path: Path) -> None:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(PAUSE_HOOK)
    marker = tmp_path / "paused"
    sweep = tmp_path / "sweep"
    overrides = ["curriculum.sort=frontier", "curriculum.theta1=0.05"]
    proc = slurm_sweep(*overrides, f"hydra.sweep.dir={sweep}", cwd=tmp_path, name=unique_name(), wait=False,
                       env={"PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")])), "DDAI_TEST_PAUSE_MARKER": str(marker)})
    try:
        slurm.wait_for(marker.exists, "the job to reach its first parquet write", timeout=180)
        job = marker.read_text().strip()
        subprocess.run(["scontrol", "requeue", job], check=True)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-4000:]
    summary, _ = summary_of(sweep)
    (run,) = summary["runs"]
    assert run["status"] == "COMPLETED"
    shown = subprocess.run(["scontrol", "show", "job", run["job_id"]], capture_output=True, text=True).stdout
    assert "Restarts=1" in shown, shown

    # reference: the same settings, run once, undisturbed, outside Slurm
    ref_dir = tmp_path / "reference"
    ref = subprocess.run([sys.executable, "-m", "ddai.launch", *overrides, "curriculum.progress=off",
                          f"curriculum.out_dir={ref_dir}", f"hydra.run.dir={tmp_path / 'ref_run'}"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr[-3000:]
    got, want = outputs(Path(run["out_dir"])), outputs(ref_dir)
    parquet = sorted(n for n in want if n.endswith(".parquet"))
    assert parquet and sorted(n for n in got if n.endswith(".parquet")) == parquet
    for name in parquet:
        assert got[name] == want[name], f"{name} differs after requeue"
    assert got["manifest.json"] == want["manifest.json"]
    time.sleep(0)  # (no timing assertions: the requeue delay is Slurm's, not ours)


def test_resources_the_cluster_lacks_are_refused_cleanly(slurm, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    proc = slurm_sweep("curriculum.theta1=0.05,0.1", f"hydra.sweep.dir={sweep}", "hydra.launcher.gpus_per_node=5",
                       cwd=tmp_path, name=unique_name())
    assert proc.returncode == 2
    assert "the scheduler refused the sweep" in proc.stderr and "nothing was submitted" in proc.stderr
    assert "Traceback" not in proc.stderr
