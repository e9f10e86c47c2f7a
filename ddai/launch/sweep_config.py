"""Schemas behind ``conf/sweep`` (cost settings of the sweep summary) and ddai's launcher presets.

WHY a schema for the prices: a sweep's point is to compare what each curriculum would cost
in Phase 2 (every judged rollout is a paid Gemini call plus a paid GPT-5-mini answer), so a
misspelt price key must fail at composition instead of silently pricing a run at zero.

WHY extra launcher keys: the PyPI hydra-submitit-launcher (1.2.0) lacks keys that newer
submitit accepts (``srun_args``, ``use_srun``). ddai's presets (``conf/hydra/launcher``) add
them and point ``_target_`` at :mod:`ddai.launch.submitit_launcher`, which validates the sweep
before submitting and survives a failed job long enough to summarize the others.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass
class ApiCost:
    """How one paid API call is priced; ``price_per_call`` wins over the token prices.

    Token counts are per call (images included for multimodal input). Prices are USD.
    """

    calls_per_rollout: float = 1.0
    price_per_call: Optional[float] = None
    input_tokens_per_call: float = 0.0
    output_tokens_per_call: float = 0.0
    price_per_1m_input_tokens: Optional[float] = None
    price_per_1m_output_tokens: Optional[float] = None


@dataclass
class WandbSummary:
    """Log the sweep summary to W&B as a table when ``project`` is set (key from WANDB_API_KEY)."""

    project: Optional[str] = None
    entity: Optional[str] = None
    name: Optional[str] = None
    mode: Optional[str] = None   # online | offline | disabled; None: wandb's default / WANDB_MODE
    tags: list[str] = field(default_factory=list)


@dataclass
class SweepConfig:
    """What the end-of-sweep summary needs beyond the manifests: Phase 2 cost assumptions."""

    rollouts_per_prompt: int = 8
    epochs: int = 1
    currency: str = "USD"
    judge: ApiCost = field(default_factory=ApiCost)
    generator: ApiCost = field(default_factory=ApiCost)
    summary_name: str = "sweep_summary"
    wandb: WandbSummary = field(default_factory=WandbSummary)


# Keys newer submitit accepts but the PyPI plugin's SlurmQueueConf lacks. An untyped node:
# Hydra merges conf/hydra/launcher/submitit_slurm.yaml with the plugin's same-named schema
# (automatic schema matching), and only an untyped base can take that typed node on top.
SLURM_LAUNCHER_EXTRAS: dict[str, Any] = {
    "srun_args": None,   # extra arguments for the `srun` line of the job script (submitit >= 1.4)
    "use_srun": True,    # False: run the callable directly in the batch shell (submitit >= 1.5)
}
SCHEMA_MATCH_WARNING = r"(?s).*'hydra/launcher/submitit_(slurm|local)' is validated against ConfigStore schema"


def register() -> None:
    """Register ``sweep/schema`` and the launcher schemas the presets in conf/ build on."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(group="sweep", name="schema", node=SweepConfig)
    cs.store(group="hydra/launcher", name="ddai_submitit_slurm_extras", node=dict(SLURM_LAUNCHER_EXTRAS))
    # Our presets deliberately shadow the plugin's configs of the same name and are checked
    # against its schema; Hydra warns about that on every run -- expected here, so silenced.
    warnings.filterwarnings("ignore", message=SCHEMA_MATCH_WARNING, category=UserWarning)
