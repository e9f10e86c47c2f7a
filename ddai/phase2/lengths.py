"""Token budgets and GPU memory of a Phase 2 run, as arithmetic that can be checked before a GPU is held.

WHY: verl counts the masked observation tokens (page images: 256-512 each at the agent's
pixel limits) in ``data.max_response_length``. A budget sized for text alone stops adding
observations after a few searches, silently. And vLLM without ``max_model_len`` plans for the
model's 128k context. Both numbers are derived here from the agent's settings, so the
rendered command and the validator agree, and ``docs/phase2.md`` states the same arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ddai.errors import ConfigError

# Qwen2.5-VL: 14-px patches merged 2x2 -> one token per 28x28 pixels; plus <|vision_start|>/<|vision_end|>.
PIXELS_PER_IMAGE_TOKEN = 28 * 28
IMAGE_WRAP_TOKENS = 2
ROUND_TO = 256


def image_tokens_per_page(max_pixels: int) -> int:
    """Tokens one observed page (or crop) costs at the agent's ``max_pixels``."""
    return max_pixels // PIXELS_PER_IMAGE_TOKEN + IMAGE_WRAP_TOKENS


@dataclass(frozen=True)
class Budget:
    """The response budget of one trajectory and what it is made of."""

    max_turns: int
    text_tokens_per_turn: int
    image_tokens_per_page: int
    answer_tokens: int

    @property
    def needed(self) -> int:
        """Every turn may add the policy's text and one page; then the generator's answer."""
        return self.max_turns * (self.text_tokens_per_turn + self.image_tokens_per_page) + self.answer_tokens

    @property
    def rounded(self) -> int:
        return int(math.ceil(self.needed / ROUND_TO) * ROUND_TO)

    def explain(self) -> str:
        return (f"{self.max_turns} turns x ({self.text_tokens_per_turn} text + {self.image_tokens_per_page} image tokens) "
                f"+ {self.answer_tokens} answer = {self.needed}")


def budget(p: Any) -> Budget:
    """The budget of the ``phase2`` node ``p`` (agent max_pixels from its settings or the agent's default)."""
    from ddai.agent.config import AgentConfig

    settings = dict(_plain(p.agent.settings))
    max_pixels = int(settings.get("max_pixels", AgentConfig.max_pixels))
    return Budget(max_turns=int(p.agent.max_turns), text_tokens_per_turn=int(p.agent.text_tokens_per_turn),
                  image_tokens_per_page=image_tokens_per_page(max_pixels), answer_tokens=int(p.agent.answer_tokens))


def response_length(p: Any) -> int:
    """``max_response_length`` as configured, or derived; an explicit one too small for the turns fails."""
    b = budget(p)
    if p.max_response_length is None:
        return b.rounded
    value = int(p.max_response_length)
    if value < b.needed:
        raise ConfigError(
            f"max_response_length={value} cannot hold {b.explain()} (masked image tokens count too)",
            where="phase2.max_response_length",
            expected=f">= {b.needed} (or null to derive it), or fewer phase2.agent.max_turns / smaller max_pixels")
    return value


def model_len(p: Any) -> int:
    """vLLM's ``max_model_len``: prompt + response budget unless set explicitly (then it must hold both)."""
    need = int(p.max_prompt_length) + response_length(p)
    ro = p.rollout
    if ro.max_model_len is None:
        return need
    if int(ro.max_model_len) < need:
        raise ConfigError(f"rollout.max_model_len={ro.max_model_len} < max_prompt_length + max_response_length = {need}",
                          where="phase2.rollout.max_model_len", expected=f">= {need} (or null to derive it)")
    return int(ro.max_model_len)


def check_batched_tokens(p: Any, max_model_len: int) -> None:
    """vLLM needs max_num_batched_tokens >= max_model_len unless chunked prefill is on (verl would raise it silently)."""
    ro = p.rollout
    if not ro.enable_chunked_prefill and int(ro.max_num_batched_tokens) < max_model_len:
        raise ConfigError(
            f"enable_chunked_prefill=false needs max_num_batched_tokens >= max_model_len ({max_model_len}), "
            f"got {ro.max_num_batched_tokens}", where="phase2.rollout.max_num_batched_tokens",
            expected=f"enable_chunked_prefill=true, or max_num_batched_tokens >= {max_model_len}")


# ----------------------------------------------------------------------------- memory

# Qwen2.5-VL-7B-Instruct, from its config.json: LM 28 layers, hidden 3584, 4 KV heads x 128,
# vocab 152064; 8.29e9 parameters with the vision tower.
QWEN25VL_7B = {"params": 8.29e9, "layers": 28, "kv_heads": 4, "head_dim": 128, "hidden": 3584, "vocab": 152064}
GB = 1e9


@dataclass(frozen=True)
class MemoryPlan:
    """Per-GPU peaks (GB) of the two phases of a colocated step; they do not overlap (free_cache_engine)."""

    gpu_gb: float
    vllm_gb: float
    kv_cache_gb: float
    kv_tokens: int
    train_states_gb: float
    train_activations_gb: float
    train_logits_gb: float

    @property
    def train_peak_gb(self) -> float:
        return self.train_states_gb + self.train_activations_gb + self.train_logits_gb

    @property
    def rollout_peak_gb(self) -> float:
        """During rollout the actor's sharded states stay on the GPU beside vLLM's share."""
        return self.train_states_gb + self.vllm_gb

    def fits(self) -> bool:
        return max(self.rollout_peak_gb, self.train_peak_gb) <= self.gpu_gb and self.kv_cache_gb > 0


def memory_plan(p: Any, *, gpu_gb: float = 80.0, model: dict[str, float] | None = None) -> MemoryPlan:
    """Rough per-GPU memory of the run (FSDP over all GPUs, vLLM TP replicas, bf16 weights, fp32 Adam).

    Assumptions written out in docs/phase2.md: activations with gradient checkpointing keep one
    hidden state per layer plus one recomputed layer (~8 hidden-size tensors); logits are fp32.
    """
    m = model or QWEN25VL_7B
    gpus = int(p.slurm.nodes) * int(p.slurm.gpus_per_node)
    tp = int(p.rollout.tensor_model_parallel_size)
    seq = model_len(p)
    weights_bf16 = m["params"] * 2 / GB
    vllm = float(p.rollout.gpu_memory_utilization) * gpu_gb
    # vLLM's share holds one bf16 copy of the weights per TP shard, ~2 GB of activations/graphs, the rest KV.
    kv_cache = vllm - weights_bf16 / tp - 2.0
    kv_bytes_per_token = 2 * m["layers"] * m["kv_heads"] * m["head_dim"] * 2 / tp
    kv_tokens = int(max(0.0, kv_cache) * GB / kv_bytes_per_token)
    # FSDP full shard: fp32 master params + fp32 grads + 2 fp32 Adam moments = 16 bytes/param over all GPUs.
    states = m["params"] * (4 + 4 + 8) / gpus / GB
    if p.actor_optimizer_offload:
        states -= m["params"] * 8 / gpus / GB
    if p.actor_param_offload:
        states -= m["params"] * 8 / gpus / GB
    micro = max(int(p.ppo_micro_batch_size_per_gpu), int(p.rollout.log_prob_micro_batch_size_per_gpu))
    tokens = micro * seq
    acts = tokens * m["hidden"] * 2 * (m["layers"] + 8) / GB if p.enable_gradient_checkpointing else \
        tokens * m["hidden"] * 2 * m["layers"] * 16 / GB
    logits = tokens * m["vocab"] * 4 / GB
    return MemoryPlan(gpu_gb=gpu_gb, vllm_gb=vllm, kv_cache_gb=kv_cache, kv_tokens=kv_tokens,
                      train_states_gb=states, train_activations_gb=acts, train_logits_gb=logits)


def _plain(value: Any) -> dict[str, Any]:
    from omegaconf import DictConfig, OmegaConf

    if isinstance(value, DictConfig):
        return OmegaConf.to_container(value, resolve=True)  # type: ignore[return-value]
    return dict(value or {})
