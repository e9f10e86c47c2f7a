"""Campaigns on the REAL local Slurm cluster, with the FAKE trainer standing in for verl.

``DDAI_PHASE2_TRAINER=fake`` swaps verl for ``ddai.phase2.fake_trainer``, which writes real
judge-log lines from a seeded success model that improves with training; everything else is
production code: the launcher, the curriculum job, the Phase 2 chain and its finisher, the
between-rounds job and the closing job, linked by Slurm dependencies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from slurm_support import wait_for

from ddai.campaign.steps import judge_log_files

pytestmark = [pytest.mark.slurm, pytest.mark.verl]

REPO = Path(__file__).resolve().parents[2]
KEYS = {"GEMINI_API_KEY": "test-gemini-key-0000", "OPENAI_API_KEY": "test-openai-key-0000"}


def campaign_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(KEYS, DDAI_PHASE2_TRAINER="fake", DDAI_CURRICULUM_MEM="1G", **extra)
    return env


def launch(tmp_path: Path, name: str, *extra: str, env: dict[str, str]) -> dict:
    from phase2_inputs import phase2_inputs

    args = ["task=campaign", f"campaign.dir={tmp_path / 'campaign'}", "campaign.rounds=2",
            "campaign.job.time_min=5", "campaign.job.mem=1G",
            "+phase2.agent.settings.search_url=http://search.example:5002/search", *phase2_inputs(tmp_path / "in"),
            "phase2.logger=[console]", f"phase2.experiment_name={name}", f"phase2.slurm.job_name={name}",
            "phase2.train_batch_size=8", "phase2.ppo_mini_batch_size=8", "phase2.rollout.n=4", "phase2.save_freq=2",
            "phase2.slurm.cpus_per_task=1", "phase2.slurm.time_min=5", "phase2.slurm.signal_s=30",
            "phase2.slurm.step_minutes=0.025", "phase2.slurm.startup_minutes=0.05",
            f"hydra.run.dir={tmp_path / 'hydra'}", *extra]
    res = subprocess.run([sys.executable, "-m", "ddai.launch", *args], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def queued(prefix: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.split()[1:] and line.split()[1].startswith(prefix)]


def kill_all(prefix: str) -> None:
    """scancel every job of the campaign until none is left (a dying chain job may still submit one)."""
    def gone() -> bool:
        ids = queued(prefix)
        if ids:
            subprocess.run(["scancel", *ids], capture_output=True)
        return not ids

    wait_for(gone, f"every job named {prefix}* to leave the queue", 120, every=1.0)


@pytest.fixture
def cleanup():
    names: list[str] = []
    yield names
    for n in names:
        ids = queued(n)
        if ids:
            subprocess.run(["scancel", *ids], capture_output=True)


def record(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "campaign" / "campaign.json").read_text())


def steps(run_dir: Path) -> list[dict]:
    path = run_dir / "fake_steps.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def ids_of(path: str | Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_table(path).column("id").to_pylist()


def write_bucket(out: Path, rows: int, batch: int) -> Path:
    """A training bucket in the users' schema (ddai's example generator) and its manifest."""
    import pyarrow.parquet as pq

    from ddai.examples.generate import dataset_table, generate_dataset

    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(dataset_table(generate_dataset(rows, seed=3)), out / "bucket_A.parquet")
    manifest = {"buckets": {"A": rows}, "files": {"A": "bucket_A.parquet"}, "train_bucket": "A",
                "batch": {"train_batch_size": batch, "steps_per_epoch": rows // batch, "remainder": rows % batch}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out / "manifest.json"


def test_two_round_campaign_survives_a_kill_and_finishes_on_rerun(tmp_path: Path, slurm_cluster, cleanup) -> None:
    """Round 1 from the bundled Phase 1 log; round 2's set re-bucketed from round 1's judge log;
    all jobs are killed right after round 1 is DONE; the same command finishes the campaign."""
    name = f"ddai-ct{os.getpid()}"
    cleanup.append(name)
    env = campaign_env(DDAI_FAKE_STEP_SECONDS="0.3")
    cur = ["curriculum.train_batch_size=8", "curriculum.remainder=trim"]
    first = launch(tmp_path, name, *cur, env=env)
    assert set(first["jobs"]) == {"round1-curriculum", "round1-phase2", "round2-set", "round2-phase2", "close"}
    c = tmp_path / "campaign"
    r1, r2 = c / "round_1" / "run", c / "round_2" / "run"
    wait_for(lambda: (r1 / "DONE").exists(), "round 1 to finish", 400)
    kill_all(name)
    assert record(tmp_path)["status"] != "done"

    again = launch(tmp_path, name, *cur, env=env)
    assert {"round1-curriculum", "round1-phase2"} <= set(again["skipped"]), "finished stages are not redone"
    assert "round1-phase2" not in again["jobs"] and "close" in again["jobs"]
    wait_for(lambda: record(tmp_path)["status"] in ("done", "failed"), "the campaign to close", 400)
    rec = record(tmp_path)
    assert rec["status"] == "done", rec["message"]

    # Round 1 ran exactly once: every step once, one judge line per rollout.
    s1 = steps(r1)
    assert [s["step"] for s in s1] == list(range(1, 11))
    base1 = r1 / "judge_log" / "judge.jsonl"  # the log's name: each writer process appends its own file beside it
    files1 = judge_log_files(base1)
    log1 = [json.loads(x) for f in files1 for x in f.read_text().splitlines()]
    assert len(log1) == 10 * 8 * 4

    # Round 2's set is the curriculum rule applied to round 1's judge log (mean final in [0.1, 0.7]).
    finals: dict[str, list[float]] = defaultdict(list)
    for line in log1:
        finals[line["dataset_id"]].append(line["final_score"])
    expected = {i for i, v in finals.items() if 0.1 <= sum(v) / len(v) <= 0.7}
    m2 = json.loads((c / "round_2" / "set" / "manifest.json").read_text())
    assert [i["path"] for i in m2["inputs"] if i["role"] == "phase1_log"] == [str(f.resolve()) for f in files1]
    train2 = ids_of(c / "round_2" / "set" / m2["files"]["A"])
    rest2 = ids_of(c / "round_2" / "set" / m2["files"]["remainder"]) if "remainder" in m2["files"] else []
    assert set(train2) | set(rest2) == expected and len(train2) % 8 == 0 and train2
    s2 = steps(r2)
    assert sorted({s["step"] for s in s2}) == list(range(1, len(train2) // 8 + 1))
    first_run = {}
    for s in s2:
        first_run.setdefault(s["step"], s["ids"])
        assert s["ids"] == first_run[s["step"]], "a redone step trains the same prompts"
    assert [i for k in sorted(first_run) for i in first_run[k]] == train2, "round 2 trains its set, in order"

    # Round 2 started from round 1's final checkpoint (weights after 10 updates), fresh data loader.
    final1 = r1 / "checkpoints" / "global_step_10" / "actor" / "model_world_size_1_rank_0.pt"
    assert s2[0]["start_from"] == str(final1.resolve()) and s2[0]["updates"] == 11

    # campaign.json records both rounds.
    a, b = rec["round_records"]
    assert a["status"] == b["status"] == "done"
    assert a["train_file"].endswith("curriculum_bucket_a.parquet") and a["judged_rollouts"] == 320
    assert b["start_checkpoint"] == str((final1.parent).resolve())
    assert b["decision"]["rule"] == "rebucket" and b["decision"]["source_log"] == str(base1)
    assert b["counts"]["buckets"]["A"] == len(train2)
    assert 0 < b["counts"]["signal"]["expected_signal_share"] <= 1 and b["counts"]["signal"]["rollouts"] == len(train2) * 4
    assert b["cost_so_far_usd"] > a["cost_so_far_usd"] > 0
    assert len(rec["submissions"]) == 2


def test_failed_round_stops_the_campaign_with_a_message(tmp_path: Path, slurm_cluster, cleanup) -> None:
    """Round 1's trainer cannot start: its chain stops (FAILED), round 2 never runs, close says why."""
    manifest = write_bucket(tmp_path / "cur", rows=16, batch=8)
    name = f"ddai-cf{os.getpid()}"
    cleanup.append(name)
    out = launch(tmp_path, name, f"campaign.manifest={manifest}",
                 f"campaign.dataset={tmp_path / 'cur' / 'bucket_A.parquet'}", "phase2.slurm.max_no_progress=1",
                 env=campaign_env(DDAI_FAKE_CRASH="start"))
    assert set(out["jobs"]) == {"round1-phase2", "round2-set", "round2-phase2", "close"}
    wait_for(lambda: record(tmp_path)["status"] == "failed", "the campaign to stop", 400)
    wait_for(lambda: not queued(name), "the campaign's jobs to leave the queue", 120)
    rec = record(tmp_path)
    assert "stopped at round 1" in rec["message"] and "no progress" in rec["message"]
    assert rec["round_records"][0]["status"] == "failed"
    assert not (tmp_path / "campaign" / "round_2" / "set" / "ready.json").exists()
    assert not (tmp_path / "campaign" / "round_2" / "run" / "chain_state.json").exists(), "round 2 never began"
