"""The jobs layer without a cluster: sbatch argument rendering, id parsing, state mapping, and
the local twin running stages with dependencies (the same calls the Slurm executor answers)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from slurm_support import wait_for

from ddai.errors import DdaiError
from ddai.jobs import Dependency, JobSpec, JobState, parse_job_id
from ddai.jobs.local import LocalExecutor
from ddai.jobs.spec import raw_spec, slurm_state
from ddai.jobs.stage import MarkerStage, submit_stages


def test_sbatch_args_and_dependency_rendering() -> None:
    spec = JobSpec(name="cur", command=["python", "-m", "ddai.launch", "a=b c"], output="/o/x-%j.out", time_min=7,
                   mem="2G", partition="cpu", cpus_per_task=2)
    argv = spec.argv(Dependency.on(["12", "13"], "afterok"), hold=True)
    assert argv[:2] == ["sbatch", "--parsable"]
    assert "--time=7" in argv and "--mem=2G" in argv and "--partition=cpu" in argv and "--cpus-per-task=2" in argv
    assert "--dependency=afterok:12:13" in argv and "--hold" in argv and "--kill-on-invalid-dep=yes" in argv
    assert argv[-2:] == ["--wrap", "python -m ddai.launch 'a=b c'"]
    assert "--dependency" not in " ".join(spec.argv(Dependency.on([], "afterany")))
    with pytest.raises(DdaiError, match="dependency kind"):
        Dependency("after_ok", ("1",))


def test_frozen_args_pass_through_unchanged() -> None:
    args = ["--job-name=ddai-p2-x", "--nodes=2", "--gpus-per-node=4", "--time=2880", "--signal=B:USR1@300"]
    spec = raw_spec("ignored", args, "/repo/slurm/phase2.slurm", ["/runs/x"])
    assert spec.name == "ddai-p2-x"
    assert spec.argv() == ["sbatch", "--parsable", *args, "--export=ALL", "/repo/slurm/phase2.slurm", "/runs/x"]


def test_job_id_parsing_and_states() -> None:
    assert parse_job_id("4242\n") == "4242"
    assert parse_job_id("4242;cluster-a") == "4242"
    with pytest.raises(DdaiError, match="not a job id"):
        parse_job_id("sbatch: error: Batch job submission failed")
    assert slurm_state("CANCELLED by 0") is JobState.CANCELLED
    assert slurm_state("COMPLETING") is JobState.RUNNING and slurm_state("TIMEOUT") is JobState.FAILED
    assert slurm_state("REQUEUED").live and slurm_state("COMPLETED").ended
    assert slurm_state("") is JobState.UNKNOWN


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.fixture
def local(tmp_path: Path) -> LocalExecutor:
    return LocalExecutor(tmp_path / "jobs")


def _ended(ex: LocalExecutor, ref) -> bool:
    return ex.state(ref).ended


def test_local_twin_orders_stages_and_skips_complete_ones(local: LocalExecutor, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    order = out / "order.txt"

    def stage(name: str) -> MarkerStage:
        code = (f"import pathlib; p=pathlib.Path({str(order)!r}); p.write_text(p.read_text() + {name!r} "
                f"if p.exists() else {name!r}); pathlib.Path({str(out / name)!r}).write_text('ok')")
        return MarkerStage(name, JobSpec(name=name, command=_py(code), output=str(out / f"{name}-%j.log")),
                           out / name)

    (out / "a").write_text("done before")  # stage a is complete: never submitted again
    stages = [stage("a"), stage("b"), stage("c")]
    res = submit_stages(stages, local)
    assert res.skipped == ["a"] and list(res.jobs) == ["b", "c"]
    wait_for(lambda: _ended(local, res.last), "stage c to end", 60)
    assert order.read_text() == "bc", "c waited for b (afterok)"
    assert local.state(res.jobs["b"]) is JobState.COMPLETED
    assert submit_stages(stages, local).jobs == {}, "a re-run submits nothing"


def test_local_twin_failed_dependency_cancels_and_afterany_runs(local: LocalExecutor, tmp_path: Path) -> None:
    bad = local.submit(JobSpec(name="bad", command=_py("raise SystemExit(3)")))
    ok_after_bad = local.submit(JobSpec(name="never", command=_py("print('ran')")), [bad], "afterok")
    any_after_bad = local.submit(JobSpec(name="any", command=_py("print('ran')")), [ok_after_bad], "afterany")
    wait_for(lambda: _ended(local, any_after_bad), "the afterany job to end", 60)
    assert local.state(bad) is JobState.FAILED and local.exit_code(bad) == 3
    assert local.state(ok_after_bad) is JobState.CANCELLED
    assert local.state(any_after_bad) is JobState.COMPLETED


def test_local_twin_hold_release_and_repoint(local: LocalExecutor, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    gate = local.submit(JobSpec(name="gate", command=_py(f"import pathlib,time\nwhile not pathlib.Path({str(flag)!r}).exists(): time.sleep(0.05)")))
    held = local.submit(JobSpec(name="held", command=_py("print(1)")), hold=True)
    waiter = local.submit(JobSpec(name="waiter", command=_py("print(1)")), [held], "afterany")
    assert local.set_dependency(waiter, [gate], "afterany")  # re-pointed while pending
    local.release(held)
    wait_for(lambda: _ended(local, held), "the released job", 60)
    assert local.state(waiter) is JobState.PENDING, "the waiter now waits for the gate, not the held job"
    flag.write_text("go")
    wait_for(lambda: _ended(local, waiter), "the waiter", 60)
    assert local.state(waiter) is JobState.COMPLETED and not local.set_dependency(waiter, [gate])


def test_local_twin_cancel_running(local: LocalExecutor) -> None:
    ref = local.submit(JobSpec(name="sleep", command=_py("import time; time.sleep(600)")))
    wait_for(lambda: local.state(ref) is JobState.RUNNING, "the job to run", 60)
    local.cancel(ref)
    wait_for(lambda: _ended(local, ref), "the cancelled job to end", 60)
    assert local.state(ref) is JobState.CANCELLED
