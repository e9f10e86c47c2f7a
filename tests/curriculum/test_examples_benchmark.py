"""Smoke test of benchmarks/bench_curriculum.py on a tiny log (figures only, no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_benchmark_runs_every_variant_and_reports_figures(tmp_path):
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_curriculum.py"), "--size-mb", "2",
                          "--response-bytes", "800", "--cache-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(res.stdout)
    assert report["log_bytes"] >= 2_000_000
    variants = {r["variant"]: r for r in report["results"]}
    assert set(variants) == {"baseline", "orjson", "ddai-read", "ddai-launch"}
    for r in variants.values():
        assert r["wall_s"] > 0 and r["peak_rss_mb"] > 0 and r["cpu_s"] >= 0
        assert r["speedup_vs_baseline"] > 0 and r["memory_vs_baseline"] > 0
    assert variants["baseline"]["speedup_vs_baseline"] == 1.0
    assert "speedup" in res.stderr  # the human-readable table
