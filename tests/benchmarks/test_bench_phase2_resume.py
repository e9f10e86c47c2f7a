"""benchmarks/bench_phase2_resume.py in its tiny mode, on the real local Slurm cluster (so it cannot rot)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slurm, pytest.mark.verl]


def test_bench_phase2_resume_tiny_loses_no_step_on_the_time_limit_signal(slurm_cluster: None, tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_phase2_resume.py"), "--tiny"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    (result,) = out["results"]
    assert result["interruption"] == "time-limit signal"
    assert result["steps_lost"] == 0  # saved at the step boundary, nothing trained twice
    assert result["seconds_to_first_resumed_step_start"] > 0


def test_benchmarks_share_no_code_with_test_conftests() -> None:
    for bench in (REPO / "benchmarks").glob("*.py"):
        text = bench.read_text()
        assert "from conftest" not in text and "import conftest" not in text, bench.name
