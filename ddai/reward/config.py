"""Settings of the Phase 2 reward: judge, frozen generator, retries, cache, log, prices.

Pure dataclasses with no third-party imports, so the Phase 2 config renderer can validate
``reward.custom_reward_function.reward_kwargs`` on a laptop without the SDKs or verl.
API keys are never fields here: they are read from the environment at call time
(``GEMINI_API_KEY`` / ``GOOGLE_API_KEY``, ``OPENAI_API_KEY``), so no config, log or W&B run
ever contains one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ddai.errors import ConfigError

JUDGE_MODES = ("trajectory", "answer")
FAILURE_POLICIES = ("ndcg_only", "fixed")
GENERATOR_APIS = ("responses", "chat")
REASONING_EFFORTS = ("minimal", "low", "medium", "high", "none", "xhigh")
THINKING_LEVELS = ("minimal", "low", "medium", "high")


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


@dataclass
class RewardConfig:
    """Everything ``ddai.reward.verl_reward.compute_score`` needs; built from reward_kwargs."""

    # judge
    judge_model: str = "gemini-3-flash-preview"
    judge_mode: str = "trajectory"  # "trajectory" (VLM with page images) or "answer" (text only)
    prompt_version: str = "v1"
    judge_temperature: float = 0.0
    judge_thinking_level: str | None = "low"  # Gemini 3 thinking_level; None: model default
    judge_thinking_budget: int | None = None  # Gemini 2.5 style budget; used when level is None
    judge_max_output_tokens: int | None = None
    judge_base_url: str | None = None  # None: the SDK default (Gemini API)
    judge_api_version: str = "v1beta"
    max_judge_images: int = 16
    image_base_path: str = "./search_engine/corpus/img"  # reference pages: {deck}_{page}.jpg
    # score
    w_judge: float = 0.8
    w_ndcg: float = 0.2
    format_gate: bool = False  # when True, a rollout failing the format check scores format_fail_reward
    format_fail_reward: float = 0.0
    # failure of the judge after bounded retries
    judge_failure_policy: str = "ndcg_only"  # "ndcg_only": final = ndcg; "fixed": final = judge_failure_reward
    judge_failure_reward: float = 0.0
    # resources
    concurrency: int = 32  # judge calls in flight per reward worker process
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cache_path: str | None = "logs/judge_cache.sqlite"  # None: no cache (every call is paid)
    log_path: str | None = "logs/gspo_gemini_output.jsonl"
    prices: Prices = field(default_factory=lambda: Prices(0.50, 3.00, 0.05))
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)

    def validate(self, where: str = "reward_kwargs") -> RewardConfig:
        if self.judge_mode not in JUDGE_MODES:
            raise ConfigError(f"judge_mode={self.judge_mode!r}", where=where, expected=" or ".join(JUDGE_MODES))
        if self.judge_failure_policy not in FAILURE_POLICIES:
            raise ConfigError(
                f"judge_failure_policy={self.judge_failure_policy!r}",
                where=where,
                expected=" or ".join(FAILURE_POLICIES),
            )
        if self.judge_thinking_level is not None and self.judge_thinking_level.lower() not in THINKING_LEVELS:
            raise ConfigError(
                f"judge_thinking_level={self.judge_thinking_level!r}",
                where=where,
                expected=", ".join(THINKING_LEVELS) + " or null",
            )
        for name in ("w_judge", "w_ndcg"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"{name}={value!r}", where=where, expected="a weight >= 0")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency={self.concurrency}", where=where, expected="an integer >= 1")
        if not self.judge_model or not self.prompt_version:
            raise ConfigError("judge_model and prompt_version must be non-empty", where=where)
        self.retry.validate(f"{where}.retry")
        self.generator.validate(f"{where}.generator")
        return self

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any] | None, where: str = "reward_kwargs") -> RewardConfig:
        """Build from verl's ``reward_kwargs`` (flat or nested dicts); unknown keys fail loudly."""
        return _build(cls, _plain(kwargs or {}), where).validate(where)

    def fingerprint(self) -> str:
        """What makes two judgments interchangeable (used in the cache key)."""
        return f"{self.judge_model}|{self.prompt_version}|{self.judge_mode}"


def _plain(value: Any) -> Any:
    """OmegaConf containers -> plain dicts/lists without importing omegaconf."""
    if hasattr(value, "items") and not isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or (hasattr(value, "__iter__") and type(value).__name__ == "ListConfig"):
        return [_plain(v) for v in value]
    return value


_NESTED = {"retry": RetryPolicy, "prices": Prices, "generator": GeneratorConfig}


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
