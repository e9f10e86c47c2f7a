"""Fixtures for the Phase 2 tests: a curriculum bucket on disk, plugin paths, the Slurm cluster.

The bucket parquet is written by ddai's own example generator (HF-datasets style nested
schema: prompt chat list, reward_model struct, extra_info struct) and ordered like a
curriculum; the manifest has the documented keys (buckets, files, train_bucket, batch).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]


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


_INPUTS: list[str] = []


def run_inputs() -> list[str]:
    """``phase2.model_path`` (a stub with tokenizer/processor files) and ``phase2.image_root`` (3 pages).

    Built once per test session; the validator requires both to exist (no GPU job ever loads them here).
    """
    if not _INPUTS:
        import tempfile

        from ddai.phase2.smoke import write_model_stub, write_pages

        root = Path(tempfile.mkdtemp(prefix="ddai-p2-inputs-"))
        model = write_model_stub(root / "model")
        pages = write_pages(root / "img", {"1": 3})
        _INPUTS.extend([f"phase2.model_path={model}", f"phase2.image_root={pages}"])
    return list(_INPUTS)


@pytest.fixture
def helpers() -> SimpleNamespace:
    return SimpleNamespace(write_bucket=write_bucket, launch=launch, repo=REPO, inputs=run_inputs)
