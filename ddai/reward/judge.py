"""The Gemini judge (google-genai SDK): one bounded, cached, costed judgment per rollout.

The prompt, its answer schema and its generation settings come from the judge mode
(``ddai.reward.prompts``): ``production_text`` (default, the users' text judge),
``trajectory_vlm`` (page images + the whole response) or ``answer``.
A judgment that fails after bounded retries comes back with ``failed=True`` and the error;
it is never cached, so a later job pays for it again instead of replaying a fake score.
A page image that cannot be read fails the judgment (counted in ``image_errors``): it is
never silently left out, because the judge would then grade without the evidence.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddai.clients.pricing import Usage, cost_usd, gemini_usage
from ddai.clients.retry import CallFailed, RetryableResult, call_with_retry
from ddai.clients.secrets import safe_text
from ddai.reward.cache import JudgeCache, cache_key, response_hash
from ddai.reward.config import RewardConfig
from ddai.reward.prompts import SUBSCORE_KEYS, JudgePrompt
from ddai.reward.storage import cause


@dataclass
class JudgeRequest:
    prompt_id: str  # dataset id ("train_2"): part of the cache key
    query: str
    response: str  # the searcher's whole response (trajectory)
    generated_answer: str
    reference_answer: str
    retrieved_images: list[str] = field(default_factory=list)  # file paths, viewing order
    reference_images: list[str] = field(default_factory=list)


@dataclass
class Judgment:
    score: float | None  # None when failed
    subscores: dict[str, float | None]
    usage: Usage
    cost_usd: float
    latency_s: float
    attempts: int
    cache_hit: bool
    failed: bool
    error: str | None
    image_errors: int = 0  # page images that could not be read (the judgment then failed, unpaid)


class ImageUnreadable(Exception):
    """A page image the trajectory judge needs cannot be opened: a configuration or data error."""


def _clip(value: Any) -> float:
    """float() as the reference does (numbers, numeric strings), clipped to [0, 1]; NaN is unusable."""
    number = float(value)
    if math.isnan(number):
        raise ValueError("NaN score")
    return min(1.0, max(0.0, number))


def parse_verdict(text: str, prompt: JudgePrompt) -> tuple[float, dict[str, float | None]]:
    """Judge JSON text -> (score, subscores). Raises ValueError on anything unusable.

    The reference scored an unparseable reply 0.0 as if it were a judgment; here it is
    retried and, if it stays unusable, the judgment fails (and is handled by the failure policy).
    """
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("judge reply is not a JSON object")  # noqa: TRY004 - one error type for "unusable"
    if prompt.score_field == "final_score":
        subs: dict[str, float | None] = {k: _clip(data[k]) for k in SUBSCORE_KEYS}
        return _clip(data["final_score"]), subs
    score = _clip(data[prompt.score_field])
    return score, {"answer_accuracy": score, "visual_grounding": None, "reasoning_consistency": None}


def _api_key() -> str:
    key = os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
    if not key:
        from ddai.errors import ConfigError

        raise ConfigError("no Gemini API key in the environment", expected="GEMINI_API_KEY or GOOGLE_API_KEY set")
    return key


class GeminiJudge:
    """Judges rollouts with a per-process concurrency limit, retries, a cache and cost accounting."""

    def __init__(self, config: RewardConfig, cache: JudgeCache | None = None):
        self.config = config
        self.cache = cache if cache is not None else (JudgeCache(config.cache_path) if config.cache_path else None)
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # per event loop
        self._semaphores: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._inflight: dict[str, asyncio.Future] = {}
        self.paid_attempts = 0  # HTTP calls sent (a retried judgment counts each attempt)
        self._gen_config: Any = None
        self.prompt = config.prompt
        # Instrumentation: called once per judgment that missed the cache with True (this
        # process pays) or False (another process is paying; this one waits). Tests use it to
        # synchronise on events instead of time.
        self.on_claim: Any = None

    # -- clients are bound to the event loop that created them (aiohttp sessions are) --
    def _loop_key(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def _client(self) -> Any:
        key = self._loop_key()
        client = self._clients.get(key)
        if client is None:
            from google import genai
            from google.genai import types

            http_options = types.HttpOptions(
                base_url=self.config.judge_base_url,
                api_version=self.config.judge_api_version,
                timeout=int(self.config.retry.timeout_s * 1000),  # milliseconds
                retry_options=None,  # retries are ours (counted, bounded)
            )
            client = genai.Client(api_key=_api_key(), http_options=http_options).aio
            self._clients[key] = client
        return client

    def _semaphore(self) -> asyncio.Semaphore:
        key = self._loop_key()
        sem = self._semaphores.get(key)
        if sem is None:
            sem = self._semaphores[key] = asyncio.Semaphore(self.config.concurrency)
        return sem

    def key_for(self, req: JudgeRequest) -> str:
        text = req.response if self.prompt.judges_whole_response else req.generated_answer
        return cache_key(
            req.prompt_id, response_hash(text), self.config.judge_model, self.prompt.version, self.prompt.mode
        )

    async def judge(self, req: JudgeRequest) -> Judgment:
        key = self.key_for(req)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return _from_cache(hit)
        # Single flight: identical requests in flight in this process share one paid call.
        pending = self._inflight.get(key)
        if pending is not None:
            shared: Judgment = await asyncio.shield(pending)
            if shared.failed:
                return shared
            return Judgment(**{**shared.__dict__, "cache_hit": True, "cost_usd": 0.0, "usage": Usage(),
                               "attempts": 0, "latency_s": 0.0})
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        claimed = False
        try:
            if self.cache is not None:
                claimed, hit = await self._claim_or_wait(key)
                if hit is not None:
                    result = _from_cache(hit)
                    future.set_result(result)
                    return result
            result = await self._judge_uncached(req)
            if not result.failed and self.cache is not None:
                # stored (fsynced) before anyone writes its log line; the disk wait is off the loop
                await asyncio.get_running_loop().run_in_executor(None, self.cache.put, key, _to_cache(result))
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved
            raise
        finally:
            if claimed and self.cache is not None:
                self.cache.release(key)
            self._inflight.pop(key, None)

    async def _claim_or_wait(self, key: str) -> tuple[bool, dict | None]:
        """Claim ``key`` across processes, or wait until its holder stores the result.

        Returns (claimed, cached value). A holder that fails releases its claim; the waiter
        then claims and pays itself. The lease outlives the holder's whole retry budget.
        """
        assert self.cache is not None
        lease = self.config.retry.total_budget_s + self.config.retry.timeout_s + 30.0
        delay = 0.05
        told = False
        while True:
            if self.cache.claim(key, lease):
                if not told and self.on_claim is not None:
                    self.on_claim(key, True)
                hit = self.cache.get(key)  # stored between our lookup and our claim?
                return True, hit
            if not told and self.on_claim is not None:
                self.on_claim(key, False)
            told = True
            await asyncio.sleep(delay)
            delay = min(1.0, delay * 1.5)
            hit = self.cache.get(key)
            if hit is not None:
                return False, hit

    async def _judge_uncached(self, req: JudgeRequest) -> Judgment:
        prompt = self.prompt
        try:
            if prompt.uses_images and (req.retrieved_images or req.reference_images):
                # reading page images is file I/O: keep it off the event loop
                contents = await asyncio.get_running_loop().run_in_executor(None, self._contents, req)
            else:
                contents = self._contents(req)
        except ImageUnreadable as exc:
            return Judgment(score=None, subscores={k: None for k in SUBSCORE_KEYS}, usage=Usage(), cost_usd=0.0,
                            latency_s=0.0, attempts=0, cache_hit=False, failed=True,
                            error=safe_text(f"image_unreadable: {exc.args[0]}"), image_errors=int(exc.args[1]))
        if self._gen_config is None:
            self._gen_config = self._generation_config()
        gen_config = self._gen_config
        usage_total = Usage()
        start = time.monotonic()

        async def attempt(_: int) -> tuple[float, dict]:
            nonlocal usage_total
            async with self._semaphore():
                self.paid_attempts += 1
                resp = await self._client().models.generate_content(
                    model=self.config.judge_model, contents=contents, config=gen_config
                )
            usage_total = usage_total.add(gemini_usage(getattr(resp, "usage_metadata", None)))
            try:
                return parse_verdict(resp.text or "", prompt)
            except (ValueError, KeyError, TypeError) as exc:
                raise RetryableResult(f"unusable judge reply: {exc}") from exc

        try:
            outcome = await call_with_retry(attempt, self.config.retry)
        except CallFailed as exc:
            return Judgment(
                score=None,
                subscores={k: None for k in SUBSCORE_KEYS},
                usage=usage_total,
                cost_usd=cost_usd(usage_total, self.config.prices),
                latency_s=time.monotonic() - start,
                attempts=exc.attempts,
                cache_hit=False,
                failed=True,
                error=safe_text(str(exc)),
            )
        score, subs = outcome.value  # type: ignore[misc]
        return Judgment(
            score=score,
            subscores=subs,
            usage=usage_total,
            cost_usd=cost_usd(usage_total, self.config.prices),
            latency_s=outcome.elapsed_s,
            attempts=outcome.attempts,
            cache_hit=False,
            failed=False,
            error=None,
        )

    def _generation_config(self) -> Any:
        from google.genai import types

        # What is not set here is not sent: the SDK / model default applies (as in the reference).
        cfg: dict[str, Any] = {"response_mime_type": "application/json", "response_schema": self.prompt.schema}
        temperature = self.config.judge_temperature
        if temperature is None:
            temperature = self.prompt.temperature
        if temperature is not None:
            cfg["temperature"] = temperature
        if self.config.judge_max_output_tokens:
            cfg["max_output_tokens"] = self.config.judge_max_output_tokens
        level = self.config.judge_thinking_level or (
            self.prompt.thinking_level if self.config.judge_thinking_budget is None else None
        )
        if level:
            cfg["thinking_config"] = types.ThinkingConfig(thinking_level=level.upper())
        elif self.config.judge_thinking_budget is not None:
            cfg["thinking_config"] = types.ThinkingConfig(thinking_budget=self.config.judge_thinking_budget)
        return types.GenerateContentConfig(**cfg)

    def _contents(self, req: JudgeRequest) -> list[Any]:
        from google.genai import types

        prompt = self.prompt
        parts: list[Any] = []
        n_ret = n_ref = 0
        if prompt.uses_images:
            budget = self.config.max_judge_images
            failed: list[str] = []
            for kind, paths in (("retrieved", req.retrieved_images), ("reference", req.reference_images)):
                for path in paths:
                    if n_ret + n_ref >= budget:
                        break
                    try:
                        data = Path(path).read_bytes()
                    except OSError as exc:
                        failed.append(f"{path}: {cause(exc)}")
                        continue
                    parts.append(types.Part.from_bytes(data=data, mime_type=_mime(path)))
                    if kind == "retrieved":
                        n_ret += 1
                    else:
                        n_ref += 1
            if failed:
                raise ImageUnreadable("; ".join(failed), len(failed))
        text = prompt.text.format(
            image_description=f"[Retrieved: {n_ret}, Reference: {n_ref}]",
            query=req.query,
            reference_answer=req.reference_answer,
            generated_answer=req.generated_answer,
            response=req.response,
        )
        parts.append(text)
        return parts

    async def aclose(self) -> None:
        for client in list(self._clients.values()):
            try:
                await client.aclose()
            except Exception:  # noqa: BLE001 - closing a client of a finished loop
                pass
        self._clients.clear()


def _mime(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    return {".png": "image/png", ".webp": "image/webp"}.get(ext, "image/jpeg")


def _to_cache(j: Judgment) -> dict[str, Any]:
    return {"score": j.score, "subscores": j.subscores, "usage": j.usage.__dict__, "cost_usd": j.cost_usd,
            "latency_s": j.latency_s}


def _from_cache(data: dict[str, Any]) -> Judgment:
    # A cache hit costs nothing now; the original usage is not billed again.
    return Judgment(
        score=data["score"],
        subscores=data["subscores"],
        usage=Usage(),
        cost_usd=0.0,
        latency_s=0.0,
        attempts=0,
        cache_hit=True,
        failed=False,
        error=None,
    )
