"""``python -m ddai.launch``: the Hydra app behind every ddai run.

``task=curriculum`` (default) buckets Phase 1 logs; other tasks live in
``ddai/launch/tasks``. The same command runs locally, as a multirun sweep (``-m``), or on
Slurm (``hydra/launcher=submitit_slurm``) unchanged.

Before Hydra starts, its error reporter is replaced so that every user error is one
``ddai: error:`` line with exit 2 (:mod:`ddai.launch.cli`); the guard callback in
``conf/config.yaml`` refuses secrets and unknown keys before Hydra writes anything
(:mod:`ddai.launch.guard`). stdout carries only the task's machine-readable result; Hydra's
messages, tables and progress go to stderr, and each job's ``ddai.log`` records what ran
and how it ended.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

import ddai
from ddai.errors import DdaiError
from ddai.launch import cli
from ddai.launch.registry import register_all
from ddai.launch.secrets import redact

log = logging.getLogger("ddai")


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


def _log_start(cfg: DictConfig) -> None:
    try:
        hc = HydraConfig.get()
        overrides = list(hc.overrides.task)
        where = hc.runtime.output_dir
    except ValueError:
        overrides, where = [], None
    log.info("ddai %s task=%s overrides=%s job_dir=%s", ddai.__version__, cfg.task,
             redact(json.dumps(overrides)), where)


def _to_log_file(message: str, exc: BaseException) -> None:
    """Record a traceback in the job's ddai.log only (stderr gets it once, from the reporter)."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, redact(message), (),
                            (type(exc), exc, exc.__traceback__))
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> Any:
    _log_start(cfg)
    try:
        task = load_task(cfg.task)
        task.validate(cfg)
        result = task.run(cfg)
    except Exception as exc:
        described = cli.describe(exc)
        if described is None:                    # a bug: Hydra's reporter prints the traceback
            _to_log_file("ddai: internal error", exc)
            raise
        message = redact(f"ddai: error: {described[0]}")
        log.error(message)           # stderr (one line) and the job's ddai.log
        if HydraConfig.get().mode == RunMode.RUN:
            sys.exit(described[1])
        raise
    log.info("finished: %s", redact(json.dumps(result, default=str)) if result is not None else "ok")
    return result


def run() -> None:
    """Entry point: install the one-line error reporter, then hand over to Hydra."""
    cli.install()
    main()


if __name__ == "__main__":
    run()
