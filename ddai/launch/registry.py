"""Registers the dataclass schemas behind ``conf/`` with Hydra's ConfigStore.

Each config group's default YAML lists ``schema`` first in its defaults, so a wrong key or
type fails when Hydra composes the config, before anything runs. One line per group.
"""

from __future__ import annotations


def register_all() -> None:
    from ddai.campaign.config import register as register_campaign
    from ddai.curriculum.config import register as register_curriculum
    from ddai.launch.sweep_config import register as register_sweep
    from ddai.phase2.config import register as register_phase2

    register_curriculum()
    register_phase2()
    register_sweep()
    register_campaign()
