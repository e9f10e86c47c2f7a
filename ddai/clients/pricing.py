"""Token usage and cost of one paid call, from the response's own usage metadata.

Thinking/reasoning tokens are billed as output; cached prompt tokens at the cached rate.
Prices live in config (USD per million tokens) because they change and differ per model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ddai.clients.settings import Prices


@dataclass
class Usage:
    input: int = 0  # prompt tokens (including cached)
    output: int = 0  # visible output tokens (excluding thinking)
    thinking: int = 0
    cached: int = 0
    total: int = 0

    def add(self, other: Usage) -> Usage:
        return Usage(*(a + b for a, b in zip(asdict(self).values(), asdict(other).values())))

    def as_log(self) -> dict[str, int]:
        return {"input": self.input, "output": self.output, "thinking": self.thinking, "total": self.total}


def cost_usd(usage: Usage, prices: Prices) -> float:
    fresh_input = max(0, usage.input - usage.cached)
    return (
        fresh_input * prices.input_per_mtok
        + usage.cached * prices.cached_input_per_mtok
        + (usage.output + usage.thinking) * prices.output_per_mtok
    ) / 1_000_000


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) else 0


def gemini_usage(usage_metadata: Any) -> Usage:
    """google-genai ``GenerateContentResponseUsageMetadata`` -> Usage."""
    if usage_metadata is None:
        return Usage()
    prompt = _int(getattr(usage_metadata, "prompt_token_count", 0))
    output = _int(getattr(usage_metadata, "candidates_token_count", 0))
    thinking = _int(getattr(usage_metadata, "thoughts_token_count", 0))
    cached = _int(getattr(usage_metadata, "cached_content_token_count", 0))
    total = _int(getattr(usage_metadata, "total_token_count", 0)) or prompt + output + thinking
    return Usage(input=prompt, output=output, thinking=thinking, cached=cached, total=total)


def openai_usage(usage: Any) -> Usage:
    """openai chat ``CompletionUsage`` or responses ``ResponseUsage`` -> Usage.

    Both report reasoning tokens inside the completion/output count; they are split out here.
    """
    if usage is None:
        return Usage()
    if hasattr(usage, "input_tokens"):  # Responses API
        prompt = _int(usage.input_tokens)
        completion = _int(getattr(usage, "output_tokens", 0))
        in_det, out_det = getattr(usage, "input_tokens_details", None), getattr(usage, "output_tokens_details", None)
    else:  # Chat Completions
        prompt = _int(getattr(usage, "prompt_tokens", 0))
        completion = _int(getattr(usage, "completion_tokens", 0))
        in_det, out_det = getattr(usage, "prompt_tokens_details", None), getattr(usage, "completion_tokens_details", None)
    cached = _int(getattr(in_det, "cached_tokens", 0)) if in_det is not None else 0
    reasoning = _int(getattr(out_det, "reasoning_tokens", 0)) if out_det is not None else 0
    total = _int(getattr(usage, "total_tokens", 0)) or prompt + completion
    return Usage(input=prompt, output=max(0, completion - reasoning), thinking=reasoning, cached=cached, total=total)
