"""Realistic example data with known ground truth: the bundled default run, tests, benchmarks.

``ddai.examples.generate`` writes a training parquet with the users' nested schema and Phase 1
logs in every shape ddai reads; ``ddai/examples/data/`` holds a small generated set that
``python -m ddai.launch`` uses when no paths are given.
"""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
EXAMPLE_DATASET = DATA_DIR / "slidevqa_train_example.parquet"
EXAMPLE_PHASE1_LOG = DATA_DIR / "gspo_phase1.json"

__all__ = ["DATA_DIR", "EXAMPLE_DATASET", "EXAMPLE_PHASE1_LOG"]
