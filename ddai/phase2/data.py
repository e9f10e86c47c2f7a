"""Which parquet Phase 2 trains on, and how many verl steps that makes.

WHY here and not in verl: the number of steps decides whether a job can reach a checkpoint
and whether the chain is finished, and must be known before a GPU is held. verl's train
loader uses ``drop_last=True``, so steps per epoch = rows // train_batch_size and the
remainder is silently never trained; we count it and refuse it unless told otherwise.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ddai.errors import ConfigError, InputError


@dataclass(frozen=True)
class TrainData:
    """The resolved training input: absolute parquet path and its row count."""

    train_file: str
    rows: int
    source: str  # "manifest:<path>#<bucket>" or "parquet"
    manifest_steps_per_epoch: int | None = None


def resolve_train_file(manifest: str | None, train_file: str | None) -> tuple[str, str]:
    """Return (absolute parquet path, source label) from a manifest or an explicit parquet.

    Reads the manifest JSON only (not the parquet). Exactly one of the two must be set.
    """
    if bool(manifest) == bool(train_file):
        raise ConfigError("set exactly one of phase2.manifest and phase2.train_file",
                          where="phase2.manifest",
                          expected="a curriculum manifest.json or an explicit training parquet")
    if train_file:
        return os.path.abspath(Path(train_file).expanduser()), "parquet"
    # abspath, not resolve(): a curriculum's fixed names are links into its committed
    # generation (ddai.atomic.Generation); the trainer must get the fixed name, not a
    # generation directory that the next curriculum run deletes.
    mpath = Path(os.path.abspath(Path(str(manifest)).expanduser()))
    doc = read_manifest(mpath)
    bucket = doc["train_bucket"]
    files = doc["files"]
    if bucket not in files:
        raise InputError(f"train_bucket {bucket!r} has no entry in 'files'", where=mpath,
                         expected=f"one of {', '.join(sorted(files))}")
    rel = Path(str(files[bucket]))
    path = rel if rel.is_absolute() else (mpath.parent / rel)
    return os.path.abspath(path), f"manifest:{mpath}#{bucket}"


def read_manifest(path: Path) -> dict[str, Any]:
    """Load a curriculum manifest and check the keys Phase 2 relies on."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("curriculum manifest not found", where=path,
                         expected="the manifest.json written by `python -m ddai.launch task=curriculum`") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg})", where=f"{path}:{exc.lineno}",
                         expected="a curriculum manifest.json") from None
    if not isinstance(doc, dict):
        raise InputError("manifest is not a JSON object", where=path, expected="an object")
    for key in ("files", "train_bucket"):
        if key not in doc:
            raise InputError(f"manifest lacks key {key!r}", where=path,
                             expected="keys buckets, files, train_bucket, batch")
    if not isinstance(doc["files"], dict):
        raise InputError("'files' is not an object", where=f"{path}: files", expected="bucket name -> parquet path")
    return doc


def manifest_steps(manifest: str | None) -> int | None:
    """``batch.steps_per_epoch`` claimed by the manifest, if any (cross-checked, not trusted)."""
    if not manifest:
        return None
    doc = read_manifest(Path(manifest).expanduser().resolve())
    batch = doc.get("batch") or {}
    value = batch.get("steps_per_epoch") if isinstance(batch, dict) else None
    return int(value) if isinstance(value, int) else None


def count_rows(path: str) -> int:
    """Row count from the parquet footer (no data pages are read)."""
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.is_file():
        raise InputError("training parquet not found", where=p, expected="an existing .parquet file")
    try:
        return int(pq.ParquetFile(p).metadata.num_rows)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InputError(f"cannot read parquet footer ({exc})", where=p, expected="a valid parquet file") from None


def load_train_data(manifest: str | None, train_file: str | None) -> TrainData:
    """Resolve the training parquet and count its rows."""
    path, source = resolve_train_file(manifest, train_file)
    return TrainData(train_file=path, rows=count_rows(path), source=source,
                     manifest_steps_per_epoch=manifest_steps(manifest))
