"""The fast (vectorized, columnar) engine paths give exactly what the plain per-prompt code gives.

WHY: the engine summarizes all prompts at once with numpy and builds its tables column-wise;
``stats.summarize`` (one prompt at a time, plain Python) is the readable definition. These
tests hold the fast paths to that definition bit for bit, on random values and on a whole
run, and check that a run clears the stale temporary files a killed run left behind.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from engine_helpers import make_cfg  # noqa: E402

from ddai.curriculum import duplicates, pipeline, write
from ddai.curriculum.dataset import load_dataset
from ddai.curriculum.match import DatasetIndex, match_groups, normalize_question
from ddai.curriculum.read import iter_rollouts
from ddai.curriculum.stats import (
    SCORE_FIELDS,
    collect_groups,
    pooled,
    summarize,
    summarize_segments,
)
from ddai.examples.generate import write_example_set

DATASET = "slidevqa_train_example.parquet"
COUNT_AT = (0.1, 0.5, 0.7)

# raw score values as logs carry them: usable floats, exact 0/1, ints, and every unusable kind
raw_value = st.one_of(
    st.floats(min_value=0.0, max_value=1.0),
    st.sampled_from([0.0, 1.0, 0.1, 0.5, 0.7, 0, 1, None, True, False, "0.5", float("nan"), float("inf"),
                     -0.25, 1.5, 2]),
    st.floats(allow_nan=True, allow_infinity=True),
)


def _same(a, b) -> bool:
    """Equal values, with NaN equal to NaN and the sign of zero compared too (bit identity)."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return a == b and type(a) is type(b)


def _assert_summary_equal(got, ref) -> None:
    for k in ("n", "n_missing", "n_invalid", "mean", "std", "min", "max", "pass_rate"):
        assert _same(getattr(got, k), getattr(ref, k)), (k, got, ref)
    assert got.counts_at == ref.counts_at


@settings(max_examples=200, deadline=None)
@given(segments=st.lists(st.lists(raw_value, max_size=40), max_size=25), zero=st.booleans(),
       tau=st.sampled_from([0.0, 0.3, 0.5, 1.0]))
def test_summarize_segments_is_summarize_bit_for_bit(segments, zero, tau):
    flat = [v for seg in segments for v in seg]
    cols = summarize_segments(flat, [len(s) for s in segments], count_at=COUNT_AT, tau=tau, missing_as_zero=zero)
    assert len(cols) == len(segments)
    bulk = cols.summaries()
    for i, seg in enumerate(segments):
        ref = summarize(seg, count_at=COUNT_AT, tau=tau, missing_as_zero=zero)
        _assert_summary_equal(bulk[i], ref)
        _assert_summary_equal(cols.summary(i), ref)


def test_long_segments_are_summed_left_to_right():
    # values whose sum depends on the order of additions; one list long enough for the scalar path
    vals = [0.1, 0.7, 0.3, 1e-9, 0.9999999, 0.2] * 150
    lists = [vals[:5], vals[:9], vals, vals[:700], []]
    cols = summarize_segments([v for seg in lists for v in seg], [len(s) for s in lists], count_at=COUNT_AT)
    for i, seg in enumerate(lists):
        _assert_summary_equal(cols.summary(i), summarize(seg, count_at=COUNT_AT))


def test_signed_zeros_give_the_minimum_and_maximum_summarize_gives():
    """0.0 == -0.0, so which zero is the minimum or maximum is an ordering question; several
    segments hold both, in both orders, beside segments that hold neither."""
    lists = [[0.0, -0.0, 0.5], [-0.0, 0.0], [0.3, 0.7], [-0.0], [0.0, 1.0, -0.0, 0.0], [], [0.2, -0.0]]
    cols = summarize_segments([v for seg in lists for v in seg], [len(s) for s in lists], count_at=COUNT_AT)
    for i, seg in enumerate(lists):
        _assert_summary_equal(cols.summary(i), summarize(seg, count_at=COUNT_AT))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("perf_eq")
    write_example_set(d, 150, seed=11, shapes=("steps_json",), response_bytes=100, write_truth=False)
    return d


@pytest.mark.parametrize("opts", [
    {},
    {"duplicates": "latest", "score": "judge", "missing_score": "zero", "rule": "spread"},
    {"duplicates": "first", "match": "question", "score": "final", "remainder": "pad"},
])
def test_run_tables_match_the_per_prompt_definition(data, tmp_path, opts):
    """prompt_stats.parquet and the phase1_* fields equal summarize() of each row's kept groups."""
    c = make_cfg(phase1_log=str(data / "gspo_phase1.json"), dataset=str(data / DATASET), out_dir=str(tmp_path),
                 train_batch_size=4, allow_empty_train=True, **opts)
    pipeline.run(c)
    c = pipeline._namespace(pipeline.plain_config(c))

    # the reference: plain per-prompt code over the same stream
    ds = load_dataset(c.dataset)
    index = DatasetIndex.build(ds.ids, ds.questions)
    groups = collect_groups(iter_rollouts(c.phase1_log, progress=False), normalize_question)
    matched = match_groups(groups, index, c.match)
    kept, _ = duplicates.select(matched.row_groups, c.duplicates)
    zero = c.missing_score == "zero"

    def ref(gs, name):
        return summarize(list(pooled(gs, name)), count_at=COUNT_AT, tau=float(c.pass_rate.tau), missing_as_zero=zero)

    ps = pq.read_table(tmp_path / "prompt_stats.parquet").to_pylist()
    by_row = {r["row"]: r for r in ps if r["row"] is not None}
    assert len(by_row) == len(ds.ids)
    checked = 0
    for row, rec in by_row.items():
        gs = kept.get(row)
        if gs is None:
            assert rec["n"] is None and rec["mean"] is None and rec["score_field"] is None
            assert rec["n_groups"] == 0 and rec["groups"] == []
            continue
        s = ref(gs, c.score)
        for k in ("n", "n_missing", "n_invalid", "n_unusable", "mean", "std", "min", "max", "pass_rate"):
            assert _same(rec[k], getattr(s, k)), (row, k)
        for t, cnt in s.counts_at:
            assert rec[f"n_ge_{t:g}"] == cnt
        for name in SCORE_FIELDS:
            assert _same(rec[f"{name}_mean"], ref(gs, name).mean)
        assert rec["groups"] == [g.group for g in gs] and rec["steps"] == [g.step for g in gs]
        assert rec["n_rollouts"] == sum(g.n_rollouts for g in gs)
        checked += 1
    assert checked > 50

    log_only = [r for r in ps if r["row"] is None]
    assert len(log_only) == len(matched.no_row) + len(matched.ambiguous)
    by_group = {g.group: g for g in groups}
    for rec in log_only:
        (gid,) = rec["groups"]
        assert _same(rec["mean"], summarize(by_group[gid].scores[c.score], count_at=COUNT_AT,
                                            tau=float(c.pass_rate.tau), missing_as_zero=zero).mean)

    man = json.loads((tmp_path / "manifest.json").read_text())
    for name, fname in man["files"].items():
        if name == "prompt_stats":
            continue
        t = pq.read_table(tmp_path / fname)
        for did, rec in zip(t.column("id").to_pylist(), t.column("extra_info").to_pylist()):
            gs = kept.get(index.by_id[did])
            if gs is None:
                assert rec["phase1_n"] is None and rec["phase1_score_field"] is None
                continue
            s = ref(gs, c.score)
            assert _same(rec["phase1_mean"], s.mean) and _same(rec["phase1_std"], s.std)
            assert _same(rec["phase1_min"], s.min) and _same(rec["phase1_max"], s.max)
            assert _same(rec["phase1_pass_rate"], s.pass_rate)
            assert rec["phase1_n"] == s.n and rec["phase1_n_unusable"] == s.n_unusable
            assert rec["phase1_groups"] == len(gs) and rec["phase1_score_field"] == c.score
            assert _same(rec["phase1_ndcg"], ref(gs, "ndcg").mean)


def test_stale_temp_files_of_a_killed_run_are_removed_and_nothing_else(data, tmp_path):
    out = tmp_path / "out"
    out.mkdir()

    def stale(name: str) -> Path:
        fd, p = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out)  # what atomic_path leaves
        os.write(fd, b"half-written")
        os.close(fd)
        return Path(p)

    ours = [stale("manifest.json"), stale("prompt_stats.parquet"), stale("curriculum_bucket_a.parquet"),
            stale("unmatched.parquet")]
    keep = [stale("someone_elses.parquet"), stale("curriculum_bucket_zz.parquet"),
            out / ".manifest.json.tmp", out / ".manifest.json.abcdefgh.tmp.bak", out / "manifest.json.abcdefgh.tmp",
            out / ".manifest.json.ABCDEFGH.tmp", out / "notes.txt"]
    for p in keep[2:]:
        p.write_text("keep me")
    (out / ".prompt_stats.parquet.dir12345.tmp").mkdir()  # a directory of that shape is left alone too
    keep.append(out / ".prompt_stats.parquet.dir12345.tmp")

    c = make_cfg(phase1_log=str(data / "gspo_phase1.json"), dataset=str(data / DATASET), out_dir=str(out),
                 train_batch_size=4)
    pipeline.run(c)
    assert not any(p.exists() for p in ours)
    assert all(p.exists() for p in keep)
    left = sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp") and p not in keep)
    assert left == []
    assert json.loads((out / "manifest.json").read_text())["outputs"]


def test_stale_temp_files_matches_only_the_exact_names(tmp_path):
    names = ["a.parquet", "manifest.json"]
    for n in (".a.parquet.x1y2z3_4.tmp", ".manifest.json.abcdefgh.tmp", ".a.parquet.short.tmp",
              ".a.parquet.abcdefghi.tmp", ".b.parquet.abcdefgh.tmp", ".xa.parquet.abcdefgh.tmp"):
        (tmp_path / n).write_text("x")
    found = sorted(p.name for p in write.stale_temp_files(tmp_path, names))
    assert found == [".a.parquet.x1y2z3_4.tmp", ".manifest.json.abcdefgh.tmp"]
    assert write.stale_temp_files(tmp_path / "missing", names) == []


def test_dataset_table_is_read_lazily_and_equals_read_table(data):
    ds = load_dataset(data / DATASET)
    assert ds._table is None                      # matching needs only ids and questions
    assert ds.table.equals(pq.read_table(data / DATASET), check_metadata=True)
    assert ds.table.schema.metadata == pq.read_table(data / DATASET).schema.metadata
