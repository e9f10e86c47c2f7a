"""The next-round input sets of the users' follow-up plan (DDAI-47), exported for training.

WHY: after a Phase 2 run the next round trains on what is still hard. Per prompt, by its
judge scores in the Phase 2 log:
  fail       mean judge < ``fail`` (default 0.3) and still below it at the prompt's last
             appearance — the prompts whose judge score *stays* below the threshold
  success    mean judge ≥ ``success`` (default 0.7)
  potential  every other scored prompt (in between, or low on average but above the
             threshold by its last appearance)
Each set is written as parquet in the training schema: the prompt's row of the dataset
(joined by ``id``), unchanged, with ``extra_info.phase2_judge`` / ``phase2_ndcg`` /
``phase2_rollouts`` added — so verl and the users' scripts read it like any training file.
Rows are ordered easy → hard (mean judge descending, then id), like the curriculum's A.
Every file, and the manifest describing them, is written atomically; re-runs are
byte-identical.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import ddai
from ddai.atomic import atomic_path, atomic_write_text
from ddai.errors import ConfigError, InputError

SETS = ("success", "potential", "fail")
ADDED = (("phase2_judge", "float64"), ("phase2_ndcg", "float64"), ("phase2_rollouts", "int64"))


def split_sets(prompts: pd.DataFrame, fail: float, success: float) -> dict[str, pd.DataFrame]:
    """Assign each scored prompt to success / potential / fail (see module doc)."""
    if not fail < success:
        raise ConfigError(f"--fail-below {fail} must be smaller than --success-from {success}",
                          where="next-round thresholds")
    d = prompts[np.isfinite(prompts["judge_mean"])]
    last = d["judge_last"].fillna(d["judge_mean"])
    is_fail = (d["judge_mean"] < fail) & (last < fail)
    is_success = d["judge_mean"] >= success
    out = {"success": d[is_success], "fail": d[is_fail & ~is_success]}
    out["potential"] = d[~is_success & ~is_fail]
    return {k: v.sort_values(["judge_mean", "prompt"], ascending=[False, True], kind="mergesort")
            for k, v in out.items()}


def next_round_block(prompts: pd.DataFrame, fail: float, success: float) -> dict[str, Any]:
    sets = split_sets(prompts, fail, success)
    return {
        "thresholds": {"fail_below": fail, "success_from": success},
        "counts": {k: len(sets[k]) for k in SETS},
        "unscored_prompts": int((~np.isfinite(prompts["judge_mean"])).sum()),
    }


def load_dataset(paths: list[Path]):
    """The training rows to join back to: one parquet or the union of a curriculum's buckets."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = []
    for p in paths:
        try:
            t = pq.read_table(p)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"cannot read dataset parquet: {exc}", where=str(p)) from None
        if "id" not in t.column_names or "extra_info" not in t.column_names:
            raise InputError("dataset has no 'id' / 'extra_info' column", where=str(p),
                             expected="the training schema (id, file_name, ..., extra_info)")
        tables.append(t)
    if not tables:
        raise InputError("no dataset to join the next-round sets to", where="--next-round",
                         expected="--dataset FILE.parquet or a curriculum directory among the inputs")
    base = tables[0]
    if len(tables) > 1:
        try:
            base = pa.concat_tables(tables, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise InputError(f"dataset files have different schemas: {exc}", where=str(paths[0])) from None
    ids = base.column("id").to_pylist()
    seen: dict[str, int] = {}
    for i, v in enumerate(ids):
        seen.setdefault(v, i)  # first row wins on duplicates (bucket files never overlap)
    return base, seen


def _with_phase2(table, rows: pd.DataFrame):
    """``table`` with the phase2_* fields appended to (or replaced in) ``extra_info``."""
    import pyarrow as pa

    ei = table.column("extra_info").combine_chunks()
    names = [ei.type.field(i).name for i in range(ei.type.num_fields)]
    new = {
        "phase2_judge": pa.array(rows["judge_mean"].to_numpy(dtype=float), pa.float64()),
        "phase2_ndcg": pa.array(rows["ndcg_mean"].to_numpy(dtype=float), pa.float64(),
                                from_pandas=True),
        "phase2_rollouts": pa.array(rows["n"].to_numpy(dtype=np.int64), pa.int64()),
    }
    fields, arrays = [], []
    for i, name in enumerate(names):
        if name in new:
            continue
        fields.append(ei.type.field(i))
        arrays.append(ei.field(i))
    for name, arr in new.items():
        fields.append(pa.field(name, arr.type))
        arrays.append(arr)
    mask = ei.is_null() if ei.null_count else None
    struct = pa.StructArray.from_arrays(arrays, fields=fields, mask=mask)
    idx = table.column_names.index("extra_info")
    out = table.set_column(idx, pa.field("extra_info", struct.type), struct)
    from ddai.curriculum.write import add_extra_info_features

    added = [(name, getattr(pa, dtype)()) for name, dtype in ADDED]
    return out.replace_schema_metadata(add_extra_info_features(table.schema.metadata, added))


def export(prompts: pd.DataFrame, dataset_paths: list[Path], out_dir: Path, *, fail: float, success: float,
           source_log: str) -> dict[str, Any]:
    """Write ``<out_dir>/{success,potential,fail}.parquet`` and ``manifest.json``."""
    import pyarrow.parquet as pq

    sets = split_sets(prompts, fail, success)
    base, index = load_dataset(dataset_paths)
    files: dict[str, Any] = {}
    missing_total = 0
    for name in SETS:
        rows = sets[name]
        present = rows[rows["prompt"].isin(index)]
        missing = rows.loc[~rows["prompt"].isin(index), "prompt"].tolist()
        missing_total += len(missing)
        take = [index[p] for p in present["prompt"]]
        import pyarrow as pa

        t = _with_phase2(base.take(pa.array(take, pa.int64())), present)
        fname = f"{name}.parquet"
        with atomic_path(out_dir / fname) as tmp:
            pq.write_table(t, tmp, compression="snappy")
        files[name] = {"file": fname, "rows": t.num_rows, "not_in_dataset": missing[:50],
                       "not_in_dataset_count": len(missing)}
    manifest = {
        "ddai_version": ddai.__version__,
        "kind": "next_round",
        "plan": "DDAI-47",
        "source_log": source_log,
        "dataset": [str(p) for p in dataset_paths],
        "rule": {"fail": "mean judge < fail_below and last-appearance judge < fail_below",
                 "success": "mean judge >= success_from", "potential": "every other scored prompt"},
        "thresholds": {"fail_below": fail, "success_from": success},
        "sort": "judge_mean descending, then id",
        "added_extra_info": [n for n, _ in ADDED],
        "sets": files,
        "not_in_dataset": missing_total,
    }
    atomic_write_text(out_dir / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return {"dir": str(out_dir), "files": {k: v["file"] for k, v in files.items()},
            "rows": {k: v["rows"] for k, v in files.items()}, "not_in_dataset": missing_total}
