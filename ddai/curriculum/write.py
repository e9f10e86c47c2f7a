"""Write bucket parquets with the input's exact schema plus ``phase1_*`` fields in extra_info.

WHY so strict: verl and the users' own scripts read these files expecting the training
set's nested schema; only fields appended at the end of ``extra_info`` are new (the HF
``huggingface`` schema metadata is updated to match, so ``datasets`` loads them too).
Writer options are fixed and nothing time-dependent is stored, so identical inputs give
byte-identical files.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from ddai.curriculum import arrow_build

# The fields added to extra_info, in this order (appended after the input's own fields).
PHASE1_FIELDS: tuple[tuple[str, pa.DataType], ...] = (
    ("phase1_ndcg", pa.float64()),        # mean NDCG of the kept rollouts (reference name)
    ("phase1_mean", pa.float64()),        # mean of the bucketing score (= phase1_ndcg if score=ndcg)
    ("phase1_std", pa.float64()),
    ("phase1_min", pa.float64()),
    ("phase1_max", pa.float64()),
    ("phase1_pass_rate", pa.float64()),
    ("phase1_n", pa.int64()),
    ("phase1_n_unusable", pa.int64()),
    ("phase1_groups", pa.int64()),
    ("phase1_score_field", pa.string()),
    ("phase1_bucket", pa.string()),
)

WRITE_OPTIONS: dict[str, Any] = dict(
    compression="snappy", use_dictionary=True, write_statistics=True, version="2.6",
    data_page_version="1.0", row_group_size=1 << 20, store_schema=True,
)


def bucket_filename(bucket: str) -> str:
    """File name of a bucket: the users' existing names for A/B/0, same pattern for others."""
    if bucket in ("unmatched", "ambiguous"):
        return f"{bucket}.parquet"
    return f"curriculum_bucket_{bucket.lower()}.parquet"


@dataclass
class RowFields:
    """The phase1_* values of one dataset row (None → null)."""

    ndcg: float | None = None
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    pass_rate: float | None = None
    n: int | None = None
    n_unusable: int | None = None
    groups: int | None = None
    score_field: str | None = None
    bucket: str | None = None

    def values(self) -> tuple:
        return (self.ndcg, self.mean, self.std, self.min, self.max, self.pass_rate, self.n,
                self.n_unusable, self.groups, self.score_field, self.bucket)


def _hf_type(t: pa.DataType) -> dict:
    name = {pa.float64(): "float64", pa.int64(): "int64", pa.string(): "string"}[t]
    return {"dtype": name, "_type": "Value"}


def add_extra_info_features(meta: dict[bytes, bytes] | None,
                            fields: Sequence[tuple[str, pa.DataType]]) -> dict[bytes, bytes] | None:
    """Describe fields appended to ``extra_info`` in the ``huggingface`` metadata, if present.

    HF datasets rebuilds its features from this description: a field missing there would
    be dropped or mistyped by ``datasets.load_dataset`` on our outputs.
    """
    if not meta or b"huggingface" not in meta:
        return meta
    try:
        hf = json.loads(meta[b"huggingface"])
        ei = hf["info"]["features"]["extra_info"]
    except (ValueError, KeyError, TypeError):
        return meta  # not the layout we know: leave it exactly as it was
    if not isinstance(ei, dict) or "_type" in ei:
        return meta
    for name, t in fields:
        ei[name] = _hf_type(t)
    out = dict(meta)
    out[b"huggingface"] = json.dumps(hf).encode("utf-8")
    return out


def output_schema(schema: pa.Schema) -> pa.Schema:
    """The input schema with the phase1_* fields in extra_info (replaced in place if present)."""
    idx = schema.get_field_index("extra_info")
    old = schema.field(idx)
    new_names = {n for n, _ in PHASE1_FIELDS}
    fields = [old.type.field(i) for i in range(old.type.num_fields)]
    added = dict(PHASE1_FIELDS)
    merged = [pa.field(f.name, added[f.name]) if f.name in new_names else f for f in fields]
    present = {f.name for f in fields}
    merged += [pa.field(n, t) for n, t in PHASE1_FIELDS if n not in present]
    new_field = pa.field("extra_info", pa.struct(merged), nullable=old.nullable, metadata=old.metadata)
    out = schema.set(idx, new_field)
    return out.with_metadata(add_extra_info_features(schema.metadata, PHASE1_FIELDS))


def build_table(table: pa.Table, rows: Sequence[int], fields: Sequence[RowFields]) -> pa.Table:
    """Rows ``rows`` of ``table`` (in that order, repeats allowed) with phase1_* values added."""
    columns = list(zip(*(f.values() for f in fields))) if fields else [()] * len(PHASE1_FIELDS)
    added = {name: pa.array(list(col), type=t) for (name, t), col in zip(PHASE1_FIELDS, columns)}
    return build_table_arrays(table, rows, added)


def build_table_arrays(table: pa.Table, rows: Sequence[int], added: dict[str, pa.Array]) -> pa.Table:
    """:func:`build_table` with the phase1_* values given as ready arrays (one per field, in row order).

    WHY: the engine builds these columns vectorized for tens of thousands of rows; a
    :class:`RowFields` object per row would cost more than the whole write.
    """
    schema = output_schema(table.schema)
    taken = arrow_build.take(table, rows)
    ei_old = taken.column("extra_info").combine_chunks()
    if isinstance(ei_old, pa.ChunkedArray):  # empty input: no chunk to combine
        ei_old = pa.nulls(0, type=ei_old.type)
    ei_type = schema.field("extra_info").type
    children = []
    for i in range(ei_type.num_fields):
        f = ei_type.field(i)
        children.append(added[f.name] if f.name in added else ei_old.field(f.name))
    ei_new = pa.StructArray.from_arrays(children, fields=[ei_type.field(i) for i in range(ei_type.num_fields)])
    idx = table.schema.get_field_index("extra_info")
    out = taken.set_column(idx, schema.field(idx), ei_new)
    return out.replace_schema_metadata(schema.metadata)


def write_parquet(table: pa.Table, path: str | Path) -> None:
    """Write with fixed options (deterministic bytes). Caller provides an atomic temp path."""
    pq.write_table(table, str(path), **WRITE_OPTIONS)


# ``ddai.atomic.atomic_path`` stages ``<dir>/<name>`` as ``<dir>/.<name>.<8 random chars>.tmp``
# (``tempfile.mkstemp``'s name alphabet). Only names of exactly that shape are ever removed.
_TEMP_SUFFIX = re.compile(r"\.[a-z0-9_]{8}\.tmp")


def stale_temp_files(out_dir: str | Path, names: Iterable[str]) -> list[Path]:
    """Temporary files that a killed or requeued run left for the outputs ``names`` in ``out_dir``.

    WHY: a run killed while staging (Slurm preemption, timeout, Ctrl-C) cannot remove its
    hidden ``.<name>.<random>.tmp`` files; each requeue would add a set. Only regular files
    whose name is ``.`` + one of ``names`` + the temp suffix match: other files, and temp
    files of outputs this run does not write, are never touched.
    """
    d = Path(out_dir)
    wanted = {f".{n}." for n in names}
    found = []
    try:
        entries = list(d.iterdir())
    except FileNotFoundError:
        return []
    for f in entries:
        name = f.name
        if not name.startswith(".") or not name.endswith(".tmp") or len(name) < 15:
            continue
        head, tail = name[:-12], name[-12:]          # ".<name>." + "xxxxxxxx.tmp"
        if head in wanted and _TEMP_SUFFIX.fullmatch("." + tail) and f.is_file() and not f.is_symlink():
            found.append(f)
    return sorted(found)


def remove_stale_temp_files(out_dir: str | Path, names: Iterable[str]) -> list[Path]:
    """Remove :func:`stale_temp_files`; returns what was removed (already-gone files are skipped)."""
    removed = []
    for f in stale_temp_files(out_dir, names):
        try:
            f.unlink()
        except FileNotFoundError:
            continue
        removed.append(f)
    return removed
