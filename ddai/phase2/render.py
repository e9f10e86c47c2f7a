"""Turn a ``phase2`` config into the exact verl command line and sbatch settings.

WHY one function produces both: the command that is validated, the one printed by
``--dry-run`` and the one the Slurm chain runs must be the same list of strings. The plan is
written once per run (``<run_dir>/plan.json``) and every job of the chain reads it, so a
resumed job runs exactly what the first job ran.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ddai.errors import ConfigError

PLAN_VERSION = 1
# verl's own main_ppo with ddai's TaskRunner (save on stop) and per-job Ray: ddai/phase2/trainer.py.
TRAINER_MODULE = "ddai.phase2.trainer"
STOP_SIGNAL = "USR1"

_SAFE = re.compile(r"^[A-Za-z0-9_./:@%+~=,-]*$")


@dataclass
class Plan:
    """Everything a job of the chain needs, as plain JSON-able data."""

    run_dir: str
    checkpoint_dir: str
    train_file: str
    train_rows: int
    steps_per_epoch: int
    total_steps: int
    save_freq: int
    overrides: list[str]
    command: list[str]  # argv after the interpreter: ["-m", "verl.trainer.main_ppo", ...]
    required_env: list[str]
    sbatch_args: list[str]
    max_restarts: int
    max_no_progress: int
    nodes: int
    gpus_per_node: int
    wandb_run_id: str = ""  # one W&B run across all jobs of the chain (WANDB_RESUME=allow)
    version: int = PLAN_VERSION
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def fmt_value(value: Any) -> str:
    """Format a value for a Hydra command-line override (quoted only when it must be)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(fmt_value(v) for v in value) + "]"
    s = str(value)
    if s and _SAFE.match(s) and "=" not in s and "," not in s:
        return s
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def flatten(prefix: str, value: Any) -> list[tuple[str, Any]]:
    """Nested mapping -> dotted keys (``{'retry': {'max_attempts': 3}}`` -> ``retry.max_attempts``)."""
    if isinstance(value, Mapping):
        out: list[tuple[str, Any]] = []
        for k, v in value.items():
            out.extend(flatten(f"{prefix}.{k}", v))
        return out
    return [(prefix, value)]


def package_file(ref: str, where: str) -> str:
    """Resolve ``"pkg.module"`` (a .py module) or ``"pkg:file.yaml"`` inside the installed package
    (an absolute path is taken as is).

    WHY: the reference scripts hard-coded absolute paths; ddai finds its plugins wherever the
    package is installed, without importing them (they import the training stack).
    """
    if Path(ref).is_absolute():  # an explicit file (e.g. a plugin outside the package)
        path = Path(ref)
    elif ":" in ref:
        pkg, name = ref.split(":", 1)
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"package {pkg!r} is not installed", where=where, expected="an importable package")
        path = Path(list(spec.submodule_search_locations)[0]) / name
    else:
        try:
            spec = importlib.util.find_spec(ref)
        except ModuleNotFoundError:
            spec = None
        if spec is None or not spec.origin:
            raise ConfigError(f"module {ref!r} is not installed", where=where, expected="an importable module")
        path = Path(spec.origin)
    if not path.is_file():
        raise ConfigError(f"{ref!r} resolves to {path}, which does not exist", where=where,
                          expected="a file shipped in the installed package")
    return str(path.resolve())


def abspath(value: str) -> str:
    return str(Path(value).expanduser().resolve())


def with_image_root(settings: Any, image_root: str | None, where: str) -> dict[str, Any]:
    """The plugin settings with ``image_root`` set from ``phase2.image_root`` (one root for agent and judge)."""
    out = _plain(settings)
    if image_root is None:
        return out
    given = out.get("image_root")
    if given not in (None, "") and abspath(str(given)) != image_root:
        raise ConfigError(f"{where}.image_root={given!r} differs from phase2.image_root={image_root!r}", where=where,
                          expected="one image root: set phase2.image_root only")
    out["image_root"] = image_root
    return out


def verl_overrides(p: Any, *, train_file: str, val_file: str, checkpoint_dir: str,
                   reward_path: str, loops_yaml: str, tool_config: str | None,
                   image_root: str | None = None, response_length: int | None = None,
                   max_model_len: int | None = None) -> list[str]:
    """The verl 0.9 overrides of the reference GSPO run (seed 001), in a fixed order.

    ``image_root`` (absolute) goes to BOTH plugins; ``response_length``/``max_model_len`` come
    from :mod:`ddai.phase2.lengths`.
    """
    ro, ag, rw, sl = p.rollout, p.agent, p.reward, p.slurm
    response_length = response_length if response_length is not None else int(p.max_response_length)
    pairs: list[tuple[str, Any]] = [
        ("algorithm.adv_estimator", p.adv_estimator),
        ("algorithm.use_kl_in_reward", False),
        ("algorithm.kl_ctrl.kl_coef", float(p.kl_coef)),
        ("data.train_files", train_file),
        ("data.val_files", val_file),
        ("data.train_batch_size", p.train_batch_size),
        ("data.max_prompt_length", p.max_prompt_length),
        ("data.max_response_length", response_length),
        ("data.shuffle", False),
        ("data.image_key", p.image_key),
        ("data.filter_overlong_prompts", p.filter_overlong_prompts),
        ("actor_rollout_ref.model.path", p.model_path),
        ("actor_rollout_ref.model.use_remove_padding", p.use_remove_padding),
        ("actor_rollout_ref.model.enable_gradient_checkpointing", p.enable_gradient_checkpointing),
        ("actor_rollout_ref.actor.optim.lr", float(p.lr)),
        ("actor_rollout_ref.actor.optim.lr_warmup_steps", p.lr_warmup_steps),
        ("actor_rollout_ref.actor.ppo_mini_batch_size", p.ppo_mini_batch_size),
        ("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu", p.ppo_micro_batch_size_per_gpu),
        ("actor_rollout_ref.actor.policy_loss.loss_mode", p.loss_mode),
        ("actor_rollout_ref.actor.loss_agg_mode", p.loss_agg_mode),
        ("actor_rollout_ref.actor.clip_ratio_low", float(p.clip_ratio_low)),
        ("actor_rollout_ref.actor.clip_ratio_high", float(p.clip_ratio_high)),
        ("actor_rollout_ref.actor.use_kl_loss", p.use_kl_loss),
        ("actor_rollout_ref.actor.kl_loss_coef", float(p.kl_coef)),
        ("actor_rollout_ref.actor.entropy_coeff", float(p.entropy_coeff)),
        ("actor_rollout_ref.actor.fsdp_config.param_offload", p.actor_param_offload),
        ("actor_rollout_ref.actor.fsdp_config.optimizer_offload", p.actor_optimizer_offload),
        ("actor_rollout_ref.ref.fsdp_config.param_offload", p.ref_param_offload),
        ("actor_rollout_ref.rollout.name", ro.name),
        ("actor_rollout_ref.rollout.n", ro.n),
        ("actor_rollout_ref.rollout.tensor_model_parallel_size", ro.tensor_model_parallel_size),
        ("actor_rollout_ref.rollout.gpu_memory_utilization", float(ro.gpu_memory_utilization)),
        ("actor_rollout_ref.rollout.free_cache_engine", ro.free_cache_engine),
        ("actor_rollout_ref.rollout.enable_chunked_prefill", ro.enable_chunked_prefill),
        ("actor_rollout_ref.rollout.max_num_batched_tokens", ro.max_num_batched_tokens),
        ("actor_rollout_ref.rollout.enforce_eager", ro.enforce_eager),
        ("actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu", ro.log_prob_micro_batch_size_per_gpu),
        ("actor_rollout_ref.rollout.multi_turn.max_assistant_turns", ag.max_turns),
        ("actor_rollout_ref.rollout.multi_turn.max_tool_response_length", ag.max_tool_response_length),
    ]
    if max_model_len is not None:
        pairs.append(("actor_rollout_ref.rollout.max_model_len", max_model_len))
    if tool_config:
        pairs.append(("actor_rollout_ref.rollout.multi_turn.tool_config_path", tool_config))
    pairs += [
        ("actor_rollout_ref.rollout.agent.default_agent_loop", ag.loop),
        ("actor_rollout_ref.rollout.agent.agent_loop_config_path", loops_yaml),
        ("actor_rollout_ref.rollout.agent.num_workers", ag.num_workers),
        ("reward.custom_reward_function.path", reward_path),
        ("reward.custom_reward_function.name", rw.function),
        ("reward.reward_manager.name", rw.manager),
        ("reward.num_workers", rw.num_workers),
        ("trainer.logger", list(p.logger)),
        ("trainer.project_name", p.project_name),
        ("trainer.experiment_name", p.experiment_name),
        ("trainer.nnodes", sl.nodes),
        ("trainer.n_gpus_per_node", sl.gpus_per_node),
        ("trainer.default_local_dir", checkpoint_dir),
        ("trainer.save_freq", p.save_freq),
        ("trainer.test_freq", p.test_freq),
        ("trainer.resume_mode", p.resume_mode),
        ("trainer.total_epochs", p.total_epochs),
        ("trainer.critic_warmup", 0),
        # A resumed job must not pay for a judged validation pass again.
        ("trainer.val_before_train", False),
    ]
    if p.max_actor_ckpt_to_keep is not None:
        pairs.append(("trainer.max_actor_ckpt_to_keep", p.max_actor_ckpt_to_keep))
    out = [f"{k}={fmt_value(v)}" for k, v in pairs]
    # reward_kwargs exists only in verl's dataclass, not its YAML: Hydra needs '+' to add it.
    reward_kwargs = with_image_root(rw.kwargs, image_root, "phase2.reward.kwargs")
    agent_settings = with_image_root(ag.settings, image_root, "phase2.agent.settings")
    for key, value in flatten("reward.custom_reward_function.reward_kwargs", reward_kwargs):
        out.append(f"+{key}={fmt_value(value)}")
    for key, value in flatten("actor_rollout_ref.rollout.custom.ddai_agent", agent_settings):
        out.append(f"+{key}={fmt_value(value)}")
    out.extend(str(o) for o in p.extra_overrides)
    return out


def _plain(value: Any) -> dict[str, Any]:
    from omegaconf import DictConfig, OmegaConf

    if isinstance(value, DictConfig):
        return OmegaConf.to_container(value, resolve=True)  # type: ignore[return-value]
    return dict(value or {})


def required_env(p: Any) -> list[str]:
    """Names of the secrets the run needs (W&B's key only when W&B logging is on)."""
    names = [str(n) for n in p.required_env]
    if "wandb" in [str(x) for x in p.logger] and "WANDB_API_KEY" not in names:
        names.append("WANDB_API_KEY")
    return names


def sbatch_args(p: Any, run_dir: str) -> list[str]:
    """sbatch options of every job of the chain (successors reuse them verbatim)."""
    from ddai.jobs import JobSpec

    sl = p.slurm
    spec = JobSpec(name=sl.job_name or f"ddai-p2-{p.experiment_name}", command=[], nodes=int(sl.nodes),
                   gpus_per_node=int(sl.gpus_per_node), cpus_per_task=int(sl.cpus_per_task),
                   time_min=sl.time_min, signal=f"B:{STOP_SIGNAL}@{sl.signal_s}", open_mode_append=True,
                   output=f"{run_dir}/slurm-%j.out", mem=sl.mem, partition=sl.partition, account=sl.account,
                   extra_args=[str(a) for a in sl.extra_args], kill_on_invalid_dep=False)
    return spec.sbatch_args()


def wandb_run_id(run_dir: str, experiment: str) -> str:
    """Stable W&B run id of a chain: every job logs into the same W&B run."""
    import hashlib

    return hashlib.sha1(f"{run_dir}\0{experiment}".encode()).hexdigest()[:16]


def shell_line(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)
