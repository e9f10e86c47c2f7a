"""Bounded retries for paid API calls: exponential backoff with jitter, a count and a time budget.

The SDKs' own retry loops are turned off so that each paid attempt is visible here: a
failure after the last attempt is reported to the caller (who records it as a failure),
never swallowed into a silent score.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ddai.clients.secrets import safe_text
from ddai.clients.settings import RetryPolicy
from ddai.errors import DdaiError

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class CallFailed(Exception):
    """A paid call that did not produce a usable result after its bounded retries."""

    def __init__(self, message: str, *, attempts: int, retryable: bool):
        super().__init__(message)
        self.attempts = attempts
        self.retryable = retryable


class RetryableResult(Exception):
    """Raised by a call whose HTTP 200 answer is unusable but worth another try (e.g. empty text)."""


@dataclass
class Outcome:
    value: object
    attempts: int
    elapsed_s: float


def status_of(exc: BaseException) -> int | None:
    """HTTP status carried by an SDK error (google-genai: .code; openai: .status_code)."""
    for attr in ("status_code", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    return None


def is_retryable(exc: BaseException) -> bool:
    """429/5xx/408, timeouts and connection errors are transient; other errors are not."""
    if isinstance(exc, RetryableResult):
        return True
    status = status_of(exc)
    if status is not None:
        return status in RETRYABLE_STATUS
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, ConnectionError)):
        return True
    name = type(exc).__name__.lower()
    module = type(exc).__module__ or ""
    if "timeout" in name or "connect" in name or "disconnect" in name:
        return True
    return module.startswith(("aiohttp", "httpx", "httpcore")) and "protocol" in name


def describe(exc: BaseException) -> str:
    """One-line error text, keys from the environment masked, then cut (see ``ddai.clients.secrets``)."""
    status = status_of(exc)
    text = f"{type(exc).__name__}" + (f"[{status}]" if status else "") + f": {exc}"
    return safe_text(text)  # masks every key BEFORE cutting


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> float:
    """Delay before attempt ``attempt + 1`` (attempt counts from 1): capped exponential + jitter."""
    rng = rng or random
    base = min(policy.max_delay_s, policy.initial_delay_s * (2 ** (attempt - 1)))
    return base + rng.uniform(0.0, policy.jitter_s)


async def call_with_retry(
    attempt_fn: Callable[[int], Awaitable[T]],
    policy: RetryPolicy,
    *,
    on_error: Callable[[int, BaseException], None] | None = None,
) -> Outcome:
    """Run ``attempt_fn(attempt_no)`` until it succeeds, fails permanently, or the bounds run out.

    Each attempt is cut at ``policy.timeout_s``. No attempt starts after ``total_budget_s``
    and the sleep before it is shortened so the budget holds.
    """
    start = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            value = await asyncio.wait_for(attempt_fn(attempt), timeout=policy.timeout_s)
            return Outcome(value=value, attempts=attempt, elapsed_s=time.monotonic() - start)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit, DdaiError)):
                raise  # setup mistakes (e.g. no API key) are not judgments that failed
            if on_error is not None:
                on_error(attempt, exc)
            retryable = is_retryable(exc)
            elapsed = time.monotonic() - start
            if not retryable or attempt >= policy.max_attempts or elapsed >= policy.total_budget_s:
                reason = "not retryable" if not retryable else f"gave up after {attempt} attempt(s), {elapsed:.1f}s"
                raise CallFailed(f"{describe(exc)} ({reason})", attempts=attempt, retryable=retryable) from exc
            delay = min(backoff_delay(policy, attempt), max(0.0, policy.total_budget_s - elapsed))
            await asyncio.sleep(delay)
