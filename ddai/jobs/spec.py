"""What a job needs (:class:`JobSpec`), how it is referred to (:class:`JobRef`) and its state.

WHY a dataclass renders its own sbatch arguments: the same spec is submitted now, printed by
a dry run and re-used verbatim by a successor job, so the argument list must come from one
function. Settings the spec has no field for pass through ``extra_args`` unchanged.
"""

from __future__ import annotations

import enum
import re
import shlex
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ddai.errors import DdaiError

DEPENDENCY_KINDS = ("afterok", "afterany", "afternotok")


class JobState(str, enum.Enum):
    """A job's state reduced to what a caller decides on (Slurm has two dozen names)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"  # ended with exit code 0
    FAILED = "FAILED"        # non-zero exit, time limit, node failure, out of memory
    CANCELLED = "CANCELLED"  # scancel, or a dependency that can never be satisfied
    UNKNOWN = "UNKNOWN"      # the scheduler no longer knows the job (or never did)

    @property
    def live(self) -> bool:
        return self in (JobState.PENDING, JobState.RUNNING)

    @property
    def ended(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


# Slurm state names (squeue %T / sacct State, first word) -> JobState.
SLURM_STATES: dict[str, JobState] = {
    **{s: JobState.PENDING for s in ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED",
                                      "RESV_DEL_HOLD", "CONFIGURING", "RESIZING", "STAGE_OUT", "SIGNALING",
                                      "SPECIAL_EXIT", "STOPPED")},
    **{s: JobState.RUNNING for s in ("RUNNING", "COMPLETING")},
    "COMPLETED": JobState.COMPLETED,
    **{s: JobState.FAILED for s in ("FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE",
                                     "PREEMPTED", "REVOKED")},
    "CANCELLED": JobState.CANCELLED,
}


def slurm_state(name: str) -> JobState:
    """Map a Slurm state word (``CANCELLED by 0`` → ``CANCELLED``) to a :class:`JobState`."""
    word = name.strip().split(" ")[0].rstrip("+") if name.strip() else ""
    return SLURM_STATES.get(word, JobState.UNKNOWN)


_JOB_ID = re.compile(r"^(\d+)(?:_\d+)?(?:;\S+)?$")


def parse_job_id(stdout: str) -> str:
    """The job id printed by ``sbatch --parsable`` (``123`` or ``123;cluster``)."""
    line = stdout.strip().splitlines()[-1].strip() if stdout.strip() else ""
    m = _JOB_ID.match(line)
    if not m:
        raise DdaiError(f"sbatch printed {stdout.strip()!r}, not a job id", where="slurm",
                        expected="`sbatch --parsable` output: JOBID or JOBID;CLUSTER")
    return m.group(1)


@dataclass(frozen=True)
class JobRef:
    """A submitted job: its id and the executor that knows it."""

    job_id: str
    backend: str = "slurm"
    name: str = ""

    def __str__(self) -> str:
        return self.job_id


@dataclass(frozen=True)
class Dependency:
    """``--dependency=<kind>:<id>[:<id>...]``; an empty one renders to nothing."""

    kind: str = "afterok"
    jobs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in DEPENDENCY_KINDS:
            raise DdaiError(f"dependency kind {self.kind!r}", where="dependency",
                            expected=" or ".join(DEPENDENCY_KINDS))

    @classmethod
    def on(cls, after: Sequence[JobRef | str] | JobRef | str | None, kind: str = "afterok") -> Dependency:
        if after is None:
            return cls(kind, ())
        items = [after] if isinstance(after, (JobRef, str)) else list(after)
        return cls(kind, tuple(str(a) for a in items if str(a)))

    def render(self) -> str:
        return f"{self.kind}:{':'.join(self.jobs)}" if self.jobs else ""


@dataclass
class JobSpec:
    """Everything the scheduler needs to know about one job (a script with arguments, or a command).

    ``script`` set: ``sbatch [args] SCRIPT *command``; otherwise ``command`` runs via
    ``--wrap``. ``time_min`` is minutes; ``output`` may hold ``%j`` (the job id).
    """

    name: str
    command: list[str]
    script: str | None = None
    output: str | None = None
    chdir: str | None = None
    nodes: int = 1
    ntasks_per_node: int = 1
    cpus_per_task: int = 1
    gpus_per_node: int = 0
    mem: str | None = None
    time_min: int = 60
    signal: str | None = None          # e.g. "B:USR1@300"
    open_mode_append: bool = False
    partition: str | None = None
    account: str | None = None
    extra_args: list[str] = field(default_factory=list)
    kill_on_invalid_dep: bool = True   # a failed dependency cancels this job instead of leaving it pending
    env: dict[str, str] = field(default_factory=dict)  # added to the submitting environment (--export=ALL)
    raw: bool = False                  # extra_args already hold every resource option (a frozen plan)

    def sbatch_args(self) -> list[str]:
        """The resource options, in a fixed order (no dependency, no script)."""
        if self.raw:
            args = [f"--job-name={self.name}", *(str(a) for a in self.extra_args)]
            if self.kill_on_invalid_dep and "--kill-on-invalid-dep=yes" not in args:
                args.append("--kill-on-invalid-dep=yes")
            return args
        args = [f"--job-name={self.name}", f"--nodes={self.nodes}", f"--ntasks-per-node={self.ntasks_per_node}"]
        if self.gpus_per_node:
            args.append(f"--gpus-per-node={self.gpus_per_node}")
        args += [f"--cpus-per-task={self.cpus_per_task}", f"--time={self.time_min}"]
        if self.signal:
            args.append(f"--signal={self.signal}")
        if self.open_mode_append:
            args.append("--open-mode=append")
        if self.output:
            args.append(f"--output={self.output}")
        if self.mem:
            args.append(f"--mem={self.mem}")
        if self.partition:
            args.append(f"--partition={self.partition}")
        if self.account:
            args.append(f"--account={self.account}")
        if self.chdir:
            args.append(f"--chdir={self.chdir}")
        if self.kill_on_invalid_dep:
            args.append("--kill-on-invalid-dep=yes")
        args.extend(str(a) for a in self.extra_args)
        return args

    def argv(self, dependency: Dependency | None = None, *, hold: bool = False) -> list[str]:
        """The full ``sbatch --parsable ...`` command line."""
        out = ["sbatch", "--parsable", *self.sbatch_args()]
        if dependency is not None and dependency.render():
            out.append(f"--dependency={dependency.render()}")
        if hold:
            out.append("--hold")
        out.append("--export=ALL")
        if self.script:
            out += [self.script, *self.command]
        else:
            out += ["--wrap", shlex.join(self.command)]
        return out

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> JobSpec:
        return cls(**d)


def raw_spec(name: str, sbatch_args: Sequence[str], script: str, command: Sequence[str], **kw: Any) -> JobSpec:
    """A spec from an already rendered argument list (a frozen Phase 2 plan's ``sbatch_args``).

    Only the job name is parsed back; every other option passes through as is, so a plan
    written earlier is submitted exactly as it was rendered.
    """
    names = [a.split("=", 1)[1] for a in sbatch_args if a.startswith("--job-name=")]
    kw.setdefault("kill_on_invalid_dep", False)
    return JobSpec(name=names[-1] if names else name, command=list(command), script=script, raw=True,
                   extra_args=[a for a in sbatch_args if not a.startswith("--job-name=")], **kw)
