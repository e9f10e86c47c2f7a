"""``ddai-report LOG --next-round DIR --next-round-rule ...`` end to end, against hand computations."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ddai.report.cli import main

ROOT = Path(__file__).resolve().parents[2]
PROMPT = pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))
EXTRA = pa.struct([("answer", pa.string()), ("index", pa.int64()), ("question", pa.string()),
                   ("phase1_ndcg", pa.float64())])
SCHEMA = pa.schema([("id", pa.string()), ("file_name", pa.string()), ("reference_page", pa.list_(pa.int64())),
                    ("data_source", pa.string()), ("prompt", PROMPT),
                    ("reward_model", pa.struct([("ground_truth", pa.string()), ("style", pa.string())])),
                    ("extra_info", EXTRA)])


def dataset(path: Path, ids: list[str]) -> Path:
    rows = [{"id": i, "file_name": f"{i[6:]}.pdf", "reference_page": [1], "data_source": "slidevqa",
             "prompt": [{"content": "sys", "role": "system"}, {"content": f"Question: q{i}", "role": "user"}],
             "reward_model": {"ground_truth": "a", "style": "rule"},
             "extra_info": {"answer": "a", "index": k, "question": f"q{i}", "phase1_ndcg": 0.4}}
            for k, i in enumerate(ids)]
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), path)
    return path


def judge_log(path: Path, rows: list[tuple]) -> Path:
    """The users' Phase 2 detail-log fields: uid = dataset id, judge_score, ndcg, final_score."""
    with open(path, "w") as fh:
        fh.writelines(json.dumps({"uid": uid, "sample_idx": k % 4, "step": step, "query": f"q{uid}",
                                 "judge_score": j, "ndcg": n, "final_score": f, "latency_s": 1.0}) + "\n" for k, (uid, step, j, n, f) in enumerate(rows))
    return path


IDS = ["train_9", "train_4", "train_12", "train_1", "train_30", "train_6", "train_21"]
ROWS = [
    ("train_1", 1, 0.0, 0.0, 0.0), ("train_1", 1, 0.5, 0.0, 0.4), ("train_1", 2, 0.2, 0.0, 0.2),   # .2: in
    ("train_4", 1, 1.0, 1.0, 1.0), ("train_4", 2, 0.0, 0.0, 0.0),                                  # .5
    ("train_6", 1, 0.0, 0.0, 0.0), ("train_6", 1, 0.0, 0.0, 0.0),                                  # 0
    ("train_9", 1, 0.1, 1.5, 0.1), ("train_9", 2, 0.3, 0.3, 0.3),                                  # .2 (1.5 unusable)
    ("train_12", 1, 0.25, 0.25, 0.25), ("train_12", 2, 0.2, 0.2, 0.2),                             # .225
    ("train_30", 1, None, None, None),                                                             # unscored
    ("train_77", 1, 0.0, 0.0, 0.0),                                                                # not in dataset
]


def hand(rows: list[tuple], ids: list[str], col: int, limit: float) -> list[str]:
    vals: dict[str, list[Fraction]] = {}  # exact decimal arithmetic, as by hand
    for r in rows:
        v = r[col]
        if v is not None and math.isfinite(v) and 0.0 <= v <= 1.0:
            vals.setdefault(r[0], []).append(Fraction(str(v)))
    return [i for i in ids if i in vals and sum(vals[i]) / len(vals[i]) <= Fraction(str(limit))]


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    return {"log": judge_log(tmp_path / "gspo_gemini_output.jsonl", ROWS),
            "dataset": dataset(tmp_path / "curriculum_bucket_a.parquet", IDS),
            "bucket0": dataset(tmp_path / "curriculum_bucket_0_filtered.parquet", ["train_100", "train_101"])}


def ids(p: Path) -> list[str]:
    return pq.read_table(p).column("id").to_pylist()


def test_focus_final_at_most_0_2_is_the_hand_computation(inputs, tmp_path):
    """The command of issue 11, run as users run it (a subprocess of the CLI module)."""
    out = tmp_path / "round1"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-m", "ddai.report.cli", str(inputs["log"]), "--next-round", str(out),
                          "--dataset", str(inputs["dataset"]), "--next-round-rule", "focus", "--focus-score", "final",
                          "--focus-max", "0.2", "--json"], check=False, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    want = hand(ROWS, IDS, 4, 0.2)
    assert want == ["train_9", "train_1", "train_6"]
    assert ids(out / "focus.parquet") == want
    doc = json.loads(res.stdout)
    assert doc["next_round"]["rows"] == {"focus": 3} and doc["next_round"]["rule"] == "focus"
    # the selected rows are the dataset's rows, unchanged apart from the appended phase2_* fields
    src = {r["id"]: r for r in pq.read_table(inputs["dataset"]).to_pylist()}
    for row in pq.read_table(out / "focus.parquet").to_pylist():
        ei = dict(row.pop("extra_info"))
        want_row = dict(src[row["id"]])
        want_ei = want_row.pop("extra_info")
        assert row == want_row and {k: ei[k] for k in want_ei} == want_ei
        assert set(ei) - set(want_ei) == {"phase2_judge", "phase2_ndcg", "phase2_final", "phase2_rollouts"}
    man = json.loads((out / "manifest.json").read_text())
    assert man["rule"]["params"] == {"score": "final", "max": 0.2} and man["rule"]["order"] == "source"
    assert man["source_log"] == str(inputs["log"])


def test_include_and_exclude_on_the_command_line(inputs, tmp_path, capsys):
    excl = tmp_path / "gt_errors.txt"
    excl.write_text("train_1\ntrain_100\n")
    out = tmp_path / "r1"
    assert main([str(inputs["log"]), "--next-round", str(out), "--dataset", str(inputs["dataset"]),
                 "--next-round-rule", "focus", "--focus-max", "0.2", "--include", str(inputs["bucket0"]),
                 "--include", str(inputs["dataset"]), "--exclude", str(excl), "--json"]) == 0
    capsys.readouterr()
    # selected (minus train_1), then bucket 0 (minus train_100), then the whole dataset again (minus train_1)
    assert ids(out / "focus.parquet") == ["train_9", "train_6", "train_101",
                                          *[i for i in IDS if i != "train_1"]]
    man = json.loads((out / "manifest.json").read_text())
    assert [e["appended"] for e in man["sets"]["focus"]["included"]] == [1, 6]
    assert man["sets"]["focus"]["duplicate_id_rows"] == 2


def test_round_two_is_one_command_on_round_one(inputs, tmp_path, capsys):
    r1, r2 = tmp_path / "r1", tmp_path / "r2"
    assert main([str(inputs["log"]), "--next-round", str(r1), "--dataset", str(inputs["dataset"]),
                 "--next-round-rule", "focus", "--include", str(inputs["bucket0"])]) == 0
    round1 = ids(r1 / "focus.parquet")
    assert round1 == ["train_9", "train_1", "train_6", "train_100", "train_101"]
    log2_rows = [("train_100", 1, 0.3, 0.0, 0.3), ("train_9", 1, 0.9, 0.9, 0.9), ("train_6", 1, 0.2, 0.2, 0.2),
                 ("train_101", 1, 0.0, 0.0, 0.0), ("train_1", 1, 0.1, 0.1, 0.1)]
    log2 = judge_log(tmp_path / "round1_log.jsonl", log2_rows)
    (tmp_path / "samples_to_filter.json").write_text(json.dumps({"filter_uids": {"all": ["train_101"]}}))
    assert main([str(log2), "--next-round", str(r2), "--dataset", str(r1 / "focus.parquet"),
                 "--next-round-rule", "focus", "--focus-max", "0.3",
                 "--exclude", str(tmp_path / "samples_to_filter.json")]) == 0
    capsys.readouterr()
    assert ids(r2 / "focus.parquet") == [i for i in hand(log2_rows, round1, 4, 0.3) if i != "train_101"] == [
        "train_1", "train_6", "train_100"]


def test_ddai47_and_stays_below_presets(inputs, tmp_path, capsys):
    out = tmp_path / "d"
    assert main([str(inputs["log"]), "--next-round", str(out), "--dataset", str(inputs["dataset"]),
                 "--next-round-rule", "ddai47", "--json"]) == 0
    nr = json.loads(capsys.readouterr().out)["next_round"]
    # judge/ndcg means: 9 .2/.3  4 .5/.5  12 .225/.225  1 .233/0  6 0/0
    assert nr["rows"] == {"success": 0, "potential": 4, "fail": 1, "other": 0}
    assert ids(out / "potential.parquet") == ["train_9", "train_4", "train_12", "train_1"]
    assert ids(out / "fail.parquet") == ["train_6"]
    assert main([str(inputs["log"]), "--next-round", str(out), "--dataset", str(inputs["dataset"]),
                 "--fail-below", "0.3", "--json"]) == 0
    nr = json.loads(capsys.readouterr().out)["next_round"]
    assert nr["rule"] == "stays_below" and sorted(p.name for p in out.iterdir()) == [
        "fail.parquet", "manifest.json", "potential.parquet", "success.parquet"]


@pytest.mark.parametrize("args,msg", [
    (["--next-round-rule", "focus"], "--next-round-rule has no effect without --next-round DIR"),
    (["--next-round", "{tmp}/o", "--next-round-rule", "ddai47", "--focus-max", "0.3"],
     "--focus-max applies to --next-round-rule focus, not ddai47"),
    (["--next-round", "{tmp}/o", "--next-round-rule", "focus", "--focus-max", "2"], "focus max is 2.0"),
    (["--next-round", "{tmp}/o", "--next-round-rule", "focus", "--exclude", "{tmp}/none.txt"],
     "exclude file not found"),
    (["--next-round", "{tmp}/o", "--next-round-rule", "focus", "--include", "{tmp}/none.parquet"],
     "--include parquet not found"),
])
def test_flag_errors_are_one_line_exit_2(inputs, tmp_path, capsys, args, msg):
    argv = [str(inputs["log"]), "--dataset", str(inputs["dataset"])] + [a.format(tmp=tmp_path) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and "Traceback" not in err
    assert len(err.splitlines()) == 1            # refused before any input is read or announced
    assert not (tmp_path / "o").exists()


def test_batch_flags(inputs, tmp_path, capsys):
    out = tmp_path / "b"
    assert main([str(inputs["log"]), "--next-round", str(out), "--dataset", str(inputs["dataset"]),
                 "--next-round-rule", "focus", "--include", str(inputs["bucket0"]), "--next-round-batch", "2",
                 "--json"]) == 0
    nr = json.loads(capsys.readouterr().out)["next_round"]
    # train_9, train_1, train_6, train_100, train_101: two batches of 2, one row trimmed
    assert nr["rows"] == {"focus": 4, "remainder": 1}
    assert ids(out / "remainder.parquet") == ["train_101"]
    assert main([str(inputs["log"]), "--next-round", str(out), "--next-round-remainder", "pad"]) == 2
    assert "--next-round-remainder needs --next-round-batch N" in capsys.readouterr().err
