"""A dataset verl cannot train on is refused before any log is read: one line, file and columns."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from engine_helpers import make_cfg, run_launch  # noqa: E402

from ddai.curriculum import pipeline
from ddai.curriculum.dataset import check_training_columns
from ddai.errors import InputError
from ddai.examples import EXAMPLE_DATASET, EXAMPLE_PHASE1_LOG


def mutated(tmp_path: Path, mutate) -> Path:
    path = tmp_path / "ds.parquet"
    pq.write_table(mutate(pq.read_table(EXAMPLE_DATASET)), path)
    return path


@pytest.mark.parametrize("drop", [["prompt"], ["data_source"], ["reward_model"], ["prompt", "reward_model"]])
def test_missing_columns_are_named_with_the_file(tmp_path, drop):
    path = mutated(tmp_path, lambda t: t.drop_columns(drop))
    c = make_cfg(phase1_log=str(EXAMPLE_PHASE1_LOG), dataset=str(path), out_dir=str(tmp_path / "out"))
    with pytest.raises(InputError) as err:
        pipeline.run(c)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg
    for col in drop:
        assert f"'{col}'" in msg
    assert not any((tmp_path / "out").iterdir())          # nothing written


@pytest.mark.parametrize("col, value, needle", [
    ("prompt", pa.array(["Question: x?"]), "column 'prompt' has type string"),
    ("reward_model", pa.array([{"answer": "a"}]), "column 'reward_model' has type struct<answer: string>"),
    ("data_source", pa.array([3], pa.int64()), "column 'data_source' has type int64"),
])
def test_wrong_types_are_refused(tmp_path, col, value, needle):
    t = pq.read_table(EXAMPLE_DATASET).slice(0, 1)
    path = mutated(tmp_path, lambda _: t.set_column(t.schema.get_field_index(col), col, value))
    with pytest.raises(InputError, match=needle):
        check_training_columns(path)


def test_the_bundled_dataset_passes():
    check_training_columns(EXAMPLE_DATASET)


def test_cli_dataset_without_prompt_exits_2_with_one_line(tmp_path):
    path = mutated(tmp_path, lambda t: t.drop_columns(["prompt"]))
    proc = run_launch(f"curriculum.dataset={path}", f"curriculum.out_dir={tmp_path / 'out'}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if "error" in ln.lower()]
    assert len(errors) == 1 and str(path) in errors[0] and "'prompt'" in errors[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
