"""The command line: one JSON document on stdout, tables on a non-TTY stderr, clear errors."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from rich.console import Console

from ddai.report.cli import main

TOP_KEYS = {"report_version", "ddai_version", "inputs", "options", "logs", "curricula", "sweeps", "next_round"}
LOG_KEYS = {"path", "format", "read", "rollouts", "prompts", "steps", "scores", "judge_subscores", "rates",
            "latency_s", "tokens", "cost_usd", "labels", "per_step", "quadrants", "next_round"}


def test_json_document_has_stable_keys_and_is_reproducible(hand_log, capsys):
    assert main([str(hand_log), "--json"]) == 0
    out1, err1 = capsys.readouterr()
    doc = json.loads(out1)
    assert set(doc) == TOP_KEYS
    assert set(doc["logs"][0]) == LOG_KEYS
    assert doc["inputs"] == [{"path": str(hand_log), "kind": "log", "format": "jsonl", "manifest": None,
                              "description": "judge log (JSON Lines, one rollout per line)"}]
    assert doc["logs"][0]["next_round"]["counts"] == {"success": 1, "potential": 1, "fail": 1}
    assert out1.count("\n") == 1            # one document, one line
    assert "found" in err1 and "Scores per rollout" not in err1   # --json: no tables
    assert main([str(hand_log), "--json"]) == 0
    assert capsys.readouterr().out == out1  # byte-identical re-run


def test_tables_on_non_tty_stderr(hand_log, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "130")
    assert main([str(hand_log)]) == 0
    out, err = capsys.readouterr()
    assert out == ""                         # humans' output never on stdout
    assert "\x1b[" not in err                # no colour / cursor codes when not a terminal
    assert max(len(line) for line in err.splitlines() if not line.startswith("found ")) <= 130
    for text in ("Scores per rollout", "Per step", "Phase 3 quadrants", "Most discordant prompts",
                 "reasoning failure", "train_2", "Next-round split"):
        assert text in err
    judge_row = next(line for line in err.splitlines() if line.replace(" ", "").startswith("│judge│"))
    assert "0.511" in judge_row              # mean judge 4.6 / 9


def test_render_into_a_recording_console(hand_log):
    """The renderer itself, into a console that is not a terminal."""
    from ddai.report.logstats import Thresholds, scan_jsonl
    from ddai.report.model import Options, Report
    from ddai.report.quadrants import add_quadrants
    from ddai.report.render_terminal import render
    from ddai.report.summarize import summarize

    lr = summarize(str(hand_log), "jsonl", 1, scan_jsonl(str(hand_log), Thresholds()))
    add_quadrants(lr, Thresholds())
    buf = io.StringIO()
    con = Console(file=buf, width=100, force_terminal=False, color_system=None)
    render(Report(inputs=[], options=Options(), logs=[lr]), con)
    text = buf.getvalue()
    row = next(line for line in text.splitlines() if "guessing (judge↑ NDCG↓)" in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells == ["guessing (judge↑ NDCG↓)", "1", "11.1%", "0", "0.0%"]


@pytest.mark.parametrize("argv, needle", [
    (["/nonexistent/log.jsonl"], "/nonexistent/log.jsonl: no such file or directory"),
    (["{log}", "--judge-high", "1.5"], "--judge-high is 1.5"),
    (["{log}", "--fail-below", "0.8"], "is not below --success-from"),
    (["{log}", "--next-round", "{tmp}/nr"], "no dataset to join"),
    (["{tmp}"], "directory holds no manifest.json"),
])
def test_errors_are_one_line_without_traceback(argv, needle, hand_log, tmp_path, capsys):
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    argv = [a.format(log=hand_log, tmp=empty) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("ddai-report: error: ")


def test_console_script_runs_in_a_subprocess(hand_log, tmp_path):
    """The installed entry point (what users type), stdout piped: JSON only; bad input: exit 2."""
    exe = os.path.join(os.path.dirname(sys.executable), "ddai-report")
    cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "ddai.report.cli"]
    ok = subprocess.run([*cmd, str(hand_log), "--json"], check=False, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["logs"][0]["rollouts"] == 10
    bad = tmp_path / "x.jsonl"
    bad.write_text("this is not json\n")
    res = subprocess.run([*cmd, str(bad)], check=False, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr and "does not start with a JSON" in res.stderr


def test_empty_log_just_started(tmp_path, capsys):
    log = tmp_path / "gspo_gemini_output.jsonl"
    log.write_bytes(b"")
    assert main([str(log), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["logs"][0]
    assert s["rollouts"] == 0 and s["prompts"] == 0 and s["steps"] is None
    assert s["scores"]["judge"]["mean"] is None and s["quadrants"]["rollouts"]["scored"] == 0


def test_unknown_prompt_is_a_warning(hand_log, capsys):
    assert main([str(hand_log), "--json", "--prompt", "train_999"]) == 0
    assert "--prompt train_999 is not a prompt of any log" in capsys.readouterr().err


def test_progress_never_touches_stdout(hand_log, capsys):
    assert main([str(hand_log), "--json", "--progress", "on"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["logs"][0]["rollouts"] == 10
