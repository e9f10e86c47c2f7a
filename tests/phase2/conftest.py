"""Fixtures for the Phase 2 tests: a curriculum bucket on disk, plugin paths, the Slurm cluster.

The bucket parquet is written by ddai's own example generator (HF-datasets style nested
schema: prompt chat list, reward_model struct, extra_info struct) and ordered like a
curriculum; the manifest has the documented keys (buckets, files, train_bucket, batch).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
UP_COMMAND = f"bash {REPO / 'tools' / 'slurm_cluster.sh'} up"


def write_bucket(out: Path, rows: int, batch: int, *, seed: int = 0, extra_rows: int = 0) -> Path:
    """Write bucket A (``rows`` + ``extra_rows`` prompts, curriculum order) and its manifest."""
    import pyarrow.parquet as pq

    from ddai.examples.generate import dataset_table, generate_dataset

    out.mkdir(parents=True, exist_ok=True)
    total = rows + extra_rows
    table = dataset_table(generate_dataset(total + 7, seed=seed))
    # A curriculum order that differs from file order: reversed, then the first `total`.
    order = list(range(table.num_rows))[::-1][:total]
    bucket = table.take(order)
    pq.write_table(bucket, out / "bucket_A.parquet")
    manifest = {
        "buckets": {"A": total, "B": 0, "0": 0},
        "files": {"A": "bucket_A.parquet"},
        "train_bucket": "A",
        "batch": {"train_batch_size": batch, "steps_per_epoch": total // batch,
                  "remainder": total % batch, "dropped_ids": []},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out / "manifest.json"


def plugin_overrides(tmp: Path) -> list[str]:
    """Point at the real plugins when installed; placeholders otherwise (they are only paths here)."""
    import importlib.util

    out: list[str] = []
    try:
        reward_ok = importlib.util.find_spec("ddai.reward.verl_reward") is not None
    except ModuleNotFoundError:
        reward_ok = False
    agent_dir = Path(importlib.util.find_spec("ddai.agent").submodule_search_locations[0])
    if not reward_ok:
        f = tmp / "plugins" / "verl_reward.py"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kw):\n    return 0.0\n")
        out.append(f"phase2.reward.module={f}")
    if not (agent_dir / "agent_loops.yaml").is_file():
        f = tmp / "plugins" / "agent_loops.yaml"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("- name: ddai_search_agent\n  _target_: ddai.agent.loop.SearchAgentLoop\n")
        out.append(f"phase2.agent.loops_yaml={f}")
    return out


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    """Manifest of a 48-row bucket A trained with batch 8 (6 steps per epoch)."""
    return write_bucket(tmp_path / "curriculum", rows=48, batch=8)


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake secrets in the environment (names the run requires; values never used)."""
    for name in ("GEMINI_API_KEY", "OPENAI_API_KEY", "WANDB_API_KEY"):
        monkeypatch.setenv(name, f"test-{name.lower()}-value")


def launch(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m ddai.launch`` as a user would."""
    return subprocess.run([sys.executable, "-m", "ddai.launch", *args], capture_output=True, text=True,
                          env=env if env is not None else dict(os.environ), cwd=str(cwd or REPO), timeout=300)


@pytest.fixture
def helpers() -> SimpleNamespace:
    return SimpleNamespace(write_bucket=write_bucket, plugin_overrides=plugin_overrides, launch=launch, repo=REPO)


def cluster_problem() -> str | None:
    if shutil.which("sinfo") is None:
        return "sinfo not found: Slurm is not installed"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s"
    if out.returncode != 0:
        return f"sinfo failed: {out.stderr.strip()}"
    if not any(s.rstrip("*~#") in ("idle", "mixed", "allocated", "completing") for s in out.stdout.split()):
        return f"no usable node (states: {out.stdout.split() or 'none'})"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """The real local cluster: fail loudly in CI when it is down, skip elsewhere."""
    problem = cluster_problem()
    if problem is None:
        return
    message = f"local Slurm cluster is not up ({problem}); start it with: {UP_COMMAND}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
