"""Search client against the FAKE search server: the users' POST contract, batching, retries."""

import asyncio
import threading

from ddai.agent.config import AgentConfig
from ddai.agent.search_client import SearchClient, SearchFailed, deck_id


def _client(agent_kwargs, **over):
    return SearchClient(AgentConfig.from_kwargs({**agent_kwargs, **over}))


def _search_all(client, queries):
    async def main():
        try:
            return await asyncio.gather(*(client.search(q, d) for q, d in queries), return_exceptions=True)
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_deck_id():
    assert deck_id("train_2") == "2" and deck_id("6391") == "6391" and deck_id("x") == "-1"


def test_contract_and_one_post_for_concurrent_queries(fake_search, agent_kwargs, corpus):
    results = _search_all(_client(agent_kwargs), [(f"page {i}", "train_2") for i in range(1, 9)] + [("q", "train_6391")])
    assert fake_search.batch_sizes == [9]
    body = fake_search.requests[0]["body"]
    assert body[0] == {"query": "page 1", "id": "2", "request_idx": body[0]["request_idx"]}
    assert len({r["request_idx"] for r in body}) == 9
    assert results[2][0] == str(corpus / "2_3.jpg")  # server path mapped into image_root
    assert [r.rsplit("/", 1)[1] for r in results[8]] == ["6391_1.jpg", "6391_2.jpg", "6391_3.jpg"]


def test_batches_are_capped(fake_search, agent_kwargs):
    _search_all(_client(agent_kwargs, search_batch_size=4), [("q", "train_2")] * 10)
    assert sorted(fake_search.batch_sizes) == [2, 4, 4]


def test_server_errors_are_retried(fake_search, agent_kwargs):
    fake_search.script.extend([("status", 503), ("status", 500)])
    (res,) = _search_all(_client(agent_kwargs), [("page 2", "train_2")])
    assert res[0].endswith("2_2.jpg") and fake_search.calls == 3


def test_persistent_failure_raises_for_every_query_of_the_batch(fake_search, agent_kwargs):
    fake_search.decide = lambda n, body: ("status", 503)
    res = _search_all(_client(agent_kwargs), [("a", "train_2"), ("b", "train_2")])
    assert all(isinstance(r, SearchFailed) for r in res)
    assert fake_search.calls == agent_kwargs["search_retry"]["max_attempts"]


def test_timeouts_are_bounded(fake_search, agent_kwargs):
    # The first request is held until the client has already given up on it (no race between
    # a scripted sleep and the timeout): the answer can only come from the retry.
    released = threading.Event()
    fake_search.script.append(("hold", released))
    retry = {**agent_kwargs["search_retry"], "timeout_s": 0.3}
    try:
        (res,) = _search_all(_client(agent_kwargs, search_retry=retry), [("page 5", "train_2")])
    finally:
        released.set()
    assert res[0].endswith("2_5.jpg") and fake_search.calls == 2
