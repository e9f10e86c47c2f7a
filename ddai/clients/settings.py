"""Settings shared by every paid-API client: retry bounds, prices, the frozen generator.

Pure dataclasses with no third-party imports so that config validation runs on a laptop.
They live below both the agent and the reward because both call the generator and retry
paid calls; neither layer may import the other.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ddai.errors import ConfigError

GENERATOR_APIS = ("responses", "chat")
REASONING_EFFORTS = ("minimal", "low", "medium", "high", "none", "xhigh")


@dataclass
class RetryPolicy:
    """Bounds for one paid call: attempts, backoff and a total time budget.

    Retried: HTTP 408/429/5xx, timeouts and connection errors. Anything else fails at once.
    The SDKs' own retry loops are switched off so every paid attempt is counted here.
    """

    max_attempts: int = 5
    initial_delay_s: float = 1.0
    max_delay_s: float = 30.0
    jitter_s: float = 1.0  # uniform extra delay in [0, jitter_s]
    total_budget_s: float = 300.0  # no new attempt starts after this much time
    timeout_s: float = 60.0  # per attempt

    def validate(self, where: str) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts={self.max_attempts}", where=where, expected="an integer >= 1")
        for name in ("initial_delay_s", "max_delay_s", "jitter_s", "total_budget_s", "timeout_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0 or math.isnan(value):
                raise ConfigError(f"{name}={value!r}", where=where, expected="a number >= 0")
        if self.timeout_s <= 0:
            raise ConfigError(f"timeout_s={self.timeout_s}", where=where, expected="a number > 0")


@dataclass
class Prices:
    """USD per million tokens. Thinking/reasoning tokens are billed as output."""

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float


@dataclass
class GeneratorConfig:
    """The frozen answer generator (GPT-5-mini through the openai SDK)."""

    model: str = "gpt-5-mini-2025-08-07"
    api: str = "responses"  # "responses" (/v1/responses) or "chat" (/v1/chat/completions)
    base_url: str | None = None  # None: the SDK default (or OPENAI_BASE_URL)
    reasoning_effort: str | None = "minimal"
    max_output_tokens: int = 4096  # max_output_tokens / max_completion_tokens; reasoning counts
    budget_growth: float = 2.0  # an empty or length-cut answer is retried with budget * growth
    max_output_tokens_cap: int = 16384
    max_budget_rounds: int = 3  # bounded number of budget increases
    max_images: int = 8
    concurrency: int = 32
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    prices: Prices = field(default_factory=lambda: Prices(0.25, 2.00, 0.025))
    system_prompt: str = (
        "You are a visual QA generator. Use only the provided images and the user question. "
        "Return ONLY the final answer text without extra explanations."
    )

    def validate(self, where: str = "generator") -> None:
        if self.api not in GENERATOR_APIS:
            raise ConfigError(f"api={self.api!r}", where=where, expected=" or ".join(GENERATOR_APIS))
        if self.reasoning_effort is not None and self.reasoning_effort not in REASONING_EFFORTS:
            raise ConfigError(
                f"reasoning_effort={self.reasoning_effort!r}", where=where, expected=", ".join(REASONING_EFFORTS)
            )
        if self.max_output_tokens < 1 or self.max_output_tokens_cap < self.max_output_tokens:
            raise ConfigError(
                f"max_output_tokens={self.max_output_tokens}, cap={self.max_output_tokens_cap}",
                where=where,
                expected="1 <= max_output_tokens <= max_output_tokens_cap",
            )
        if self.budget_growth < 1.0:
            raise ConfigError(f"budget_growth={self.budget_growth}", where=where, expected="a factor >= 1")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency={self.concurrency}", where=where, expected="an integer >= 1")
        self.retry.validate(f"{where}.retry")


def _plain(value: Any) -> Any:
    """OmegaConf containers -> plain dicts/lists without importing omegaconf."""
    if hasattr(value, "items") and not isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or (hasattr(value, "__iter__") and type(value).__name__ == "ListConfig"):
        return [_plain(v) for v in value]
    return value


_NESTED: dict[str, type] = {"retry": RetryPolicy, "prices": Prices, "generator": GeneratorConfig}


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    allowed = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in allowed:
            raise ConfigError(
                f"unknown key {key!r}", where=where, expected="one of " + ", ".join(sorted(allowed))
            )
        sub = _NESTED.get(key)
        if sub is not None and isinstance(value, Mapping):
            if sub is Prices:
                default = allowed[key].default_factory()  # type: ignore[misc]
                value = _build(Prices, {**dataclasses.asdict(default), **value}, f"{where}.{key}")
            else:
                value = _build(sub, value, f"{where}.{key}")
        kwargs[key] = value
    return cls(**kwargs)
