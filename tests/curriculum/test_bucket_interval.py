"""``rule=interval``: buckets on a confidence interval of the pass rate, an ``uncertain`` bucket for
prompts whose interval straddles a threshold (a real curriculum run on the bundled data)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from ddai.curriculum.bucket import (
    beta_cdf,
    beta_interval,
    interval_bucket,
    wilson_interval,
)


def test_intervals() -> None:
    for x in (0.1, 0.37, 0.9):  # closed forms of the regularized incomplete beta
        assert beta_cdf(x, 1, 1) == pytest.approx(x)
        assert beta_cdf(x, 1, 3) == pytest.approx(1 - (1 - x) ** 3)
        assert beta_cdf(x, 0.5, 0.5) == pytest.approx(2 / math.pi * math.asin(math.sqrt(x)))
    lo, hi = wilson_interval(2, 5, 0.8)
    assert lo < 0.4 < hi and hi - lo > 0.4, "five rollouts: a wide interval"
    lo50, hi50 = wilson_interval(20, 50, 0.8)
    assert lo < lo50 < 0.4 < hi50 < hi, "more rollouts, narrower interval"
    blo, bhi = beta_interval(0, 5, 0.8)
    assert blo == 0.0 and 0 < bhi < 0.5
    assert interval_bucket(0.3, 0.6, 0.2, 0.8, "uncertain") == "A"
    assert interval_bucket(0.1, 0.6, 0.2, 0.8, "uncertain") == "uncertain"
    assert interval_bucket(0.85, 1.0, 0.2, 0.8, "uncertain") == "B"
    assert interval_bucket(0.0, 0.15, 0.2, 0.8, "uncertain") == "0"


@pytest.mark.parametrize("method", ["wilson", "beta"])
def test_interval_rule_on_a_curriculum_run(tmp_path: Path, method: str) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "cur"
    res = subprocess.run([sys.executable, "-m", "ddai.launch", "curriculum.rule=interval", f"curriculum.out_dir={out}",
                          f"curriculum.interval.method={method}", "curriculum.interval.confidence=0.6",
                          "curriculum.train_batch_size=8", "curriculum.remainder=trim", "curriculum.allow_empty_train=true",
                          f"hydra.run.dir={tmp_path / 'h'}"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert m["rule"]["name"] == "interval" and m["rule"]["params"]["method"] == method
    assert "uncertain" in m["buckets"] and m["buckets"]["uncertain"] > 0
    bounds = wilson_interval if method == "wilson" else beta_interval
    for name in ("A", "B", "0", "uncertain"):
        for info in pq.read_table(out / m["files"][name]).column("extra_info").to_pylist():
            k, n = info["phase1_pass_rate"] * info["phase1_n"], info["phase1_n"]
            assert interval_bucket(*bounds(k, n, 0.6), 0.2, 0.8, "uncertain") == name
    res = subprocess.run([sys.executable, "-m", "ddai.launch", "curriculum.rule=interval",
                          "curriculum.interval.method=bootstrap", f"hydra.run.dir={tmp_path / 'h2'}"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "curriculum.interval.method" in res.stderr
