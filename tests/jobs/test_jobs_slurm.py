"""The Slurm executor on the REAL local cluster: the same calls as the local twin."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from slurm_support import wait_for

from ddai.errors import DdaiError
from ddai.jobs import JobSpec, JobState
from ddai.jobs.slurm import SlurmExecutor

pytestmark = pytest.mark.slurm


def spec(name: str, code: str, out: Path) -> JobSpec:
    return JobSpec(name=name, command=[sys.executable, "-c", code], output=str(out / f"{name}-%j.out"), time_min=5,
                   mem="200M")


def test_failed_dependency_cancels_held_job_runs_after_release(tmp_path: Path, slurm_cluster) -> None:
    ex = SlurmExecutor()
    tag = f"ddai-jt{os.getpid()}"
    bad = ex.submit(spec(f"{tag}-bad", "raise SystemExit(3)", tmp_path))
    never = ex.submit(spec(f"{tag}-never", "print('ran')", tmp_path), [bad], "afterok")
    held = ex.submit(spec(f"{tag}-held", f"open({str(tmp_path / 'held')!r}, 'w').write('x')", tmp_path), hold=True)
    try:
        wait_for(lambda: ex.state(never).ended, "the afterok job of a failed job to be cancelled", 120)
        assert ex.state(bad) is JobState.FAILED and ex.state(never) is JobState.CANCELLED
        with pytest.raises(DdaiError, match=f"job {bad.job_id} ended FAILED"):
            ex.submit(spec(f"{tag}-late", "print(1)", tmp_path), [bad], "afterok")
        assert ex.state(held) is JobState.PENDING and not (tmp_path / "held").exists()
        assert ex.set_dependency(held, [never], "afterany"), "a pending job's dependency can be re-pointed"
        ex.release(held)
        wait_for(lambda: ex.state(held).ended, "the released job", 120)
        assert ex.state(held) is JobState.COMPLETED and (tmp_path / "held").exists()
        assert not ex.set_dependency(held, [never], "afterany"), "an ended job cannot be re-pointed"
    finally:
        for ref in (bad, never, held):
            ex.cancel(ref)
