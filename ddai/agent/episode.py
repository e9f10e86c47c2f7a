"""One search episode, independent of verl: turns, actions, observations, the frozen answer.

The token bookkeeping (what is generated with mask 1, what is appended with mask 0) is
delegated to a ``TokenIO``; verl's agent loop provides one backed by its LLM server and
chat-template builder, tests provide one backed by a scripted policy. Everything that
decides *what happens* lives here so it is tested once, the same way it runs in training.

Masks: the policy's own turns are 1; observations (images, corrective messages), the
forced completion at the turn limit and the frozen generator's ``<answer>...</answer>``
are 0, so the searcher is never trained on text it did not write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image

from ddai.agent.config import AgentConfig
from ddai.agent.tools import TrajectoryTools
from ddai.clients.protocol import (
    FORCED_COMPLETION,
    INVALID_ACTION_MESSAGE,
    invalid_bbox_message,
    parse_action,
    turn_format_ok,
)


class TokenIO(Protocol):
    async def generate(self) -> str:
        """One policy turn: generate, append its tokens with mask 1, return the decoded text."""

    async def observe(self, text: str, images: list[Image.Image]) -> None:
        """Append an observation (a user turn with images and/or text) with mask 0."""

    async def append_masked(self, text: str) -> None:
        """Append text in the response with mask 0 (forced completion, the generator's answer)."""

    def full(self) -> bool:
        """True once the response budget is used up."""


class AnswerSource(Protocol):
    def select_images(self, originals: list[str], crops: list[str]) -> list[str]: ...

    async def answer(self, question: str, image_paths: list[str]) -> Any: ...


@dataclass
class EpisodeResult:
    turns: int = 0  # policy turns generated
    actions: list[str] = field(default_factory=list)
    invalid_actions: int = 0
    completed: bool = False  # the policy (or the turn limit) said search_complete
    forced: bool = False
    format_ok: bool = True
    generated_answer: str | None = None
    generator_failed: bool = False
    generator_error: str | None = None
    generator_cost_usd: float = 0.0
    truncated: bool = False  # response budget ran out

    def extra_fields(self, tools: TrajectoryTools, **ids: Any) -> dict[str, Any]:
        """The dict the agent loop hands to the reward (``extra_info["ddai"]``)."""
        return {
            "retrieved_images": list(tools.retrieved),
            "retrieved_basenames": tools.retrieved_basenames,
            "crops": list(tools.crops),
            "generated_answer": self.generated_answer,
            "generator_failed": self.generator_failed,
            "generator_error": self.generator_error,
            "generator_cost_usd": self.generator_cost_usd,
            "format_ok": self.format_ok and self.completed and not self.forced,
            "search_complete": self.completed,
            "forced_complete": self.forced,
            "turns": self.turns,
            "actions": list(self.actions),
            "invalid_actions": self.invalid_actions,
            "search_errors": tools.search_errors,
            "image_errors": tools.image_errors,
            "truncated": self.truncated,
            **ids,
        }


async def run_episode(
    io: TokenIO,
    tools: TrajectoryTools,
    generator: AnswerSource | None,
    question: str,
    config: AgentConfig,
    *,
    append_answer: bool = True,
) -> EpisodeResult:
    """Drive one trajectory to search_complete (or the limits), then ask the frozen generator."""
    result = EpisodeResult()
    policy_turns = config.max_turns - 1 if config.force_complete_at_max_turns else config.max_turns
    while result.turns < policy_turns:
        if io.full():
            result.truncated = True
            break
        text = await io.generate()
        result.turns += 1
        result.format_ok = result.format_ok and turn_format_ok(text)
        action = parse_action(text)
        result.actions.append(action.kind)
        if action.kind == "search_complete":
            result.completed = True
            break
        if io.full():
            result.truncated = True
            break
        if action.kind == "search":
            obs = await tools.search(action.query)
            await io.observe(obs.text, obs.images)
        elif action.kind == "bbox":
            assert action.bbox is not None
            obs = await tools.crop(action.bbox)
            await io.observe(obs.text, obs.images)
        elif action.kind == "invalid_bbox":
            result.invalid_actions += 1
            await io.observe(invalid_bbox_message(action.reason), [])
        else:
            result.invalid_actions += 1
            await io.observe(INVALID_ACTION_MESSAGE, [])
    if not result.completed and not result.truncated and config.force_complete_at_max_turns and not io.full():
        await io.append_masked(FORCED_COMPLETION)
        result.completed = True
        result.forced = True
        result.actions.append("forced_complete")

    if result.completed and generator is not None:
        images = generator.select_images(list(tools.retrieved), list(tools.crops))
        gen = await generator.answer(question, images)
        result.generator_cost_usd = float(getattr(gen, "cost_usd", 0.0))
        if getattr(gen, "failed", False) or not getattr(gen, "answer", ""):
            result.generator_failed = True
            result.generator_error = getattr(gen, "error", None) or "empty answer"
        else:
            result.generated_answer = gen.answer
            if append_answer:
                await io.append_masked(f"<answer>{gen.answer}</answer>")
    return result
