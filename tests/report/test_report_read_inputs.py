"""What ddai-report accepts as a log or manifest: logs in parts, and manifests it must refuse.

The reward writes one judge-log file per writer process on shared filesystems
(``<stem>.<host>.<job>.<pid>.jsonl``, ddai/reward/judge_log.py); the report must read them as
one log whichever way the user names it. A manifest it cannot use ends in exit status 2 and
one line naming the file (issue 13), never "internal error".
"""

from __future__ import annotations

import json

import pytest

from ddai.report.cli import main


def _parts(tmp_path, records, write_jsonl):
    logs = tmp_path / "logs"
    logs.mkdir()
    write_jsonl(logs / "gspo_gemini_output.node01.4711.100.jsonl", records[:4])
    write_jsonl(logs / "gspo_gemini_output.node02.4711.200.jsonl", records[4:7])
    write_jsonl(logs / "gspo_gemini_output.node02.4712.300.jsonl", records[7:])
    # the judge cache lives beside it and is not a log
    write_jsonl(logs / "judge_cache.node01.4711.100.jsonl", [{"key": "k", "value": {"score": 1}}])
    return logs


def _summary(capsys, *paths):
    assert main([*map(str, paths), "--json"]) == 0
    out = capsys.readouterr()
    return json.loads(out.out)["logs"], out.err


@pytest.mark.parametrize("how", ["dir", "base", "glob", "shell"])
def test_parts_are_one_log(tmp_path, records, write_jsonl, hand_log, capsys, how):
    whole, _ = _summary(capsys, hand_log)
    logs = _parts(tmp_path, records, write_jsonl)
    arg = {"dir": [logs], "base": [logs / "gspo_gemini_output.jsonl"],
           "glob": [str(logs / "gspo_gemini_output.*.jsonl")],
           "shell": sorted(logs.glob("gspo_gemini_output.*.jsonl"))}[how]
    got, err = _summary(capsys, *arg)
    assert len(got) == 1, "three parts must be one log"
    s = got[0]
    assert "3 files read as one log" in err
    assert s["rollouts"] == 10 and s["prompts"] == 3
    assert s["scores"] == whole[0]["scores"] and s["per_step"] == whole[0]["per_step"]


def test_part_with_a_torn_last_line_names_its_file(tmp_path, records, write_jsonl, capsys):
    logs = _parts(tmp_path, records, write_jsonl)
    write_jsonl(logs / "gspo_gemini_output.node03.4712.400.jsonl", records[:1], tail=b'{"uid": "x", "ndc')
    got, _ = _summary(capsys, logs)
    s = got[0]
    assert s["rollouts"] == 11 and s["read"]["truncated_last_line"] == 1
    assert s["read"]["problems"][0]["file"].endswith("node03.4712.400.jsonl")
    assert s["read"]["problems"][0]["line"] == 2


def test_directory_with_two_different_logs_is_refused(tmp_path, records, write_jsonl, capsys):
    logs = _parts(tmp_path, records, write_jsonl)
    write_jsonl(logs / "other_run.jsonl", records)
    assert main([str(logs), "--json"]) == 2
    err = capsys.readouterr().err
    assert "2 different judge logs" in err and str(logs) in err and "Traceback" not in err


BAD_MANIFESTS = {
    "bucket count as text": {"buckets": {"A": "many"}},
    "files as a list": {"buckets": {"A": 1}, "files": ["a.parquet"]},
    "batch as text": {"buckets": {"A": 1}, "batch": "64"},
    "steps per epoch as text": {"buckets": {"A": 1}, "batch": {"steps_per_epoch": "ten"}},
    "rule params as a list": {"buckets": {"A": 1}, "rule": {"name": "threshold", "params": [1]}},
    "negative count": {"buckets": {"A": -1}},
    "boolean count": {"buckets": {"A": True}},
}


@pytest.mark.parametrize("name", list(BAD_MANIFESTS))
def test_manifest_of_wrong_types_exits_2_naming_it(tmp_path, capsys, name):
    d = tmp_path / "cur"
    d.mkdir()
    m = d / "manifest.json"
    m.write_text(json.dumps(BAD_MANIFESTS[name]))
    for arg in (d, m):
        assert main([str(arg), "--json"]) == 2
        err = [x for x in capsys.readouterr().err.splitlines() if not x.startswith("found ")]
        assert len(err) == 1 and str(m) in err[0] and "internal error" not in err[0]
        assert err[0].startswith("ddai-report: error: ")


def test_binary_manifest_exits_2_naming_it(tmp_path, capsys):
    d = tmp_path / "cur"
    d.mkdir()
    m = d / "manifest.json"
    m.write_bytes(b"{\x00\xff\xfe binary \x89PNG\r\n")
    for arg in (d, m):
        assert main([str(arg), "--json"]) == 2
        err = capsys.readouterr().err
        assert str(m) in err and "internal error" not in err and "Traceback" not in err


def test_garbage_prompt_stats_exits_2_naming_it(tmp_path, capsys, write_curriculum, hand_log):
    d = write_curriculum(tmp_path / "cur")
    (d / "prompt_stats.parquet").write_bytes(b"PAR1 this is not parquet PAR1")
    assert main([str(hand_log), "--curriculum", str(d), "--json"]) == 2
    err = capsys.readouterr().err
    assert "prompt_stats.parquet" in err or str(d) in err
    assert "internal error" not in err


def test_sweep_summary_of_wrong_types_exits_2(tmp_path, capsys, write_curriculum):
    root = tmp_path / "sweep"
    write_curriculum(root / "0" / "curriculum")
    (root / "sweep_summary.json").write_text(json.dumps({"runs": [{"num": 0, "phase2": "cheap"}]}))
    assert main([str(root), "--json"]) == 2
    err = capsys.readouterr().err
    assert "sweep_summary.json" in err and "runs[0].phase2" in err
