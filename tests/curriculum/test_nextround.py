"""Next-round presets (ddai.curriculum.nextround) on hand-built logs and training parquets.

Every expected set below is computed by hand from the rollouts written in the test, so a
change of rule, order, inclusivity or join shows up as a failing assertion.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ddai.curriculum import nextround as nr
from ddai.errors import ConfigError, InputError

EXTRA = pa.struct([("answer", pa.string()), ("file_name", pa.string()), ("index", pa.int64()),
                   ("question", pa.string()), ("reference_page", pa.list_(pa.int64())), ("split", pa.string())])
SCHEMA = pa.schema([
    ("id", pa.string()), ("file_name", pa.string()), ("reference_page", pa.list_(pa.int64())),
    ("data_source", pa.string()),
    ("prompt", pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))),
    ("reward_model", pa.struct([("ground_truth", pa.string()), ("style", pa.string())])),
    ("extra_info", EXTRA),
])
HF = {"info": {"features": {"extra_info": {"answer": {"dtype": "string", "_type": "Value"}}}}}


def training(ids: list[str], *, phase1: bool = False) -> pa.Table:
    """Rows in the users' nested training schema (optionally with extra_info.phase1_ndcg)."""
    rows = []
    for i, pid in enumerate(ids):
        deck = pid.split("_")[1]
        ei = {"answer": f"answer {pid}", "file_name": f"{deck}.pdf", "index": i, "question": f"Q {pid}?",
              "reference_page": [1, 2], "split": "train"}
        if phase1:
            ei["phase1_ndcg"] = 0.05
        rows.append({"id": pid, "file_name": f"{deck}.pdf", "reference_page": [2], "data_source": "slidevqa",
                     "prompt": [{"content": "system text", "role": "system"},
                                {"content": f"Question: Q {pid}?", "role": "user"}],
                     "reward_model": {"ground_truth": f"answer {pid}", "style": "rule"}, "extra_info": ei})
    schema = SCHEMA
    if phase1:
        schema = SCHEMA.set(6, pa.field("extra_info", pa.struct([*EXTRA, pa.field("phase1_ndcg", pa.float64())])))
    return pa.Table.from_pylist(rows, schema=schema).replace_schema_metadata(
        {b"huggingface": json.dumps(HF).encode()})


def write_log(path: Path, rollouts: list[tuple]) -> Path:
    """A Phase 2 judge log (JSON Lines): (id, step, judge, ndcg, final) per rollout."""
    with open(path, "w") as fh:
        fh.writelines(json.dumps({"uid": pid, "sample_idx": i, "step": step, "query": f"Q {pid}?",
                                 "judge_score": j, "ndcg": n, "final_score": f}) + "\n" for i, (pid, step, j, n, f) in enumerate(rollouts))
    return path


# Dataset order is deliberately not the log's order nor sorted by id.
DATASET_IDS = ["train_50", "train_7", "train_31", "train_2", "train_88", "train_14"]
LOG = [
    # id, step, judge, ndcg, final
    ("train_2", 1, 0.0, 0.0, 0.0), ("train_2", 2, 0.4, 0.5, 0.4),       # final mean 0.2 (boundary: in)
    ("train_7", 1, 1.0, 1.0, 1.0), ("train_7", 2, 0.9, 1.0, 0.92),      # 0.96: out
    ("train_14", 1, 0.0, 0.05, 0.01), ("train_14", 1, 0.0, 0.0, 0.0),   # 0.005: in
    ("train_31", 1, 0.2, 0.6, 0.28), ("train_31", 2, 0.2, 0.0, 0.16),   # 0.22: out (> 0.2)
    ("train_50", 1, 0.1, 1.7, 0.1), ("train_50", 2, 0.0, 0.3, 0.1),     # 0.1 in; ndcg 1.7 unusable
    ("train_88", 1, None, None, None),                                  # unscored: never selected
    ("train_999", 1, 0.0, 0.0, 0.0),                                    # not in the dataset
]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    pq.write_table(training(DATASET_IDS, phase1=True), tmp_path / "bucket_a.parquet")
    pq.write_table(training(["train_300", "train_301", "train_302"], phase1=True), tmp_path / "bucket_0.parquet")
    return {"log": write_log(tmp_path / "phase2.jsonl", LOG), "dataset": tmp_path / "bucket_a.parquet",
            "bucket0": tmp_path / "bucket_0.parquet"}


def hand_focus(rollouts: list[tuple], dataset: list[str], score: int, limit: float) -> list[str]:
    """Mean of the usable values of column ``score`` per id, ≤ limit, in dataset order."""
    vals: dict[str, list[Fraction]] = {}  # exact decimal arithmetic, as by hand
    for r in rollouts:
        v = r[score]
        if v is not None and math.isfinite(v) and 0 <= v <= 1:
            vals.setdefault(r[0], []).append(Fraction(str(v)))
    return [i for i in dataset if i in vals and sum(vals[i]) / len(vals[i]) <= Fraction(str(limit))]


def ids_of(path: Path) -> list[str]:
    return pq.read_table(path).column("id").to_pylist()


def test_score_table_follows_the_usable_score_rule():
    import pandas as pd

    rows = pd.DataFrame({"id": ["a", "a", "a", "b"], "step": [1, 2, 2, 1],
                         "judge": [0.5, float("nan"), 1.0, None], "ndcg": [1.7, -0.25, 0.5, 0.2],
                         "final": [0.2, 0.4, 0.6, 0.0]})
    s = nr.score_table(rows).set_index("id")
    assert s.loc["a", "judge_mean"] == pytest.approx(0.75) and s.loc["a", "judge_missing"] == 1
    assert s.loc["a", "ndcg_mean"] == pytest.approx(0.5) and s.loc["a", "ndcg_out_of_range"] == 2
    assert s.loc["a", "judge_last"] == pytest.approx(1.0) and s.loc["a", "last_step"] == 2
    assert math.isnan(s.loc["b", "judge_mean"]) and s.loc["b", "rollouts"] == 1
    assert nr.score_summary(nr.score_table(rows))["scores"]["ndcg"] == {
        "usable": 2, "out_of_range": 2, "missing_or_nonfinite": 0}


def test_focus_selects_mean_final_at_most_max_in_dataset_order(files, tmp_path):
    out = tmp_path / "r1"
    res = nr.export_from_logs(files["log"], [files["dataset"]], out, nr.make_rule("focus", score="final", max=0.2))
    want = hand_focus(LOG, DATASET_IDS, 4, 0.2)
    assert want == ["train_50", "train_2", "train_14"]           # 0.2 exactly is in, 0.22 is out
    assert ids_of(out / "focus.parquet") == want
    assert res["rows"] == {"focus": 3} and res["train_file"] == "focus.parquet" and res["not_in_dataset"] == 1
    man = json.loads((out / "manifest.json").read_text())
    assert man["rule"] == {"name": "focus", "params": {"score": "final", "max": 0.2}, "order": "source",
                           "sets": {"focus": "mean final (usable values) <= 0.2"}, "train_set": "focus"}
    assert man["sets"]["focus"]["not_in_dataset"] == ["train_999"]
    assert man["log"]["scores"]["ndcg"]["out_of_range"] == 1 and man["dataset_ids_without_scores"] == 0


@pytest.mark.parametrize("score,col", [("judge", 2), ("ndcg", 3)])
def test_focus_on_other_scores(files, tmp_path, score, col):
    out = tmp_path / score
    nr.export_from_logs(files["log"], [files["dataset"]], out, nr.make_rule("focus", score=score, max=0.3))
    assert ids_of(out / "focus.parquet") == hand_focus(LOG, DATASET_IDS, col, 0.3)


def test_focus_keeps_the_schema_and_adds_only_phase2_fields(files, tmp_path):
    out = tmp_path / "r1"
    nr.export_from_logs(files["log"], [files["dataset"]], out, nr.make_rule("focus"))
    src = pq.read_table(files["dataset"])
    got = pq.read_table(out / "focus.parquet")
    assert got.schema.names == src.schema.names
    for name in src.schema.names:
        if name != "extra_info":
            assert got.schema.field(name).type == src.schema.field(name).type
    ei = got.schema.field("extra_info").type
    assert [f.name for f in ei] == [f.name for f in src.schema.field("extra_info").type] + [
        "phase2_judge", "phase2_ndcg", "phase2_rollouts", "phase2_final"]
    by_id = {r["id"]: r for r in src.to_pylist()}
    for row in got.to_pylist():
        want = by_id[row["id"]]
        for k in src.schema.names:
            if k != "extra_info":
                assert row[k] == want[k]
        assert {k: row["extra_info"][k] for k in want["extra_info"]} == want["extra_info"]
    r50 = next(r for r in got.to_pylist() if r["id"] == "train_50")["extra_info"]
    assert r50["phase2_ndcg"] == pytest.approx(0.3)      # 1.7 not averaged in
    assert r50["phase2_final"] == pytest.approx(0.1) and r50["phase2_rollouts"] == 2
    hf = json.loads(got.schema.metadata[b"huggingface"])["info"]["features"]["extra_info"]
    assert hf["phase2_final"] == {"dtype": "float64", "_type": "Value"}


def test_include_is_appended_in_its_own_order_and_exclude_removes_everywhere(files, tmp_path):
    excl = tmp_path / "bad_ids.txt"
    excl.write_text("# wrong ground truth\ntrain_2\n\ntrain_301\ntrain_7\n")
    out = tmp_path / "r1"
    res = nr.export_from_logs(files["log"], [files["dataset"]], out, nr.make_rule("focus", max=0.2),
                              include=[files["bucket0"]], exclude=excl)
    assert ids_of(out / "focus.parquet") == ["train_50", "train_14", "train_300", "train_302"]
    assert res["rows"] == {"focus": 4}
    man = json.loads((out / "manifest.json").read_text())
    e = man["sets"]["focus"]
    assert (e["rows_selected"], e["rows_appended"]) == (2, 2)
    assert e["included"][0]["rows"] == 3 and e["included"][0]["excluded"] == 1
    # train_7 was never selected: excluding it changes nothing and is reported as such
    assert man["exclude"]["removed_ids"] == ["train_2", "train_301"] and man["exclude"]["not_selected_anyway"] == 1
    rows = pq.read_table(out / "focus.parquet").to_pylist()
    assert rows[-1]["extra_info"]["phase2_final"] is None and rows[-1]["extra_info"]["phase1_ndcg"] == 0.05


@pytest.mark.parametrize("text", ['["train_2", "train_14"]', "train_2\ntrain_14\n",
                                  '{"filter_uids": {"all": ["train_2", "train_14"]}}'])
def test_exclude_file_shapes(files, tmp_path, text):
    excl = tmp_path / "x"
    excl.write_text(text)
    nr.export_from_logs(files["log"], [files["dataset"]], tmp_path / "o", nr.make_rule("focus"), exclude=excl)
    assert ids_of(tmp_path / "o" / "focus.parquet") == ["train_50"]


def test_round_one_then_round_two(files, tmp_path):
    """The users' sequence: round 1 = hard A (final ≤ 0.2) + bucket 0; round 2 = round 1's
    prompts with mean final ≤ 0.3 in round 1's log, minus the wrong-ground-truth ids."""
    r1 = tmp_path / "r1"
    nr.export_from_logs(files["log"], [files["dataset"]], r1, nr.make_rule("focus", score="final", max=0.2),
                        include=[files["bucket0"]])
    assert ids_of(r1 / "focus.parquet") == ["train_50", "train_2", "train_14", "train_300", "train_301", "train_302"]
    round1_log = [("train_300", 3, 0.0, 0.0, 0.0), ("train_50", 3, 0.5, 0.5, 0.5), ("train_14", 3, 0.3, 0.3, 0.3),
                  ("train_301", 3, 0.2, 0.1, 0.18), ("train_2", 3, 0.0, 0.2, 0.04), ("train_302", 3, 0.9, 1, 0.92)]
    log2 = write_log(tmp_path / "round1.jsonl", round1_log)
    (tmp_path / "gt.json").write_text(json.dumps(["train_301"]))
    r2 = tmp_path / "r2"
    nr.export_from_logs(log2, [r1 / "focus.parquet"], r2, nr.make_rule("focus", score="final", max=0.3),
                        exclude=tmp_path / "gt.json")
    r1_ids = ids_of(r1 / "focus.parquet")
    want = [i for i in hand_focus(round1_log, r1_ids, 4, 0.3) if i != "train_301"]
    assert want == ["train_2", "train_14", "train_300"]
    assert ids_of(r2 / "focus.parquet") == want
    # round 1's phase2_* fields are replaced by round 2's, not duplicated
    ei = pq.read_table(r2 / "focus.parquet").schema.field("extra_info").type
    assert [f.name for f in ei].count("phase2_final") == 1
    assert pq.read_table(r2 / "focus.parquet").to_pylist()[1]["extra_info"]["phase2_final"] == pytest.approx(0.3)


def test_ddai47_classification(files, tmp_path):
    out = tmp_path / "d47"
    res = nr.export_from_logs(files["log"], [files["dataset"]], out, nr.make_rule("ddai47"))
    # judge / ndcg means: 50 .05/.3  7 .95/1  31 .2/.3  2 .2/.25  14 0/.025  88 -
    assert ids_of(out / "success.parquet") == ["train_7"]
    assert ids_of(out / "potential.parquet") == ["train_50", "train_31", "train_2"]
    assert ids_of(out / "fail.parquet") == ["train_14"]
    assert ids_of(out / "other.parquet") == []
    assert res["train_file"] == "potential.parquet"
    man = json.loads((out / "manifest.json").read_text())
    assert man["sets"]["fail"]["not_in_dataset"] == ["train_999"] and man["ids_in_no_set"] == 1


def test_ddai47_gaps_go_to_other(tmp_path):
    import pandas as pd

    rows = pd.DataFrame({"id": ["a", "b", "c"], "judge": [0.85, 0.05, 0.95], "ndcg": [0.9, 0.95, 0.0],
                         "final": [0.9, 0.2, 0.8]})
    sets = nr.split(nr.score_table(rows), nr.make_rule("ddai47"))
    assert sets["other"]["id"].tolist() == ["a", "b"] and sets["success"]["id"].tolist() == ["c"]


def test_stays_below_is_the_earlier_rule(files, tmp_path):
    out = tmp_path / "sb"
    nr.export_from_logs(files["log"], [files["dataset"]], out, nr.make_rule("stays_below"))
    # judge means 50 .05 (last .0)  7 .95  31 .2 (last .2)  2 .2 (last .4 -> not staying below)  14 0
    assert ids_of(out / "success.parquet") == ["train_7"]
    assert ids_of(out / "fail.parquet") == ["train_31", "train_50", "train_14"]     # easy -> hard
    assert ids_of(out / "potential.parquet") == ["train_2"]
    ei = pq.read_table(out / "fail.parquet").schema.field("extra_info").type
    assert [f.name for f in ei][-3:] == ["phase2_judge", "phase2_ndcg", "phase2_rollouts"]


def test_easy_to_hard_order(files, tmp_path):
    out = tmp_path / "e2h"
    nr.export_from_logs(files["log"], [files["dataset"]], out, nr.make_rule("focus", max=0.2, order="easy_to_hard"))
    assert ids_of(out / "focus.parquet") == ["train_2", "train_50", "train_14"]    # final .2, .1, .005


def test_rerun_is_byte_identical_and_drops_other_rules_files(files, tmp_path):
    out = tmp_path / "o"
    nr.export_from_logs(files["log"], [files["dataset"]], out, nr.make_rule("ddai47"))
    nr.export_from_logs(files["log"], [files["dataset"]], out, nr.make_rule("focus"), include=[files["bucket0"]])
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(first) == ["focus.parquet", "manifest.json"]
    nr.export_from_logs(files["log"], [files["dataset"]], out, nr.make_rule("focus"), include=[files["bucket0"]])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == first


def test_score_rows_as_a_table_give_the_same_set(files, tmp_path):
    import pandas as pd

    rows = pd.DataFrame(LOG, columns=["id", "step", "judge", "ndcg", "final"])
    res = nr.export(rows, [files["dataset"]], tmp_path / "t", nr.make_rule("focus"))
    assert res["rows"] == {"focus": 3}
    assert ids_of(tmp_path / "t" / "focus.parquet") == hand_focus(LOG, DATASET_IDS, 4, 0.2)


def test_bad_inputs_are_one_line_errors(files, tmp_path):
    rule = nr.make_rule("focus")
    other = training(["train_400"]).set_column(1, "file_name", pa.array([3], pa.int64()))
    pq.write_table(other, tmp_path / "other.parquet")
    with pytest.raises(InputError) as ei:
        nr.export_from_logs(files["log"], [files["dataset"]], tmp_path / "o", rule, include=[tmp_path / "other.parquet"])
    assert "column 'file_name' is int64" in str(ei.value) and "other.parquet" in str(ei.value)
    assert not (tmp_path / "o").exists()
    (tmp_path / "bad.txt").write_text("train_1 train_2\n")
    with pytest.raises(InputError, match=r"bad.txt:1"):
        nr.export_from_logs(files["log"], [files["dataset"]], tmp_path / "o", rule, exclude=tmp_path / "bad.txt")
    pq.write_table(pa.table({"x": [1]}), tmp_path / "noid.parquet")
    with pytest.raises(InputError, match="has no 'id' / 'extra_info' column"):
        nr.export_from_logs(files["log"], [tmp_path / "noid.parquet"], tmp_path / "o", rule)
    with pytest.raises(ConfigError, match="focus max is 1.5"):
        nr.make_rule("focus", max=1.5)
    with pytest.raises(ConfigError, match="unknown next-round rule 'fokus'"):
        nr.make_rule("fokus")
    with pytest.raises(ConfigError, match="order 'random'"):
        nr.make_rule("focus", order="random")
    for e in (ei.value,):
        assert "\n" not in str(e)


def test_batch_alignment_and_phase2_reads_the_manifest(files, tmp_path):
    """With a batch size the training set holds whole batches; Phase 2 accepts the manifest as is."""
    from types import SimpleNamespace

    from ddai.phase2.data import load_train_data
    from ddai.phase2.validate import check_data

    out = tmp_path / "r1"
    res = nr.export_from_logs(files["log"], [files["dataset"]], out, nr.make_rule("focus", max=0.2),
                              include=[files["bucket0"]], batch_size=4, remainder="trim")
    # selected 50, 2, 14 then bucket 0's 300, 301, 302: one batch of 4, two rows trimmed
    assert ids_of(out / "focus.parquet") == ["train_50", "train_2", "train_14", "train_300"]
    assert ids_of(out / "remainder.parquet") == ["train_301", "train_302"]
    assert res["rows"] == {"focus": 4, "remainder": 2}
    man = json.loads((out / "manifest.json").read_text())
    assert man["batch"]["trimmed_ids"] == ["train_301", "train_302"] and man["batch"]["steps_per_epoch"] == 1
    data = load_train_data(str(out / "manifest.json"), None)
    assert data.train_file == str((out / "focus.parquet").resolve()) and data.rows == 4
    p = SimpleNamespace(train_batch_size=4)
    assert check_data(p, data.rows, allow_remainder=False, manifest_steps=data.manifest_steps_per_epoch) == 1
    # pad repeats the first rows; warn only lists what verl drops
    nr.export_from_logs(files["log"], [files["dataset"]], out, nr.make_rule("focus", max=0.2),
                        include=[files["bucket0"]], batch_size=4, remainder="pad")
    assert ids_of(out / "focus.parquet")[6:] == ["train_50", "train_2"] and not (out / "remainder.parquet").exists()
    nr.export_from_logs(files["log"], [files["dataset"]], out, nr.make_rule("focus", max=0.2), batch_size=2)
    man = json.loads((out / "manifest.json").read_text())
    assert man["batch"]["dropped_ids"] == ["train_14"] and len(ids_of(out / "focus.parquet")) == 3
