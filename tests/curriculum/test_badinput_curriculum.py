"""Bad input: one clear message (what, where, expected), non-zero exit, no traceback."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from engine_helpers import make_cfg, run_launch  # noqa: E402

from ddai.curriculum import pipeline
from ddai.errors import ConfigError, DdaiError, InputError
from ddai.examples.generate import write_example_set
from ddai.launch.tasks import curriculum as task

DATASET = "slidevqa_train_example.parquet"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    write_example_set(d, 200, seed=4, shapes=("steps_json", "jsonl"), response_bytes=200, write_truth=False)
    return d


def cfg(data: Path, out: Path, **kw):
    kw.setdefault("phase1_log", str(data / "gspo_phase1.json"))
    kw.setdefault("dataset", str(data / DATASET))
    kw.setdefault("train_batch_size", 8)
    return make_cfg(out_dir=str(out), **kw)


def assert_clean_failure(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("ddai: error:")]
    assert len(errors) == 1, proc.stderr
    for n in needles:
        assert n in errors[0], errors[0]


def test_cli_truncated_document_names_the_file(data, tmp_path):
    bad = tmp_path / "cut.json"
    raw = (data / "gspo_phase1.json").read_bytes()
    bad.write_bytes(raw[: len(raw) // 2])
    proc = run_launch(f"curriculum.phase1_log={bad}", f"curriculum.dataset={data / DATASET}",
                      f"curriculum.out_dir={tmp_path / 'out'}", cwd=tmp_path)
    assert_clean_failure(proc, str(bad), "truncated")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_cli_impossible_thresholds_fail_before_reading(tmp_path):
    proc = run_launch("curriculum.theta1=0.8", "curriculum.phase1_log=/does/not/exist", cwd=tmp_path)
    assert_clean_failure(proc, "curriculum.theta1", "theta_easy")


def test_cli_dataset_without_id(data, tmp_path):
    t = pq.read_table(data / DATASET).drop_columns(["id"])
    pq.write_table(t, tmp_path / "noid.parquet")
    proc = run_launch(f"curriculum.phase1_log={data / 'gspo_phase1.json'}",
                      f"curriculum.dataset={tmp_path / 'noid.parquet'}", f"curriculum.out_dir={tmp_path / 'out'}",
                      cwd=tmp_path)
    assert_clean_failure(proc, "noid.parquet", "'id'")


def test_cli_wrong_type_fails_at_composition(tmp_path):
    proc = run_launch("curriculum.theta1=abc", cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "theta1" in proc.stderr


def test_malformed_line_skipped_and_counted_or_strict_failure(data, tmp_path):
    lines = (data / "gspo_phase1.jsonl").read_text().splitlines(keepends=True)
    lines.insert(3, '{"uid": "broken", "ndcg": 0.5,\n')
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(lines))
    pipeline.run(cfg(data, tmp_path / "out", phase1_log=str(bad)))
    man = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert man["read"]["malformed"] == 1
    assert "4" in json.dumps(man["read"]["malformed_examples"])
    with pytest.raises(InputError) as err:
        pipeline.run(cfg(data, tmp_path / "strict", phase1_log=str(bad), strict=True))
    assert str(bad) in str(err.value) and "4" in str(err.value)


@pytest.mark.parametrize("mutate, needle", [
    (lambda t: t.drop_columns(["extra_info"]), "extra_info"),
    (lambda t: t.set_column(0, "id", pa.array([None] * t.num_rows, pa.string())), "empty id"),
    (lambda t: t.set_column(0, "id", pa.array(["train_1"] * t.num_rows)), "appears in rows"),
])
def test_dataset_problems(data, tmp_path, mutate, needle):
    path = tmp_path / "ds.parquet"
    pq.write_table(mutate(pq.read_table(data / DATASET)), path)
    with pytest.raises(InputError) as err:
        pipeline.run(cfg(data, tmp_path / "out", dataset=str(path)))
    assert needle in str(err.value) and str(path) in str(err.value)


def test_dataset_not_parquet(data, tmp_path):
    path = tmp_path / "ds.parquet"
    path.write_text("id,question\n1,x\n")
    with pytest.raises(InputError) as err:
        pipeline.run(cfg(data, tmp_path / "out", dataset=str(path)))
    assert str(path) in str(err.value)


def test_empty_training_bucket_is_an_error_unless_allowed(data, tmp_path):
    with pytest.raises(InputError) as err:
        pipeline.run(cfg(data, tmp_path / "out", theta1=0.9991, theta_easy=0.9992))
    assert "empty" in str(err.value) and "allow_empty_train" in str(err.value)
    assert not (tmp_path / "out" / "manifest.json").exists()
    pipeline.run(cfg(data, tmp_path / "out", theta1=0.9991, theta_easy=0.9992, allow_empty_train=True))
    man = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert man["buckets"]["A"] == 0 and man["batch"]["steps_per_epoch"] == 0


def test_training_bucket_smaller_than_a_batch(data, tmp_path):
    with pytest.raises(InputError) as err:
        pipeline.run(cfg(data, tmp_path / "out", train_batch_size=100000))
    assert "train_batch_size" in str(err.value)
    pipeline.run(cfg(data, tmp_path / "out", train_batch_size=100000, remainder="pad"))


def test_out_dir_that_is_a_file_or_cannot_be_created(data, tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(InputError) as err:
        pipeline.run(cfg(data, f))
    assert str(f) in str(err.value) and "not a directory" in str(err.value)
    with pytest.raises(InputError) as err:
        pipeline.run(cfg(data, f / "sub"))
    assert "cannot create" in str(err.value)
    with pytest.raises(ConfigError):
        task.validate(cfg(data, f))


def test_validate_checks_inputs_without_reading(data, tmp_path):
    task.validate(cfg(data, tmp_path / "out"))
    with pytest.raises(ConfigError) as err:
        task.validate(cfg(data, tmp_path / "out", phase1_log=str(tmp_path / "missing.json")))
    assert err.value.where == "curriculum.phase1_log"
    with pytest.raises(ConfigError) as err:
        task.validate(cfg(data, tmp_path / "out", dataset=str(tmp_path)))
    assert err.value.where == "curriculum.dataset"
    with pytest.raises(ConfigError) as err:
        task.validate(cfg(data, tmp_path / "out", rule="quantile", quantile={"n": 3, "names": ["a"]}))
    assert err.value.where == "curriculum.quantile.names"


def test_log_directory_without_logs(data, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError) as err:
        pipeline.run(cfg(data, tmp_path / "out", phase1_log=str(tmp_path / "empty")))
    assert "no log files" in str(err.value)


def test_every_error_is_a_ddai_error():
    assert issubclass(InputError, DdaiError) and issubclass(ConfigError, DdaiError)


# --- issue 13: logs that are not logs -- one line naming the path, exit 2, nothing written ---------

def _cli_fails_naming(data: Path, tmp_path: Path, log: Path, *needles: str, extra: tuple[str, ...] = ()) -> None:
    proc = run_launch(f"curriculum.phase1_log={log}", f"curriculum.dataset={data / DATASET}",
                      f"curriculum.out_dir={tmp_path / 'out'}", f"hydra.run.dir={tmp_path / 'run'}", *extra,
                      cwd=tmp_path)
    assert_clean_failure(proc, str(log), *needles)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_unreadable_file_inside_a_log_directory(data, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.json").write_bytes((data / "gspo_phase1.json").read_bytes())
    broken = logs / "b.jsonl"
    broken.symlink_to(tmp_path / "gone.jsonl")        # a dangling link: the file cannot be opened
    _cli_fails_naming(data, tmp_path, logs, str(broken))


def test_fifo_as_the_log(data, tmp_path):
    fifo = tmp_path / "log.jsonl"
    os.mkfifo(fifo)
    _cli_fails_naming(data, tmp_path, fifo, "FIFO")


def test_device_as_the_log(data, tmp_path):
    _cli_fails_naming(data, tmp_path, Path("/dev/zero"), "device")


def test_dataset_parquet_bytes_in_a_json_file(data, tmp_path):
    fake = tmp_path / "log.json"
    fake.write_bytes((data / DATASET).read_bytes())
    _cli_fails_naming(data, tmp_path, fake, "not a rollout log")


def test_garbage_parquet_as_the_log(data, tmp_path):
    bad = tmp_path / "log.parquet"
    bad.write_bytes(b"PAR1" + os.urandom(3000) + b"PAR1")
    _cli_fails_naming(data, tmp_path, bad, "parquet")


def test_format_parquet_on_a_json_log(data, tmp_path):
    _cli_fails_naming(data, tmp_path, data / "gspo_phase1.json", "parquet", extra=("curriculum.format=parquet",))


@pytest.mark.parametrize("allow_empty", [False, True])
def test_a_json_file_that_is_not_a_rollout_log(data, tmp_path, allow_empty):
    from ddai.examples import DATA_DIR

    truth = tmp_path / "ground_truth.json"
    truth.write_bytes((DATA_DIR / "ground_truth.json").read_bytes())
    extra = ("curriculum.allow_empty_train=true",) if allow_empty else ()
    _cli_fails_naming(data, tmp_path, truth, "holds no rollouts", extra=extra)
