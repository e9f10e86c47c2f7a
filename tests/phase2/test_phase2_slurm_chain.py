"""The Phase 2 job chain on the REAL local Slurm cluster, with the FAKE trainer.

``DDAI_PHASE2_TRAINER=fake`` swaps verl for ``ddai.phase2.fake_trainer`` (CPU, verl's
checkpoint layout, a real StatefulDataLoader); everything else is production code: the
launcher renders and submits ``slurm/phase2.slurm``, Slurm delivers the time-limit signal,
successors are pre-submitted with ``afterany``. Measurements (work lost per interruption,
time from interruption to the resumed trainer's first step) are printed and written to
``$DDAI_PHASE2_MEASURE`` when set (benchmarks/phase2_resume.py collects them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from slurm_support import jobs_named, wait_for

pytestmark = [pytest.mark.slurm, pytest.mark.verl]

KEYS = {"GEMINI_API_KEY": "test-gemini-key-0000", "OPENAI_API_KEY": "test-openai-key-0000"}




@pytest.fixture
def chain_run(helpers, tmp_path: Path, slurm_cluster: None, request: pytest.FixtureRequest):
    """Start a chain through the launcher; cancel anything left of it afterwards."""
    names: list[str] = []

    def start(name: str, rows: int, *extra: str, env: dict[str, str] | None = None, submit: bool = True):
        manifest = helpers.write_bucket(tmp_path / "cur", rows=rows, batch=8)
        run_dir = tmp_path / "run"
        job_name = f"ddai-test-{name}-{os.getpid()}"
        names.append(job_name)
        full_env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        full_env.update(KEYS, DDAI_PHASE2_TRAINER="fake", **(env or {}))
        args = ["task=phase2", "+phase2.agent.settings.search_url=http://search.example:5002/search", *helpers.inputs(), f"phase2.manifest={manifest}",
                "phase2.train_batch_size=8", "phase2.ppo_mini_batch_size=8", "phase2.logger=[console]",
                f"phase2.run_dir={run_dir}", f"hydra.run.dir={tmp_path / 'hydra'}",
                f"phase2.slurm.job_name={job_name}", "phase2.slurm.cpus_per_task=1",
                "phase2.slurm.startup_minutes=0.05", "phase2.slurm.signal_s=30",
                "phase2.slurm.step_minutes=0.025", *extra]
        if not submit:
            args.append("phase2.dry_run=true")
        res = helpers.launch(args, env=full_env, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        out = json.loads(res.stdout)
        return run_dir, out.get("job_id"), job_name, full_env

    yield start
    for name in names:
        subprocess.run(["scancel", "-n", name], capture_output=True)


def steps(run_dir: Path) -> list[dict]:
    path = run_dir / "fake_steps.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def curriculum_ids(run_dir: Path) -> list[str]:
    import pyarrow.parquet as pq

    plan = json.loads((run_dir / "plan.json").read_text())
    return pq.read_table(plan["train_file"]).column("id").to_pylist()


def record(entry: dict) -> None:
    print("MEASURE", json.dumps(entry))
    target = os.environ.get("DDAI_PHASE2_MEASURE")
    if target:
        with open(target, "a") as fh:
            fh.write(json.dumps(entry) + "\n")


def test_time_limit_chain_finishes_every_step_exactly_once(chain_run) -> None:
    """40 steps × 1.5 s with a 1-minute limit: Slurm's own --signal=B:USR1@40 stops job 1
    (it comes 20-50 s in: fewer than 34 steps); job 2 gets the same signal from the test
    (`scancel --batch --signal=USR1`, as Slurm sends it) after 5 steps; job 3 finishes. Every
    step exactly once, in curriculum order, across ≥ 3 jobs."""
    run_dir, first, name, _ = chain_run("limit", 320, "phase2.save_freq=2", "phase2.slurm.time_min=1",
                                        "phase2.slurm.signal_s=40", env={"DDAI_FAKE_STEP_SECONDS": "1.5"})
    wait_for(lambda: any(s["job"] != first for s in steps(run_dir)), "job 2 after Slurm's time-limit signal", 120)
    second = next(s["job"] for s in steps(run_dir) if s["job"] != first)
    wait_for(lambda: len([s for s in steps(run_dir) if s["job"] == second]) >= 5 or (run_dir / "DONE").exists(),
             "5 steps in job 2", 60)
    subprocess.run(["scancel", "--batch", "--signal=USR1", second], capture_output=True)
    wait_for(lambda: (run_dir / "DONE").exists(), "the chain to finish", 180)
    wait_for(lambda: not jobs_named(name), "leftover successors to go", 30)
    done = steps(run_dir)
    assert [s["step"] for s in done] == list(range(1, 41)), "every step exactly once, in order"
    ids = curriculum_ids(run_dir)
    assert [i for s in done for i in s["ids"]] == ids[:320], "curriculum order across jobs"
    state = json.loads((run_dir / "chain_state.json").read_text())
    jobs = state["jobs"]
    assert len({s["job"] for s in done}) >= 3 and len(jobs) >= 3
    assert jobs[0]["job_id"] == first and state["status"] == "done"
    assert all(j["end_reason"] == "stop signal" for j in jobs[:-1])
    log = (run_dir / "phase2.log").read_text()
    assert f"[phase2 job {first} " in log and "got USR1 (time limit near)" in log
    for j in jobs:  # one log per run, every job appended to it
        assert f"job {j['job_id']} begins" in log
    # Successor of the last job was cancelled by the DONE marker, never ran a trainer.
    assert jobs[-1]["successor_id"] not in {s["job"] for s in done}
    gaps = []
    for prev, nxt in zip(jobs, jobs[1:]):
        # On a loaded machine a job may get its time-limit signal before finishing a step.
        first_step = next((s for s in done if s["job"] == nxt["job_id"]), None)
        if first_step is not None:
            gaps.append(first_step["start"] - prev["ended"])
    record({"case": "time-limit signal", "jobs": len(jobs), "steps_lost": 0,
            "job_end_to_next_first_step_s": [round(g, 2) for g in gaps]})


def test_hard_kill_continues_from_last_checkpoint(chain_run) -> None:
    """scancel --signal=KILL, then SIGKILL of every process of the job (no trap can run)."""
    run_dir, first, name, _ = chain_run("kill", 144, "phase2.save_freq=3", "phase2.slurm.time_min=10",
                                        env={"DDAI_FAKE_STEP_SECONDS": "1"})
    wait_for(lambda: len(steps(run_dir)) >= 5, "5 steps in job 1", 90)
    killed_at = time.time()
    subprocess.run(["scancel", "--signal=KILL", first], check=True)
    wait_for(lambda: any(s["job"] != first for s in steps(run_dir)), "the successor's first step", 90)
    s1 = steps(run_dir)
    second = next(s["job"] for s in s1 if s["job"] != first)
    lost_scancel = max(s["step"] for s in s1 if s["job"] == first) - \
        (next(s["step"] for s in s1 if s["job"] == second) - 1)
    first_resumed = next(s for s in s1 if s["job"] == second)
    record({"case": "scancel --signal=KILL", "steps_lost": lost_scancel,
            "resume_to_first_step_s": round(first_resumed["start"] - killed_at, 2)})

    wait_for(lambda: len([s for s in steps(run_dir) if s["job"] == second]) >= 5, "5 steps in job 2", 90)
    pids = subprocess.run(["scontrol", "listpids", second], capture_output=True, text=True).stdout.split("\n")[1:]
    pids = [int(line.split()[0]) for line in pids if line.strip()]
    assert pids, "scontrol listpids found the job's processes"
    ckpt_before = int((run_dir / "checkpoints" / "latest_checkpointed_iteration.txt").read_text())
    killed_at = time.time()
    for pid in pids:  # a node failure: everything dies at once, no trap, no end record
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_for(lambda: (run_dir / "DONE").exists(), "the chain to finish after the SIGKILL", 120)
    wait_for(lambda: not jobs_named(name), "leftover successors to go", 30)
    done = steps(run_dir)
    third = next(s["job"] for s in done if s["job"] not in (first, second))
    resumed = next(s for s in done if s["job"] == third)
    assert resumed["step"] == ckpt_before + 1, "resumed from the last checkpoint"
    killed_step = max(s["step"] for s in done if s["job"] == second)
    by_step: dict[int, list[dict]] = {}
    for s in done:
        by_step.setdefault(s["step"], []).append(s)
    assert sorted(by_step) == list(range(1, 19))
    for runs in by_step.values():  # a redone step trains the same prompts again
        assert all(r["ids"] == runs[0]["ids"] for r in runs)
    state = json.loads((run_dir / "chain_state.json").read_text())
    rec = next(j for j in state["jobs"] if j["job_id"] == second)
    assert rec["end_reason"].startswith("no end record")
    record({"case": "SIGKILL of all job processes", "steps_lost": killed_step - ckpt_before,
            "save_freq": 3, "resume_to_first_step_s": round(resumed["start"] - killed_at, 2)})


def test_crashing_trainer_stops_after_budget(chain_run) -> None:
    run_dir, first, name, _ = chain_run("crash", 48, "phase2.slurm.max_no_progress=2", "phase2.slurm.time_min=5",
                                        env={"DDAI_FAKE_CRASH": "start"})
    wait_for(lambda: (run_dir / "FAILED").exists(), "the FAILED marker", 120)
    wait_for(lambda: not jobs_named(name), "the chain to stop submitting", 60)
    message = (run_dir / "FAILED").read_text()
    assert "no progress" in message and "2 job(s)" in message and "exit code 1" in message
    state = json.loads((run_dir / "chain_state.json").read_text())
    assert len(state["jobs"]) == 2 and state["status"] == "failed"
    assert not steps(run_dir)
    status = subprocess.run(["python", "-m", "ddai.phase2.status", str(run_dir)], capture_output=True, text=True)
    assert "failed" in status.stdout and "no progress" in status.stdout


def test_missing_key_stops_job_before_the_trainer(chain_run, helpers) -> None:
    """Launcher refuses without keys (tested in test_phase2_render); a direct sbatch stops at once."""
    run_dir, _, name, env = chain_run("nokey", 48, "phase2.slurm.time_min=5", submit=False)
    # Render the run for real but submit by hand, as `sbatch slurm/phase2.slurm RUN_DIR` would be.
    from ddai.phase2.plan import PLAN_NAME, build_plan, write_plan
    from ddai.phase2.prepare import compose_ddai

    cfg = compose_ddai(["+phase2.agent.settings.search_url=http://search.example:5002/search", *helpers.inputs(), f"phase2.manifest={run_dir.parent / 'cur' / 'manifest.json'}",
                        "phase2.train_batch_size=8", "phase2.ppo_mini_batch_size=8", "phase2.logger=[console]",
                        f"phase2.run_dir={run_dir}", f"phase2.slurm.job_name={name}", "phase2.slurm.cpus_per_task=1",
                        "phase2.slurm.time_min=5", "phase2.slurm.startup_minutes=0.05",
                        "phase2.slurm.signal_s=30", "phase2.slurm.step_minutes=0.025"])
    plan = build_plan(cfg.phase2, semantic=False)
    write_plan(run_dir / PLAN_NAME, plan)
    env = {k: v for k, v in env.items() if k != "OPENAI_API_KEY"}
    from ddai.phase2.submit import sbatch_argv

    res = subprocess.run(sbatch_argv(plan), capture_output=True, text=True, env=env, cwd=run_dir, check=True)
    job = res.stdout.strip()
    wait_for(lambda: job not in jobs_named(name), "the job to end", 60)
    log = (run_dir / "phase2.log").read_text()
    assert "missing API key(s) in the environment: OPENAI_API_KEY" in log
    assert "test-gemini-key-0000" not in log
    assert not (run_dir / "chain_state.json").exists(), "no job recorded, no successor submitted"
    assert not steps(run_dir)


def test_failed_preflight_stops_the_chain_at_once_with_its_table(chain_run) -> None:
    """On this GPU-less cluster the node preflight fails: FAILED + table, successor cancelled, no trainer."""
    run_dir, first, name, _ = chain_run("preflight", 48, "phase2.slurm.time_min=5",
                                        env={"DDAI_PHASE2_PREFLIGHT": "1"})
    wait_for(lambda: (run_dir / "FAILED").exists(), "the FAILED marker", 300)
    wait_for(lambda: not jobs_named(name), "the chain to end (successor cancelled)", 120)
    failed = (run_dir / "FAILED").read_text()
    assert "preflight failed" in failed and "no GPU visible" in failed and "what to fix" in failed
    state = json.loads((run_dir / "chain_state.json").read_text())
    assert len(state["jobs"]) == 1 and state["jobs"][0]["end_reason"] == "preflight failed"
    assert state["status"] == "failed" and state["restarts"] == 0
    assert not steps(run_dir)  # the trainer never started
    log = (run_dir / "phase2.log").read_text()
    assert "Traceback" not in log and "trainer starts" not in log
