"""One batch size for both halves: the default curriculum run feeds the README's Phase 2 dry run.

The curriculum's ``train_batch_size`` follows ``phase2.train_batch_size`` unless set
explicitly, and the default ``remainder=trim`` writes whole batches, so the manifest of a
bare ``python -m ddai.launch`` passes Phase 2's data check (row count and the manifest's
``steps_per_epoch``) without an edit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]


def launch(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ddai.launch", *args], cwd=cwd, capture_output=True, text=True,
                          env=env or {**os.environ}, timeout=600, check=False)


def phase2_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({"GEMINI_API_KEY": "fake-gemini-key-0001", "OPENAI_API_KEY": "fake-openai-key-0001",
                "WANDB_API_KEY": "fake-wandb-key-00000001"})
    return env


def summary(stdout: str) -> dict:
    return json.loads([ln for ln in stdout.splitlines() if ln.startswith('{"out_dir"')][-1])


def readme_phase2(manifest: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    """The README's Phase 2 command (dry run), with the placeholders filled in."""
    from phase2_inputs import phase2_inputs

    return launch("task=phase2", *phase2_inputs(tmp / "in"), f"phase2.manifest={manifest}",
                  "+phase2.agent.settings.search_url=http://search.example:5002/search", "phase2.dry_run=true",
                  f"phase2.run_dir={tmp / 'run'}", f"hydra.run.dir={tmp / 'p2'}", *extra, cwd=tmp, env=phase2_env())


@pytest.mark.verl
def test_default_curriculum_then_the_readme_phase2_dry_run(tmp_path):
    cur = launch(f"hydra.run.dir={tmp_path / 'cur'}", cwd=tmp_path)
    assert cur.returncode == 0, cur.stderr
    s = summary(cur.stdout)
    man = json.loads(Path(s["manifest"]).read_text())
    assert man["batch"]["train_batch_size"] == 64 and man["batch"]["policy"] == "trim"
    assert man["batch"]["dropped_ids"] == [] and len(man["batch"]["trimmed_ids"]) == man["batch"]["remainder"]
    rows = pq.read_metadata(Path(s["train_file"])).num_rows
    assert rows % 64 == 0 and rows // 64 == man["batch"]["steps_per_epoch"] >= 1
    # the trimmed prompts are kept, named, in their own bucket file
    rem = pq.read_table(Path(s["out_dir"]) / man["files"]["remainder"]).column("id").to_pylist()
    assert rem == man["batch"]["trimmed_ids"]

    p2 = readme_phase2(Path(s["manifest"]), tmp_path)
    assert p2.returncode == 0, p2.stderr
    out = json.loads(p2.stdout)
    assert "data.train_batch_size=64" in out["trainer_command"]
    assert "fake-gemini-key-0001" not in p2.stdout + p2.stderr


@pytest.mark.verl
def test_phase2_batch_size_is_the_one_source(tmp_path):
    """Users' Phase 2 scripts train with batch 8: set it once, both halves follow."""
    p2_batch = ("phase2.train_batch_size=8", "phase2.ppo_mini_batch_size=8")
    cur = launch(f"hydra.run.dir={tmp_path / 'cur'}", *p2_batch, cwd=tmp_path)
    assert cur.returncode == 0, cur.stderr
    s = summary(cur.stdout)
    man = json.loads(Path(s["manifest"]).read_text())
    assert man["batch"]["train_batch_size"] == 8
    assert man["batch"]["steps_per_epoch"] == man["batch"]["intended_rows"] // 8
    p2 = readme_phase2(Path(s["manifest"]), tmp_path, *p2_batch)
    assert p2.returncode == 0, p2.stderr


def test_explicit_curriculum_batch_size_wins_and_follows_phase2_otherwise():
    from hydra import compose, initialize_config_dir

    from ddai.launch.__main__ import CONF_DIR

    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        default = compose("config")
        follows = compose("config", overrides=["phase2.train_batch_size=16"])
        explicit = compose("config", overrides=["phase2.train_batch_size=16", "curriculum.train_batch_size=32"])
    assert default.curriculum.train_batch_size == default.phase2.train_batch_size == 64
    assert follows.curriculum.train_batch_size == 16
    assert explicit.curriculum.train_batch_size == 32 and explicit.phase2.train_batch_size == 16
    assert default.curriculum.remainder == "trim"


def test_library_use_without_phase2_falls_back_to_64():
    from omegaconf import OmegaConf

    from ddai.curriculum.config import CurriculumConfig, register

    register()                      # the ${ddai_example:...} resolver of the input defaults
    c = OmegaConf.structured(CurriculumConfig)
    c.out_dir = "/tmp/out"          # its default names Hydra's run directory
    assert c.train_batch_size == 64
    assert OmegaConf.to_object(c).train_batch_size == 64
