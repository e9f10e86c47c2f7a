"""The local single-node Slurm behaves like the real clusters the job suite targets.

These run against the cluster started by ``tools/slurm_cluster.sh up`` (real slurmctld,
slurmd, munge); nothing is mocked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm


def test_four_gpu_job_sees_four_devices(slurm, slurm_tmp: Path) -> None:
    out = slurm_tmp / "gpus.out"
    job = slurm.sbatch("--gpus-per-node=4", f"--output={out}",
                       "--wrap", 'echo "batch=$CUDA_VISIBLE_DEVICES"; srun sh -c \'echo "step=$CUDA_VISIBLE_DEVICES"\'',
                       cwd=slurm_tmp)
    assert slurm.wait_done(job) == "COMPLETED", out.read_text() if out.exists() else "no log"
    lines = dict(line.split("=", 1) for line in out.read_text().split())
    for where in ("batch", "step"):
        devices = lines[where].split(",")
        assert len(devices) == 4 and len(set(devices)) == 4, lines


def test_fifth_gpu_is_refused_at_submission(slurm, slurm_tmp: Path) -> None:
    proc = subprocess.run(["sbatch", "--parsable", "--gpus-per-node=5", "--output=/dev/null", "--wrap", "true"],
                          cwd=slurm_tmp, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "not available" in proc.stderr, proc.stderr


def test_two_cpu_jobs_run_at_the_same_time(slurm, slurm_tmp: Path) -> None:
    # Each job announces itself, then waits for the other one's announcement: both complete
    # only if they were running at the same time (no clock involved).
    script = (
        'touch "{dir}/$1.here"; '
        'for i in $(seq 600); do [ -e "{dir}/$2.here" ] && exit 0; sleep 0.1; done; exit 1'
    ).format(dir=slurm_tmp)
    (slurm_tmp / "meet.sh").write_text(f"#!/bin/sh\n{script}\n")
    jobs = [
        slurm.sbatch("--cpus-per-task=1", "--output=/dev/null", str(slurm_tmp / "meet.sh"), a, b, cwd=slurm_tmp)
        for a, b in (("a", "b"), ("b", "a"))
    ]
    assert [slurm.wait_done(j) for j in jobs] == ["COMPLETED", "COMPLETED"]


def test_requeued_job_runs_again(slurm, slurm_tmp: Path) -> None:
    log = slurm_tmp / "requeue.out"
    started = slurm_tmp / "started"
    # First run waits (until requeued); the second run (SLURM_RESTART_COUNT=1) finishes.
    body = (
        f'echo "run=${{SLURM_RESTART_COUNT:-0}}"; touch {started}; '
        '[ "${SLURM_RESTART_COUNT:-0}" -ge 1 ] && exit 0; sleep 300'
    )
    job = slurm.sbatch("--requeue", "--open-mode=append", f"--output={log}", "--wrap", body, cwd=slurm_tmp)
    slurm.wait_for(started.exists, "the first run to start")
    subprocess.run(["scontrol", "requeue", job], check=True)
    assert slurm.wait_done(job) == "COMPLETED"
    runs = [line for line in log.read_text().splitlines() if line.startswith("run=")]
    assert runs == ["run=0", "run=1"], log.read_text()
    restarts = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    assert "Restarts=1" in restarts


def test_sacct_shim_reports_array_tasks_like_sacct(slurm, slurm_tmp: Path) -> None:
    """submitit parses `sacct -o JobID,State,NodeList --parsable2 -j <array id>`."""
    from submitit.slurm.slurm import SlurmInfoWatcher

    job = slurm.sbatch("--array=0-2", "--output=/dev/null", "--wrap", 'exit "$SLURM_ARRAY_TASK_ID"', cwd=slurm_tmp)
    states = [slurm.wait_done(f"{job}_{i}") for i in range(3)]
    assert states == ["COMPLETED", "FAILED", "FAILED"]
    text = subprocess.run(["sacct", "-o", "JobID,State,NodeList", "--parsable2", "-j", job],
                          capture_output=True, text=True, check=True).stdout
    info = SlurmInfoWatcher().read_info(text)
    assert {k: v["State"] for k, v in info.items()} == {f"{job}_0": "COMPLETED", f"{job}_1": "FAILED",
                                                        f"{job}_2": "FAILED"}


def test_sacct_shim_answers_from_completion_file_for_forgotten_jobs(slurm, slurm_tmp: Path) -> None:
    """Once the controller has purged a job (MinJobAge), only the completion file knows it."""
    job = slurm.sbatch("--array=0-1", "--output=/dev/null", "--wrap", 'exit "$SLURM_ARRAY_TASK_ID"', cwd=slurm_tmp)
    assert [slurm.wait_done(f"{job}_{i}") for i in range(2)] == ["COMPLETED", "FAILED"]
    shim = Path(__file__).resolve().parents[2] / "tools" / "slurm" / "sacct"
    env = {"PATH": str(slurm_tmp / "no-squeue-here"), "SACCT_SHIM_JOBCOMP": "/var/log/slurm/jobcomp.txt"}
    text = subprocess.run([sys.executable, str(shim), "-o", "JobID,State,NodeList", "--parsable2", "-j", job],
                          capture_output=True, text=True, check=True, env=env).stdout
    lines = text.splitlines()
    assert lines[0] == "JobID|State|NodeList"
    assert sorted(line.rsplit("|", 1)[0] for line in lines[1:]) == [f"{job}_0|COMPLETED", f"{job}_1|FAILED"]


def test_up_again_is_idempotent(slurm) -> None:
    """A second `up` on a running cluster keeps the daemons (same pids) and the node usable."""
    if os.geteuid() != 0:
        pytest.skip("tools/slurm_cluster.sh up needs root")
    script = Path(__file__).resolve().parents[2] / "tools" / "slurm_cluster.sh"
    before = Path("/run/slurmctld.pid").read_text().strip(), Path("/run/slurmd.pid").read_text().strip()
    proc = subprocess.run(["bash", str(script), "up"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "up: debug" in proc.stderr and "gres=gpu:4" in proc.stderr
    after = Path("/run/slurmctld.pid").read_text().strip(), Path("/run/slurmd.pid").read_text().strip()
    assert after == before
    status = subprocess.run(["bash", str(script), "status"], capture_output=True, text=True, check=True).stdout
    assert "gpu:4" in status
