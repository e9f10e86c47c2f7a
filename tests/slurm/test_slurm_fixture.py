"""The cluster fixture fails loudly in CI and skips elsewhere when Slurm is not reachable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TARGET = "tests/slurm/test_slurm_cluster.py::test_fifth_gpu_is_refused_at_submission"


@pytest.mark.parametrize("ci, expect_rc, expect_word", [("1", 1, "ERROR"), (None, 0, "skipped")])
def test_missing_cluster_fails_in_ci_and_skips_elsewhere(tmp_path: Path, ci: str | None, expect_rc: int,
                                                         expect_word: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PATH"] = str(tmp_path)            # no sinfo here: the cluster looks absent
    if ci:
        env["CI"] = ci
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", TARGET],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == expect_rc, out[-3000:]
    assert expect_word in out and "tools/slurm_cluster.sh" in out and "up" in out
