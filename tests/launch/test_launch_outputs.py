"""What a run leaves: stdout JSON only, job logs with content, no secret on disk, sweep behaviour."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ddai.sweep_labels import short_keys, swept_labels

SECRET = "zq7-TEST-secret-value-9f3a1c"   # fake key; set in the environment of the runs below


def all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_multirun_stdout_is_json_lines_only_and_hydra_talks_on_stderr(ddai, tmp_path):
    proc = ddai.launch("-m", "curriculum.theta1=0.05,0.2", "curriculum.train_batch_size=16", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and all(json.loads(line)["buckets"] for line in lines)
    assert "[HYDRA] Launching 2 jobs locally" in proc.stderr
    rows = [line for line in proc.stderr.splitlines() if "│" in line and " ok " in line]
    assert len(rows) == 2 and "theta1=0.05" in rows[0] and "theta1=0.2" in rows[1]
    assert not any("curriculum.theta1" in row for row in rows)       # the swept values only


def test_job_log_is_named_ddai_and_records_the_run(ddai, tmp_path):
    proc = ddai.launch(cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    logs = list(tmp_path.glob("outputs/*/*/ddai.log"))
    assert len(logs) == 1 and not list(tmp_path.glob("outputs/*/*/__main__.log"))
    text = logs[0].read_text()
    assert "task=curriculum" in text and "finished:" in text


def test_failed_job_in_a_sweep_is_summarized_with_its_log(ddai, tmp_path):
    """A failure only the run can find (an unreadable dataset) fails its job, not the sweep."""
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    proc = ddai.launch("-m", f"curriculum.dataset={bad}", "curriculum.theta1=0.05,0.2", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = json.loads(next(tmp_path.glob("multirun/*/*/sweep_summary.json")).read_text())
    assert summary["runs_total"] == 2 and summary["runs_failed"] == 2
    for run in summary["runs"]:
        log = Path(run["log"])
        assert log.name == "ddai.log" and "ddai: error:" in log.read_text() and str(bad) in run["error"]


def test_pasted_key_never_reaches_disk(ddai, tmp_path):
    env = {"GEMINI_API_KEY": SECRET}
    bad = [
        f"+phase2.reward.kwargs.judge_base_url='https://judge.example/v1?key={SECRET}'",
        f"curriculum.sort={SECRET}",
    ]
    for override in bad:
        for mode in ([], ["-m"]):
            proc = ddai.launch(*mode, override, cwd=tmp_path, env=env)
            assert proc.returncode == 2, proc.stderr
            assert SECRET not in proc.stderr + proc.stdout
            assert "GEMINI_API_KEY" in proc.stderr
    # a run that reads the key through ${oc.env:...} into a value that is then rejected: masked
    proc = ddai.launch("curriculum.sort=${oc.env:GEMINI_API_KEY}", cwd=tmp_path, env=env)
    assert proc.returncode == 2 and SECRET not in proc.stderr and "<$GEMINI_API_KEY>" in proc.stderr
    # and a normal run with the key in the environment: nothing it writes contains it
    ok = ddai.launch(cwd=tmp_path, env=env)
    assert ok.returncode == 0, ok.stderr
    written = all_files(tmp_path)
    assert any(".hydra" in p.parts for p in written)
    assert not [p for p in written if SECRET.encode() in p.read_bytes()]


@pytest.mark.parametrize("runs,labels,common", [
    ([["curriculum.theta1=0.05", "curriculum.sort=frontier", "curriculum.phase1_log=/x"],
      ["curriculum.theta1=0.1", "curriculum.sort=frontier", "curriculum.phase1_log=/x"]],
     ["theta1=0.05", "theta1=0.1"], ["curriculum.sort=frontier", "curriculum.phase1_log=/x"]),
    ([["sweep.judge.price_per_call=1", "sweep.generator.price_per_call=1"],
      ["sweep.judge.price_per_call=2", "sweep.generator.price_per_call=3"]],
     ["judge.price_per_call=1 generator.price_per_call=1", "judge.price_per_call=2 generator.price_per_call=3"], []),
    ([["curriculum.theta1=0.05"]], ["theta1=0.05"], []),
    ([[], ["+curriculum.seed=3"]], ["(defaults)", "seed=3"], []),
])
def test_swept_labels_show_only_what_differs(runs, labels, common):
    assert swept_labels(runs) == (labels, common)


def test_short_keys_keep_enough_to_stay_distinct():
    assert short_keys(["a.x.price", "a.y.price", "a.theta1"]) == {"a.x.price": "x.price", "a.y.price": "y.price",
                                                                  "a.theta1": "theta1"}
