"""``python -m ddai.launch``: the Hydra app behind every ddai run.

``task=curriculum`` (default) buckets Phase 1 logs; other tasks live in
``ddai/launch/tasks``. The same command runs locally, as a multirun sweep (``-m``), or on
Slurm (``hydra/launcher=submitit_slurm``) unchanged.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ddai.errors import DdaiError
from ddai.launch.registry import register_all

def _conf_dir() -> str:
    """The checkout's ``conf/`` (editable installs), else the copy a wheel carries in the package."""
    checkout = Path(__file__).resolve().parents[2] / "conf"
    return str(checkout if checkout.is_dir() else Path(__file__).resolve().parents[1] / "conf")


CONF_DIR = _conf_dir()

register_all()


def load_task(name: str) -> Any:
    """Import the task module named by ``task=``; unknown names fail with the known ones."""
    tasks_dir = Path(__file__).parent / "tasks"
    known = sorted(p.stem for p in tasks_dir.glob("*.py") if not p.stem.startswith("_"))
    if name not in known:
        raise DdaiError(f"unknown task {name!r}", where="task", expected=f"one of {', '.join(known)}")
    return importlib.import_module(f"ddai.launch.tasks.{name}")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> Any:
    try:
        task = load_task(cfg.task)
        task.validate(cfg)
        return task.run(cfg)
    except DdaiError as exc:
        print(f"ddai: error: {exc}", file=sys.stderr)
        if HydraConfig.get().mode == RunMode.RUN:
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
