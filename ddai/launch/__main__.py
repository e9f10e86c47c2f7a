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

if __name__ == "__main__":
    from ddai.launch import startup_gc

    startup_gc.pause()   # until the composed config is checked (ddai.launch.startup_gc's WHY)
    from ddai import blas_threads

    blas_threads.install()   # numpy's BLAS threads would spin beside the reading (ddai.blas_threads)
    # Before Hydra's imports and composition (~0.5 s on one core): a big log named on the command
    # line starts being read on the other cores meanwhile (ddai.launch.early_read).
    from ddai.launch import early_read

    early_read.start(sys.argv[1:])

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

import ddai
from ddai.errors import DdaiError
from ddai.launch import cli, yaml_loader
from ddai.launch.registry import register_all
from ddai.launch.secrets import redact

log = logging.getLogger("ddai")

# Set by the ``__main__`` entry only: the process ends (without heap teardown) right after the run.
_ENDS_AFTER_RUN = False


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
    from ddai.launch import startup_gc

    startup_gc.resume()   # normally done by the guard already
    _log_start(cfg)
    if _ENDS_AFTER_RUN and HydraConfig.get().mode == RunMode.RUN:
        # One job, then the process ends: what the run drops may stay until then (ddai.curriculum.retain).
        # Not in a sweep: its jobs run one after another in this process.
        from ddai.curriculum import retain

        retain.until_exit()
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


def _skip_mode_probe() -> None:
    """Skip Hydra's extra composition of the whole config that only reads ``hydra.mode``.

    WHY: Hydra 1.3 composes the config twice per start, once just to learn ``hydra.mode``
    (``Hydra.get_mode``) and once for the run; with ddai's schemas each composition costs
    ~0.3-0.7 s, a third of a curriculum run on a small log. ddai's own config tree never sets
    ``hydra.mode``, so the probe can only find a value when the command line sets it (or names
    another primary config): only then is Hydra's own probe run.
    """
    from hydra._internal.hydra import Hydra

    probe = Hydra.get_mode
    if getattr(probe, "_ddai_fast", False):
        return
    other_config = any(a in ("-cn", "--config-name", "-cp", "--config-path", "-cd", "--config-dir")
                       or a.startswith(("--config-name=", "--config-path=", "--config-dir="))
                       for a in sys.argv[1:])

    def get_mode(self: Any, config_name: Any, overrides: list[str]) -> Any:
        if other_config or any(o.lstrip("+~").startswith(("hydra.mode", "hydra/")) for o in overrides):
            return probe(self, config_name, overrides)
        return None  # what the probe returns for ddai's tree: Hydra then picks RUN or MULTIRUN from -m

    get_mode._ddai_fast = True  # type: ignore[attr-defined]
    Hydra.get_mode = get_mode  # type: ignore[method-assign]


def run() -> None:
    """Entry point: install the one-line error reporter, then hand over to Hydra."""
    cli.install()
    _skip_mode_probe()
    yaml_loader.install()   # config files parsed by libyaml (ddai.launch.yaml_loader's WHY)
    main()


if __name__ == "__main__":
    _ENDS_AFTER_RUN = True
    run()
    # Everything is written and committed: skip freeing the heap object by object (quick_exit's WHY).
    from ddai.launch.quick_exit import exit_without_teardown

    exit_without_teardown(0)
