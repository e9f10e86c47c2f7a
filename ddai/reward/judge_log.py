"""The judge log: one JSON line per scored rollout, one file per writer process.

``log_path`` names the log (``logs/gspo_gemini_output.jsonl``); each reward-worker process
writes ``<dir>/<stem>.<host>.<job>.<pid><suffix>`` (e.g.
``logs/gspo_gemini_output.node07.81234.5512.jsonl``) and nothing else. Readers take every
file matching ``<stem>.*<suffix>`` in that directory (plus ``<stem><suffix>`` itself, written
by older versions): see :func:`log_files`. One writer per file means lines never interleave,
even on NFS across hosts; each line is one ``os.write`` so a crash loses at most the line being
written (readers skip a partial last line).

A write that fails (disk full, permission, I/O error) raises :class:`RewardStorageError`
naming the file and the cause: the run must stop rather than lose lines silently.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from ddai.reward.storage import storage_error, writer_id

# The report helper relies on these keys; every record carries all of them.
LOG_KEYS = (
    "uid", "dataset_id", "sample_idx", "step", "query", "generated_answer", "reference_answer",
    "retrieved_basenames", "reference_basenames", "judge_score", "judge_subscores", "ndcg",
    "final_score", "latency_s", "tokens", "cost_usd", "cache_hit", "judge_failed", "error",
    "timestamp", "judge_model", "prompt_version",
)


def writer_path(log_path: str | os.PathLike[str], writer: str | None = None) -> Path:
    """The file this process writes for ``log_path``: ``<stem>.<host>.<job>.<pid><suffix>``."""
    base = Path(log_path)
    suffix = base.suffix or ".jsonl"
    stem = base.name[: -len(base.suffix)] if base.suffix else base.name
    return base.with_name(f"{stem}.{writer or writer_id()}{suffix}")


def log_files(log_path: str | os.PathLike[str]) -> list[Path]:
    """Every file of the judge log named by ``log_path`` (all hosts, jobs and processes), sorted."""
    base = Path(log_path)
    suffix = base.suffix or ".jsonl"
    stem = base.name[: -len(base.suffix)] if base.suffix else base.name
    if not base.parent.is_dir():
        return []
    found = sorted(base.parent.glob(f"{stem}.*{suffix}"))
    return ([base] if base.is_file() else []) + [p for p in found if p != base]


class JudgeLog:
    """This process's file of the judge log; safe for many threads."""

    def __init__(self, log_path: str | os.PathLike[str], *, writer: str | None = None):
        self.path = writer_path(log_path, writer)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise storage_error("judge log", self.path, "open for appending", exc) from exc

    def write(self, record: dict[str, Any]) -> None:
        missing = [k for k in LOG_KEYS if k not in record]
        if missing:
            raise ValueError(f"judge log record lacks keys {missing}")
        line = (json.dumps(record, ensure_ascii=False, sort_keys=True, default=str) + "\n").encode("utf-8")
        with self._lock:
            try:
                view = memoryview(line)
                written = os.write(self._fd, view)
                while written < len(line):  # a regular file takes the whole buffer; loop for safety
                    written += os.write(self._fd, view[written:])
            except OSError as exc:
                raise storage_error("judge log", self.path, "append a line", exc) from exc

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
