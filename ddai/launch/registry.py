"""Registers the dataclass schemas behind ``conf/`` with Hydra's ConfigStore, and ddai's resolvers.

Each config group's default YAML lists ``schema`` first in its defaults, so a wrong key or
type fails when Hydra composes the config, before anything runs. One line per group.
"""

from __future__ import annotations

import os


def job_dir() -> str:
    """``${ddai_job_dir:}``: the Hydra job's output directory, also before a job exists.

    WHY: ``${hydra:runtime.output_dir}`` is set only once a job starts, so ``--cfg job
    --resolve`` and ``--help`` showed ``None/curriculum``. Before the job, the directory the
    run would use (``hydra.run.dir``) is shown; outside any Hydra app, ``outputs/`` under cwd.
    """
    from hydra.core.hydra_config import HydraConfig

    try:
        hc = HydraConfig.get()
    except ValueError:
        return os.path.abspath("outputs")
    from omegaconf import OmegaConf

    out = OmegaConf.select(hc, "runtime.output_dir", default=None, throw_on_missing=False)
    if out:
        return str(out)
    try:
        return os.path.abspath(str(hc.run.dir))
    except Exception:  # noqa: BLE001 - an unresolvable run dir: say where outputs go by default
        return os.path.abspath("outputs")


def runs_root() -> str:
    """``${ddai_runs_root:}``: where Phase 2 runs live.

    ``$DDAI_RUNS_ROOT`` when set (a shared filesystem on a cluster); else ``<job dir>/runs``
    inside a Hydra run; else (a plan rendered at job start by ``sbatch phase2.slurm key=...``,
    which composes without a Hydra run) ``~/ddai_runs``. Never relative to the current directory.
    """
    from hydra.core.hydra_config import HydraConfig

    root = os.environ.get("DDAI_RUNS_ROOT")
    if root:
        return os.path.abspath(os.path.expanduser(root))
    try:
        HydraConfig.get()
    except ValueError:
        return os.path.join(os.path.expanduser("~"), "ddai_runs")
    return os.path.join(job_dir(), "runs")


def register_resolvers() -> None:
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("ddai_job_dir", job_dir, replace=True, use_cache=False)
    OmegaConf.register_new_resolver("ddai_runs_root", runs_root, replace=True, use_cache=False)


def register_all() -> None:
    from ddai.campaign.config import register as register_campaign
    from ddai.curriculum.config import register as register_curriculum
    from ddai.launch.sweep_config import register as register_sweep
    from ddai.phase2.config import register as register_phase2

    register_resolvers()
    register_curriculum()
    register_phase2()
    register_sweep()
    register_campaign()
