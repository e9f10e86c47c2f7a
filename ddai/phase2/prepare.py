"""Render a run from Hydra overrides inside a job (``sbatch slurm/phase2.slurm key=value ...``).

WHY: users who submit the script directly, without ``python -m ddai.launch``, still get the
same composition (conf/ + the ``phase2`` schema), the same validation and the same frozen
``plan.json`` as the launcher path.
"""

from __future__ import annotations

from pathlib import Path

from ddai.phase2.plan import PLAN_NAME, build_plan, write_plan

# ddai/conf: the checkout's conf/ through a link, or the copy a wheel carries (package data).
CONF_DIR = (Path(__file__).resolve().parents[1] / "conf").resolve()


def compose_ddai(overrides: list[str]):
    """Compose the ``phase2`` group of ddai's config tree plus ``overrides`` (schema-checked).

    Only the phase2 group and its schema: this layer sits below the launcher and must not
    import it (``ddai.launch`` registers the other groups for the full tree).
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from ddai.phase2.config import register

    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=None, overrides=["+phase2=default", *overrides])


def prepare(overrides: list[str]) -> str:
    """Validate, write ``<run_dir>/plan.json`` unless it exists, and return the run dir."""
    cfg = compose_ddai(overrides)
    plan = build_plan(cfg.phase2)
    path = Path(plan.run_dir) / PLAN_NAME
    if not path.exists():
        write_plan(path, plan)
    return plan.run_dir
