"""Say what each PATH given to ``ddai-report`` is, without reading more than a peek of it.

WHY: users pass whatever is at hand — the Phase 2 judge log, a Phase 1 log in any of its
three shapes, a curriculum output directory or its manifest, a Hydra sweep directory — and
the report must tell them which it found before spending minutes on a multi-GB file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from ddai.errors import InputError

PEEK = 1 << 16
SMALL_JSON = 64 << 20  # whole-document JSON files up to this size are parsed to classify them

LOG_FORMATS = {
    "jsonl": "judge log (JSON Lines, one rollout per line)",
    "events": "judge log (unified event log, JSON Lines with event_type)",
    "steps_json": "judge log (step-keyed JSON document)",
    "parquet": "judge log (parquet)",
}


@dataclass(frozen=True)
class Found:
    """One input: ``kind`` is log | curriculum | sweep | dataset."""

    kind: str
    path: str
    fmt: str | None = None          # log format, for kind == "log"
    manifest: str | None = None     # manifest.json, for kind == "curriculum"

    def describe(self) -> str:
        if self.kind == "log":
            return LOG_FORMATS[self.fmt or "jsonl"]
        if self.kind == "curriculum":
            return f"curriculum manifest ({self.manifest})"
        if self.kind == "sweep":
            return "sweep directory"
        return "training dataset (parquet)"


def discover(path: str) -> Found:
    """Classify ``path``; raise :class:`InputError` when it is none of the known inputs."""
    p = Path(path)
    if not p.exists():
        raise InputError("no such file or directory", where=path,
                         expected="a judge log, a curriculum directory or manifest, or a sweep directory")
    if p.is_dir():
        return _discover_dir(p)
    if p.suffix == ".parquet":
        return _discover_parquet(p)
    return _discover_json(p)


def _discover_dir(p: Path) -> Found:
    if (p / "manifest.json").is_file():
        return Found("curriculum", str(p), manifest=str(p / "manifest.json"))
    if (p / "curriculum" / "manifest.json").is_file():
        return Found("curriculum", str(p), manifest=str(p / "curriculum" / "manifest.json"))
    if (p / "sweep_summary.json").is_file() or (p / "multirun.yaml").is_file() or sweep_manifests(p):
        return Found("sweep", str(p))
    raise InputError("directory holds no manifest.json, curriculum/manifest.json or sweep_summary.json",
                     where=str(p), expected="a curriculum output directory or a sweep (multirun) directory")


def sweep_manifests(p: Path) -> list[Path]:
    """Manifests of a sweep's jobs: ``<job>/curriculum/manifest.json`` or ``<job>/manifest.json``."""
    found = [*p.glob("*/curriculum/manifest.json"), *p.glob("*/manifest.json")]
    return sorted(set(found), key=lambda m: _natural(m.relative_to(p).parts[0]))


def _natural(name: str) -> tuple[int, int | str]:
    return (0, int(name)) if name.isdigit() else (1, name)


def _discover_parquet(p: Path) -> Found:
    import pyarrow.parquet as pq

    try:
        names = set(pq.read_schema(p).names)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for bad files
        raise InputError(f"not a readable parquet file: {exc}", where=str(p)) from None
    if {"prompt", "reward_model"} <= names:
        return Found("dataset", str(p))
    return Found("log", str(p), fmt="parquet")


def _discover_json(p: Path) -> Found:
    size = p.stat().st_size
    if size == 0:
        if p.suffix in (".jsonl", ".json", ".log"):
            return Found("log", str(p), fmt="jsonl")  # a log just started: zero rollouts, not an error
        raise InputError("file is empty", where=str(p), expected="a judge log or a manifest")
    with open(p, "rb") as fh:
        head = fh.read(PEEK)
    stripped = head.lstrip()
    if not stripped[:1] in (b"{", b"["):
        raise InputError("does not start with a JSON object or array", where=str(p),
                         expected="a judge log (JSON / JSON Lines) or a manifest.json")
    first = stripped.split(b"\n", 1)[0]
    try:
        obj = orjson.loads(first)
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        kind = _classify_object(obj)
        if kind == "manifest":
            return Found("curriculum", str(p.parent), manifest=str(p))
        if kind == "steps_json":
            return Found("log", str(p), fmt="steps_json")
        return Found("log", str(p), fmt="events" if "event_type" in obj else "jsonl")
    # a multi-line document: a manifest / sweep summary (small) or a step-keyed log (any size)
    if size <= SMALL_JSON:
        try:
            doc = orjson.loads(p.read_bytes())
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and _classify_object(doc) == "manifest":
            return Found("curriculum", str(p.parent), manifest=str(p))
        if p.name == "sweep_summary.json":
            return Found("sweep", str(p.parent))
        if doc is not None and not (isinstance(doc, dict) and _classify_object(doc) == "steps_json"):
            keys = ", ".join(list(doc)[:5]) if isinstance(doc, dict) else f"a JSON {type(doc).__name__}"
            raise InputError(f"a JSON document that is neither a judge log nor a curriculum manifest ({keys})",
                             where=str(p), expected='a step-keyed log {"step_1": ...}, JSON Lines, or a manifest.json '
                                                    'with "buckets"')
    return Found("log", str(p), fmt="steps_json")


def _classify_object(obj: dict) -> str:
    if "buckets" in obj and ("files" in obj or "train_bucket" in obj):
        return "manifest"
    if obj and all(isinstance(k, str) and k.startswith("step_") for k in list(obj)[:5]):
        return "steps_json"
    return "record"


def file_size(path: str) -> int:
    return os.path.getsize(path)
