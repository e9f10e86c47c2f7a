"""``campaign.rule=nextround``: round 2's set is a next-round preset (``focus``) applied to round 1's
judge log, aligned to whole batches, through the between-rounds job's entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from ddai.campaign import record as cr
from ddai.campaign import steps
from ddai.campaign.steps import judge_log_files


def test_focus_preset_picks_round_two(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    c = tmp_path / "campaign"
    res = subprocess.run([sys.executable, "-m", "ddai.launch", "task=curriculum", f"curriculum.out_dir={c / 'round_1' / 'set'}",
                          "curriculum.train_batch_size=8", f"hydra.run.dir={tmp_path / 'h'}"],
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
    dataset = Path(steps.__file__).resolve().parents[1] / "examples" / "data" / "slidevqa_train_example.parquet"
    rounds = [cr.RoundRecord(k, str(c / f"round_{k}" / "set"), str(c / f"round_{k}" / "set" / "manifest.json"),
                             str(c / f"round_{k}" / "run"), str(c / f"round_{k}" / "run" / "judge_log" / "judge.jsonl"))
              for k in (1, 2)]
    settings = {"dataset": str(dataset), "rule": "nextround", "train_batch_size": 8, "rollout_n": 4,
                "nextround": {"preset": "focus", "params": {"score": "final", "max": 0.5}, "include": [],
                              "exclude": None}}
    cr.dump(cr.CampaignRecord(name="nr", dir=str(c), rounds=2, rule="nextround", settings=settings, round_records=rounds))

    assert steps.nextset(c, 2) == 0
    finals: dict[str, list[float]] = defaultdict(list)
    for line in (l for f in judge_log_files(run1 / "judge_log" / "judge.jsonl") for l in f.read_text().splitlines()):
        d = json.loads(line)
        finals[d["dataset_id"]].append(d["final_score"])
    chosen = {i for i, v in finals.items() if sum(v) / len(v) <= 0.5}
    order = [i for i in pq.read_table(dataset).column("id").to_pylist() if i in chosen]  # dataset order
    want = order[: len(order) - len(order) % 8]
    m2 = json.loads((c / "round_2" / "set" / "manifest.json").read_text())
    train = pq.read_table(c / "round_2" / "set" / m2["files"][m2["train_bucket"]]).column("id").to_pylist()
    assert train == want and m2["batch"]["steps_per_epoch"] == len(want) // 8
    rec = cr.load(c)
    r2 = rec.round(2)
    assert r2.status == "ready" and r2.decision["preset"] == "focus" and r2.decision["source_log"] == str(run1 / "judge_log" / "judge.jsonl")
    assert r2.start_checkpoint.endswith("global_step_10/actor") and r2.train_file.endswith(m2["files"][m2["train_bucket"]])
