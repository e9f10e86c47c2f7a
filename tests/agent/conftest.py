"""Fixtures for the agent tests: a generated page corpus, FAKE search/OpenAI/Gemini servers, fast retries."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

for _dir in ("fakes", "agent"):  # loopback fakes; the tiny in-process tokenizer
    _path = str(Path(__file__).resolve().parents[1] / _dir)
    if _path not in sys.path:
        sys.path.insert(0, _path)

from fake_servers import FAST_RETRY, FakeSearch, make_corpus

DECKS = {"2": 8, "6391": 3}


@pytest.fixture(autouse=True)
def _test_keys(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "test-gemini-key-000")
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-key-000")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus") / "img", DECKS)


@pytest.fixture
def fake_search(corpus):
    with FakeSearch(corpus, DECKS) as server:
        yield server


@pytest.fixture
def agent_kwargs(fake_search, fake_openai, corpus, tmp_path):
    """AgentConfig kwargs pointing at the fakes (as the YAML / rollout.custom would)."""
    return {
        "search_url": fake_search.url + "/search",
        "search_retry": dict(FAST_RETRY),
        "search_batch_window_s": 0.01,
        "image_root": str(corpus),
        "crops_dir": str(tmp_path / "crops"),
        "generator": {"base_url": fake_openai.url + "/v1", "retry": dict(FAST_RETRY)},
        "allow_text_only": True,  # the tiny tokenizer has no image processor (tests only)
    }
