"""Signal per dollar in the sweep summary: expected share of groups with a GRPO signal, useful
groups per epoch and per dollar, recomputed here from the runs' training files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ddai.curriculum.budget import estimate_p, p_mixed


def test_sweep_summary_shows_signal_and_useful_groups_per_dollar(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    sweep = tmp_path / "sweep"
    res = subprocess.run([sys.executable, "-m", "ddai.launch", "-m", "curriculum.theta1=0.0,0.3",
                          "curriculum.train_batch_size=16", "curriculum.progress=off", "sweep.rollouts_per_prompt=4",
                          f"hydra.sweep.dir={sweep}"], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((sweep / "sweep_summary.json").read_text())
    with open(sweep / "sweep_summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    shares = []
    for run, row in zip(summary["runs"], rows):
        p2 = run["phase2"]
        manifest = json.loads(Path(run["manifest"]).read_text())
        table = pq.read_table(Path(run["manifest"]).parent / manifest["train_file"]).slice(0, run["prompts_per_epoch"])
        useful = 0.0
        for info in table.column("extra_info").to_pylist():
            useful += p_mixed(estimate_p(info["phase1_pass_rate"], info["phase1_n"]), 4)
        assert p2["useful_groups_per_epoch"] == pytest.approx(useful, abs=1e-3)
        assert p2["expected_signal_share"] == pytest.approx(useful / table.num_rows, abs=1e-4)
        assert p2["useful_groups_per_dollar"] == pytest.approx(useful / p2["est_price_per_epoch"], rel=1e-3)
        assert float(row["useful_groups_per_dollar"]) == pytest.approx(p2["useful_groups_per_dollar"])
        shares.append(p2["expected_signal_share"])
    # θ1 = 0.3 drops the prompts that are rarely solved: a larger share of its groups carries signal
    assert shares[1] > shares[0]
