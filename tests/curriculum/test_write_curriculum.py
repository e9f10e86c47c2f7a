"""Outputs: the input's exact schema plus phase1_* fields, HF metadata, determinism, atomicity."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from engine_helpers import REPO, make_cfg, truth_rollouts  # noqa: E402

from ddai.atomic import GENERATIONS
from ddai.curriculum import pipeline, write
from ddai.errors import InputError
from ddai.examples.generate import write_example_set


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    d = tmp_path_factory.mktemp("ex")
    truth = write_example_set(d, 240, seed=11, shapes=("steps_json",), response_bytes=50, bad_score_fraction=0.05)
    return d, truth


def cfg_for(d: Path, out: Path, **kw):
    return make_cfg(dataset=str(d / "slidevqa_train_example.parquet"), phase1_log=str(d / "gspo_phase1.json"),
                    out_dir=str(out), train_batch_size=16, **kw)


def snapshot(out: Path) -> dict[str, bytes]:
    """What a reader sees under the fixed names (the generation store itself is not listed)."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.name != GENERATIONS}


def generations(out: Path) -> list[str]:
    return sorted(p.name for p in (out / GENERATIONS).iterdir() if p.name != "current")


def test_schema_is_the_input_schema_plus_appended_extra_info_fields(example, tmp_path):
    d, truth = example
    pipeline.run(cfg_for(d, tmp_path), rollouts=truth_rollouts(truth))
    src = pq.read_schema(d / "slidevqa_train_example.parquet")
    man = json.loads((tmp_path / "manifest.json").read_text())
    for bucket, fname in man["files"].items():
        if bucket == "prompt_stats":
            continue
        out = pq.read_schema(tmp_path / fname)
        assert out.names == src.names
        for name in src.names:
            if name != "extra_info":
                assert out.field(name).equals(src.field(name), check_metadata=True)
        ei_src, ei_out = src.field("extra_info").type, out.field("extra_info").type
        n = ei_src.num_fields
        assert [ei_out.field(i) for i in range(n)] == [ei_src.field(i) for i in range(n)]
        assert [ei_out.field(i).name for i in range(n, ei_out.num_fields)] == [f for f, _ in write.PHASE1_FIELDS]
        hf = json.loads(out.metadata[b"huggingface"])["info"]["features"]
        hf_src = json.loads(src.metadata[b"huggingface"])["info"]["features"]
        ei_hf = hf.pop("extra_info")
        ei_hf_src = hf_src.pop("extra_info")
        assert hf == hf_src                                   # other features untouched
        assert list(ei_hf) == [ei_out.field(i).name for i in range(ei_out.num_fields)]
        assert {k: ei_hf[k] for k in ei_hf_src} == ei_hf_src  # original extra_info features untouched
        assert ei_hf["phase1_ndcg"] == {"dtype": "float64", "_type": "Value"}


def test_hf_datasets_loads_the_output_with_the_new_features(example, tmp_path):
    datasets = pytest.importorskip("datasets")
    d, truth = example
    pipeline.run(cfg_for(d, tmp_path), rollouts=truth_rollouts(truth))
    ds = datasets.Dataset.from_parquet(str(tmp_path / "curriculum_bucket_a.parquet"))
    assert "phase1_ndcg" in ds.features["extra_info"]
    assert len(ds) and ds[0]["extra_info"]["phase1_bucket"] == "A"


def test_values_rows_and_order(example, tmp_path):
    d, truth = example
    pipeline.run(cfg_for(d, tmp_path), rollouts=truth_rollouts(truth))
    a = pq.read_table(tmp_path / "curriculum_bucket_a.parquet").to_pylist()
    means = [r["extra_info"]["phase1_ndcg"] for r in a]
    assert means == sorted(means, reverse=True) and all(0.1 <= m <= 0.7 for m in means)
    pooled = truth.pooled_mean_ndcg()
    for r in a:
        assert r["extra_info"]["phase1_ndcg"] == pytest.approx(pooled[r["id"]], abs=1e-12)
    src = {r["id"]: r for r in pq.read_table(d / "slidevqa_train_example.parquet").to_pylist()}
    for r in a:   # every original value is carried over untouched
        orig = src[r["id"]]
        assert {k: v for k, v in r.items() if k != "extra_info"} == {k: v for k, v in orig.items() if k != "extra_info"}
        assert {k: r["extra_info"][k] for k in orig["extra_info"]} == orig["extra_info"]
    # every dataset row is in exactly one bucket file
    man = json.loads((tmp_path / "manifest.json").read_text())
    seen = []
    for bucket, fname in man["files"].items():
        if bucket != "prompt_stats":
            seen += pq.read_table(tmp_path / fname, columns=["id"]).column("id").to_pylist()
    assert sorted(seen) == sorted(src) and sum(man["buckets"].values()) == len(src)
    assert man["outputs"]["curriculum_bucket_a.parquet"]["rows"] == len(a)


def test_rerun_is_byte_identical(example, tmp_path):
    d, truth = example
    pipeline.run(cfg_for(d, tmp_path / "one"), rollouts=truth_rollouts(truth))
    pipeline.run(cfg_for(d, tmp_path / "two"), rollouts=truth_rollouts(truth))
    pipeline.run(cfg_for(d, tmp_path / "two"), rollouts=truth_rollouts(truth))
    one, two = snapshot(tmp_path / "one"), snapshot(tmp_path / "two")
    assert one == two and "manifest.json" in one and "prompt_stats.parquet" in one


def test_failure_while_writing_leaves_previous_outputs_intact(example, tmp_path, monkeypatch):
    d, truth = example
    pipeline.run(cfg_for(d, tmp_path), rollouts=truth_rollouts(truth))
    before = snapshot(tmp_path)
    calls = []

    def failing(table, path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        pq.write_table(table, str(path), **write.WRITE_OPTIONS)

    monkeypatch.setattr(write, "write_parquet", failing)
    with pytest.raises(InputError) as err:
        pipeline.run(cfg_for(d, tmp_path, theta1=0.3, sort="random"), rollouts=truth_rollouts(truth))
    assert "No space left" in str(err.value) and str(tmp_path) in str(err.value)
    assert snapshot(tmp_path) == before          # nothing replaced, no temp file left behind
    assert len(generations(tmp_path)) == 1       # the failed generation was removed


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {helpers!r})
    from engine_helpers import make_cfg, truth_rollouts
    from ddai.curriculum import pipeline, write
    from ddai.examples.generate import write_example_set
    import tempfile
    truth = write_example_set(tempfile.mkdtemp(), 240, seed=11, shapes=("steps_json",), response_bytes=50,
                              bad_score_fraction=0.05, write_truth=False)
    real = write.write_parquet
    n = [0]
    def killing(table, path):
        real(table, path)
        n[0] += 1
        if n[0] == 3:
            os.kill(os.getpid(), signal.SIGKILL)   # killed mid-way through writing the outputs
    write.write_parquet = killing
    c = make_cfg(dataset={dataset!r}, phase1_log={log!r}, out_dir={out!r}, train_batch_size=16, theta1=0.3)
    pipeline.run(c, rollouts=truth_rollouts(truth))
""")


def test_killed_process_leaves_previous_outputs_intact(example, tmp_path):
    d, truth = example
    pipeline.run(cfg_for(d, tmp_path), rollouts=truth_rollouts(truth))
    before = snapshot(tmp_path)
    script = KILL_SCRIPT.format(helpers=str(Path(__file__).parent), dataset=str(d / "slidevqa_train_example.parquet"),
                                log=str(d / "gspo_phase1.json"), out=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    assert snapshot(tmp_path) == before                     # every fixed name: the old bytes
    assert len(generations(tmp_path)) == 2                  # the dead run's unfinished generation
    # the next run removes the dead run's generation and succeeds
    pipeline.run(cfg_for(d, tmp_path), rollouts=truth_rollouts(truth))
    assert snapshot(tmp_path) == before and len(generations(tmp_path)) == 1


def test_existing_phase1_fields_are_replaced_not_duplicated(example, tmp_path):
    d, truth = example
    pipeline.run(cfg_for(d, tmp_path / "first"), rollouts=truth_rollouts(truth))
    first = tmp_path / "first" / "curriculum_bucket_a.parquet"
    again = cfg_for(d, tmp_path / "second")
    again.dataset = str(first)
    pipeline.run(again, rollouts=truth_rollouts(truth))
    assert pq.read_schema(tmp_path / "second" / "curriculum_bucket_a.parquet") == pq.read_schema(first)


def test_build_table_handles_empty_selection(example):
    d, _ = example
    table = pq.read_table(d / "slidevqa_train_example.parquet")
    empty = write.build_table(table, [], [])
    assert empty.num_rows == 0 and empty.schema == write.output_schema(table.schema)
    assert isinstance(empty.column("extra_info"), pa.ChunkedArray)
