"""verl 0.9 agent loop ``ddai_search_agent``: the visual search agent with a frozen answerer.

Selected by ``actor_rollout_ref.rollout.agent.default_agent_loop=ddai_search_agent`` together
with ``actor_rollout_ref.rollout.agent.agent_loop_config_path=<ddai/agent/agent_loops.yaml>``
(the YAML names this class, so verl's AgentLoopWorker imports it in every worker process).

Token handling uses verl's own Continuous Token builder (``ct_*`` helpers of
``AgentLoopBase``): the policy's turns are merged with mask 1; observation turns (page
images, crops, corrective messages) go through the chat template as user messages with
mask 0; the turn-limit completion and the frozen generator's ``<answer>`` are appended with
mask 0. What happens in a turn is decided by ``ddai.agent.episode.run_episode``.
"""

from __future__ import annotations

import collections
import json
import threading
from typing import Any
from uuid import uuid4

from PIL import Image
from verl.experimental.agent_loop.agent_loop import (
    AgentLoopBase,
    AgentLoopOutput,
    register,
)

from ddai.agent import health
from ddai.agent.config import AgentConfig
from ddai.agent.episode import run_episode
from ddai.agent.search_client import SearchClient
from ddai.agent.tools import TrajectoryTools
from ddai.clients.generator import FrozenGenerator

AGENT_NAME = "ddai_search_agent"

_shared: dict[str, tuple[SearchClient, FrozenGenerator]] = {}
_shared_lock = threading.Lock()
_sample_counter: collections.OrderedDict = collections.OrderedDict()  # uid -> rollouts started (bounded)
_MAX_TRACKED_GROUPS = 50_000


def _shared_clients(config: AgentConfig) -> tuple[SearchClient, FrozenGenerator]:
    """One search client and one generator per process and configuration (connection reuse)."""
    import dataclasses

    key = json.dumps(dataclasses.asdict(config), sort_keys=True, default=str)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = (SearchClient(config), FrozenGenerator(config.generator))
        return _shared[key]


def agent_config_from(rollout_config: Any, yaml_kwargs: dict | None = None) -> AgentConfig:
    """Defaults < agent_loops.yaml kwargs < rollout.multi_turn.max_assistant_turns < rollout.custom.ddai_agent."""
    multi_turn = rollout_config.get("multi_turn", None) or {}
    turns = multi_turn.get("max_assistant_turns", None) if multi_turn else None
    custom = rollout_config.get("custom", None) or {}
    return AgentConfig.from_kwargs(
        yaml_kwargs,
        {"max_turns": int(turns)} if turns else None,
        custom.get("ddai_agent", None) if custom else None,
    )


def _question(kwargs: dict[str, Any]) -> str:
    extra_info = kwargs.get("extra_info") or {}
    if extra_info.get("question"):
        return str(extra_info["question"])
    for message in reversed(list(kwargs.get("raw_prompt") or [])):
        if message.get("role") == "user":
            content = message.get("content")
            text = content if isinstance(content, str) else " ".join(
                part.get("text", "") for part in content or [] if isinstance(part, dict)
            )
            return text.split("Question:", 1)[-1].strip()
    return ""


class _VerlTokenIO:
    """TokenIO over verl's LLM server client and Continuous Token builder."""

    def __init__(self, loop: DdaiSearchAgentLoop, messages: list[dict], sampling_params: dict[str, Any]):
        self.loop = loop
        self.messages = messages
        self.sampling_params = sampling_params
        self.request_id = uuid4().hex
        self.prompt_ids: list[int] = []
        self.mask: list[int] = []
        self.logprobs: list[float] = []
        self.images: list[Image.Image] = []
        self.extra: dict[str, Any] = {}
        self.user_turns = 0
        self.assistant_turns = 0
        self._full = False
        self.with_images = loop.processor is not None and getattr(loop.processor, "image_processor", None) is not None

    async def start(self) -> None:
        self.prompt_ids = await self.loop.ct_build_initial_tokens(self.messages)

    def full(self) -> bool:
        return self._full or len(self.mask) >= self.loop.response_length

    async def generate(self) -> str:
        out = await self.loop.server_manager.generate(
            self.request_id,
            prompt_ids=self.prompt_ids,
            sampling_params=self.sampling_params,
            image_data=self.images or None,
            mm_processor_kwargs=self.loop._get_mm_processor_kwargs(),
        )
        if not self.extra:
            self.extra.update(out.extra_fields or {})
        elif (out.extra_fields or {}).get("max_global_steps"):
            self.extra["max_global_steps"] = out.extra_fields["max_global_steps"]
        track = bool(self.logprobs or out.log_probs)
        merged, mask, logprobs = await self.loop.ct_merge_assistant_token(
            self.prompt_ids, list(out.token_ids), self.mask, self.logprobs if track else None,
            assistant_logprobs=out.log_probs or None,
        )
        self.prompt_ids, self.mask = merged.token_ids, mask
        if logprobs is not None:
            self.logprobs = logprobs
        self.assistant_turns += 1
        text = self.loop.tokenizer.decode(out.token_ids, skip_special_tokens=True)
        self.messages.append({"role": "assistant", "content": text})
        return text

    async def observe(self, text: str, images: list[Image.Image]) -> None:
        previous = list(self.messages)
        if self.with_images:
            content: Any = [{"type": "image", "image": img} for img in images]
            if text:
                content.append({"type": "text", "text": text})
        else:
            # Text-only model (CPU tests): images cannot be tokenized, so name them instead.
            content = "".join("[image]" for _ in images) + text
        self.messages.append({"role": "user", "content": content})
        merged, mask, logprobs = await self.loop.ct_merge_context_msg(
            previous, self.messages, self.prompt_ids, self.mask, self.logprobs or None
        )
        if len(mask) >= self.loop.response_length:
            self.messages.pop()
            self._full = True
            return
        self.prompt_ids, self.mask = merged.token_ids, mask
        if self.logprobs:
            self.logprobs = logprobs or []
        if self.with_images:
            self.images.extend(images)
        self.user_turns += 1

    async def append_masked(self, text: str) -> None:
        ids = self.loop.tokenizer.encode(text, add_special_tokens=False)
        self.prompt_ids = self.prompt_ids + ids
        self.mask = self.mask + [0] * len(ids)
        if self.logprobs:
            self.logprobs = self.logprobs + [0.0] * len(ids)


@register(AGENT_NAME)
class DdaiSearchAgentLoop(AgentLoopBase):
    """Search agent loop: <think> + one of <search>/<bbox>/<search_complete> per turn."""

    def __init__(self, *args: Any, tools: Any = None, agent_config: dict | None = None, name: str = AGENT_NAME,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.agent_config = agent_config_from(self.rollout_config, agent_config)
        has_images = self.processor is not None and getattr(self.processor, "image_processor", None) is not None
        if not has_images and not self.agent_config.allow_text_only:
            # verl turns a processor that fails to load (e.g. no torchvision) into a warning and
            # processor=None; training on would show the policy no page at all.
            health.record("no_processor", "no multimodal processor: the policy would never see a page image")
            raise health.ImageBlindError(
                "ddai_search_agent: the model's processor did not load (processor=None), so the policy would be "
                "trained image-blind. Install torchvision (the gpu extra) and check that the model directory has "
                "preprocessor_config.json; `python -m ddai.phase2.preflight RUN_DIR` shows the cause.")
        self.response_length = int(self.rollout_config.response_length)
        self.search_client, self.generator = _shared_clients(self.agent_config)

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        cfg = self.agent_config
        extra_info = kwargs.get("extra_info") or {}
        dataset_id = str(kwargs.get("id") or extra_info.get("id") or f"index_{kwargs.get('index', '')}")
        uid = str(kwargs.get("uid") or dataset_id)
        with _shared_lock:
            sample_idx = _sample_counter.get(uid, 0)
            _sample_counter[uid] = sample_idx + 1
            if len(_sample_counter) > _MAX_TRACKED_GROUPS:
                _sample_counter.popitem(last=False)
        if cfg.stop_at_action:
            sampling_params = {**sampling_params, "stop": ["</search>", "</bbox>", "</search_complete>"],
                               "include_stop_str_in_output": True}

        io = _VerlTokenIO(self, list(kwargs["raw_prompt"]), sampling_params)
        await io.start()
        tools = TrajectoryTools(config=cfg, search_client=self.search_client, dataset_id=dataset_id)
        result = await run_episode(io, tools, self.generator, _question(kwargs), cfg)

        response_ids = io.prompt_ids[len(io.prompt_ids) - len(io.mask):]
        prompt_ids = io.prompt_ids[: len(io.prompt_ids) - len(io.mask)]
        extra_fields = dict(io.extra)
        extra_fields["ddai"] = result.extra_fields(tools, dataset_id=dataset_id, uid=uid, sample_idx=sample_idx)
        return AgentLoopOutput(
            prompt_ids=prompt_ids,
            response_ids=response_ids[: self.response_length],
            response_mask=io.mask[: self.response_length],
            response_logprobs=io.logprobs[: self.response_length] if io.logprobs else None,
            multi_modal_data={"images": io.images} if io.images else {},
            mm_processor_kwargs=self._get_mm_processor_kwargs(),
            num_turns=io.user_turns + io.assistant_turns + 1,
            metrics={},
            extra_fields=extra_fields,
        )
