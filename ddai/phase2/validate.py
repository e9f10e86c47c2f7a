"""Reject a Phase 2 run that cannot work or would waste GPU hours, before a GPU is held.

Three layers, cheapest first:

1. :func:`check_settings` — arithmetic on the ddai config alone (no file, no verl): batch
   sizes that must divide, a save interval one job can reach, restart budgets.
2. :func:`check_data` — the training parquet's row count: the remainder verl's
   ``drop_last`` would silently never train.
3. :func:`compose_verl` — verl's own packaged YAML (``verl/trainer/config/ppo_trainer.yaml``)
   composed with the rendered overrides by Hydra, exactly as ``verl.trainer.main_ppo`` would:
   unknown keys fail; keys verl 0.9 still accepts but no longer reads (the old top-level
   reward keys, ``+`` keys outside the few dataclass-only places) fail too; then verl's own
   ``validate_config`` runs on the result.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ddai.errors import ConfigError

# Old (≤0.7) top-level reward keys: still in verl 0.9's legacy_reward_impl.yaml, so Hydra
# accepts them, but main_ppo never reads them any more (the reward silently falls back).
LEGACY_ROOTS = ("custom_reward_function", "reward_model", "sandbox_fusion")

# Places where verl 0.9 reads keys that its YAML does not list (dataclass-only fields), so a
# '+' override there is meaningful. Anywhere else, '+' adds a key nobody reads.
PLUS_ALLOWED = (
    "reward.custom_reward_function.reward_kwargs.",
    "reward.reward_kwargs.",
    "reward.max_concurrent",
    "reward.max_rpm",
    "reward.max_tpm",
    "reward.estimated_tokens_per_request",
    "reward.timeout",
    "ray_kwargs.ray_init.runtime_env.",
    "actor_rollout_ref.rollout.agent.agent_loop_manager_class",
    "actor_rollout_ref.rollout.custom.",
    "actor_rollout_ref.rollout.engine_kwargs.",
    "actor_rollout_ref.model.override_config.",
)

LOSS_MODES = ("vanilla", "dppo_tv", "dppo_kl", "gspo", "sapo", "gpg", "clip_cov", "kl_cov", "geo_mean",
              "dro", "cispo", "bypass_mode")
AGG_MODES = ("token-mean", "token-sum", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm")


def verl_config_dir() -> Path:
    """verl's packaged config directory, found without importing verl (no torch needed)."""
    spec = importlib.util.find_spec("verl")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("verl is not installed", where="phase2",
                          expected="`pip install 'ddai[train]'` (verl 0.9.x) to validate against its config")
    path = Path(list(spec.submodule_search_locations)[0]) / "trainer" / "config"
    if not (path / "ppo_trainer.yaml").is_file():
        raise ConfigError(f"{path} has no ppo_trainer.yaml", where="verl", expected="verl 0.9.x")
    return path


def _int(p: Any, key: str, value: Any, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"value {value!r}", where=f"phase2.{key}", expected=f"an integer ≥ {minimum}")
    return value


def steps_per_job(p: Any) -> int:
    """Training steps one job can finish: (limit − startup − signal margin) / step time."""
    sl = p.slurm
    usable = sl.time_min - sl.startup_minutes - sl.signal_s / 60.0
    return max(0, math.floor(usable / sl.step_minutes)) if sl.step_minutes > 0 else 0


def check_settings(p: Any) -> None:
    """Checks a type cannot express. Reads no file and submits nothing."""
    if not p.model_path:
        raise ConfigError("no model to train", where="phase2.model_path",
                          expected="the Phase 1 model directory (HF format), e.g. phase2.model_path=/shared/models/phase1")
    if bool(p.manifest) == bool(p.train_file):
        raise ConfigError("set exactly one of phase2.manifest and phase2.train_file", where="phase2.manifest",
                          expected="a curriculum manifest.json (its training bucket) or an explicit parquet")
    if p.loss_mode not in LOSS_MODES:
        raise ConfigError(f"unknown loss mode {p.loss_mode!r}", where="phase2.loss_mode",
                          expected=f"one of {', '.join(LOSS_MODES)}")
    if p.loss_agg_mode not in AGG_MODES:
        raise ConfigError(f"unknown aggregation {p.loss_agg_mode!r}", where="phase2.loss_agg_mode",
                          expected=f"one of {', '.join(AGG_MODES)}")
    if p.loss_mode == "gspo" and p.loss_agg_mode != "seq-mean-token-mean":
        raise ConfigError(f"GSPO with loss_agg_mode={p.loss_agg_mode}", where="phase2.loss_agg_mode",
                          expected="seq-mean-token-mean (verl 0.9.1 no longer forces it for GSPO)")
    if p.resume_mode != "auto":
        raise ConfigError(f"resume_mode={p.resume_mode!r}: a chained job would not resume", where="phase2.resume_mode",
                          expected="auto")
    sl = p.slurm
    tbs = _int(p, "train_batch_size", p.train_batch_size)
    mini = _int(p, "ppo_mini_batch_size", p.ppo_mini_batch_size)
    micro = _int(p, "ppo_micro_batch_size_per_gpu", p.ppo_micro_batch_size_per_gpu)
    n = _int(p, "rollout.n", p.rollout.n)
    nodes = _int(p, "slurm.nodes", sl.nodes)
    gpn = _int(p, "slurm.gpus_per_node", sl.gpus_per_node)
    gpus = nodes * gpn
    if tbs % mini:
        raise ConfigError(f"train_batch_size={tbs} is not a multiple of ppo_mini_batch_size={mini}",
                          where="phase2.ppo_mini_batch_size", expected="a divisor of train_batch_size")
    if (tbs * n) % gpus:
        raise ConfigError(f"train_batch_size×rollout.n = {tbs * n} does not split over {gpus} GPUs",
                          where="phase2.train_batch_size", expected=f"train_batch_size×n divisible by {gpus}")
    per_gpu_mini = mini * n / gpus
    if per_gpu_mini != int(per_gpu_mini) or int(per_gpu_mini) % micro:
        raise ConfigError(
            f"a mini-batch is {mini}×{n}/{gpus} = {per_gpu_mini:g} samples per GPU, "
            f"not a multiple of ppo_micro_batch_size_per_gpu={micro}",
            where="phase2.ppo_micro_batch_size_per_gpu", expected="a divisor of the per-GPU mini-batch")
    _int(p, "slurm.max_restarts", sl.max_restarts, 0)
    _int(p, "slurm.max_no_progress", sl.max_no_progress, 1)
    _int(p, "slurm.time_min", sl.time_min, 1)
    if not (0 < sl.signal_s < sl.time_min * 60):
        raise ConfigError(f"signal_s={sl.signal_s} with time_min={sl.time_min}", where="phase2.slurm.signal_s",
                          expected="seconds before the limit, below the limit itself")
    if p.save_freq <= 0:
        raise ConfigError(f"save_freq={p.save_freq} never writes a checkpoint, so no job could resume",
                          where="phase2.save_freq", expected="an integer ≥ 1")
    reachable = steps_per_job(p)
    if reachable < 1:
        raise ConfigError(
            f"one job ({sl.time_min} min, {sl.startup_minutes:g} min start-up, {sl.signal_s} s signal margin) "
            f"cannot finish a single {sl.step_minutes:g}-min step",
            where="phase2.slurm.time_min", expected="a longer time limit or a smaller step_minutes estimate")
    if p.save_freq > reachable:
        raise ConfigError(
            f"save_freq={p.save_freq} but one job reaches only ~{reachable} steps "
            f"({sl.time_min} min limit, ~{sl.step_minutes:g} min/step): jobs would end before any checkpoint "
            "and the chain would never progress",
            where="phase2.save_freq", expected=f"save_freq ≤ {reachable}")
    check_reward_kwargs(p)


def check_reward_kwargs(p: Any) -> None:
    """Let the plugins' own schemas judge their settings, so a typo fails before any GPU is held."""
    from dataclasses import fields

    from ddai.agent.config import AgentConfig
    from ddai.reward.config import RewardConfig

    reward_kwargs = _plain_dict(p.reward.kwargs)
    # Contract (notes/contracts.md #1): the reward's field is `image_root`. Until the reward side
    # has renamed it, the key ddai renders is checked by everything but that one field.
    if "image_root" not in {f.name for f in fields(RewardConfig)}:
        reward_kwargs.pop("image_root", None)
    RewardConfig.from_kwargs(reward_kwargs, where="phase2.reward.kwargs")
    AgentConfig.from_kwargs(_plain_dict(p.agent.settings), where="phase2.agent.settings")


# A page image as the search server and the judge name it: {deck}_{page}.jpg (also png/jpeg/webp).
PAGE_IMAGE = re.compile(r"^.+_\d+\.(jpg|jpeg|png|webp)$", re.IGNORECASE)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


def check_image_root(value: Any, where: str = "phase2.image_root") -> str:
    """The one directory of page images, absolute, existing and holding at least one page image.

    WHY so strict: sbatch starts the job in another directory, so a relative root resolves
    somewhere else; a root with no pages makes every search observation an error and NDCG 0.
    """
    if value is None or str(value).strip() == "":
        raise ConfigError("no image root: the agent would search blind and the judge would see no pages", where=where,
                          expected="the absolute directory of page images {deck}_{page}.jpg, e.g. "
                                   "phase2.image_root=/shared/corpus/img")
    raw = str(value).strip()
    path = Path(raw).expanduser()
    if not path.is_absolute():
        raise ConfigError(f"{raw!r} is relative: a Slurm job starts in another directory", where=where,
                          expected="an absolute path (e.g. phase2.image_root=$PWD/" + raw.lstrip("./") + ")")
    if not path.is_dir():
        raise ConfigError(f"{path} does not exist or is not a directory", where=where,
                          expected="an existing directory of page images {deck}_{page}.jpg")
    with os.scandir(path) as it:
        if not any(e.is_file() and PAGE_IMAGE.match(e.name) for e in it):
            raise ConfigError(f"{path} holds no page image", where=where,
                              expected="files named {deck}_{page}.jpg (as the search server returns them)")
    return str(path.resolve())


def check_model_dir(value: Any, where: str = "phase2.model_path") -> None:
    """The Phase 1 model directory must hold its config, tokenizer and image processor files.

    verl turns a processor that fails to load into a warning and trains text-only; a missing
    processor file is the commonest cause, and it is visible without loading anything.
    """
    path = Path(str(value)).expanduser()
    if not path.is_dir():
        raise ConfigError(f"{path} is not a directory", where=where,
                          expected="the Phase 1 model directory (HF format, on a filesystem the GPU nodes see)")
    missing = []
    if not (path / "config.json").is_file():
        missing.append("config.json")
    if not any((path / f).is_file() for f in TOKENIZER_FILES):
        missing.append(" or ".join(TOKENIZER_FILES))
    if not any((path / f).is_file() for f in PROCESSOR_FILES):
        missing.append(" or ".join(PROCESSOR_FILES))
    if missing:
        raise ConfigError(f"{path} lacks {', '.join(missing)}", where=where,
                          expected="a model saved with its tokenizer and processor (save_pretrained of both)")


def check_url(value: Any, where: str) -> None:
    """A search server URL that can be requested: http(s), a host, a numeric port if any."""
    raw = str(value or "")
    try:
        parts = urlsplit(raw)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        parts, port_ok = None, False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or " " in raw:
        raise ConfigError(f"malformed URL {raw!r}", where=where, expected="http(s)://HOST[:PORT]/PATH, e.g. http://node12:5002/search")


def check_inputs(p: Any) -> str:
    """Files and URLs the run depends on; returns the absolute image root."""
    image_root = check_image_root(p.image_root)
    check_model_dir(p.model_path)
    settings = _plain_dict(p.agent.settings)
    if settings.get("search_url"):
        check_url(settings["search_url"], "phase2.agent.settings.search_url")
    return image_root


def _plain_dict(node: Any) -> dict:
    from omegaconf import DictConfig, OmegaConf

    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    return dict(node or {})


def check_data(p: Any, rows: int, *, allow_remainder: bool, manifest_steps: int | None) -> int:
    """Steps per epoch for ``rows`` prompts; a remainder verl would drop is an error."""
    tbs = p.train_batch_size
    steps, rest = divmod(rows, tbs)
    if steps == 0:
        raise ConfigError(f"the training set has {rows} rows, fewer than one batch of {tbs}",
                          where="phase2.train_batch_size", expected=f"at least {tbs} rows")
    if rest and not allow_remainder:
        raise ConfigError(
            f"the training set has {rows} rows: verl drops the last {rest} (drop_last) and never trains them",
            where="phase2.train_batch_size",
            expected=f"a multiple of {tbs} rows (curriculum.remainder=trim|pad, or phase2.allow_remainder=true)")
    if manifest_steps is not None and manifest_steps != steps:
        raise ConfigError(
            f"manifest says {manifest_steps} steps per epoch but {rows} rows / batch {tbs} gives {steps}",
            where="phase2.manifest", expected="a manifest written with the same train_batch_size")
    return steps


def missing_env(names: list[str]) -> list[str]:
    """Required variables that are unset or empty; ``"A|B"`` is satisfied by either name.

    Only presence is checked; values are never printed or logged.
    """
    return [n for n in names if not any(os.environ.get(alt) for alt in n.split("|"))]


def describe(names: list[str]) -> str:
    """``["A|B", "C"]`` -> ``"A (or B), C"``."""
    return ", ".join(n.split("|")[0] + (f" (or {' or '.join(n.split('|')[1:])})" if "|" in n else "") for n in names)


def check_env(names: list[str]) -> None:
    missing = missing_env(names)
    if missing:
        raise ConfigError(f"missing API key(s) in the environment: {describe(missing)}",
                          where="environment", expected="each of them exported before submitting; values are never printed")


def check_no_secret_in(overrides: list[str], names: list[str]) -> None:
    """A key pasted into a config would end up in logs and the W&B config: refuse it."""
    for name in (alt for n in names for alt in n.split("|")):
        value = os.environ.get(name)
        if value and len(value) >= 8 and any(value in o for o in overrides):
            raise ConfigError(f"the value of {name} appears in the verl overrides", where="phase2",
                              expected="secrets only in the environment, never in configs")


def compose_verl(overrides: list[str]) -> Any:
    """Compose verl's packaged ``ppo_trainer`` config with ``overrides``; return the DictConfig.

    Uses Hydra's config loader directly (not ``hydra.initialize``) so it also works inside a
    running Hydra app, and reads YAML only (no torch import).
    """
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.errors import HydraException
    from hydra.types import RunMode
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    for o in overrides:
        key = o.split("=", 1)[0]
        key = key.removeprefix("++")
        if key.startswith("+") and not key[1:].startswith(PLUS_ALLOWED):
            raise ConfigError(f"override {o.split('=', 1)[0]!r} adds a key verl 0.9 does not read",
                              where="verl overrides",
                              expected="an existing verl key (without '+'), or one of the dataclass-only keys "
                                       + ", ".join(k.rstrip('.') for k in PLUS_ALLOWED[:3]))
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(verl_config_dir())))
    try:
        cfg = loader.load_configuration(config_name="ppo_trainer", overrides=list(overrides), run_mode=RunMode.RUN)
    except (HydraException, OmegaConfBaseException) as exc:
        msg = str(exc).strip().splitlines()[0]
        raise ConfigError(f"verl rejects the overrides: {msg}", where="verl ppo_trainer.yaml",
                          expected="keys that exist in verl 0.9's packaged config") from None
    with open_dict(cfg):
        cfg.pop("hydra", None)
    for root in LEGACY_ROOTS:
        node = cfg.get(root)
        if node is None:
            continue
        for key, value in _leaves(OmegaConf.to_container(node, resolve=False), root):
            if value is not None:
                raise ConfigError(
                    f"{key} is set, but verl 0.9 ignores the old top-level reward keys", where="verl overrides",
                    expected="reward.custom_reward_function.{path,name,reward_kwargs} and reward.reward_manager.name")
    return cfg


def _leaves(value: Any, prefix: str) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        out: list[tuple[str, Any]] = []
        for k, v in value.items():
            out.extend(_leaves(v, f"{prefix}.{k}"))
        return out
    return [(prefix, value)]


def verl_semantic_check(cfg: Any) -> None:
    """verl's own ``validate_config`` (imports verl, hence torch; CPU is enough)."""
    from omegaconf import OmegaConf

    try:
        from verl.trainer.ppo.utils import need_critic, need_reference_policy
        from verl.utils.config import validate_config
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(f"cannot import verl ({exc})", where="verl", expected="verl 0.9.x with torch") from None
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # verl warns that GRPO needs no critic: expected here
            OmegaConf.resolve(cfg)
            validate_config(cfg, use_reference_policy=need_reference_policy(cfg), use_critic=need_critic(cfg))
    except (AssertionError, ValueError, TypeError) as exc:
        raise ConfigError(f"verl's validate_config refuses the run: {exc}", where="verl config",
                          expected="settings verl 0.9 accepts") from None
