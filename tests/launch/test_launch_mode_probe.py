"""The start-up shortcut around Hydra's mode probe must never change which mode a command runs in."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _launch(tmp_path: Path, *args: str) -> list[dict]:
    proc = subprocess.run([sys.executable, "-m", "ddai.launch", *args, f"hydra.run.dir={tmp_path / 'run'}",
                           f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("args", [("-m",), ("hydra.mode=MULTIRUN",)], ids=["flag", "hydra.mode override"])
def test_multirun_is_still_a_multirun(tmp_path: Path, args: tuple[str, ...]) -> None:
    runs = _launch(tmp_path, *args, "curriculum.theta1=0.05,0.1")
    assert len(runs) == 2 and len({r["out_dir"] for r in runs}) == 2
    assert all(str(tmp_path / "sweep") in r["out_dir"] for r in runs)


def test_single_run_stays_a_single_run(tmp_path: Path) -> None:
    (run,) = _launch(tmp_path, "curriculum.theta1=0.05")
    assert run["out_dir"].startswith(str(tmp_path / "run"))
