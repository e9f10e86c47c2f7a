"""Step-keyed logs for the parallel-read tests: the bundled example's steps repeated, and a
comparable view of what a read gathered."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ddai.curriculum.match import normalize_question
from ddai.curriculum.read import ReadStats, read_groups
from ddai.examples import EXAMPLE_PHASE1_LOG


def _no_nan(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nan(v) for v in value]
    return value


def _steps() -> list[dict]:
    """The bundled example's steps, with its NaN scores written as null (a NaN literal is not
    JSON: the typed decoder leaves such a step to the sequential reader, tested on its own)."""
    return [_no_nan(s) for s in json.loads(EXAMPLE_PHASE1_LOG.read_bytes()).values()]


def write_log(path: Path, n_steps: int, replace: dict[int, str] | None = None, sep: str = ", ") -> Path:
    """The bundled example's steps repeated under fresh step numbers; ``replace[n]`` is written
    verbatim as the text of step n (to plant a problem)."""
    steps = [json.dumps(s) for s in _steps()]
    with open(path, "w") as fh:
        fh.write("{")
        for n in range(1, n_steps + 1):
            text = (replace or {}).get(n, steps[(n - 1) % len(steps)])
            fh.write(("" if n == 1 else sep) + f'"step_{n}": ' + text)
        fh.write("}")
    return path


def _fingerprint(groups) -> list[str]:
    """Comparable by ``==`` even with NaN scores (the example log has some): their repr."""
    return [repr((g.group, g.step, g.order, g.sources, sorted(g.dataset_ids), sorted(g.deck_ids), sorted(g.questions),
             g.raw_questions, g.scores, g.n_rollouts)) for g in groups]


def _read(path: Path, processes: int, strict: bool = False) -> tuple[list[str], ReadStats]:
    stats = ReadStats()
    groups = read_groups(path, normalize_question, progress=False, stats=stats, processes=processes, strict=strict)
    return _fingerprint(groups), stats


def spy_workers(monkeypatch: Any, rp: Any) -> list:
    """The worker processes ``rp`` (ddai.curriculum.read_parallel) starts from now on, as they start."""
    procs: list = []
    real = rp._start_worker

    def spy(*args: Any, **kwargs: Any) -> Any:
        proc = real(*args, **kwargs)
        procs.append(proc)
        return proc

    monkeypatch.setattr(rp, "_start_worker", spy)
    return procs
