"""Manifests, sweeps, the Phase 1 join and the next-round export (training-schema parquet)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from ddai.report.cli import main
from ddai.report.discover import discover


def test_discover_says_what_each_path_is(hand_log, curriculum_dir, sweep_dir, tmp_path):
    assert discover(str(hand_log)).kind == "log"
    assert discover(str(curriculum_dir)).manifest == str(curriculum_dir / "manifest.json")
    m = discover(str(curriculum_dir / "manifest.json"))
    assert (m.kind, m.path) == ("curriculum", str(curriculum_dir))
    assert discover(str(curriculum_dir.parent)).kind == "curriculum"     # a job dir with curriculum/
    assert discover(str(sweep_dir)).kind == "sweep"
    assert discover(str(curriculum_dir / "curriculum_bucket_a.parquet")).kind == "dataset"
    steps = tmp_path / "gspo_phase1.json"
    steps.write_text(json.dumps({"step_1": {"u1": {"prompt": "p", "agents": []}}}, indent=1))
    assert discover(str(steps)).fmt == "steps_json"
    events = tmp_path / "ev.jsonl"
    events.write_text(json.dumps({"event_type": "run.start"}) + "\n")
    assert discover(str(events)).fmt == "events"


def test_bucket_counts_per_run_and_across_a_sweep(curriculum_dir, sweep_dir, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    assert main([str(curriculum_dir), str(sweep_dir), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    c = doc["curricula"][0]
    assert c["buckets"] == {"A": 2, "B": 1, "0": 1, "unmatched": 3}
    assert c["train_bucket"] == "A" and c["rule"] == "threshold"
    sw = doc["sweeps"][0]
    assert [j["job"] for j in sw["jobs"]] == ["0", "1", "10"]           # natural order
    assert [j["buckets"]["A"] for j in sw["jobs"]] == [2, 3, 1]
    assert sw["bucket_names"] == ["A", "B", "0", "unmatched"]
    assert sw["sweep_summary"][1] == {"job": 1, "A": 3}
    assert main([str(sweep_dir)]) == 0
    err = capsys.readouterr().err
    row = next(line for line in err.splitlines() if line.replace(" ", "").startswith("│10│"))
    assert [c.strip() for c in row.strip("│ ").split("│")] == ["10", "threshold", "1", "2", "1", "3", "0"]


@pytest.mark.parametrize("with_stats", [True, False])
def test_join_by_bucket_and_decile(hand_log, tmp_path, write_curriculum, with_stats, capsys):
    cur = write_curriculum(tmp_path / "cur", with_stats=with_stats)
    assert main([str(hand_log), str(cur), "--json", "--deciles", "3"]) == 0
    cj = json.loads(capsys.readouterr().out)["logs"][0]["curriculum_join"]
    assert cj["matched_prompts"] == 3 and cj["log_prompts_not_in_curriculum"] == 0
    a, b, z = cj["by_bucket"]["A"], cj["by_bucket"]["B"], cj["by_bucket"]["0"]
    assert (a["prompts"], a["rollouts"], b["rollouts"], z["rollouts"]) == (1, 4, 4, 2)
    assert a["judge_mean"] == pytest.approx(0.2) and a["ndcg_mean"] == pytest.approx(3.631 / 4, abs=1e-6)
    assert a["judge_first"] == pytest.approx(0.1) and a["judge_last"] == pytest.approx(0.3)
    assert a["judge_change"] == pytest.approx(0.2)
    assert b["judge_mean"] == pytest.approx(0.95) and b["quadrants"]["solved"] == 1
    assert z["error_rate"] == pytest.approx(0.5)
    dec = cj["by_decile"]
    assert [d["decile"] for d in dec] == [1, 2, 3]
    assert [d["phase1_min"] for d in dec] == [0.05, 0.5, 0.9]             # 1 = hardest
    assert dec[0]["judge_mean"] == pytest.approx(0.0)


def test_next_round_export_keeps_the_training_schema(hand_log, curriculum_dir, tmp_path, capsys):
    out = tmp_path / "next"
    assert main([str(hand_log), str(curriculum_dir), "--next-round", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["next_round"]["rows"] == {"success": 1, "potential": 1, "fail": 1}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sets"]["fail"]["rows"] == 1 and manifest["thresholds"] == {"fail_below": 0.3,
                                                                                 "success_from": 0.7}
    src = pq.read_table(curriculum_dir / "curriculum_bucket_a.parquet")
    fail = pq.read_table(out / "fail.parquet")
    assert fail.column("id").to_pylist() == ["train_3"]
    # same columns and nested types; extra_info only gains the phase2_* fields
    assert fail.schema.names == src.schema.names
    for name in src.schema.names:
        if name != "extra_info":
            assert fail.schema.field(name).type == src.schema.field(name).type
    src_ei, out_ei = src.schema.field("extra_info").type, fail.schema.field("extra_info").type
    assert [out_ei.field(i).name for i in range(out_ei.num_fields)] == \
        [src_ei.field(i).name for i in range(src_ei.num_fields)] + ["phase2_judge", "phase2_ndcg", "phase2_rollouts"]
    row = fail.to_pylist()[0]
    assert row["extra_info"]["phase1_ndcg"] == 0.05 and row["extra_info"]["phase2_judge"] == 0.0
    assert row["extra_info"]["phase2_ndcg"] == 0.25 and row["extra_info"]["phase2_rollouts"] == 2
    assert row["prompt"][1] == {"content": "Question: Question for train_3?", "role": "user"}
    hf = json.loads(fail.schema.metadata[b"huggingface"])
    assert hf["info"]["features"]["extra_info"]["phase2_judge"] == {"dtype": "float64", "_type": "Value"}
    # re-run: byte-identical files
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main([str(hand_log), str(curriculum_dir), "--next-round", str(out), "--json"]) == 0
    capsys.readouterr()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_next_round_with_explicit_dataset(hand_log, curriculum_dir, tmp_path, capsys):
    out = tmp_path / "nr"
    ds = curriculum_dir / "curriculum_bucket_a.parquet"      # holds train_2 and train_4 only
    assert main([str(hand_log), "--dataset", str(ds), "--next-round", str(out), "--json"]) == 0
    nr = json.loads(capsys.readouterr().out)["next_round"]
    assert nr["rows"] == {"success": 0, "potential": 1, "fail": 0} and nr["not_in_dataset"] == 2
    man = json.loads((out / "manifest.json").read_text())
    assert man["sets"]["fail"]["not_in_dataset"] == ["train_3"]


def test_sweep_summary_of_the_launcher(tmp_path, write_curriculum, capsys, monkeypatch):
    """sweep_summary.json as ddai.launch writes it: runs name their manifests (out_dir anywhere)."""
    monkeypatch.setenv("COLUMNS", "160")
    root = tmp_path / "multirun"
    outs = tmp_path / "elsewhere"
    runs = []
    for num, a in ((0, 2), (1, 3)):
        cur = write_curriculum(outs / f"run{num}", buckets={"A": a, "B": 1, "0": 1, "unmatched": 3})
        (root / str(num)).mkdir(parents=True)
        runs.append({"num": num, "overrides": [f"curriculum.theta1={0.05 * (num + 1):g}"], "status": "COMPLETED",
                     "manifest": str(cur / "manifest.json"), "phase2": {"est_price_total": 12.5 * (num + 1)}})
    runs.append({"num": 2, "overrides": ["curriculum.theta1=0.5"], "status": "FAILED",
                 "error": "ConfigError: theta1 must be below theta_easy", "log": "/logs/2.err"})
    (root / "sweep_summary.json").write_text(json.dumps({"sweep_dir": str(root), "runs": runs}))
    assert main([str(root), "--json"]) == 0
    sw = json.loads(capsys.readouterr().out)["sweeps"][0]
    assert [(j["job"], j["buckets"]["A"], j["overrides"], j["est_price_total"]) for j in sw["jobs"]] == [
        ("0", 2, ["curriculum.theta1=0.05"], 12.5), ("1", 3, ["curriculum.theta1=0.1"], 25.0)]
    assert sw["failed_jobs"] == [{"job": "2", "status": "FAILED", "log": "/logs/2.err",
                                  "error": "ConfigError: theta1 must be below theta_easy"}]
    assert main([str(root)]) == 0
    err = capsys.readouterr().err
    assert "theta1=0.1" in err and "25.00" in err and "job 2 FAILED" in err
    assert "curriculum.theta1=" not in err.split("job 2 FAILED")[0]     # the table shows the swept values only


def test_other_json_documents_are_refused(tmp_path, capsys):
    other = tmp_path / "manifest.json"
    other.write_text(json.dumps({"kind": "next_round", "sets": {}}, indent=2))
    assert main([str(other)]) == 2
    err = capsys.readouterr().err
    assert "neither a judge log nor a curriculum manifest (kind, sets)" in err and "Traceback" not in err
