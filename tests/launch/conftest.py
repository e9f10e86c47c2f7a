"""Helpers of the launch tests: run ``python -m ddai.launch`` the way users do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]


def launch(*args: str, cwd: Path, env: dict[str, str] | None = None, python: str | None = None,
           timeout: int = 600) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([python or sys.executable, "-m", "ddai.launch", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def ddai():
    return SimpleNamespace(launch=launch, repo=REPO)
