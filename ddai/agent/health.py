"""Errors that would make training image-blind: logged, counted, and visible in the run's metrics.

WHY: a page that does not open used to become an observation message and the run went on
(0 images to the policy, NDCG 0, nobody told). Every such event is now an ERROR line in the
job log and one JSON line in ``$DDAI_AGENT_ERRORS_FILE`` (set by ``ddai.phase2.trainer`` for
every Ray worker); the trainer reads the count at each step and logs it to W&B
(``ddai/agent_image_errors``). A file, because agent-loop workers are separate Ray processes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

ENV = "DDAI_AGENT_ERRORS_FILE"
logger = logging.getLogger("ddai.agent")
_lock = threading.Lock()


class ImageBlindError(RuntimeError):
    """The agent would run without seeing images (no multimodal processor)."""


def record(kind: str, detail: str, **fields: object) -> None:
    """Log an ERROR and append one event line (never raises: bookkeeping must not kill a rollout)."""
    logger.error("ddai agent %s: %s", kind, detail)
    path = os.environ.get(ENV)
    if not path:
        return
    line = json.dumps({"kind": kind, "detail": detail, "time": round(time.time(), 3), "pid": os.getpid(), **fields},
                      default=str)
    try:
        with _lock, open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    except OSError as exc:
        logger.error("ddai agent: cannot write %s: %s", path, exc)


def count(path: str | Path | None, kind: str | None = None) -> int:
    """Events recorded so far (all kinds, or one)."""
    if not path:
        return 0
    try:
        with open(path, encoding="utf-8") as fh:
            return sum(1 for line in fh if line.strip() and (kind is None or json.loads(line).get("kind") == kind))
    except FileNotFoundError:
        return 0
