"""The example-data generator: seeded (same seed, same bytes), realistic schema, truthful NDCG."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from ddai.examples import DATA_DIR, EXAMPLE_DATASET, EXAMPLE_PHASE1_LOG
from ddai.examples.generate import (
    BUNDLED_SETTINGS,
    DATASET_SCHEMA,
    DEFAULT_NAMES,
    FINAL_KEY,
    SHAPES,
    ndcg,
    write_bundled,
    write_example_set,
)

REPO = Path(__file__).resolve().parents[2]


def _digests(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir()) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    kw = {"n_prompts": 40, "shapes": SHAPES, "response_bytes": 300}
    write_example_set(tmp_path / "a", seed=3, **kw)
    write_example_set(tmp_path / "b", seed=3, **kw)
    write_example_set(tmp_path / "c", seed=4, **kw)
    a, b, c = (_digests(tmp_path / x) for x in "abc")
    assert a == b
    assert set(a) == {DEFAULT_NAMES[s] for s in SHAPES} | {DEFAULT_NAMES["dataset"], DEFAULT_NAMES["truth"]}
    assert all(a[k] != c[k] for k in a)


def test_bundled_files_regenerate_identically_and_stay_small():
    assert EXAMPLE_DATASET.is_file() and EXAMPLE_PHASE1_LOG.is_file()
    total = sum(p.stat().st_size for p in DATA_DIR.iterdir() if p.is_file())
    assert total < 2_000_000
    with tempfile.TemporaryDirectory() as tmp:
        write_bundled(tmp)
        for name in ("gspo_phase1.json", "gspo_gemini_output.jsonl", "ground_truth.json"):
            assert (Path(tmp) / name).read_bytes() == (DATA_DIR / name).read_bytes(), name
        # parquet bytes embed the pyarrow version; the content and schema must be identical
        fresh = pq.read_table(Path(tmp) / EXAMPLE_DATASET.name)
        bundled = pq.read_table(EXAMPLE_DATASET)
        assert fresh.equals(bundled) and fresh.schema.equals(bundled.schema, check_metadata=True)


def test_dataset_has_the_users_nested_schema_and_hf_metadata(tmp_path):
    truth = write_example_set(tmp_path, n_prompts=25, seed=1, shapes=("steps_json",), response_bytes=100)
    table = pq.read_table(tmp_path / DEFAULT_NAMES["dataset"])
    assert table.schema.equals(DATASET_SCHEMA, check_metadata=True)
    assert table.column_names == ["id", "file_name", "reference_page", "data_source", "prompt", "reward_model",
                                  "extra_info"]
    meta = json.loads(table.schema.metadata[b"huggingface"])
    assert list(meta["info"]["features"]) == table.column_names
    rows = table.to_pylist()
    assert len(rows) == 25 == len(truth.rows)
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids)
    for i, r in enumerate(rows):
        deck = r["id"].removeprefix("train_")
        assert deck.isdigit() and r["file_name"] == f"{deck}.pdf" == r["extra_info"]["file_name"]
        assert [m["role"] for m in r["prompt"]] == ["system", "user"]
        assert r["prompt"][1]["content"] == "Question: " + r["extra_info"]["question"]
        assert r["extra_info"]["index"] == i and r["extra_info"]["split"] == "test"
        assert r["reference_page"] == r["extra_info"]["reference_page"] and all(p >= 1 for p in r["reference_page"])
        assert r["reward_model"] == {"ground_truth": r["extra_info"]["answer"], "style": "rule"}


def test_logs_follow_the_ndcg_definition_and_the_truth(tmp_path):
    truth = write_example_set(tmp_path, n_prompts=120, seed=9, shapes=("steps_json",), response_bytes=200,
                              bad_score_fraction=0.05)
    doc = json.loads((tmp_path / DEFAULT_NAMES["steps_json"]).read_text())
    by_uid = {g.uid: g for g in truth.groups}
    rows = {r.id: r for r in truth.rows}
    checked = 0
    for step, groups in doc.items():
        for uid, g in groups.items():
            gt = by_uid[uid]
            assert step == f"step_{gt.step}" and f"Question: {gt.question}<|im_end|>" in g["prompt"]
            for a, written in zip(g["agents"], gt.ndcg):
                s = a["scores"]
                assert FINAL_KEY in s and "model_eval_score" in s and len(a["response"]) > 50
                det = s["ndcg_details"]
                assert all(d.split("_")[0] == gt.deck for d in det["reference_documents"])
                value = s.get("ndcg_value")
                if isinstance(value, float) and not math.isnan(value) and 0 <= value <= 1:
                    assert value == pytest.approx(ndcg(det["retrieved_documents"], det["reference_documents"]))
                    checked += 1
                else:
                    assert value is written or value == written or (math.isnan(value) and math.isnan(written))
    assert checked > 0.9 * sum(len(g.ndcg) for g in truth.groups)
    # messiness: unmatched rows, orphan groups, repeated prompts
    logged = {g.dataset_id for g in truth.groups if g.dataset_id}
    assert 0 < len(logged) < len(truth.rows)
    assert logged == {r.id for r in truth.rows if r.logged}
    assert any(g.dataset_id is None and f"train_{g.deck}" not in rows for g in truth.groups)
    repeated = [d for d, gs in truth.groups_by_dataset_id().items() if len({g.step for g in gs}) > 1]
    assert repeated
    # latent difficulty drives the realized score
    means = truth.pooled_mean_ndcg()
    easy = [means[r.id] for r in truth.rows if r.id in means and r.p_hit > 0.8 and means[r.id] is not None]
    hard = [means[r.id] for r in truth.rows if r.id in means and r.p_hit < 0.2 and means[r.id] is not None]
    assert easy and hard and sum(easy) / len(easy) > sum(hard) / len(hard) + 0.3


def test_ndcg_examples_from_the_design():
    assert ndcg(["X", "A"], ["A"]) == pytest.approx(1 / math.log2(3))
    assert ndcg(["A"], ["A", "B"]) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert ndcg(["A"], []) == 0.0 and ndcg([], ["A"]) == 0.0


def test_cli_writes_requested_shapes(tmp_path):
    out = tmp_path / "cli"
    res = subprocess.run([sys.executable, str(REPO / "tools" / "make_example_data.py"), "--out", str(out),
                          "--prompts", "20", "--seed", "2", "--shapes", "jsonl,events", "--response-bytes", "150"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["rows"] == 20 and set(summary["files"]) == {"dataset", "jsonl", "events"}
    assert (out / DEFAULT_NAMES["jsonl"]).stat().st_size == summary["files"]["jsonl"]["bytes"]
    bad = subprocess.run([sys.executable, str(REPO / "tools" / "make_example_data.py"), "--out", str(out),
                          "--shapes", "xml"], capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 2 and "unknown shapes" in bad.stderr and "Traceback" not in bad.stderr


def test_bundled_settings_are_what_the_docs_say():
    truth = json.loads((DATA_DIR / "ground_truth.json").read_text())
    assert truth["seed"] == BUNDLED_SETTINGS["seed"] and truth["settings"]["n_prompts"] == BUNDLED_SETTINGS["n_prompts"]


def test_bundled_judge_log_joins_the_bundled_curriculum():
    """The showcase log (``ddai-report``, next-round presets) is a Phase 2 run on the bundled
    curriculum's A band: every prompt is a row of the bundled dataset, none is an orphan."""
    import sys as _sys

    _sys.path.insert(0, str(Path(__file__).parent))
    from engine_helpers import make_cfg

    from ddai.curriculum import pipeline

    ids = set(pq.read_table(EXAMPLE_DATASET).column("id").to_pylist())
    recs = [json.loads(line) for line in (DATA_DIR / "gspo_gemini_output.jsonl").read_text().splitlines()]
    logged = {r["dataset_id"] for r in recs}
    assert len(logged) == 40 and logged <= ids
    steps = {}
    for r in recs:
        steps.setdefault(r["dataset_id"], set()).add(r["step"])
    assert len({r["step"] for r in recs}) >= 3 and any(len(s) > 1 for s in steps.values())
    # the bundled Phase 1 log and dataset are unchanged: the default buckets are the pinned ones,
    # and every prompt of the judge log is in the training bucket
    with tempfile.TemporaryDirectory() as tmp:
        pipeline.run(make_cfg(out_dir=tmp))
        man = json.loads((Path(tmp) / "manifest.json").read_text())
        stats = pq.read_table(Path(tmp) / "prompt_stats.parquet").to_pylist()
    assert {k: man["buckets"][k] for k in ("A", "B", "0", "unmatched")} == {"A": 87, "B": 121, "0": 27,
                                                                           "unmatched": 85}
    bucket = {r["dataset_id"]: r["bucket"] for r in stats if r["dataset_id"]}
    assert {bucket[i] for i in logged} == {"A"}


def test_cli_regenerates_the_bundled_set(tmp_path):
    res = subprocess.run([sys.executable, str(REPO / "tools" / "make_example_data.py"), "--bundled", "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    for name in ("gspo_phase1.json", "gspo_gemini_output.jsonl", "ground_truth.json"):
        assert (tmp_path / name).read_bytes() == (DATA_DIR / name).read_bytes(), name
