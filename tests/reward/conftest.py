"""Fixtures for the reward tests: FAKE Gemini/OpenAI servers on loopback, test API keys, fast retries."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

for _dir in ("fakes", "agent"):  # loopback fakes; the tiny in-process tokenizer
    _path = str(Path(__file__).resolve().parents[1] / _dir)
    if _path not in sys.path:
        sys.path.insert(0, _path)

from fake_servers import FAST_RETRY


@pytest.fixture(autouse=True)
def _test_keys(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "test-gemini-key-000")
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-key-000")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("GOOGLE_GEMINI_BASE_URL", raising=False)


@pytest.fixture
def reward_kwargs(fake_gemini, tmp_path):
    return {
        "judge_base_url": fake_gemini.url,
        "retry": dict(FAST_RETRY),
        "cache_path": str(tmp_path / "cache"),
        "log_path": str(tmp_path / "logs" / "gspo_gemini_output.jsonl"),
        "image_root": str(tmp_path / "img"),
    }
