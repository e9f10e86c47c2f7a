"""The Hydra callback that checks a run before Hydra writes anything for it.

Hydra calls ``on_run_start``/``on_multirun_start`` right after composing the config and
before it creates the job or sweep directory, saves ``.hydra/*.yaml`` or pickles jobs (read
in ``hydra/_internal/hydra.py`` and ``hydra/core/utils.py``, Hydra 1.3). Here:

* an override that carries an API key is refused (:mod:`ddai.launch.secrets`), so the key
  never reaches disk;
* a key no schema knows fails, naming the closest valid key (:mod:`ddai.launch.schema_keys`),
  including keys added with ``+`` that Hydra itself would accept;
* for a multirun, the directories the sweep is about to create are noted, so a sweep
  rejected before its first job (bad combination, composition error) removes them again
  (:func:`remove_rejected_sweep_dir`).

Both checks raise :class:`~ddai.errors.ConfigError`; Hydra's reporter (replaced by
:mod:`ddai.launch.cli`) prints it on one line with exit 2.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from ddai.errors import ConfigError
from ddai.launch import schema_keys, secrets, startup_gc

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")

# The first directory a pending multirun would create (None: the sweep dir already existed).
_created_root: Path | None = None
_sweep_dir: Path | None = None


def check(config: DictConfig) -> None:
    """Refuse secrets in the overrides and unknown keys in the composed config."""
    overrides = []
    for key in ("hydra.overrides.task", "hydra.overrides.hydra"):
        node = OmegaConf.select(config, key)
        if node is not None:   # as typed: ${oc.env:...} references are fine, pasted values are not
            overrides += OmegaConf.to_container(node, resolve=False)
    found = secrets.check_overrides(str(o) for o in overrides)
    if found is not None:
        key, what = found
        raise ConfigError(f"this override carries {what}; it was refused before anything was written", where=key,
                          expected="API keys only in the environment (e.g. export GEMINI_API_KEY=...), never "
                                   "on the command line or in a config")
    schema_keys.check_known_keys(config)
    name = OmegaConf.select(config, "sweep.summary_name")
    if name is not None and not _PLAIN_NAME.fullmatch(str(name)):
        raise ConfigError(f"{str(name)[:60]!r}{'...' if len(str(name)) > 60 else ''} is not a usable file name",
                          where="sweep.summary_name",
                          expected="1-200 characters of letters, digits, '.', '_' or '-' (no '/')")


def _check_or_exit(config: DictConfig) -> None:
    from ddai.launch import cli

    try:
        check(config)
    except Exception as exc:  # noqa: BLE001 - reported on one line, exit 2 (or a traceback for a bug)
        cli.fail(exc)


def _validate_task_or_exit(config: DictConfig) -> None:
    """Run the task's own settings check (reads no data) before Hydra creates the job directory.

    A single run whose settings cannot work then leaves nothing behind, like a rejected
    sweep. The check works on a copy of the task's part (a task may fill in derived settings
    while checking); ``${hydra:...}`` and ``${ddai_job_dir:}`` resolve as in the job: the
    config's ``hydra.runtime.output_dir`` is set here to what run_job sets it to next (the
    absolute ``hydra.run.dir``, resolved once on this config, so both see the same). Copying the
    hydra node as well (a deepcopy of the whole config) cost ~0.03 s of every start.
    """
    from hydra.core.hydra_config import HydraConfig

    from ddai.launch import cli
    from ddai.launch.sweep_validate import validate_job

    saved = HydraConfig.instance().cfg
    try:
        with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
            config.hydra.runtime.output_dir = os.path.abspath(str(config.hydra.run.dir))
        HydraConfig.instance().set_config(config)
        task_cfg = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
        OmegaConf.set_struct(task_cfg, bool(OmegaConf.is_struct(config)))
        validate_job(task_cfg, consume=True)   # the check's own copy
    except Exception as exc:  # noqa: BLE001 - reported on one line, exit 2 (or a traceback for a bug)
        cli.fail(exc)
    finally:
        HydraConfig.instance().cfg = saved


def _first_missing(path: Path) -> Path | None:
    """The outermost ancestor of ``path`` (itself included) that does not exist yet."""
    missing = None
    for p in [path, *path.parents]:
        if p.exists():
            break
        missing = p
    return missing


def remove_rejected_sweep_dir() -> None:
    """Remove what a rejected multirun created (only Hydra's ``multirun.yaml`` and empty dirs)."""
    global _created_root
    root, sweep = _created_root, _sweep_dir
    _created_root = None
    if root is None or sweep is None or not sweep.is_dir():
        return
    leftovers = [p for p in sweep.rglob("*") if p.is_file() and p.name != "multirun.yaml"]
    if leftovers:   # a job ran after all: keep everything
        return
    shutil.rmtree(root, ignore_errors=True)


class DdaiGuard(Callback):
    """Configured first in ``conf/config.yaml`` ``hydra.callbacks``."""

    # Hydra turns an exception raised by a callback into a warning and carries on, so a
    # refusal must end the process here: one line on stderr, exit 2 (SystemExit passes through).
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_or_exit(config)
        _validate_task_or_exit(config)
        startup_gc.resume()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _created_root, _sweep_dir
        startup_gc.resume()    # a sweep composes every job next: cycles must be collected again
        _check_or_exit(config)
        _sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
        _created_root = _first_missing(_sweep_dir)
