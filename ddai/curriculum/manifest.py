"""manifest.json: what a curriculum run read, decided and wrote — the contract downstream.

WHY no wall-clock time: the manifest must be byte-identical when the same inputs and
settings are run again (so a re-run can be verified with ``cmp`` and sweeps can be
de-duplicated). Times belong in the Hydra job log, not here. Paths of inputs are absolute
(they identify the files); the output directory is the manifest's own directory, recorded
as ``"."`` so that moving or re-running into another directory does not change the bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ddai

FORMAT_VERSION = 1


@dataclass(frozen=True)
class InputFile:
    """One input as the manifest records it; ``sha256`` is the hex digest or a function that waits
    for it (a hash still running beside the statistics, see ``ddai.curriculum.read.FileInfo``)."""

    role: str
    path: str
    size: int
    sha256: str | Callable[[], str]
    format: str

    def to_dict(self) -> dict[str, Any]:
        digest = self.sha256 if isinstance(self.sha256, str) else self.sha256()
        return {"role": self.role, "path": self.path, "size": self.size, "sha256": digest,
                "format": self.format}


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def build(*, buckets: dict[str, int], files: dict[str, str], outputs: dict[str, dict[str, Any]],
          train_bucket: str, rule: dict[str, Any], thresholds: dict[str, float], sort: str,
          sort_params: dict[str, Any], score: str, score_stats: dict[str, Any], match: dict[str, Any],
          duplicates: dict[str, Any], batch: dict[str, Any], inputs: list[InputFile],
          read: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Assemble the manifest in a fixed key order (consumers rely on these keys)."""
    return {
        "ddai_version": ddai.__version__,
        "manifest_version": FORMAT_VERSION,
        "buckets": buckets,
        "files": files,
        "train_bucket": train_bucket,
        "train_file": files[train_bucket],
        "rule": rule,
        "thresholds": thresholds,
        "sort": sort,
        "sort_params": sort_params,
        "score": score,
        "score_stats": score_stats,
        "match": match,
        "duplicates": duplicates,
        "batch": batch,
        "inputs": [i.to_dict() for i in inputs],
        "read": read,
        "outputs": outputs,
        "config": config,
    }


def dumps(manifest: dict[str, Any]) -> str:
    """Deterministic JSON text (fixed indent, no NaN, UTF-8 kept readable)."""
    return json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
