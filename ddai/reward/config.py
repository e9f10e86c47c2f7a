"""Settings of the Phase 2 reward: judge, frozen generator, retries, cache, log, prices.

Pure dataclasses with no third-party imports, so the Phase 2 config renderer can validate
``reward.custom_reward_function.reward_kwargs`` on a laptop without the SDKs or verl.
API keys are never fields here: they are read from the environment at call time
(``GEMINI_API_KEY`` / ``GOOGLE_API_KEY``, ``OPENAI_API_KEY``), so no config, log or W&B run
ever contains one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ddai.clients.settings import GeneratorConfig, Prices, RetryPolicy, _build, _plain
from ddai.errors import ConfigError
from ddai.reward.prompts import (
    JUDGE_MODES,
    MODE_ALIASES,
    PROMPTS,
    JudgePrompt,
    prompt_for,
)

__all__ = ["JUDGE_MODES", "GeneratorConfig", "Prices", "RetryPolicy", "RewardConfig"]

FAILURE_POLICIES = ("drop", "zero_judge", "ndcg_only", "fixed")
THINKING_LEVELS = ("minimal", "low", "medium", "high")


@dataclass
class RewardConfig:
    """Everything ``ddai.reward.verl_reward.compute_score`` needs; built from reward_kwargs.

    The defaults reproduce the users' production reward (``rm_phase2.py``): the text judge,
    its rubric, the SDK's default temperature and thinking, 0.8 judge + 0.2 NDCG, no format
    term. See docs/phase2_plugins.md for the modes and what each costs.
    """

    # judge
    judge_model: str = "gemini-3-flash-preview"
    judge_mode: str = "production_text"  # production_text | trajectory_vlm | answer (ddai.reward.prompts)
    prompt_version: str | None = None  # None: the mode's current version (p1, t1, v1)
    judge_temperature: float | None = None  # None: the mode's setting (not sent = SDK default, answer: 0.0)
    judge_thinking_level: str | None = None  # None: the mode's setting (not sent, answer: low)
    judge_thinking_budget: int | None = None  # Gemini 2.5 style budget; used when no level is set
    judge_max_output_tokens: int | None = None
    judge_base_url: str | None = None  # None: the SDK default (Gemini API)
    judge_api_version: str = "v1beta"
    max_judge_images: int = 16
    image_root: str | None = None  # ABSOLUTE directory of page images {deck}_{page}.jpg (trajectory_vlm)
    # score: final = w_judge*judge + w_ndcg*ndcg + w_format*format
    w_judge: float = 0.8
    w_ndcg: float = 0.2
    w_format: float = 0.0  # the users' RM_FORMAT_COEF (their unified script: 0.1 with the gate on)
    format_gate: bool = False  # when True, a rollout failing the format check scores format_fail_reward
    format_fail_reward: float = 0.0
    # a judgment (or the frozen answer) that failed after bounded retries
    judge_failure_policy: str = "drop"  # drop | zero_judge (the reference) | ndcg_only | fixed
    judge_failure_reward: float = 0.0  # for "fixed"
    # resources
    concurrency: int = 32  # judge calls in flight per reward worker process
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cache_path: str | None = "logs/judge_cache"  # a DIRECTORY shared by all hosts; None: no cache
    log_path: str | None = "logs/gspo_gemini_output.jsonl"  # base name: one file per writer, see judge_log
    prices: Prices = field(default_factory=lambda: Prices(0.50, 3.00, 0.05))
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)

    def validate(self, where: str = "reward_kwargs") -> RewardConfig:
        self.judge_mode = MODE_ALIASES.get(self.judge_mode, self.judge_mode)
        if self.judge_mode not in JUDGE_MODES:
            raise ConfigError(f"judge_mode={self.judge_mode!r}", where=where, expected=" or ".join(JUDGE_MODES))
        if self.prompt_version is not None and (self.judge_mode, self.prompt_version) not in PROMPTS:
            raise ConfigError(
                f"prompt_version={self.prompt_version!r} for judge_mode={self.judge_mode}",
                where=where,
                expected=" or ".join(v for m, v in PROMPTS if m == self.judge_mode),
            )
        if self.prompt.uses_images and not self.image_root:
            raise ConfigError(
                f"judge_mode={self.judge_mode} reads page images but image_root is not set",
                where=where,
                expected="image_root: the absolute directory holding {deck}_{page}.jpg",
            )
        if self.image_root is not None and not os.path.isabs(str(self.image_root)):
            raise ConfigError(f"image_root={self.image_root!r}", where=where, expected="an absolute path")
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
        for name in ("w_judge", "w_ndcg", "w_format"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"{name}={value!r}", where=where, expected="a weight >= 0")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency={self.concurrency}", where=where, expected="an integer >= 1")
        if not self.judge_model:
            raise ConfigError("judge_model must be non-empty", where=where)
        self.retry.validate(f"{where}.retry")
        self.generator.validate(f"{where}.generator")
        return self

    @property
    def prompt(self) -> JudgePrompt:
        """The versioned prompt (and its generation settings) of this mode."""
        return prompt_for(self.judge_mode, self.prompt_version)

    @property
    def version(self) -> str:
        return self.prompt.version

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any] | None, where: str = "reward_kwargs") -> RewardConfig:
        """Build from verl's ``reward_kwargs`` (flat or nested dicts); unknown keys fail loudly."""
        data = dict(_plain(kwargs or {}))
        if "image_base_path" in data:
            raise ConfigError("unknown key 'image_base_path' (renamed)", where=where,
                              expected="image_root: an absolute directory of page images")
        return _build(cls, data, where).validate(where)

    def fingerprint(self) -> str:
        """What makes two judgments interchangeable (used in the cache key)."""
        return f"{self.judge_model}|{self.version}|{self.judge_mode}"


