"""The report benchmark's tiny mode runs inside the suite, so the benchmark cannot rot.

It generates a few-MB judge log of ~1 KB rollouts, runs ``ddai-report --json`` and the pandas
baseline each in its own process, and checks that both computed the same headline figures
(rollouts, judge and NDCG means, quadrant counts) — the benchmark's own exit status says so.
No timing is asserted: the speed figures are for people, in the notes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_report_tiny(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_report.py"), "--tiny",
                           "--data", str(tmp_path)], capture_output=True, text=True, env=env, cwd=ROOT,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "figures agree with pandas: True" in proc.stdout
    assert "ddai-report --json vs pandas" in proc.stdout
    logs = sorted(p.name for p in tmp_path.glob("judge_log_*_1000b.jsonl"))
    assert len(logs) == 2, logs


def test_bench_report_candidate_child_runs(tmp_path):
    """One decoder candidate (ddai's own path) in its child mode: the --candidates table's unit."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_report
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    log = tmp_path / "tiny.jsonl"
    bench_report.generate(log, 200_000, rollout_bytes=1000)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    name = next(n for n in bench_report.CANDIDATE_CODE if n.startswith("ddai:"))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_report.py"), "--candidate-child",
                           name, str(log)], capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"cpu"' in proc.stdout
