"""Persistent judgment cache: a resumed or repeated job never pays for the same judgment twice.

SQLite in WAL mode, so many reward-worker processes on one node (and threads in each) can
read and write the same file safely. Only successful judgments are stored; a failure is
never cached, so it is retried by the next job instead of being replayed as a score.

Claims (leases) stop two processes from paying for the same judgment at the same moment
(identical rollouts of one GRPO group often land on different reward workers): the first
process claims the key, the others wait for its result; a claim whose holder died expires.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any


def response_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(prompt_id: str, response_sha: str, judge_model: str, prompt_version: str, mode: str) -> str:
    """(prompt id, response hash, judge model, prompt version[, mode]) -> one stable key."""
    raw = "\x1f".join([prompt_id, response_sha, judge_model, prompt_version, mode])
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class JudgeCache:
    """Key -> JSON value, shared across processes through one SQLite file."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS judgments (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
        )
        self._conn.execute("CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL)")
        self.owner = f"{os.getpid()}-{id(self)}"

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM judgments WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        """First writer wins: a concurrent duplicate never replaces a stored judgment."""
        data = json.dumps(value, ensure_ascii=False, sort_keys=True)
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO judgments (key, value, created) VALUES (?, ?, ?)", (key, data, time.time())
            )

    def claim(self, key: str, lease_s: float) -> bool:
        """Take the right to pay for ``key`` for ``lease_s`` seconds; False if another live holder has it."""
        now = time.time()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute("SELECT owner, expires FROM claims WHERE key = ?", (key,)).fetchone()
                if row is not None and row[0] != self.owner and row[1] > now:
                    self._conn.execute("COMMIT")
                    return False
                self._conn.execute(
                    "INSERT OR REPLACE INTO claims (key, owner, expires) VALUES (?, ?, ?)", (key, self.owner, now + lease_s)
                )
                self._conn.execute("COMMIT")
                return True
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def release(self, key: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, self.owner))

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM judgments").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
