"""Settings of the Phase 2 reward: judge, frozen generator, retries, cache, log, prices.

Pure dataclasses with no third-party imports, so the Phase 2 config renderer can validate
``reward.custom_reward_function.reward_kwargs`` on a laptop without the SDKs or verl.
API keys are never fields here: they are read from the environment at call time
(``GEMINI_API_KEY`` / ``GOOGLE_API_KEY``, ``OPENAI_API_KEY``), so no config, log or W&B run
ever contains one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ddai.clients.settings import GeneratorConfig, Prices, RetryPolicy, _build, _plain
from ddai.errors import ConfigError

__all__ = ["GeneratorConfig", "Prices", "RetryPolicy", "RewardConfig"]

JUDGE_MODES = ("trajectory", "answer")
FAILURE_POLICIES = ("ndcg_only", "fixed")
THINKING_LEVELS = ("minimal", "low", "medium", "high")


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


