"""Persistent judgment cache for reward workers on many hosts sharing one directory.

Layout of ``cache_path`` (a directory):

    judge_cache.<host>.<job>.<pid>.jsonl   one per writer process: {"key", "value", "created"} lines
    claims/<key>.claim                      who is paying for a judgment right now (JSON)

Every process appends only to its own file (one ``os.write`` per line, then ``fsync``), so
no two writers ever share a file and nothing depends on NFS append or lock semantics. A
lookup reads every file of the directory (new bytes only, remembered by offset), so a
judgment paid on one host is found by all others. Only successful judgments are stored.

Claims stop two processes (any hosts) from paying for the same judgment at the same moment:
a claim is created with ``O_CREAT|O_EXCL`` (atomic on local filesystems and NFSv3+); the
others wait for the result to appear. A claim whose holder died expires after its lease
(hosts' clocks are assumed synchronised, as on any Slurm cluster). Stealing an expired claim
renames it first, so only one process takes it over.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from ddai.reward.storage import RewardStorageError, storage_error, writer_id

PREFIX = "judge_cache."
SUFFIX = ".jsonl"


def response_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(prompt_id: str, response_sha: str, judge_model: str, prompt_version: str, mode: str) -> str:
    """(prompt id, response hash, judge model, prompt version, mode) -> one stable key."""
    raw = "\x1f".join([prompt_id, response_sha, judge_model, prompt_version, mode])
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class JudgeCache:
    """Key -> JSON value, shared across processes and hosts through per-writer files."""

    def __init__(self, directory: str | os.PathLike[str], *, writer: str | None = None):
        self.dir = Path(directory)
        self.claims = self.dir / "claims"
        for d in (self.dir, self.claims):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise storage_error("judge cache", d, "create the directory", exc) from exc
        self.writer = writer or writer_id()
        self.own = self.dir / f"{PREFIX}{self.writer}{SUFFIX}"
        self.owner = f"{self.writer}.{id(self)}"
        self._lock = threading.Lock()  # index and read offsets
        self._wlock = threading.Lock()  # this writer's file
        self._index: dict[str, dict[str, Any]] = {}
        self._offsets: dict[str, int] = {}
        self._fd = -1
        self.refresh()

    # -- reading: the union of every writer's file --
    def files(self) -> list[Path]:
        try:
            return sorted(p for p in self.dir.iterdir() if p.name.startswith(PREFIX) and p.name.endswith(SUFFIX))
        except OSError as exc:
            raise storage_error("judge cache", self.dir, "list the directory", exc) from exc

    def refresh(self) -> None:
        """Read what was appended to any cache file since the last look."""
        with self._lock:
            for path in self.files():
                self._read_new(path)

    def _read_new(self, path: Path) -> None:
        start = self._offsets.get(path.name, 0)
        try:
            with open(path, "rb") as fh:
                fh.seek(start)
                data = fh.read()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise storage_error("judge cache", path, "read", exc) from exc
        end = data.rfind(b"\n")
        if end < 0:
            return  # nothing complete yet (or a partial line left by a crash)
        pos = start
        for raw in data[: end + 1].split(b"\n")[:-1]:
            if raw.strip():
                try:
                    rec = json.loads(raw)
                    self._index.setdefault(str(rec["key"]), rec["value"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise RewardStorageError(
                        f"judge cache is corrupt: the line at byte {pos} is not a cache record ({type(exc).__name__})",
                        where=path,
                        expected="one JSON object {key, value} per line; move the file away to start without it",
                    ) from exc
            pos += len(raw) + 1
        self._offsets[path.name] = start + end + 1

    def get(self, key: str, *, refresh: bool = True) -> dict[str, Any] | None:
        with self._lock:
            value = self._index.get(key)
        if value is None and refresh:
            self.refresh()
            with self._lock:
                value = self._index.get(key)
        return value

    # -- writing: one file per process --
    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store durably (written and fsynced) before returning; first writer wins on lookup."""
        line = (json.dumps({"key": key, "value": value, "created": time.time()}, ensure_ascii=False,
                           sort_keys=True) + "\n").encode("utf-8")
        with self._wlock:  # not the index lock: lookups go on while this waits for the disk
            try:
                if self._fd < 0:
                    self._fd = _open_append(self.own)
                _write_all(self._fd, line)
                os.fsync(self._fd)  # durable, and where NFS reports ENOSPC/EDQUOT
            except OSError as exc:
                raise storage_error("judge cache", self.own, "write a paid judgment", exc) from exc
        with self._lock:
            self._index.setdefault(key, value)

    # -- claims --
    def _claim_path(self, key: str) -> Path:
        return self.claims / f"{key}.claim"

    def claim(self, key: str, lease_s: float) -> bool:
        """Take the right to pay for ``key`` for ``lease_s`` seconds; False if a live holder has it."""
        path = self._claim_path(key)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                if not self._expired(path):
                    return False
                stale = path.with_name(f"{path.name}.stale.{self.owner}")
                try:
                    os.rename(path, stale)  # only one process wins this rename
                    os.unlink(stale)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise storage_error("judge cache claim", path, "take over an expired claim", exc) from exc
                continue
            except OSError as exc:
                raise storage_error("judge cache claim", path, "create", exc) from exc
            try:
                _write_all(fd, json.dumps({"owner": self.owner, "expires": time.time() + lease_s}).encode())
            except OSError as exc:
                raise storage_error("judge cache claim", path, "write", exc) from exc
            finally:
                os.close(fd)
            return True
        return False

    def _expired(self, path: Path) -> bool:
        try:
            data = json.loads(path.read_bytes() or b"{}")
            return float(data["expires"]) < time.time()
        except FileNotFoundError:
            return True
        except (ValueError, KeyError, TypeError):
            # being written right now, or garbage: judge by age instead
            try:
                return path.stat().st_mtime < time.time() - 3600
            except FileNotFoundError:
                return True

    def release(self, key: str) -> None:
        path = self._claim_path(key)
        try:
            data = json.loads(path.read_bytes() or b"{}")
            if data.get("owner") == self.owner:
                path.unlink()
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            pass
        except OSError as exc:
            raise storage_error("judge cache claim", path, "remove", exc) from exc

    def __len__(self) -> int:
        self.refresh()
        with self._lock:
            return len(self._index)

    def close(self) -> None:
        with self._wlock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _open_append(path: Path) -> int:
    """O_APPEND descriptor on this writer's own file.

    A partial last line (a crashed earlier process with the same writer id, e.g. after a
    requeue) is cut off first; only this writer ever appends here and readers never consume
    an unterminated line, so nothing anyone read is lost.
    """
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        tail = os.pread(fd, min(size, 1 << 20), max(0, size - (1 << 20)))
        cut = tail.rfind(b"\n")
        os.ftruncate(fd, size - len(tail) + cut + 1 if cut >= 0 else 0)
    return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    written = 0
    while written < len(data):
        written += os.write(fd, view[written:])
