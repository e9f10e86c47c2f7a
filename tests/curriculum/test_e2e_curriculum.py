"""End to end through ``python -m ddai.launch`` (subprocess, real reader, real parquet)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from engine_helpers import make_cfg, run_launch  # noqa: E402

from ddai.curriculum import pipeline
from ddai.examples.generate import write_example_set

DATASET = "slidevqa_train_example.parquet"


def summary_line(stdout: str) -> dict:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    assert lines, stdout
    return json.loads(lines[-1])


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    d = tmp_path_factory.mktemp("shapes")
    truth = write_example_set(d, 300, seed=21, shapes=("steps_json", "jsonl", "events", "parquet_log"),
                              response_bytes=400, bad_score_fraction=0.03, repeat_fraction=0.15)
    return d, truth


def test_no_arguments_buckets_the_bundled_example(tmp_path):
    proc = run_launch(cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    s = summary_line(proc.stdout)
    assert s["buckets"]["A"] > 0 and s["buckets"]["B"] > 0 and s["buckets"]["unmatched"] > 0
    out = Path(s["out_dir"])
    assert out.is_relative_to(tmp_path / "outputs") and (out / "manifest.json").is_file()
    assert (out / "curriculum_bucket_a.parquet").is_file() and (out / "prompt_stats.parquet").is_file()
    assert "bucket" in proc.stderr and "Traceback" not in proc.stderr
    man = json.loads((out / "manifest.json").read_text())
    assert man["inputs"][0]["format"] == "steps_json" and len(man["inputs"][0]["sha256"]) == 64
    assert man["read"]["records"] > 0


@pytest.mark.parametrize("log, fmt", [("gspo_phase1.json", "steps_json"), ("gspo_phase1.jsonl", "jsonl"),
                                      ("unified_events.jsonl", "events"), ("gspo_phase1_log.parquet", "parquet")])
def test_every_log_shape_gives_the_true_pooled_means(shapes, tmp_path, log, fmt):
    d, truth = shapes
    out = tmp_path / "out"
    proc = run_launch(f"curriculum.phase1_log={d / log}", f"curriculum.dataset={d / DATASET}",
                      f"curriculum.out_dir={out}", "curriculum.train_batch_size=8", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    man = json.loads((out / "manifest.json").read_text())
    assert man["inputs"][0]["format"] == fmt
    assert man["match"]["ambiguous_groups"] == 0
    assert man["match"]["groups_without_row"] == sum(g.dataset_id is None for g in truth.groups)
    assert man["match"]["matched_rows"] == len(truth.groups_by_dataset_id())
    pooled = truth.pooled_mean_ndcg()
    stats = pq.read_table(out / "prompt_stats.parquet").to_pylist()
    by_id = {r["dataset_id"]: r for r in stats if r["dataset_id"]}
    for did, mean in pooled.items():
        row = by_id[did]
        if mean is None:
            assert row["bucket"] == "no_score" and row["n"] == 0
        else:
            assert row["mean"] == pytest.approx(mean, abs=1e-12)
            t = 0.1 <= mean <= 0.7
            assert (row["bucket"] == "A") == t
    assert man["score_stats"]["invalid_scores"] + man["score_stats"]["missing_scores"] > 0


def test_directory_of_logs_and_rerun_byte_identical(shapes, tmp_path):
    d, _ = shapes
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "gspo_phase1.jsonl").write_bytes((d / "gspo_phase1.jsonl").read_bytes())
    args = [f"curriculum.phase1_log={logs}", f"curriculum.dataset={d / DATASET}",
            f"curriculum.out_dir={tmp_path / 'out'}", "curriculum.train_batch_size=8",
            "curriculum.sort=interleave", "curriculum.remainder=pad"]
    first = run_launch(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    files1 = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if p.is_file()}
    second = run_launch(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    files2 = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir() if p.is_file()}
    assert files1 == files2
    man = json.loads(files1["manifest.json"])
    assert man["batch"]["rows_written"] % 8 == 0 and man["batch"]["dropped_ids"] == []


def test_hydra_cfg_help_and_multirun_still_work(shapes, tmp_path):
    d, _ = shapes
    cfg = run_launch("--cfg", "job", cwd=tmp_path)
    assert cfg.returncode == 0 and "theta_easy: 0.7" in cfg.stdout and "phase1_log:" in cfg.stdout
    helptext = run_launch("--help", cwd=tmp_path)
    assert helptext.returncode == 0 and "curriculum" in helptext.stdout
    multi = run_launch("-m", "curriculum.theta1=0.05,0.2", f"curriculum.phase1_log={d / 'gspo_phase1.json'}",
                       f"curriculum.dataset={d / DATASET}", "curriculum.allow_empty_train=true", cwd=tmp_path)
    assert multi.returncode == 0, multi.stderr
    lines = [json.loads(ln) for ln in multi.stdout.splitlines() if ln.startswith('{"out_dir"')]
    assert len(lines) == 2 and lines[0]["out_dir"] != lines[1]["out_dir"]
    a = [ln["buckets"]["A"] for ln in lines]
    assert a[0] > a[1]          # a higher θ1 moves prompts from A to 0
    for ln in lines:
        man = json.loads(Path(ln["manifest"]).read_text())
        assert man["thresholds"]["theta1"] in (0.05, 0.2)


# --- every rule, sort and duplicate policy through the real reader (in-process, fast) -----------


def run_inprocess(d: Path, out: Path, **kw) -> tuple[dict, dict[str, list[dict]]]:
    c = make_cfg(phase1_log=str(d / "gspo_phase1.json"), dataset=str(d / DATASET), out_dir=str(out),
                 train_batch_size=8, allow_empty_train=True, **kw)
    pipeline.run(c)
    man = json.loads((out / "manifest.json").read_text())
    tables = {b: pq.read_table(out / f).to_pylist() for b, f in man["files"].items() if b != "prompt_stats"}
    return man, tables


@pytest.mark.parametrize("overrides", [
    {"rule": "spread"},
    {"rule": "pass_rate", "pass_rate": {"tau": 0.5, "p_lo": 0.2, "p_hi": 0.8}},
    {"rule": "quantile", "quantile": {"n": 4, "names": ["hardest", "hard", "easy", "easiest"]}},
    {"rule": "quantile", "quantile": {"edges": [0.3, 0.7], "names": ["low", "mid", "high"], "train": "mid"}},
    {"score": "judge"},
    {"score": "final", "match": "question"},
    {"match": "id"},
])
def test_rules_scores_and_matches_partition_the_dataset(shapes, tmp_path, overrides):
    d, truth = shapes
    man, tables = run_inprocess(d, tmp_path, **overrides)
    ids = [r["id"] for rows in tables.values() for r in rows]
    assert sorted(ids) == sorted(r.id for r in truth.rows)            # every row exactly once
    assert {b: len(rows) for b, rows in tables.items()} == man["buckets"]
    train = tables[man["train_bucket"]]
    means = [r["extra_info"]["phase1_mean"] for r in train]
    assert means == sorted(means, reverse=True)
    for b, rows in tables.items():
        for r in rows:
            assert r["extra_info"]["phase1_bucket"] == b
    if overrides.get("match") == "id":   # the step-keyed log carries no dataset ids
        assert man["buckets"]["unmatched"] == len(truth.rows)
    if "score" in overrides:
        assert all(r["extra_info"]["phase1_score_field"] == overrides["score"] for r in train)


@pytest.mark.parametrize("sort", ["hard_to_easy", "random", "frontier", "original", "interleave"])
def test_sorts_through_the_pipeline(shapes, tmp_path, sort):
    d, _ = shapes
    man, tables = run_inprocess(d, tmp_path / "x", sort=sort, seed=3)
    train = tables["A"]
    assert man["sort"] == sort and len(train) == man["buckets"]["A"]
    ei = [r["extra_info"] for r in train]
    if sort == "hard_to_easy":
        assert [e["phase1_mean"] for e in ei] == sorted(e["phase1_mean"] for e in ei)
    if sort == "original":
        assert [e["index"] for e in ei] == sorted(e["index"] for e in ei)
    if sort == "frontier":
        dist = [abs(e["phase1_pass_rate"] - 0.5) for e in ei]
        assert dist == sorted(dist)
    _, again = run_inprocess(d, tmp_path / "y", sort=sort, seed=3)
    assert [r["id"] for r in again["A"]] == [r["id"] for r in train]


def test_duplicate_policies_follow_the_steps(shapes, tmp_path):
    d, truth = shapes
    by_id = truth.groups_by_dataset_id()
    several = {i: gs for i, gs in by_id.items() if len(gs) > 1}
    assert several
    results = {}
    for policy in ("pool", "latest", "first"):
        man, _ = run_inprocess(d, tmp_path / policy, duplicates=policy)
        assert man["duplicates"]["rows_with_several_groups"] == len(several)
        stats = pq.read_table(tmp_path / policy / "prompt_stats.parquet").to_pylist()
        results[policy] = {r["dataset_id"]: r for r in stats if r["dataset_id"]}
    for did, gs in several.items():
        ordered = sorted(gs, key=lambda g: g.step)
        for policy, pick in (("latest", ordered[-1:]), ("first", ordered[:1]), ("pool", ordered)):
            vals = [v for g in pick for v in g.usable_ndcg()]
            row = results[policy][did]
            assert row["n_groups"] == len(pick) and row["steps"] == [g.step for g in pick]
            assert row["mean"] == (pytest.approx(sum(vals) / len(vals), abs=1e-12) if vals else None)


def test_yaml_defaults_equal_the_schema_and_validate_works_on_a_composed_config():
    """conf/curriculum/default.yaml and the dataclass must not drift; sweeps validate composed configs."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from ddai.curriculum.config import CurriculumConfig
    from ddai.errors import ConfigError
    from ddai.launch.__main__ import CONF_DIR
    from ddai.launch.tasks import curriculum as task

    with initialize_config_dir(CONF_DIR, version_base="1.3"):
        cfg = compose("config")
        bad = compose("config", overrides=["curriculum.theta1=0.9"])
    yaml_values = OmegaConf.to_container(cfg.curriculum, resolve=False)
    schema_values = OmegaConf.to_container(OmegaConf.structured(CurriculumConfig), resolve=False)
    # conf/config.yaml points out_dir at ${ddai_job_dir:} (shown resolved by --cfg job --resolve)
    assert yaml_values.pop("out_dir") == "${ddai_job_dir:}/curriculum"
    schema_values.pop("out_dir")
    assert yaml_values == schema_values
    task.validate(cfg)                       # out_dir (${hydra:...}) unresolvable here: skipped
    assert Path(cfg.curriculum.dataset).is_file() and Path(cfg.curriculum.phase1_log).is_file()
    with pytest.raises(ConfigError) as err:
        task.validate(bad)
    assert err.value.where == "curriculum.theta1"
