"""The chain's decisions (budgets, DONE, hard-kill bookkeeping) without a cluster.

``begin``/``end`` are called as the job script calls them, with successor submission off;
checkpoints are verl-layout folders written by the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ddai.phase2 import chain
from ddai.phase2 import chain_state as cs
from ddai.phase2.plan import PLAN_NAME, build_plan, write_plan
from ddai.phase2.prepare import compose_ddai


@pytest.fixture
def run_dir(helpers, tmp_path: Path) -> Path:
    manifest = helpers.write_bucket(tmp_path / "cur", rows=48, batch=8)
    cfg = compose_ddai(["+phase2.agent.settings.search_url=http://search.example:5002/search", *helpers.inputs(), f"phase2.manifest={manifest}", "phase2.train_batch_size=8",
                        "phase2.ppo_mini_batch_size=8", f"phase2.run_dir={tmp_path / 'run'}",
                        "phase2.slurm.max_no_progress=2", "phase2.slurm.max_restarts=4"])
    plan = build_plan(cfg.phase2, compose=False)
    write_plan(Path(plan.run_dir) / PLAN_NAME, plan)
    return Path(plan.run_dir)


def checkpoint(run_dir: Path, step: int) -> None:
    ckpt = run_dir / "checkpoints"
    (ckpt / f"global_step_{step}" / "actor").mkdir(parents=True, exist_ok=True)
    (ckpt / f"global_step_{step}" / "data.pt").write_bytes(b"x")
    (ckpt / cs.LATEST_NAME).write_text(str(step))


def begin(run_dir: Path, job: str) -> int:
    return chain.begin(run_dir, job, 0, "/unused/phase2.slurm", None, submit=False)


def test_crashing_trainer_stops_after_no_progress_budget(run_dir: Path) -> None:
    for job in ("1", "2"):
        assert begin(run_dir, job) == chain.EXIT_RUN
        chain.end(run_dir, job, 1, False)
    assert begin(run_dir, "3") == chain.EXIT_STOP_FAILED
    failed = cs.marker(run_dir, cs.FAILED_NAME)
    assert failed and "no progress" in failed and "exit code 1" in failed
    assert begin(run_dir, "4") == chain.EXIT_STOP_FAILED  # leftover successors stop at once
    assert cs.read(run_dir)["status"] == "failed"
    (run_dir / cs.FAILED_NAME).unlink()                   # the user fixed the cause and retries
    assert begin(run_dir, "5") == chain.EXIT_RUN
    chain.end(run_dir, "5", 1, False)
    assert begin(run_dir, "6") == chain.EXIT_RUN          # one job without progress < budget 2
    chain.end(run_dir, "6", 1, False)
    assert begin(run_dir, "7") == chain.EXIT_STOP_FAILED


def test_progress_resets_budget_and_done_ends_chain(run_dir: Path) -> None:
    assert begin(run_dir, "1") == chain.EXIT_RUN
    chain.end(run_dir, "1", 1, False)                 # crash, no checkpoint
    assert begin(run_dir, "2") == chain.EXIT_RUN
    checkpoint(run_dir, 3)                            # ... then a hard kill: no end record
    assert begin(run_dir, "3") == chain.EXIT_RUN
    st = cs.read(run_dir)
    assert st["no_progress"] == 0 and st["jobs"][1]["end_reason"].startswith("no end record")
    assert st["jobs"][2]["ckpt_at_start"] == 3
    checkpoint(run_dir, 6)
    chain.end(run_dir, "3", 0, False)
    assert cs.marker(run_dir, cs.DONE_NAME)
    assert begin(run_dir, "4") == chain.EXIT_STOP_OK


def test_restart_budget(run_dir: Path) -> None:
    for i in range(1, 6):
        checkpoint(run_dir, i)  # progress every time: only the restart budget can stop it
        assert begin(run_dir, str(i)) == chain.EXIT_RUN
        chain.end(run_dir, str(i), 0, True)
    assert begin(run_dir, "6") == chain.EXIT_STOP_FAILED
    assert "restart budget" in cs.marker(run_dir, cs.FAILED_NAME)


def test_status_view(run_dir: Path) -> None:
    import json
    import sys

    begin(run_dir, "7")
    checkpoint(run_dir, 2)
    chain.end(run_dir, "7", 0, True)
    out = subprocess.run([sys.executable, "-m", "ddai.phase2.status", str(run_dir), "--json"],
                         capture_output=True, text=True, check=True).stdout
    view = json.loads(out)
    assert view["step"] == 2 and view["total_steps"] == 6 and view["jobs"][0]["end_reason"] == "stop signal"
    text = subprocess.run([sys.executable, "-m", "ddai.phase2.status", str(run_dir)],
                          capture_output=True, text=True, check=True).stdout
    assert "step 2 / 6" in text


def test_fake_switch_is_explicit(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DDAI_PHASE2_TRAINER", raising=False)
    assert chain.trainer_argv(run_dir)[1] == "ddai.phase2.trainer"
    monkeypatch.setenv("DDAI_PHASE2_TRAINER", "fake")
    assert chain.trainer_argv(run_dir)[1] == "ddai.phase2.fake_trainer"


def test_ray_node_list_has_every_node(tmp_path: Path, helpers) -> None:
    """verl's example quotes the node list into ONE array element; ours has one per host."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "scontrol").write_text("#!/bin/sh\nprintf 'gpu-a01\\ngpu-a02\\ngpu-b07\\n'\n")
    (fake / "scontrol").chmod(0o755)
    script = (f"source {helpers.repo / 'slurm' / 'ray_cluster.sh'}; mapfile -t n < <(ddai_node_list); "
              "echo ${#n[@]} ${n[2]}")
    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}", SLURM_JOB_NODELIST="gpu-a[01-02],gpu-b07")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == ["3", "gpu-b07"]


def test_job_script_parses() -> None:
    bash = shutil.which("bash")
    repo = Path(__file__).resolve().parents[2]
    for name in ("phase2.slurm", "ray_cluster.sh"):
        subprocess.run([bash, "-n", str(repo / "slurm" / name)], check=True)
