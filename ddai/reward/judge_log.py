"""Append-only JSON Lines log of every judged rollout (``logs/gspo_gemini_output.jsonl``).

Each record is written with ONE ``os.write`` of the whole line to an ``O_APPEND`` file
descriptor: POSIX appends are atomic with respect to the file offset, so lines from many
threads and processes never interleave, and nothing is buffered in Python (a crash loses at
most the line being written, never a flushed one). ddai-report reads this file.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

# The report helper relies on these keys; every record carries all of them.
LOG_KEYS = (
    "uid", "dataset_id", "sample_idx", "step", "query", "generated_answer", "reference_answer",
    "retrieved_basenames", "reference_basenames", "judge_score", "judge_subscores", "ndcg",
    "final_score", "latency_s", "tokens", "cost_usd", "cache_hit", "judge_failed", "error",
    "timestamp", "judge_model", "prompt_version",
)


class JudgeLog:
    """One JSON object per line; safe for concurrent writers (threads and processes)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        missing = [k for k in LOG_KEYS if k not in record]
        if missing:
            raise ValueError(f"judge log record lacks keys {missing}")
        line = (json.dumps(record, ensure_ascii=False, sort_keys=True, default=str) + "\n").encode("utf-8")
        with self._lock:
            view = memoryview(line)
            written = os.write(self._fd, view)
            # A regular file on a local disk takes the whole buffer; loop only for safety.
            while written < len(line):
                written += os.write(self._fd, view[written:])

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
