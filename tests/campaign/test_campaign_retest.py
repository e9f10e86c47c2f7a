"""Second chances: every N rounds the between-rounds job adds prompts earlier rounds excluded
(real curriculum run, fake-trainer judge log, the job's entry point called as Slurm would)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ddai.campaign import record as cr
from ddai.campaign import steps


def test_excluded_prompts_are_retested_in_whole_batches(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    c = tmp_path / "campaign"
    res = subprocess.run([sys.executable, "-m", "ddai.launch", "task=curriculum", f"curriculum.out_dir={c / 'round_1' / 'set'}",
                          "curriculum.train_batch_size=8", "curriculum.remainder=trim", f"hydra.run.dir={tmp_path / 'h'}"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    m1 = json.loads((c / "round_1" / "set" / "manifest.json").read_text())
    run1 = c / "round_1" / "run"
    ov = [f"data.train_files={c / 'round_1' / 'set' / m1['files']['A']}", "data.train_batch_size=8",
          f"trainer.default_local_dir={run1 / 'checkpoints'}", "trainer.save_freq=100", "actor_rollout_ref.rollout.n=4",
          f"+reward.custom_reward_function.reward_kwargs.log_path={run1 / 'judge_log' / 'judge.jsonl'}"]
    res = subprocess.run([sys.executable, "-m", "ddai.phase2.fake_trainer", *ov], capture_output=True, text=True,
                         env={**os.environ, "DDAI_FAKE_STEP_SECONDS": "0"})
    assert res.returncode == 0, res.stderr
    (run1 / "DONE").write_text("finished\n")
    dataset = str(Path(steps.__file__).resolve().parents[1] / "examples" / "data" / "slidevqa_train_example.parquet")
    rounds = [cr.RoundRecord(k, str(c / f"round_{k}" / "set"), str(c / f"round_{k}" / "set" / "manifest.json"),
                             str(c / f"round_{k}" / "run"), str(c / f"round_{k}" / "run" / "judge_log" / "judge.jsonl"))
              for k in (1, 2, 3)]
    settings = {"dataset": dataset, "rule": "rebucket", "rebucket": {"score": "final", "overrides": []},
                "train_batch_size": 8, "rollout_n": 4, "retest": {"every": 2, "rows": 20}}
    cr.dump(cr.CampaignRecord(name="rt", dir=str(c), rounds=3, rule="rebucket", settings=settings, round_records=rounds))

    assert steps.nextset(c, 2) == 0
    set2 = c / "round_2" / "set"
    m2 = json.loads((set2 / "manifest.json").read_text())
    b2 = json.loads((set2 / "buckets" / "manifest.json").read_text())
    rebucketed = pq.read_table(set2 / "buckets" / b2["files"]["A"]).column("id").to_pylist()
    train = pq.read_table(set2 / "train.parquet").column("id").to_pylist()
    main_rows = len(rebucketed) - len(rebucketed) % 8
    added = train[main_rows:]
    assert train[:main_rows] == rebucketed[:main_rows], "the re-bucketed set first, in its order"
    assert len(added) == 16 == m2["retest"]["rows"], "20 asked, cut to whole batches of 8"
    excluded = set()
    for name in ("B", "0"):
        excluded |= set(pq.read_table(c / "round_1" / "set" / m1["files"][name]).column("id").to_pylist())
    assert set(added) <= excluded and not set(added) & set(rebucketed)
    assert m2["batch"]["steps_per_epoch"] * 8 == len(train)
    rec = cr.load(c)
    ev = next(e for e in rec.events if e["event"] == "retest")
    assert sorted(ev["ids"]) == sorted(added) and rec.round(2).decision["retest"]["rows"] == 16
    assert steps.retest_due(settings, 4) and not steps.retest_due(settings, 3)
