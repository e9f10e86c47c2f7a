"""Fixtures shared by every test area.

In CI (environment variable ``CI`` set) a missing Slurm cluster is an ERROR, never a skip:
the Slurm tests are part of what CI proves. Elsewhere they skip with the command to run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "fakes"))

from slurm_support import UP_COMMAND, cluster_problem, job_state, sbatch, wait_done, wait_for  # noqa: E402


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """Require the local cluster: fail loudly in CI, skip elsewhere."""
    problem = cluster_problem()
    if problem is None:
        return
    message = f"local Slurm cluster is not up ({problem}); start it with: {UP_COMMAND}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def slurm_tmp(tmp_path: Path, slurm_cluster: None) -> Path:
    """A scratch directory for job scripts and logs (same machine, so slurmd sees it)."""
    return tmp_path


@pytest.fixture
def slurm(slurm_cluster: None) -> SimpleNamespace:
    """The cluster helpers of ``slurm_support``, for tests that prefer a fixture."""
    return SimpleNamespace(sbatch=sbatch, job_state=job_state, wait_for=wait_for, wait_done=wait_done)


@pytest.fixture
def fake_gemini():
    """A FAKE Gemini API on loopback (the real google-genai client talks to it)."""
    from fake_servers import FakeGemini

    with FakeGemini() as server:
        yield server


@pytest.fixture
def fake_openai():
    """A FAKE OpenAI API on loopback (the real openai client talks to it)."""
    from fake_servers import FakeOpenAI

    with FakeOpenAI() as server:
        yield server
