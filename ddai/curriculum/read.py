"""Read Phase 1 (and Phase 2) rollout logs of any shape as a stream of :class:`Rollout`.

One entry point, :func:`iter_rollouts`, for the three real log shapes (step-keyed JSON document,
JSON Lines, unified event log) and parquet logs. Files are recognised by content
(:func:`detect_format`), a directory means every log file in it (sorted, so the order -- and
everything computed from it -- is deterministic), and what was read is accounted for in a
:class:`ReadStats` (files with size and sha256 for the manifest, record and malformed counts
with file/line examples). Memory stays bounded whatever the file size: nothing is loaded whole.
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddai.curriculum.read_lines import Malformed, iter_lines, iter_parquet, parse_line
from ddai.curriculum.read_steps import iter_steps, rollouts_from_step
from ddai.curriculum.records import Rollout
from ddai.errors import ConfigError, InputError

FORMATS = ("steps_json", "jsonl", "events", "parquet")
LOG_SUFFIXES = (".json", ".jsonl", ".ndjson", ".parquet", ".log")
MAX_MALFORMED_EXAMPLES = 20

_STEP_DOC = re.compile(rb'\A\s*\{\s*"step_?\d+"\s*:')
_SNIFF = 1 << 16


@dataclass
class FileInfo:
    """One input file as the manifest records it."""

    path: str
    size: int
    sha256: str
    format: str


@dataclass
class ReadStats:
    """What a read saw: files, records yielded, malformed records skipped (with examples)."""

    files: list[FileInfo] = field(default_factory=list)
    records: int = 0
    malformed: int = 0
    malformed_examples: list[dict[str, Any]] = field(default_factory=list)  # {file, line, reason}


def detect_format(path: Path) -> str:
    """``"steps_json" | "jsonl" | "events" | "parquet"`` from the file's content.

    Raises InputError when the file is missing, empty of any JSON, or of an unknown kind.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("log file not found" if not path.exists() else "not a regular file", where=path,
                         expected="a Phase 1 log (.json, .jsonl, .parquet) or a directory of them")
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF)
        if head[:4] == b"PAR1":
            return "parquet"
        stripped = head.lstrip()
        if not stripped:
            if path.stat().st_size == 0:
                return "jsonl"  # an empty log: zero records, not an error
            raise InputError("the file holds only whitespace", where=path, expected="a JSON or JSON Lines log")
        if _STEP_DOC.match(head):
            return "steps_json"
        line_log = path.suffix.lower() in (".jsonl", ".ndjson", ".log")
        if stripped[:1] == b"{" or line_log:
            fh.seek(0)
            for _ in range(50):  # the first parseable record decides between jsonl and events
                line = fh.readline(64 << 20)
                if not line:
                    break
                if not line.strip():
                    continue
                try:
                    rec = parse_line(line)
                except Malformed:
                    continue
                if isinstance(rec, dict):
                    return "events" if "event_type" in rec else "jsonl"
        if line_log:
            return "jsonl"  # no good record near the top: read it, count what is malformed
    if stripped[:1] == b"{" and b"\n" not in head.strip():
        raise InputError("a JSON document that is not keyed by step", where=path,
                         expected='a step-keyed JSON document {"step_1": {"<uid>": {...}}}')
    raise InputError("unrecognised log format", where=path,
                     expected='a step-keyed JSON document {"step_1": ...}, JSON Lines records, or parquet')


def _expand(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files = sorted(f for f in p.iterdir()
                           if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in LOG_SUFFIXES)
            if not files:
                raise InputError("the directory holds no log files", where=p,
                                 expected=f"files ending in {', '.join(LOG_SUFFIXES)}")
            out.extend(files)
        elif p.exists():
            out.append(p)
        else:
            raise InputError("log file not found", where=p, expected="an existing file or directory")
    if not out:
        raise InputError("no log files given", expected="at least one file or directory")
    return out


def _progress_bar(total: int, enabled: bool | None) -> tuple[Callable[[int], None], Callable[[], None]]:
    """(advance, close) of a rich bytes progress bar on stderr, or no-ops when not wanted."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return (lambda n: None), (lambda: None)
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    progress = Progress(TextColumn("reading logs"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                        TimeRemainingColumn(), console=Console(stderr=True), transient=False)
    task = progress.add_task("read", total=total)
    progress.start()
    return (lambda n: progress.advance(task, n)), progress.stop


def iter_rollouts(
    paths: str | Path | Sequence[str | Path],
    *,
    fmt: str = "auto",
    strict: bool = False,
    progress: bool | None = None,
    stats: ReadStats | None = None,
) -> Iterator[Rollout]:
    """Every judged rollout in ``paths`` (files or directories), in file then record order.

    ``fmt``: ``"auto"`` (detect per file) or one of :data:`FORMATS` for all files.
    ``strict``: a malformed JSON line ends the read with an InputError naming file and line;
    otherwise it is skipped and counted in ``stats``. ``progress``: a bytes progress bar on
    stderr (default: only when stderr is a terminal).
    """
    if fmt != "auto" and fmt not in FORMATS:
        raise ConfigError(f"unknown log format {fmt!r}", where="curriculum.format",
                          expected=f"auto or one of {', '.join(FORMATS)}")
    files = _expand(paths)
    stats = stats if stats is not None else ReadStats()
    kinds = [(f, detect_format(f) if fmt == "auto" else fmt) for f in files]
    total = sum(f.stat().st_size for f, _ in kinds)
    advance, close = _progress_bar(total, progress)
    # The reader allocates millions of small acyclic objects; the cyclic garbage collector
    # would traverse all of them again and again (~40 % of the read time on big logs). It is
    # paused while reading and restored afterwards (also when the caller stops early).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for path, kind in kinds:
            yield from _read_one(path, kind, strict, stats, advance)
    finally:
        if gc_was_enabled:
            gc.enable()
        close()


def _read_one(path: Path, kind: str, strict: bool, stats: ReadStats,
              advance: Callable[[int], None]) -> Iterator[Rollout]:
    source = str(path)
    hasher = hashlib.sha256()

    def on_malformed(line: int, reason: str) -> None:
        if strict:
            unit = "row" if kind == "parquet" else "line"
            raise InputError(f"{unit} {line}: {reason}", where=path,
                             expected="one rollout record per line (curriculum.strict=true stops at the first bad one)")
        stats.malformed += 1
        if len(stats.malformed_examples) < MAX_MALFORMED_EXAMPLES:
            stats.malformed_examples.append({"file": source, "line": line, "reason": reason})

    if kind == "steps_json":
        digest: dict[str, str] = {}
        for key, step, groups in iter_steps(path, advance, digest):
            batch = rollouts_from_step(path, source, key, step, groups)
            stats.records += len(batch)
            yield from batch
        stats.files.append(FileInfo(path=source, size=path.stat().st_size, sha256=digest["sha256"], format=kind))
        return
    if kind == "parquet":
        for r in iter_parquet(path, advance, on_malformed=on_malformed):
            stats.records += 1
            yield r
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                hasher.update(chunk)
    elif kind in ("jsonl", "events"):
        with open(path, "rb") as fh:
            for r in iter_lines(path, fh, hasher, advance, events=kind == "events", on_malformed=on_malformed):
                stats.records += 1
                yield r
    else:  # pragma: no cover - guarded by iter_rollouts
        raise ConfigError(f"unknown log format {kind!r}", expected=", ".join(FORMATS))
    stats.files.append(FileInfo(path=source, size=path.stat().st_size, sha256=hasher.hexdigest(), format=kind))
