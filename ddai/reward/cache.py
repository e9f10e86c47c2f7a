"""Persistent judgment cache: a resumed or repeated job never pays for the same judgment twice.

SQLite in WAL mode, so many reward-worker processes on one node (and threads in each) can
read and write the same file safely. Only successful judgments are stored; a failure is
never cached, so it is retried by the next job instead of being replayed as a score.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Optional


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

    def get(self, key: str) -> Optional[dict[str, Any]]:
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

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM judgments").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
