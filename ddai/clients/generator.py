"""The frozen answer generator (GPT-5-mini through the official openai SDK).

After the searcher says ``<search_complete>true</search_complete>``, this model answers the
question from the pages the searcher collected. Reasoning models reject ``temperature`` and
spend part of the output budget on reasoning, so an empty or length-cut answer is treated
as a failure and retried with a larger budget (bounded), never passed on as an answer.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ddai.clients.pricing import Usage, cost_usd, openai_usage
from ddai.clients.retry import CallFailed, call_with_retry
from ddai.clients.settings import GeneratorConfig


@dataclass
class GeneratorResult:
    answer: str  # "" when failed
    usage: Usage
    cost_usd: float
    latency_s: float
    attempts: int
    final_budget: int
    failed: bool
    error: str | None


class TruncatedAnswer(Exception):
    """HTTP 200 but the answer is empty or cut by the token budget: retried with a larger budget.

    Deliberately not a transient error, so the retry loop hands it straight back and the
    next round raises the budget instead of paying again for the same cut answer.
    """


def _api_key() -> str:
    key = os.environ.get("OPENAI_API_KEY")
    if not key:
        from ddai.errors import ConfigError

        raise ConfigError("no OpenAI API key in the environment", expected="OPENAI_API_KEY set")
    return key


def _data_url(path: str) -> str | None:
    p = Path(path)
    if not p.is_file():
        return None
    mime = {".png": "image/png", ".webp": "image/webp", ".gif": "image/gif"}.get(p.suffix.lower(), "image/jpeg")
    return f"data:{mime};base64,{base64.b64encode(p.read_bytes()).decode('ascii')}"


class FrozenGenerator:
    """Answers questions from page images; bounded retries, budget escalation, cost accounting."""

    def __init__(self, config: GeneratorConfig):
        self.config = config
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # per event loop
        self._semaphores: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.paid_attempts = 0

    def _client(self) -> Any:
        key = asyncio.get_running_loop()
        client = self._clients.get(key)
        if client is None:
            from openai import AsyncOpenAI

            client = AsyncOpenAI(
                api_key=_api_key(),
                base_url=self.config.base_url,
                max_retries=0,  # retries are ours (counted, bounded)
                timeout=self.config.retry.timeout_s,
            )
            self._clients[key] = client
        return client

    def _semaphore(self) -> asyncio.Semaphore:
        key = asyncio.get_running_loop()
        if key not in self._semaphores:
            self._semaphores[key] = asyncio.Semaphore(self.config.concurrency)
        return self._semaphores[key]

    def select_images(self, originals: list[str], crops: list[str]) -> list[str]:
        """Existing files, originals first then crops, de-duplicated, at most max_images."""
        out: list[str] = []
        for path in [*originals, *crops]:
            if path and path not in out and Path(path).is_file():
                out.append(path)
            if len(out) >= self.config.max_images:
                break
        return out

    async def answer(self, question: str, image_paths: list[str]) -> GeneratorResult:
        cfg = self.config
        urls = await asyncio.get_running_loop().run_in_executor(
            None, lambda: [u for u in (_data_url(p) for p in image_paths) if u]
        )
        qtext = (question or "").strip() or "."
        usage_total = Usage()
        budget = cfg.max_output_tokens
        start = time.monotonic()
        attempts_total = 0
        last_error: str | None = None

        for round_no in range(cfg.max_budget_rounds + 1):

            async def attempt(_: int, budget: int = budget) -> str:
                nonlocal usage_total
                async with self._semaphore():
                    self.paid_attempts += 1
                    text, usage, truncated = await self._call(qtext, urls, budget)
                usage_total = usage_total.add(usage)
                if truncated or not text.strip():
                    raise TruncatedAnswer(f"empty or length-cut answer at max_output_tokens={budget}")
                return text.strip()

            # Transient errors retry at this budget; an empty/truncated answer moves to a larger one.
            try:
                outcome = await call_with_retry(attempt, cfg.retry)
            except CallFailed as exc:
                attempts_total += exc.attempts
                last_error = str(exc)
                if isinstance(exc.__cause__, TruncatedAnswer) and budget < cfg.max_output_tokens_cap:
                    budget = min(cfg.max_output_tokens_cap, int(budget * cfg.budget_growth))
                    continue
                break
            attempts_total += outcome.attempts
            return GeneratorResult(
                answer=str(outcome.value),
                usage=usage_total,
                cost_usd=cost_usd(usage_total, cfg.prices),
                latency_s=time.monotonic() - start,
                attempts=attempts_total,
                final_budget=budget,
                failed=False,
                error=None,
            )
        return GeneratorResult(
            answer="",
            usage=usage_total,
            cost_usd=cost_usd(usage_total, cfg.prices),
            latency_s=time.monotonic() - start,
            attempts=attempts_total,
            final_budget=budget,
            failed=True,
            error=last_error,
        )

    async def _call(self, qtext: str, urls: list[str], budget: int) -> tuple[str, Usage, bool]:
        cfg = self.config
        client = self._client()
        if cfg.api == "responses":
            content: list[dict[str, Any]] = [{"type": "input_image", "image_url": u} for u in urls]
            content.append({"type": "input_text", "text": f"Question: {qtext}"})
            kwargs: dict[str, Any] = {
                "model": cfg.model,
                "instructions": cfg.system_prompt,
                "input": [{"role": "user", "content": content}],
                "max_output_tokens": budget,
                "store": False,
            }
            if cfg.reasoning_effort:
                kwargs["reasoning"] = {"effort": cfg.reasoning_effort}
            resp = await client.responses.create(**kwargs)
            details = getattr(resp, "incomplete_details", None)
            truncated = getattr(resp, "status", None) == "incomplete" and getattr(details, "reason", None) in (
                "max_output_tokens",
                None,
            )
            return resp.output_text or "", openai_usage(getattr(resp, "usage", None)), truncated
        parts: list[dict[str, Any]] = [{"type": "text", "text": f"Question: {qtext}"}]
        parts += [{"type": "image_url", "image_url": {"url": u, "detail": "auto"}} for u in urls]
        kwargs = {
            "model": cfg.model,
            "messages": [{"role": "system", "content": cfg.system_prompt}, {"role": "user", "content": parts}],
            "max_completion_tokens": budget,
        }
        if cfg.reasoning_effort:
            kwargs["reasoning_effort"] = cfg.reasoning_effort
        resp = await client.chat.completions.create(**kwargs)
        choice = resp.choices[0] if resp.choices else None
        text = (choice.message.content if choice and choice.message else None) or ""
        truncated = choice is None or choice.finish_reason == "length"
        return text, openai_usage(getattr(resp, "usage", None)), truncated

    async def aclose(self) -> None:
        for client in list(self._clients.values()):
            try:
                await client.close()
            except Exception:  # noqa: BLE001
                pass
        self._clients.clear()
