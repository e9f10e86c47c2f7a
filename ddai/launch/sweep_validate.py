"""Check every combination of a sweep before a single job is submitted.

WHY: on a cluster a bad combination (θ1 ≥ θ_easy, a typo in a sort name, a log path that
does not exist) would otherwise surface minutes or hours later as one failed array task,
after the good ones have used their allocation. Here each job's config is composed exactly
as the job will compose it (same overrides, same output directory), the task's own
``validate`` is called, inputs are checked for existence and readability (not read), and
no two jobs may write the same output directory. Any problem rejects the whole sweep and
names the combination.
"""

from __future__ import annotations

import copy
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import filter_overrides
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from ddai.errors import ConfigError, DdaiError

# Inputs each task reads, by config key: checked to exist and be readable before submission.
TASK_INPUTS: dict[str, tuple[str, ...]] = {
    "curriculum": ("curriculum.phase1_log", "curriculum.dataset"),
}
# The directory each task writes: no two jobs of a sweep may share it.
TASK_OUTPUT: dict[str, str] = {
    "curriculum": "curriculum.out_dir",
}


@dataclass
class JobPlan:
    """One validated combination: what the launcher submits and the summary reports."""

    num: int
    overrides: list[str]
    label: str
    output_dir: str          # Hydra's job directory (hydra.runtime.output_dir)
    task: str
    out_dir: str | None      # the task's own output directory, resolved


class SweepRejected(ConfigError):
    """At least one combination is invalid; nothing was submitted."""

    def __init__(self, problems: list[tuple[int, str, str]], total: int):
        self.problems = problems
        self.lines = [f"{len(problems)} of {total} sweep combination(s) invalid; nothing was submitted"]
        self.lines += [f"#{num} {label or '(no overrides)'}: {' '.join(msg.split())}" for num, label, msg in problems]
        super().__init__("\n".join(self.lines))

    def report(self) -> None:
        """Print one ``ddai: error:`` line per problem on stderr (secrets masked)."""
        import sys

        from ddai.launch.secrets import redact

        for line in self.lines:
            print(redact(f"ddai: error: {line}"), file=sys.stderr)


def _select(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, throw_on_missing=True)


def check_readable(path_value: Any, key: str) -> None:
    """An input path must exist and be readable (a directory: listable); its content is not read."""
    if path_value in (None, ""):
        raise ConfigError("no path given", where=key, expected="an existing file or directory")
    p = Path(str(path_value)).expanduser()
    if not p.exists():
        from ddai.curriculum.read import log_parts

        if log_parts(p):   # a log written in per-writer parts, named by its plain path
            return
        raise ConfigError(f"{p} does not exist", where=key, expected="an existing file or directory")
    mode = os.R_OK | (os.X_OK if p.is_dir() else 0)
    if not os.access(p, mode):
        raise ConfigError(f"{p} is not readable", where=key, expected="a readable file or directory")


def _job_config(config_loader: Any, master: DictConfig, overrides: list[str], num: int) -> DictConfig:
    """Compose the job's config the way the submitit launcher does inside the job."""
    cfg = config_loader.load_sweep_config(master, list(overrides))
    with open_dict(cfg.hydra.job):
        cfg.hydra.job.num = num
        cfg.hydra.job.id = f"validate_{num}"
    output_dir = os.path.join(str(_select(cfg, "hydra.sweep.dir")), str(_select(cfg, "hydra.sweep.subdir")))
    with read_write(cfg.hydra.runtime), open_dict(cfg.hydra.runtime):
        cfg.hydra.runtime.output_dir = os.path.abspath(output_dir)
    return cfg


def validate_job(cfg: DictConfig, *, consume: bool = False) -> tuple[str, str | None]:
    """Validate one composed job config (HydraConfig must be set to it); return (task, out_dir).

    The task sees the config as in the job, without ``hydra``: a copy, or with ``consume=True``
    ``cfg`` itself loses its ``hydra`` node (for a caller that made ``cfg`` only for this check;
    saves copying the whole config once more).
    """
    task_cfg = cfg if consume else copy.deepcopy(cfg)
    if "hydra" in task_cfg:
        with read_write(task_cfg), open_dict(task_cfg):
            del task_cfg["hydra"]
    task_name = str(task_cfg.task)
    tasks_dir = Path(__file__).parent / "tasks"
    known = sorted(p.stem for p in tasks_dir.glob("*.py") if not p.stem.startswith("_"))
    if task_name not in known:
        raise ConfigError(f"unknown task {task_name!r}", where="task", expected=f"one of {', '.join(known)}")
    module = importlib.import_module(f"ddai.launch.tasks.{task_name}")
    module.validate(task_cfg)
    for key in TASK_INPUTS.get(task_name, ()):
        check_readable(_select(task_cfg, key), key)
    out_key = TASK_OUTPUT.get(task_name)
    out_dir = None
    if out_key is not None:
        out_dir = os.path.abspath(os.path.expanduser(str(_select(task_cfg, out_key))))
    return task_name, out_dir


def validate_sweep(config_loader: Any, master: DictConfig, job_overrides: Sequence[Sequence[str]],
                   initial_job_idx: int = 0) -> list[JobPlan]:
    """Compose and validate every job; raise :class:`SweepRejected` naming each bad one."""
    problems: list[tuple[int, str, str]] = []
    plans: list[JobPlan] = []
    hydra_cfg = HydraConfig.instance()
    saved = hydra_cfg.cfg
    try:
        for i, overrides in enumerate(job_overrides):
            num = initial_job_idx + i
            label = " ".join(filter_overrides(list(overrides)))
            try:
                cfg = _job_config(config_loader, master, list(overrides), num)
                hydra_cfg.set_config(cfg)
                task, out_dir = validate_job(cfg)
                plans.append(JobPlan(num, list(overrides), label, str(cfg.hydra.runtime.output_dir), task, out_dir))
            except DdaiError as exc:
                problems.append((num, label, str(exc)))
            except Exception as exc:  # composition/interpolation errors: still name the combination
                from ddai.launch.cli import describe

                described = describe(exc)
                problems.append((num, label, described[0] if described else f"{type(exc).__name__}: {exc}".strip()))
    finally:
        hydra_cfg.cfg = saved
    seen: dict[str, JobPlan] = {}
    for plan in plans:
        if plan.out_dir is None:
            continue
        other = seen.get(plan.out_dir)
        if other is not None:
            problems.append((plan.num, plan.label,
                             f"{TASK_OUTPUT[plan.task]}: {plan.out_dir} is also the output of #{other.num} "
                             f"({other.label}) (expected one output directory per job, e.g. the default "
                             "${hydra:runtime.output_dir}/curriculum)"))
        else:
            seen[plan.out_dir] = plan
    if problems:
        raise SweepRejected(sorted(problems), len(job_overrides))
    return plans


def validate_sweep_or_exit(config_loader: Any, master: DictConfig, job_overrides: Sequence[Sequence[str]],
                           initial_job_idx: int) -> list[JobPlan]:
    """What every ddai launcher does before its first job: validate every combination, or report
    each rejected one, remove the sweep directory the rejection left and exit 2."""
    try:
        return validate_sweep(config_loader, master, job_overrides, initial_job_idx)
    except SweepRejected as exc:
        import sys

        from ddai.launch.guard import remove_rejected_sweep_dir

        exc.report()
        remove_rejected_sweep_dir()
        sys.exit(2)
