"""Staged schedules: the advance/rollback rule on its own, then through the between-rounds job on
real files (curriculum run, fake trainer judge logs) with events in campaign.json and an
offline W&B run — no cluster needed, the job's entry point is called as Slurm would call it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ddai.campaign import record as cr
from ddai.campaign import steps
from ddai.campaign.schedule import (
    ScheduleSettings,
    ScheduleStage,
    ScheduleState,
    decide,
)

STAGES = [ScheduleStage("A", {"A": 1.0}), ScheduleStage("A+hardB", {"A": 1.0, "B": 0.25}),
          ScheduleStage("A+0", {"A": 1.0, "0": 0.5})]


def test_advance_on_rising_metric_rollback_with_growing_cooldown() -> None:
    s = ScheduleSettings(stages=STAGES, advance_at=0.5, rollback_drop=0.1, cooldown_rounds=1, cooldown_growth=2)
    state, seen = ScheduleState(cooldown_next=1), []
    for metric in (0.55, 0.6, 0.4, 0.45, 0.5, 0.3, 0.35, 0.4, 0.6):
        state, ev = decide(state, metric, s)
        seen.append((ev["event"], state.stage))
    assert seen == [("advance", 1), ("advance", 2), ("rollback", 1), ("cooldown", 1), ("advance", 2),
                    ("rollback", 1), ("cooldown", 1), ("cooldown", 1), ("advance", 2)]


def _train(run_dir: Path, train_file: str, rate: str) -> None:
    """One round of the fake trainer (verl's checkpoint layout, judge-log lines) and its DONE marker."""
    ov = [f"data.train_files={train_file}", "data.train_batch_size=8", f"trainer.default_local_dir={run_dir / 'checkpoints'}",
          "trainer.save_freq=100", "trainer.resume_mode=auto", "actor_rollout_ref.rollout.n=4",
          f"+reward.custom_reward_function.reward_kwargs.log_path={run_dir / 'judge_log' / 'judge.jsonl'}"]
    env = {**os.environ, "DDAI_FAKE_STEP_SECONDS": "0", "DDAI_FAKE_LEARN_RATE": rate}
    res = subprocess.run([sys.executable, "-m", "ddai.phase2.fake_trainer", *ov], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    (run_dir / "DONE").write_text("finished\n")


def test_schedule_through_the_between_rounds_job(tmp_path: Path, monkeypatch) -> None:
    c = tmp_path / "campaign"
    res = subprocess.run([sys.executable, "-m", "ddai.launch", "task=curriculum", f"curriculum.out_dir={c / 'round_1' / 'set'}",
                          "curriculum.train_batch_size=8", "curriculum.remainder=trim", f"hydra.run.dir={tmp_path / 'h'}"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    sched = {"stages": [{"name": st.name, "mix": st.mix} for st in STAGES], "cumulative": False,
             "metric": "judge_last_step", "advance_at": 0.0, "rollback_drop": 0.05, "cooldown_rounds": 1,
             "cooldown_growth": 2.0, "wandb": {"project": "ddai-test", "mode": "offline"}}
    dataset = str(Path(steps.__file__).resolve().parents[1] / "examples" / "data" / "slidevqa_train_example.parquet")
    rounds = [cr.RoundRecord(k, str(c / f"round_{k}" / "set"), str(c / f"round_{k}" / "set" / "manifest.json"),
                             str(c / f"round_{k}" / "run"), str(c / f"round_{k}" / "run" / "judge_log" / "judge.jsonl"))
              for k in (1, 2, 3)]
    settings = {"dataset": dataset, "rule": "rebucket", "rebucket": {"score": "final", "overrides": []},
                "train_batch_size": 8, "rollout_n": 4, "price_per_rollout": 0.002, "schedule": sched}
    cr.dump(cr.CampaignRecord(name="sched", dir=str(c), rounds=3, rule="rebucket", settings=settings,
                              round_records=rounds))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    monkeypatch.setenv("WANDB_SILENT", "true")

    m1 = json.loads((c / "round_1" / "set" / "manifest.json").read_text())
    _train(c / "round_1" / "run", str(c / "round_1" / "set" / m1["files"]["A"]), "0.15")
    assert steps.nextset(c, 2) == 0
    rec = cr.load(c)
    sched_events = [e for e in rec.events if e["event"] in ("advance", "rollback", "stay", "cooldown")]
    assert [e["event"] for e in sched_events] == ["advance"] and rec.schedule["after"]["stage"] == 1
    m2 = json.loads((c / "round_2" / "set" / "manifest.json").read_text())
    assert m2["schedule"]["name"] == "A+hardB" and set(m2["schedule"]["taken"]) == {"A", "B"}
    assert m2["schedule"]["taken"]["B"] > 0 and m2["batch"]["steps_per_epoch"] * 8 == m2["schedule"]["rows"]

    # Round 2 "unlearns" (the stand-in's success falls with every update): the metric drops.
    _train(c / "round_2" / "run", str(c / "round_2" / "set" / "train.parquet"), "-0.3")
    assert steps.nextset(c, 3) == 0
    rec = cr.load(c)
    kinds = [e["event"] for e in rec.events if e["event"] in ("advance", "rollback", "stay", "cooldown")]
    assert kinds == ["advance", "rollback"]
    rb = [e for e in rec.events if e["event"] == "rollback"][0]
    assert rb["metric"] < rb["previous_metric"] - 0.05 and rb["to_stage"] == 0 and rb["cooldown_left"] == 1
    m3 = json.loads((c / "round_3" / "set" / "manifest.json").read_text())
    assert m3["schedule"]["name"] == "A" and set(m3["schedule"]["taken"]) == {"A"}
    assert rec.round(3).decision["schedule"]["event"] == "rollback"

    # The same events in the offline W&B runs (one per between-rounds job, one run id), under curriculum/...
    import time

    runs = sorted(c.glob("wandb/offline-run-*"))
    assert len(runs) == 2 and len({r.name.rsplit("-", 1)[-1] for r in runs}) == 1, runs
    logs = [next(r.glob("run-*.wandb")) for r in runs]
    deadline = time.monotonic() + 60  # wandb's service process may still be flushing the transaction log
    while b"rollback" not in logs[1].read_bytes() and time.monotonic() < deadline:
        time.sleep(0.2)
    first, second = logs[0].read_bytes(), logs[1].read_bytes()
    for key in (b"curriculum/stage", b"curriculum/metric", b"curriculum/event", b"curriculum/round"):
        assert key in first and key in second
    assert b"advance" in first and b"A+hardB" in first
    assert b"rollback" in second
