"""``ddai-report RUN_DIR`` and ``--watch``: the chain's state beside the judge-log figures,
refreshed while the log grows, reading only the bytes appended since the last refresh.

The watch loop is driven through its hooks: each refresh is an event the test waits for
(no sleeps, no timing margins) and the test appends to the log between two refreshes.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from ddai.report.cli import main, run
from ddai.report.live import Follower, judge_log_path, run_view
from ddai.report.logstats import Thresholds


def _text(renderable) -> str:
    con = Console(file=io.StringIO(), width=200, color_system=None, record=True)
    con.print(renderable)
    return con.export_text()


def _rec(pid: str, step: int, judge: float, ndcg: float) -> dict:
    return {"dataset_id": pid, "step": step, "judge_score": judge, "ndcg": ndcg, "final_score": judge,
            "latency_s": 1.0, "error": None}


def test_run_view_reads_the_chain(phase2_run, hand_log):
    from ddai.phase2.plan import read_plan

    assert judge_log_path(phase2_run, read_plan(phase2_run / "plan.json")) == hand_log
    t0 = 1_790_000_000.0
    # step 2 reached 2 hours after the first job started from 0: 1 step/h, 8 steps to go
    v = run_view(phase2_run, now=t0 + 7200)
    assert (v["status"], v["step"], v["total_steps"], v["restarts"]) == ("running", 2, 10, 1)
    assert [j["job_id"] for j in v["jobs"]] == ["101", "102"] and v["checkpoints"] == [1, 2]
    assert v["pace_steps_per_hour"] == 1.0 and v["eta_s"] == 8 * 3600
    assert v["wandb_run_id"] == "0123abcdstable42" and v["wandb_project"] == "ddai-test"
    # the judge log being ahead of the checkpoints counts
    assert run_view(phase2_run, log_last_step=4, now=t0 + 7200)["eta_s"] == 6 * 1800


def test_report_on_a_run_directory(phase2_run, tmp_path, capsys):
    page = tmp_path / "run.html"
    assert main([str(phase2_run), "--html", str(page)]) == 0
    err = capsys.readouterr().err
    assert "Phase 2 run directory; judge log" in err
    assert "jobs / restarts" in err and "2 / 1 of 5" in err and "0123abcdstable42" in err
    assert "Log —" in err and "Phase 3 quadrants" in err            # the judge-log figures beside it
    html = page.read_text()
    assert "Phase 2 run — " in html and "time limit" in html and "W&amp;B run id" in html


def test_follower_reads_only_new_complete_lines(tmp_path, write_jsonl):
    log = write_jsonl(tmp_path / "g.jsonl", [_rec("p1", 1, 1.0, 1.0)])
    f = Follower(log, Thresholds())
    assert f.poll() and f.part.rollouts == 1
    size1 = log.stat().st_size
    with open(log, "ab") as fh:
        fh.write(json.dumps(_rec("p2", 2, 0.0, 1.0)).encode() + b"\n")
        fh.write(b'{"dataset_id": "p3", "step": 2, "judge_sc')     # a line still being written
    assert f.poll() and f.part.rollouts == 2 and f.part.malformed == 0
    with open(log, "ab") as fh:
        fh.write(b'ore": 0.5, "ndcg": 0.5}\n')
    assert f.poll() and f.part.rollouts == 3
    assert not f.poll()                                            # nothing new
    assert f.bytes_read == log.stat().st_size                      # each byte parsed once
    assert f.offset > size1


def test_watch_follows_a_growing_log(phase2_run, hand_log):
    """Three refreshes; the test appends a step between them and sees the figures change."""
    seen: list[str] = []
    additions = [
        [_rec("train_9", 3, 0.0, 0.0)] * 4,                  # step 3: four failures
        [_rec("train_9", 4, 1.0, 1.0)] * 6,                  # step 4: six solved
    ]

    def on_refresh(renderable) -> None:
        seen.append(_text(renderable))
        if additions:
            with open(hand_log, "a", encoding="utf-8") as fh:
                fh.writelines(json.dumps(r) + "\n" for r in additions.pop(0))

    def stop() -> bool:
        return len(seen) >= 3

    assert run([str(phase2_run), "--watch", "--interval", "0", "--progress", "off"],
               watch_hooks=(stop, on_refresh)) == 0
    assert len(seen) == 3
    assert "rollouts" in seen[0] and " 10 " in _row(seen[0], "rollouts")
    assert " 14 " in _row(seen[1], "rollouts") and " 20 " in _row(seen[2], "rollouts")
    assert "(1…2)" in _row(seen[0], "steps") and "(1…3)" in _row(seen[1], "steps") and "(1…4)" in _row(seen[2], "steps")
    assert _row(seen[0], "mean judge") != _row(seen[2], "mean judge")
    # the chain's step follows the judge log (steps logged after the last checkpoint)
    assert "4 / 10 (checkpoint 2)" in seen[2]
    assert "Phase 2 run —" in seen[2] and "0123abcdstable42" in seen[2]


def _row(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if f"│ {label} " in line)


def test_watch_refuses_what_it_cannot_follow(hand_log, tmp_path, capsys):
    capsys.readouterr()
    assert main([str(hand_log), "--watch", "--json"]) == 2
    assert "--watch cannot be combined" in capsys.readouterr().err
    steps_json = tmp_path / "s.json"
    steps_json.write_text(json.dumps({"step_1": []}))
    assert main([str(steps_json), "--watch"]) == 2
    assert "--watch follows one JSON Lines judge log" in capsys.readouterr().err


def test_missing_judge_log_is_reported(phase2_run, hand_log, capsys):
    plan = json.loads((phase2_run / "plan.json").read_text())
    plan["overrides"][-1] = "+reward.custom_reward_function.reward_kwargs.log_path=logs/not_yet.jsonl"
    (phase2_run / "plan.json").write_text(json.dumps(plan))
    capsys.readouterr()
    assert main([str(phase2_run)]) == 0
    err = capsys.readouterr().err
    assert "no judge log yet (expected at" in err and str(Path(phase2_run) / "logs" / "not_yet.jsonl") in err
    assert "0123abcdstable42" in err
