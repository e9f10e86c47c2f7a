"""The judge benchmark in its tiny mode: it runs, prints one JSON object, and its correctness goals hold.

Throughput is not asserted here (a 24-rollout run on a shared machine measures nothing);
the full run's figures are in docs/phase2_plugins.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_judge_tiny_mode():
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("GEMINI_API_KEY", None)  # the benchmark sets its own dummy key for the fake
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_judge.py"), "--tiny"], check=False,
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (line,) = proc.stdout.splitlines()  # stdout is machine-readable only
    figures = json.loads(line)
    assert figures["tiny"] is True and figures["n"] == 24 and figures["mode"] == "production_text"
    assert all(figures["goals"].values()), figures["goals"]
    assert figures["clean"]["scored"] == 24 and figures["clean"]["paid_calls"] == 24
    assert figures["errors"]["scored"] == 24 and figures["errors"]["max_paid_per_rollout"] == 1
    assert figures["replay"]["paid_calls"] == 0 and figures["replay"]["cache_hits"] == 24
    assert figures["log_lines_errors_plus_replay"] == 48
    assert "[bench]" in proc.stderr  # progress on stderr
