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

from ddai.curriculum.read_io import (
    COMPRESSED_SUFFIXES,
    check_regular,
    inner_suffix,
    open_log,
    open_raw,
)
from ddai.curriculum.read_lines import Malformed, iter_lines, iter_parquet, parse_line
from ddai.curriculum.records import Rollout
from ddai.curriculum.stats import GroupCollector, GroupTable
from ddai.errors import ConfigError, InputError

FORMATS = ("steps_json", "jsonl", "events", "parquet")
LOG_SUFFIXES = (".json", ".jsonl", ".ndjson", ".parquet", ".log")
MAX_MALFORMED_EXAMPLES = 20

_STEP_DOC = re.compile(rb'\A(?:\xef\xbb\xbf)?\s*\{\s*"step_?\d+"\s*:')
_SNIFF = 1 << 16


def is_log_name(name: str) -> bool:
    """Whether a file name looks like a log: a log suffix, optionally compressed (``.jsonl.gz``)."""
    if name.startswith("."):
        return False
    low = name.lower()
    for c in COMPRESSED_SUFFIXES:
        if low.endswith(c):
            low = low[: -len(c)]
            break
    return any(low.endswith(s) for s in LOG_SUFFIXES)


@dataclass
class FileInfo:
    """One input file as the manifest records it.

    ``digest`` is the SHA-256 in hex, or a function that waits for it: a parallel read hashes
    the file in a thread that may still run when the read returns (its result is needed only
    when the manifest is written, after the statistics).
    """

    path: str
    size: int
    digest: str | Callable[[], str]
    format: str

    @property
    def sha256(self) -> str:
        if not isinstance(self.digest, str):
            self.digest = self.digest()
        return self.digest


@dataclass
class ReadStats:
    """What a read saw: files, records yielded, malformed records skipped (with examples)."""

    files: list[FileInfo] = field(default_factory=list)
    records: int = 0
    malformed: int = 0
    malformed_examples: list[dict[str, Any]] = field(default_factory=list)  # {file, line, reason}


def detect_format(path: Path) -> str:
    """``"steps_json" | "jsonl" | "events" | "parquet"`` from the file's (decompressed) content.

    Raises InputError when the file is missing, not a regular readable file, empty of any JSON,
    or of an unknown kind.
    """
    path = Path(path)
    check_regular(path)
    with open_raw(path) as raw:
        if raw.read(4) == b"PAR1":
            return "parquet"
    line_log = inner_suffix(path) in (".jsonl", ".ndjson", ".log")
    with open_log(path) as fh:
        head = fh.read(_SNIFF)
        stripped = head.lstrip()
        if stripped.startswith(b"\xef\xbb\xbf"):
            stripped = stripped[3:].lstrip()
        if not stripped:
            if path.stat().st_size == 0 or not head:
                return "jsonl"  # an empty log: zero records, not an error
            raise InputError("the file holds only whitespace", where=path, expected="a JSON or JSON Lines log")
        if _STEP_DOC.match(head):
            return "steps_json"
        if stripped[:1] == b"{" or line_log:
            # The first parseable line decides between jsonl and events. Lines are read whole
            # (a line can be longer than the sniffed head), at most 50 of them.
            rest = head
            for _ in range(50):
                nl = rest.find(b"\n")
                while nl < 0:
                    more = fh.read(_SNIFF)
                    if not more:
                        break
                    rest += more
                    nl = rest.find(b"\n")
                    if len(rest) > 256 << 20:   # one line of over 256 MB: read it as JSON Lines
                        return "jsonl"
                line, rest = (rest[:nl], rest[nl + 1:]) if nl >= 0 else (rest, b"")
                if line.startswith(b"\xef\xbb\xbf"):
                    line = line[3:]
                if line.strip():
                    try:
                        rec = parse_line(line)
                    except Malformed:
                        rec = None
                    if isinstance(rec, dict):
                        return "events" if "event_type" in rec else "jsonl"
                if nl < 0:
                    break
        if line_log:
            return "jsonl"  # no good record near the top: read it, count what is malformed
    if stripped[:1] == b"{" and b"\n" not in head.strip():
        raise InputError("a JSON document that is not keyed by step", where=path,
                         expected='a step-keyed JSON document {"step_1": {"<uid>": {...}}}')
    raise InputError("unrecognised log format", where=path,
                     expected='a step-keyed JSON document {"step_1": ...}, JSON Lines records, or parquet')


def log_parts(path: str | os.PathLike[str]) -> list[Path]:
    """The per-writer parts of a log named by its plain path, when the plain file itself is absent.

    WHY: ddai's reward writes one file per host, job and process (``<stem>.<host>.<job>.<pid>.jsonl``,
    no file has two writers on a shared filesystem); users still name the log by the path they
    configured (``logs/gspo_gemini_output.jsonl``). Those parts are that log.
    """
    base = Path(path)
    if base.exists() or not base.suffix or not base.parent.is_dir():
        return []
    stem = base.name[: -len(base.suffix)]
    return sorted(p for p in base.parent.glob(f"{stem}.*{base.suffix}") if p.is_file())


def log_files(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """The log files named by ``paths``: files as given, directories as every log file in them
    (sorted by name, hidden files skipped, compressed logs included)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            try:
                entries = sorted(p.iterdir())
            except OSError as exc:
                raise InputError(f"cannot list the log directory ({exc.strerror or exc})", where=p,
                                 expected="a readable directory") from None
            files = [f for f in entries if is_log_name(f.name) and not f.is_dir()]
            if not files:
                raise InputError("the directory holds no log files", where=p,
                                 expected=f"files ending in {', '.join(LOG_SUFFIXES)} (optionally .gz/.zst)")
            out.extend(files)
        elif p.exists() or p.is_symlink():
            out.append(p)
        else:
            raise InputError("log file not found", where=p, expected="an existing file or directory")
    if not out:
        raise InputError("no log files given", expected="at least one file or directory")
    for f in out:
        check_regular(f)   # FIFOs, devices, unreadable files: one line naming the file, before reading
    return out


_expand = log_files


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


def _kinds(paths: str | Path | Sequence[str | Path], fmt: str) -> list[tuple[Path, str]]:
    if fmt != "auto" and fmt not in FORMATS:
        raise ConfigError(f"unknown log format {fmt!r}", where="curriculum.format",
                          expected=f"auto or one of {', '.join(FORMATS)}")
    return [(f, detect_format(f) if fmt == "auto" else fmt) for f in log_files(paths)]


class _Malformed:
    """Counts (or, in strict mode, raises) the malformed records of one file."""

    def __init__(self, path: Path, kind: str, strict: bool, stats: ReadStats):
        self.path, self.kind, self.strict, self.stats = path, kind, strict, stats
        self.count = 0

    def __call__(self, line: int | str, reason: str) -> None:
        where = line if isinstance(line, str) else f"{'row' if self.kind == 'parquet' else 'line'} {line}"
        if self.strict:
            raise InputError(f"{where}: {reason}", where=self.path,
                             expected="one rollout record per line (curriculum.strict=true stops at the first bad one)")
        self.count += 1
        self.stats.malformed += 1
        if len(self.stats.malformed_examples) < MAX_MALFORMED_EXAMPLES:
            self.stats.malformed_examples.append(
                {"file": str(self.path), "line": line if isinstance(line, int) else None,
                 "reason": reason if isinstance(line, int) else f"{line}: {reason}"})


def _no_rollouts(path: Path, kind: str, bad: _Malformed) -> None:
    """A non-empty file that gave no rollout at all is not a rollout log: say so, naming it."""
    if path.stat().st_size == 0:
        return
    if kind == "steps_json":
        return  # "{}" is an empty step document; anything else without steps was already refused
    why = f" ({bad.count} record(s) without a rollout's fields)" if bad.count else ""
    raise InputError(f"the file holds no rollouts{why}", where=path,
                     expected="a rollout log (step-keyed document, JSON Lines of judged rollouts, "
                              "a unified event log with reward events, or a parquet log)")


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
    ``strict``: a malformed record ends the read with an InputError naming file and line;
    otherwise it is skipped and counted in ``stats``. ``progress``: a bytes progress bar on
    stderr (default: only when stderr is a terminal). A non-empty file without any rollout is
    an InputError naming it.
    """
    kinds = _kinds(paths, fmt)
    stats = stats if stats is not None else ReadStats()
    total = sum(f.stat().st_size for f, _ in kinds)
    advance, close = _progress_bar(total, progress)
    # The reader allocates millions of small acyclic objects; the cyclic garbage collector
    # would traverse all of them again and again. It is paused while reading and restored
    # afterwards (also when the caller stops early).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for path, kind in kinds:
            yield from _read_one(path, kind, strict, stats, advance)
    finally:
        if gc_was_enabled:
            gc.enable()
        close()


def read_groups(
    paths: str | Path | Sequence[str | Path],
    normalize_question: Callable[[str], str],
    *,
    fmt: str = "auto",
    strict: bool = False,
    progress: bool | None = None,
    stats: ReadStats | None = None,
    processes: int | None = None,
) -> GroupTable:
    """The per-prompt groups of every rollout in ``paths`` (what the curriculum needs).

    Equal to ``collect_groups(iter_rollouts(...))``, but step-keyed documents go through the
    typed fast path (:mod:`ddai.curriculum.read_typed`): their score columns are cut per group
    straight from each step, without one record object per rollout; a big plain one is read by
    ``processes`` processes at once (:mod:`ddai.curriculum.read_parallel`; default: the cores
    this process may use, ``DDAI_READ_WORKERS`` overrides, 1 reads sequentially).
    """
    kinds = _kinds(paths, fmt)
    if not any(kind == "steps_json" for _, kind in kinds):
        from ddai.curriculum import read_parallel as rp

        rp.cancel_early()    # workers started early for a log this read does not take
    stats = stats if stats is not None else ReadStats()
    total = sum(f.stat().st_size for f, _ in kinds)
    advance, close = _progress_bar(total, progress)
    collector = GroupCollector(normalize_question)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for path, kind in kinds:
            if kind == "steps_json":
                _read_steps_groups(path, strict, stats, advance, collector, processes)
            else:
                add = collector.add_rollout
                for r in _read_one(path, kind, strict, stats, advance):
                    add(r)
    finally:
        if gc_was_enabled:
            gc.enable()
        close()
    return collector.groups()


def _read_steps_groups(path: Path, strict: bool, stats: ReadStats, advance: Callable[[int], None],
                       collector: GroupCollector, processes: int | None = None) -> None:
    """One step-keyed document into ``collector``: several processes at once when the file is big,
    plain and read exactly by the typed decoder; otherwise typed decoding, the general path per
    step where the typed decoder refuses it, per-group parsing where Python cannot read a step whole."""
    from ddai.curriculum import read_parallel as rp
    from ddai.curriculum import read_steps as rs
    from ddai.curriculum.read_typed import DecodeErrors, typed_or_none

    source = str(path)
    size = path.stat().st_size
    bad = _Malformed(path, "steps_json", strict, stats)
    typed = None
    tried = False
    rebuilds = 0
    resume = 0            # where the sequential reading below starts (after a parallel part)
    n_records = 0
    sha256: Callable[[], str] | None = None
    early = rp.claim_early(path, source) if processes is None else rp.cancel_early()
    cuts = early.cuts if early is not None else rp.plan(path, size, rp.process_count(processes))
    if cuts is not None:
        got = rp.read_parallel(path, source, size, cuts, collector, advance, early)
        if got is not None:
            n_records, resume_at, par_hasher, par_typed = got
            sha256 = par_hasher.result
            if resume_at is None:
                stats.records += n_records
                stats.files.append(FileInfo(path=source, size=size, digest=sha256, format="steps_json"))
                return
            resume = resume_at
            typed, tried = par_typed, True
    hasher = hashlib.sha256() if sha256 is None else None

    def parse(key: str, number: int | None, view: Any) -> tuple[str, Any]:
        nonlocal typed, tried, rebuilds
        if number is None:
            return "badkey", None
        if typed is not None:
            try:
                return "typed", (typed.decode(view), view)
            except DecodeErrors:
                pass
        return parse_general(view)

    def parse_general(view: Any) -> tuple[str, Any]:
        nonlocal typed, tried, rebuilds
        try:
            obj = rs.loads_general(view)
        except rs.Unrepresentable as exc:
            return "unreadable", (exc.reason, bytes(view))
        if isinstance(obj, dict) and (not tried or (typed is not None and rebuilds < 16)):
            # the first step fixes the typed layout; a step it refused (a key it did not know)
            # gives the layout another chance with that step's keys (a few times at most)
            rebuilt = typed_or_none(obj)
            if tried:
                rebuilds += 1
                if rebuilt is not None:
                    typed = rebuilt
            else:
                typed = rebuilt
            tried = True
        return "general", obj

    with _open_at(path, resume, hasher, advance) as fh:
        for key, number, (how, val) in rs.complete_steps(path, rs.split_steps(path, fh, size, start=resume),
                                                         size, parse):
            if how == "typed":
                try:
                    n_records += typed.collect(number, source, val[0], collector)  # type: ignore[union-attr]
                    continue
                except DecodeErrors:   # reference pages that are not strings: the general way
                    how, val = parse_general(val[1])
            if how == "badkey":
                bad(key, "the step number is too large (it must fit 64 bits)")
                continue
            if how == "general":
                if not isinstance(val, dict):
                    raise InputError(f"{key!r} is not an object", where=path,
                                     expected='{"<uid>": {"prompt": ..., "agents": [...]}}')
                groups = val.items()
            else:
                _, text = val
                groups = rs.members_of_unreadable(path, key, text, bad)
            for uid, group in groups:
                try:
                    batch = rs.rollouts_from_group(path, source, key, number, uid, group)  # type: ignore[arg-type]
                except OverflowError:
                    bad(f"{key} group {uid[:60]}", "a score too large for a float")
                    continue
                for r in batch:
                    collector.add_rollout(r)
                n_records += len(batch)
    stats.records += n_records
    digest = sha256() if sha256 is not None else hasher.hexdigest()  # type: ignore[union-attr]
    stats.files.append(FileInfo(path=source, size=size, digest=digest, format="steps_json"))


def _open_at(path: Path, start: int, hasher: Any, advance: Callable[[int], None]) -> Any:
    """The log's bytes from ``start`` on (only a plain file is ever resumed past 0, and its
    SHA-256 then comes from the parallel read's hasher)."""
    if not start:
        return open_log(path, hasher, advance)
    fh = open_raw(path)
    fh.seek(start)
    return fh


def _read_one(path: Path, kind: str, strict: bool, stats: ReadStats,
              advance: Callable[[int], None]) -> Iterator[Rollout]:
    from ddai.curriculum import read_steps as rs

    source = str(path)
    bad = _Malformed(path, kind, strict, stats)
    before = stats.records
    if kind == "steps_json":
        digest: dict[str, str] = {}
        for key, step, obj in rs.iter_steps(path, advance, digest):
            if step is None:
                bad(key, "the step number is too large (it must fit 64 bits)")
                continue
            if isinstance(obj, rs.Unrepresentable):
                groups: Any = rs.members_of_unreadable(path, key, obj.text, bad)  # type: ignore[attr-defined]
            else:
                groups = obj.items()
            for uid, group in groups:
                try:
                    batch = rs.rollouts_from_group(path, source, key, step, uid, group)
                except OverflowError:
                    bad(f"{key} group {uid[:60]}", "a score too large for a float")
                    continue
                stats.records += len(batch)
                yield from batch
        stats.files.append(FileInfo(path=source, size=path.stat().st_size, digest=digest["sha256"], format=kind))
        return
    hasher = hashlib.sha256()
    if kind == "parquet":
        for r in iter_parquet(path, advance, on_malformed=bad):
            stats.records += 1
            yield r
        with open_raw(path) as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                hasher.update(chunk)
    elif kind in ("jsonl", "events"):
        with open_log(path, hasher, advance) as fh:
            for r in iter_lines(path, fh, events=kind == "events", on_malformed=bad):
                stats.records += 1
                yield r
    else:  # pragma: no cover - guarded by iter_rollouts
        raise ConfigError(f"unknown log format {kind!r}", expected=", ".join(FORMATS))
    if stats.records == before:
        _no_rollouts(path, kind, bad)
    stats.files.append(FileInfo(path=source, size=path.stat().st_size, digest=hasher.hexdigest(), format=kind))
