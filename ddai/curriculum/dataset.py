"""Load the training parquet and check what the engine relies on, with one clear message.

WHY a separate step before any log is read: a dataset without ``id`` or ``extra_info``
would otherwise fail after minutes of parsing a gigabyte log, or worse, produce outputs
verl cannot use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ddai.errors import InputError

ID_EXPECTED = "a column 'id' holding one unique, non-empty value per row (e.g. 'train_2')"

# What the outputs' readers need of every row: ddai joins by ``id`` and writes into
# ``extra_info``; verl's RLHFDataset reads the chat list ``prompt``, its reward managers read
# ``data_source`` and ``reward_model["ground_truth"]`` (a KeyError mid-training otherwise).
REQUIRED_COLUMNS = ("id", "data_source", "prompt", "reward_model", "extra_info")
COLUMNS_EXPECTED = ("the training schema: id, data_source, prompt (chat list of {role, content}), "
                    "reward_model {ground_truth, ...}, extra_info {...}")


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def check_training_columns(path: str | Path, schema: pa.Schema | None = None) -> None:
    """Fail with one line naming ``path`` and every missing column verl or ddai needs.

    WHY before anything else: a file without ``prompt`` or ``reward_model`` buckets fine and
    is only refused by verl once GPUs are held (or, for ``reward_model``, in the first reward
    call). Reads the parquet footer only.
    """
    p = Path(path)
    if schema is None:
        try:
            schema = pq.ParquetFile(p).schema_arrow
        except (pa.ArrowException, OSError):
            _read(p)   # raises the one-line "cannot read as parquet" error
            raise
    names = schema.names
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        cols = ", ".join(repr(c) for c in missing)
        raise InputError(f"dataset lacks the column{'s' if len(missing) > 1 else ''} {cols} "
                         f"(has {', '.join(names) or 'none'})", where=p, expected=COLUMNS_EXPECTED)
    t = schema.field("prompt").type
    if not (_is_list(t) and pa.types.is_struct(t.value_type)
            and {"role", "content"} <= {f.name for f in t.value_type}):
        raise InputError(f"column 'prompt' has type {t}", where=p,
                         expected="a chat list: list<struct<content: string, role: string>>")
    t = schema.field("reward_model").type
    if not (pa.types.is_struct(t) and t.get_field_index("ground_truth") >= 0):
        raise InputError(f"column 'reward_model' has type {t}", where=p,
                         expected="a struct with a 'ground_truth' field (verl's reward managers read it)")
    t = schema.field("data_source").type
    if not _is_text(t):
        raise InputError(f"column 'data_source' has type {t}", where=p,
                         expected="a string column (verl groups rewards and metrics by it)")


@dataclass
class Dataset:
    """The checked dataset: ids and questions now, the whole table when outputs are built.

    WHY the table is read lazily: matching needs only ``id`` and ``extra_info``; the prompt
    columns are needed only for writing. Reading them after the logs keeps this process
    small while the log reader forks its helper process (whose resident memory would
    otherwise duplicate the whole table) and while the log is grouped.
    """

    path: Path
    ids: list[str]
    questions: list[str | None]
    _table: pa.Table | None = field(default=None, repr=False)

    @property
    def table(self) -> pa.Table:
        """The whole dataset table (read on first use, exactly as ``pq.read_table`` gives it)."""
        if self._table is None:
            try:   # single-threaded: the same table as read_table, with far less allocator memory held
                self._table = pq.ParquetFile(self.path).read(use_threads=False)
            except (pa.ArrowException, OSError):
                self._table = _read(self.path)   # raises read_table's own message
        return self._table


def _read(p: Path, columns: list[str] | None = None) -> pa.Table:
    try:
        return pq.read_table(p, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read as parquet ({exc})", where=p, expected="a parquet file") from None


def load_dataset(path: str | Path, *, need_question: bool = False) -> Dataset:
    """Read the dataset parquet; raise InputError naming the file, column or row on problems."""
    p = Path(path)
    if not p.exists():
        raise InputError("dataset file does not exist", where=p, expected="a training parquet file")
    if p.is_dir():
        raise InputError("dataset path is a directory", where=p, expected="a single parquet file")
    try:
        schema = pq.ParquetFile(p).schema_arrow
    except (pa.ArrowException, OSError):
        _read(p)   # raises the one-line "cannot read as parquet" error
        raise
    check_training_columns(p, schema)
    full: pa.Table | None = None
    try:
        # single-threaded ParquetFile read: far less allocator memory held afterwards than
        # read_table's threaded dataset scan, for two small columns
        table = pq.ParquetFile(p).read(columns=["id", "extra_info"], use_threads=False)
    except (pa.ArrowException, OSError):
        # a column is missing or the file is unreadable: the full read gives the same error
        # (or the table, so that the checks below name every column it has)
        table = full = _read(p)

    names = table.schema.names
    if "id" not in names:
        raise InputError("dataset has no 'id' column", where=f"{p}: columns {names}", expected=ID_EXPECTED)
    id_type = table.schema.field("id").type
    if not (pa.types.is_string(id_type) or pa.types.is_large_string(id_type) or pa.types.is_integer(id_type)):
        raise InputError(f"column 'id' has type {id_type}", where=p, expected=ID_EXPECTED)
    raw_ids = table.column("id").to_pylist()
    ids: list[str] = []
    seen: dict[str, int] = {}
    for n, v in enumerate(raw_ids):
        if v is None or str(v) == "":
            raise InputError(f"row {n} has an empty id", where=f"{p}: column 'id'", expected=ID_EXPECTED)
        s = str(v)
        if s in seen:
            raise InputError(f"id {s!r} appears in rows {seen[s]} and {n}", where=f"{p}: column 'id'",
                             expected=ID_EXPECTED)
        seen[s] = n
        ids.append(s)

    if "extra_info" not in names:
        raise InputError("dataset has no 'extra_info' column", where=f"{p}: columns {names}",
                         expected="a struct column 'extra_info' (the phase1_* fields are added to it)")
    ei_type = table.schema.field("extra_info").type
    if not pa.types.is_struct(ei_type):
        raise InputError(f"column 'extra_info' has type {ei_type}", where=p,
                         expected="a struct column 'extra_info'")
    questions: list[str | None] = [None] * len(ids)
    if ei_type.get_field_index("question") >= 0:
        col = table.column("extra_info").combine_chunks() if table.num_rows else None
        if col is not None:
            questions = [q if isinstance(q, str) else None for q in col.field("question").to_pylist()]
    elif need_question:
        raise InputError("extra_info has no 'question' field", where=f"{p}: column 'extra_info'",
                         expected="extra_info.question for curriculum.match=question")
    if full is None:
        table = col = None  # drop the two columns: only the Python lists are kept
        pa.default_memory_pool().release_unused()  # hand the read buffers back before the log is read
    return Dataset(p, ids, questions, full)
