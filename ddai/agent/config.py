"""Settings of the search agent loop (search server, crop, turns, frozen generator).

Plain dataclasses (no verl import) so the Phase 2 config can be validated on a laptop.
Sources, later wins: the defaults here, the kwargs of the ``ddai_search_agent`` entry in
``ddai/agent/agent_loops.yaml`` (or a copy of it), and the dict at
``actor_rollout_ref.rollout.custom.ddai_agent`` of the trainer config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ddai.clients.settings import GeneratorConfig, RetryPolicy, _build, _plain
from ddai.errors import ConfigError


@dataclass
class AgentConfig:
    search_url: str = ""  # the users' search server; no default host: each run names its own
    search_batch_size: int = 32  # queries per POST (requests of concurrent rollouts are batched)
    search_batch_window_s: float = 0.02  # how long a query waits for others to share its POST
    search_retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts=3, initial_delay_s=0.5, max_delay_s=4.0, jitter_s=0.5,
                                            total_budget_s=120.0, timeout_s=60.0)
    )
    image_root: str | None = None  # when set, result files are looked up here by basename
    crops_dir: str = "logs/crops"  # crops are saved so the frozen generator can see them
    max_turns: int = 7  # assistant turns; the last one is replaced by a forced search_complete
    force_complete_at_max_turns: bool = True
    max_pixels: int = 512 * 28 * 28
    min_pixels: int = 256 * 28 * 28
    stop_at_action: bool = False  # add vLLM stop strings at the closing action tags
    # TESTS ONLY: run with a text-only tokenizer (images named "[image]"). Training refuses to
    # run without a multimodal processor: that would be an image-blind policy.
    allow_text_only: bool = False
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)

    def validate(self, where: str = "ddai_search_agent") -> AgentConfig:
        if not self.search_url:
            raise ConfigError("search_url is not set", where=where,
                              expected="the search server's URL, e.g. +phase2.agent.settings.search_url=http://HOST:5002/search")
        if not self.search_url.startswith(("http://", "https://")):
            raise ConfigError(f"search_url={self.search_url!r}", where=where, expected="an http(s) URL")
        if self.max_turns < 1:
            raise ConfigError(f"max_turns={self.max_turns}", where=where, expected="an integer >= 1")
        if self.search_batch_size < 1:
            raise ConfigError(f"search_batch_size={self.search_batch_size}", where=where, expected="an integer >= 1")
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ConfigError(f"min_pixels={self.min_pixels}, max_pixels={self.max_pixels}", where=where,
                              expected="0 < min_pixels <= max_pixels")
        self.search_retry.validate(f"{where}.search_retry")
        self.generator.validate(f"{where}.generator")
        return self

    @classmethod
    def from_kwargs(cls, *sources: Mapping[str, Any] | None, where: str = "ddai_search_agent") -> AgentConfig:
        merged: dict[str, Any] = {}
        for source in sources:
            for key, value in _plain(source or {}).items():
                if isinstance(value, dict) and isinstance(merged.get(key), dict):
                    merged[key] = {**merged[key], **value}
                else:
                    merged[key] = value
        _NESTED_AGENT = {"search_retry": RetryPolicy, "generator": GeneratorConfig}
        allowed = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in merged.items():
            if key not in allowed:
                raise ConfigError(f"unknown key {key!r}", where=where, expected="one of " + ", ".join(sorted(allowed)))
            sub = _NESTED_AGENT.get(key)
            kwargs[key] = _build(sub, value, f"{where}.{key}") if sub and isinstance(value, Mapping) else value
        return cls(**kwargs).validate(where)
