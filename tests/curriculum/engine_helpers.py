"""Shared helpers of the curriculum-engine tests (imported via sys.path; not a test file)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

from omegaconf import OmegaConf

from ddai.curriculum.config import CurriculumConfig, register
from ddai.curriculum.records import Rollout

REPO = Path(__file__).resolve().parents[2]


def make_cfg(**overrides: Any):
    """A resolved curriculum config node like Hydra would give, with ``overrides`` applied."""
    register()
    base = OmegaConf.structured(CurriculumConfig)
    base.out_dir = "/nonexistent-set-out_dir"
    base.remainder = "warn"   # engine tests compare whole training files with the reference's (no trim)
    return OmegaConf.merge(base, OmegaConf.create(overrides))


def rollouts(group: str, scores: Iterable[Any], *, step: int | None = 1, dataset_id: str | None = None,
             deck: str | None = None, question: str | None = None, field: str = "ndcg",
             source: str = "log.json") -> list[Rollout]:
    """One group's rollouts; ``scores`` are the raw values of ``field`` (None → absent)."""
    out = []
    for i, s in enumerate(scores):
        out.append(Rollout(group=group, source=source, step=step, sample_idx=i, dataset_id=dataset_id,
                           question=question, deck_ids=(deck,) if deck else (),
                           scores={field: s}))
    return out


def run_launch(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m ddai.launch ARGS`` in a subprocess (the way users run it)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "ddai.launch", *args], cwd=cwd or REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def truth_rollouts(truth, source: str = "truth") -> list[Rollout]:
    """Rollouts exactly as a correct reader would yield them for a generated step-keyed log."""
    out = []
    for g in truth.groups:
        for i, (nd, jd, fn) in enumerate(zip(g.ndcg, g.judge, g.final)):
            out.append(Rollout(group=g.uid, source=source, step=g.step, sample_idx=i + 1, question=g.question,
                               deck_ids=(g.deck,), scores={"ndcg": nd, "judge": jd, "final": fn}))
    return out
