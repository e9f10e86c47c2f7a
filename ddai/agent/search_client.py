"""Client for the users' search server: POST [{query, id, request_idx}] -> [{request_idx, results}].

Queries from rollouts running at the same time are gathered into one POST (up to
``search_batch_size``, waiting at most ``search_batch_window_s``), because the server is
built for batches. Each POST has a timeout and bounded retries; a batch that still fails
raises ``SearchFailed`` for every query in it, which the agent turns into an observation.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ddai.agent.config import AgentConfig
from ddai.clients.retry import CallFailed, call_with_retry


class SearchFailed(Exception):
    pass


_DECK_RE = re.compile(r"(\d+)$")


def deck_id(dataset_id: str) -> str:
    """'train_2' -> '2' (the digits at the end of the dataset id; the server searches that deck)."""
    m = _DECK_RE.search(str(dataset_id))
    return m.group(1) if m else "-1"


@dataclass
class _Pending:
    query: str
    deck: str
    future: asyncio.Future


class SearchClient:
    """Batched, retried search calls; one instance per process, state per event loop."""

    def __init__(self, config: AgentConfig):
        self.config = config
        self._state: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.posts = 0  # HTTP POSTs sent (attempts)

    def _loop_state(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        state = self._state.get(loop)
        if state is None:
            import httpx

            state = {"client": httpx.AsyncClient(timeout=self.config.search_retry.timeout_s), "queue": [],
                     "flusher": None, "next_idx": 0}
            self._state[loop] = state
        return state

    def resolve(self, image_file: str) -> str:
        """Server path -> local path (``image_root``/basename when configured)."""
        if self.config.image_root:
            return str(Path(self.config.image_root) / Path(image_file).name)
        return image_file

    async def search(self, query: str, dataset_id: str) -> list[str]:
        """Image files for ``query`` within the deck of ``dataset_id`` (ranked, server order)."""
        state = self._loop_state()
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        state["queue"].append(_Pending(query=query, deck=deck_id(dataset_id), future=future))
        if len(state["queue"]) >= self.config.search_batch_size:
            self._flush(state)
        elif state["flusher"] is None:
            state["flusher"] = asyncio.get_running_loop().call_later(self.config.search_batch_window_s, self._flush, state)
        return await future

    def _flush(self, state: dict[str, Any]) -> None:
        if state["flusher"] is not None:
            state["flusher"].cancel()
            state["flusher"] = None
        while state["queue"]:
            batch = state["queue"][: self.config.search_batch_size]
            del state["queue"][: len(batch)]
            asyncio.ensure_future(self._post(state, batch))

    async def _post(self, state: dict[str, Any], batch: list[_Pending]) -> None:
        payload = []
        by_idx: dict[int, _Pending] = {}
        for item in batch:
            idx = state["next_idx"]
            state["next_idx"] += 1
            by_idx[idx] = item
            payload.append({"query": item.query, "id": item.deck, "request_idx": idx})

        async def attempt(_: int) -> Any:
            self.posts += 1
            resp = await state["client"].post(self.config.search_url, json=payload)
            if resp.status_code >= 400:
                err = RuntimeError(f"search server answered HTTP {resp.status_code}")
                err.status_code = resp.status_code  # type: ignore[attr-defined]
                raise err
            return resp.json()

        try:
            outcome = await call_with_retry(attempt, self.config.search_retry)
            results = {int(r["request_idx"]): [self.resolve(x["image_file"]) for x in r.get("results", [])]
                       for r in outcome.value}
        except (CallFailed, KeyError, TypeError, ValueError) as exc:
            for item in by_idx.values():
                if not item.future.done():
                    item.future.set_exception(SearchFailed(str(exc)))
            return
        for idx, item in by_idx.items():
            if not item.future.done():
                item.future.set_result(results.get(idx, []))

    async def aclose(self) -> None:
        for state in list(self._state.values()):
            await state["client"].aclose()
        self._state = weakref.WeakKeyDictionary()


