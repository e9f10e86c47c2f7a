"""The ``phase2`` config group: one GSPO run on verl 0.9 as a self-resuming Slurm chain.

WHY a dataclass schema: Hydra checks every ``phase2.*`` override against it while composing,
so a misspelt key or a string where a number belongs fails before a GPU is requested. What a
type cannot say (batch sizes that must divide, a save interval a job can actually reach) is
checked by :mod:`ddai.phase2.validate`.

Defaults are the reference run of the users' GSPO Phase 2 guide (seed 001), mapped to the keys
upstream verl 0.9 reads (see docs/phase2.md for the mapping table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RewardSettings:
    """The reward plugin, by reference: a function verl loads from a file path.

    ``module`` is resolved to its file inside the installed package (never a hard-coded path);
    ``kwargs`` reach every call as ``reward.custom_reward_function.reward_kwargs``.
    """

    module: str = "ddai.reward.verl_reward"
    function: str = "compute_score"
    manager: str = "naive"
    num_workers: int = 8
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class AgentSettings:
    """The multi-turn search agent, by reference (a verl agent-loop YAML inside the package)."""

    loop: str = "ddai_search_agent"
    loops_yaml: str = "ddai.agent:agent_loops.yaml"
    # ddai's agent speaks its own tag protocol: no verl tool registry (null).
    tool_config: str | None = None
    max_turns: int = 7
    max_tool_response_length: int = 4096
    num_workers: int = 8
    # The response budget is derived from these (see ddai.phase2.lengths): every turn is the
    # policy's text plus one observed page; image tokens are masked but still count.
    text_tokens_per_turn: int = 320
    answer_tokens: int = 256
    # ddai.agent.config.AgentConfig keys (search_url, image_root, generator.*, ...) ->
    # actor_rollout_ref.rollout.custom.ddai_agent.*
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class RolloutSettings:
    """vLLM rollout and its memory settings (reference: A100-80GB, 7B model, TP 1)."""

    name: str = "vllm"
    n: int = 8
    tensor_model_parallel_size: int = 1
    gpu_memory_utilization: float = 0.5
    free_cache_engine: bool = True
    # Chunked prefill lets one long multi-image prompt be prefilled in pieces, so the batch
    # token budget below can stay far under max_model_len (the users' current scripts run it on).
    enable_chunked_prefill: bool = True
    max_num_batched_tokens: int = 8192
    # null: prompt + response budget (never the model's 128k max_position_embeddings).
    max_model_len: int | None = None
    enforce_eager: bool = False
    log_prob_micro_batch_size_per_gpu: int = 4


@dataclass
class SlurmSettings:
    """How the chain asks Slurm for resources and how it stops a broken run.

    ``time_min`` is one job's limit; the job asks for ``--signal=B:USR1@signal_s`` so the trainer
    is told to stop that long before it. ``step_minutes`` (your estimate of one training step,
    rollout + judge + update) and ``startup_minutes`` (model load, Ray, vLLM warm-up) let the
    validator check that a job can reach a checkpoint at all.
    """

    nodes: int = 1
    gpus_per_node: int = 4
    cpus_per_task: int = 16
    mem: str | None = None
    time_min: int = 2880
    signal_s: int = 300
    partition: str | None = None
    account: str | None = None
    job_name: str | None = None
    extra_args: list[str] = field(default_factory=list)
    max_restarts: int = 20
    max_no_progress: int = 3
    step_minutes: float = 10.0
    startup_minutes: float = 15.0


@dataclass
class Phase2Config:
    """Everything one Phase 2 run needs; rendered to verl overrides by :mod:`ddai.phase2.render`."""

    # What to train and on what. Either a curriculum manifest (its training bucket) or a parquet.
    model_path: str | None = None
    manifest: str | None = None
    train_file: str | None = None
    val_file: str | None = None
    image_key: str = "images"
    # ONE directory of page images ({deck}_{page}.jpg), absolute. Passed to both the agent's
    # search/crop tools and the judge as ``image_root``. Required: without it the run is blind.
    image_root: str | None = None
    max_prompt_length: int = 4096
    # null: derived from agent.max_turns x (text + image tokens per turn) + answer tokens.
    max_response_length: int | None = None
    filter_overlong_prompts: bool = True
    # Train even though verl's drop_last would never train the last rows % train_batch_size.
    allow_remainder: bool = False

    # GSPO (reference run, verl 0.9 keys).
    adv_estimator: str = "grpo"
    loss_mode: str = "gspo"
    loss_agg_mode: str = "seq-mean-token-mean"
    clip_ratio_low: float = 3e-4
    clip_ratio_high: float = 4e-4
    lr: float = 1e-6
    lr_warmup_steps: int = 12
    kl_coef: float = 0.0
    use_kl_loss: bool = False
    entropy_coeff: float = 0.0
    train_batch_size: int = 64
    ppo_mini_batch_size: int = 16
    ppo_micro_batch_size_per_gpu: int = 4
    use_remove_padding: bool = True
    enable_gradient_checkpointing: bool = True
    actor_param_offload: bool = False
    actor_optimizer_offload: bool = False
    ref_param_offload: bool = True
    total_epochs: int = 1
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    reward: RewardSettings = field(default_factory=RewardSettings)
    agent: AgentSettings = field(default_factory=AgentSettings)

    # Bookkeeping: W&B names, where checkpoints and the chain's state live.
    project_name: str = "gspo_phase2_gemini"
    experiment_name: str = "gspo_phase2_gemini_flash"
    logger: list[str] = field(default_factory=lambda: ["console", "wandb"])
    run_dir: str = "runs/${phase2.experiment_name}"
    checkpoint_dir: str | None = None
    save_freq: int = 30
    test_freq: int = -1
    resume_mode: str = "auto"
    max_actor_ckpt_to_keep: int | None = None

    # Secrets the run needs, by environment variable name only (never their values).
    # "A|B" means either name will do (the judge accepts GEMINI_API_KEY or GOOGLE_API_KEY).
    required_env: list[str] = field(default_factory=lambda: ["GEMINI_API_KEY|GOOGLE_API_KEY", "OPENAI_API_KEY"])

    # Raw verl overrides appended last (validated like everything else).
    extra_overrides: list[str] = field(default_factory=list)

    slurm: SlurmSettings = field(default_factory=SlurmSettings)

    # Print the command and sbatch settings, submit nothing.
    dry_run: bool = False
    # Validate against a manifest that does not exist yet (pipeline: written by an earlier job).
    defer_data_check: bool = False


def register() -> None:
    """Register the schema as ``phase2/schema`` (listed first in conf/phase2/default.yaml)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group="phase2", name="schema", node=Phase2Config)
