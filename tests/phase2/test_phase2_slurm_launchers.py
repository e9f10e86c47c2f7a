"""The same chain reached two other ways on the real local Slurm: a bucketing→Phase 2 pipeline
(``afterok``) and the submitit launcher (``task=phase2 hydra/launcher=submitit_slurm``).
The trainer is the FAKE one (``DDAI_PHASE2_TRAINER=fake``); everything else is production code.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from slurm_support import jobs_named, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.verl]

KEYS = {"GEMINI_API_KEY": "test-gemini-key-0000", "OPENAI_API_KEY": "test-openai-key-0000"}




def env_with_keys(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(KEYS, DDAI_PHASE2_TRAINER="fake", **extra)
    return env


def steps(run_dir: Path) -> list[dict]:
    path = run_dir / "fake_steps.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def cleanup():
    names: list[str] = []
    yield names
    for n in names:
        subprocess.run(["scancel", "-n", n], capture_output=True)


def test_pipeline_buckets_then_trains_with_afterok(helpers, tmp_path: Path, slurm_cluster, cleanup) -> None:
    import pyarrow.parquet as pq

    name = f"pipe{os.getpid()}"
    cleanup += [f"ddai-curriculum-{name}", f"ddai-p2-{name}"]
    run_dir = tmp_path / "run"
    res = helpers.launch(["task=pipeline", "+phase2.agent.settings.search_url=http://search.example:5002/search", *helpers.inputs(), "phase2.logger=[console]",
                          f"phase2.run_dir={run_dir}", f"phase2.experiment_name={name}",
                          f"curriculum.out_dir={tmp_path / 'cur'}", "curriculum.train_batch_size=8",
                          "curriculum.remainder=trim", "phase2.train_batch_size=8", "phase2.ppo_mini_batch_size=8",
                          "phase2.save_freq=4", "phase2.slurm.cpus_per_task=1", "phase2.slurm.time_min=5",
                          "phase2.slurm.signal_s=30", "phase2.slurm.step_minutes=0.025",
                          "phase2.slurm.startup_minutes=0.05", f"hydra.run.dir={tmp_path / 'h'}"],
                         env=env_with_keys(DDAI_FAKE_STEP_SECONDS="0.2"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    submitted = (run_dir / "phase2.log").read_text()
    assert f"submitted first job {out['job_id']}: " in submitted
    assert f"--dependency=afterok:{out['curriculum_job_id']}" in submitted
    wait_for(lambda: (run_dir / "DONE").exists(), "the pipeline's Phase 2 to finish", 180)
    manifest = json.loads((tmp_path / "cur" / "manifest.json").read_text())
    bucket = pq.read_table(tmp_path / "cur" / manifest["files"][manifest["train_bucket"]]).column("id").to_pylist()
    done = steps(run_dir)
    assert [i for s in done for i in s["ids"]] == bucket, "Phase 2 trained the curriculum bucket, in order"
    plan = json.loads((run_dir / "plan.json").read_text())
    assert plan["total_steps"] == len(bucket) // 8 and "@DDAI_DEFERRED" not in " ".join(plan["command"])


def test_pipeline_failed_bucketing_cancels_phase2(helpers, tmp_path: Path, slurm_cluster, cleanup) -> None:
    name = f"pipefail{os.getpid()}"
    cleanup += [f"ddai-curriculum-{name}", f"ddai-p2-{name}"]
    bad_log = tmp_path / "broken.json"
    bad_log.write_text('{"step_1": {"uid": {"prompt": "x", "agents": [')  # truncated JSON
    res = helpers.launch(["task=pipeline", "+phase2.agent.settings.search_url=http://search.example:5002/search", *helpers.inputs(), "phase2.logger=[console]",
                          f"phase2.run_dir={tmp_path / 'run'}", f"phase2.experiment_name={name}",
                          f"curriculum.phase1_log={bad_log}", "curriculum.format=steps_json",
                          f"curriculum.out_dir={tmp_path / 'cur'}", "curriculum.strict=true",
                          "phase2.slurm.cpus_per_task=1", "phase2.slurm.time_min=5", "phase2.slurm.signal_s=30",
                          "phase2.slurm.step_minutes=0.025", "phase2.slurm.startup_minutes=0.05",
                          f"hydra.run.dir={tmp_path / 'h'}"],
                         env=env_with_keys(), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    wait_for(lambda: not jobs_named(f"ddai-p2-{name}") and not jobs_named(f"ddai-curriculum-{name}"),
             "both jobs to leave the queue", 120)
    cur_log = (tmp_path / "run" / f"curriculum-{out['curriculum_job_id']}.out").read_text()
    assert "error" in cur_log and str(bad_log) in cur_log, "the bucketing job failed on the broken log"
    assert not (tmp_path / "run" / "chain_state.json").exists(), "Phase 2 never started"
    assert not steps(tmp_path / "run")
    assert out["job_id"]


def test_submitit_launcher_runs_the_same_chain(helpers, tmp_path: Path, slurm_cluster, cleanup) -> None:
    """The first job is submitit's; its USR2 (sent to the job's steps, as submitit asks Slurm to
    do before the limit) stops the trainer after a checkpoint, and the pre-submitted successor
    (our sbatch script) finishes the run."""
    import sys

    manifest = helpers.write_bucket(tmp_path / "cur", rows=160, batch=8)
    name = f"p2sub{os.getpid()}"
    cleanup.append(name)
    run_dir = tmp_path / "run"
    args = ["-m", "task=phase2", "hydra/launcher=submitit_slurm", "hydra.launcher.timeout_min=2",
            "hydra.launcher.signal_delay_s=30", f"hydra.launcher.name={name}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
            "+phase2.agent.settings.search_url=http://search.example:5002/search", *helpers.inputs(), f"phase2.manifest={manifest}", "phase2.logger=[console]",
            "phase2.train_batch_size=8", "phase2.ppo_mini_batch_size=8", f"phase2.run_dir={run_dir}",
            "phase2.save_freq=2", "phase2.slurm.time_min=2", "phase2.slurm.signal_s=30",
            "phase2.slurm.step_minutes=0.025", "phase2.slurm.startup_minutes=0.05",
            "phase2.slurm.cpus_per_task=1", f"phase2.slurm.job_name={name}"]
    launcher = subprocess.Popen([sys.executable, "-m", "ddai.launch", *args], cwd=tmp_path, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env_with_keys(DDAI_FAKE_STEP_SECONDS="1"))
    try:
        wait_for(lambda: len(steps(run_dir)) >= 5, "5 steps in the submitit job", 120)
        first = json.loads((run_dir / "chain_state.json").read_text())["jobs"][0]["job_id"]
        subprocess.run(["scancel", "--signal=USR2", first], check=True)
        out, err = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 0, err
    wait_for(lambda: (run_dir / "DONE").exists(), "the chain started by submitit to finish", 180)
    wait_for(lambda: not jobs_named(name), "leftover successors to go", 30)
    done = steps(run_dir)
    assert [s["step"] for s in done] == list(range(1, 21)), "every step exactly once"
    state = json.loads((run_dir / "chain_state.json").read_text())
    jobs_file = json.loads((tmp_path / "sweep" / "sweep_jobs.json").read_text())
    assert str(first) in json.dumps(jobs_file), "first job is the submitit job"
    assert state["jobs"][0]["end_reason"] == "stop signal"
    assert len(state["jobs"]) >= 2 and state["status"] == "done"
