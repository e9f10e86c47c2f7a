"""Arrow arrays built from numpy buffers and Python lists without ``pyarrow.array``.

WHY not ``pa.array``: on its first call, with any argument (a list, a numpy array), pyarrow
asks its pandas shim whether the object is a pandas Series, which imports pandas -- about
0.26 s, a tenth of a curriculum run on a 400 MB log, for a library the curriculum never
uses. Arrays assembled here from their buffers (validity bitmap, offsets, values) hold the
same values, so the parquet files written from them are byte-identical to those written
from ``pa.array`` of the same lists (``benchmarks/curriculum_equivalence.py`` compares).

Only the types the curriculum writes: int64, float64, int32 (offsets), string, and lists of
those. Strings are encoded as ``pa.array`` encodes them (UTF-8; a lone surrogate raises
``UnicodeEncodeError``, a non-string raises ``ArrowTypeError``, as there).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pyarrow as pa

_INT32_MAX = 2**31 - 1
_NUMPY = {pa.int64(): np.int64, pa.float64(): np.float64, pa.int32(): np.int32}


def _validity(null: np.ndarray | None) -> tuple[pa.Buffer | None, int]:
    """Arrow's validity bitmap (LSB first, 1 = valid) for a null mask; None when nothing is null."""
    if null is None:
        return None, 0
    n_null = int(np.count_nonzero(null))
    if n_null == 0:
        return None, 0
    return pa.py_buffer(np.packbits(~np.asarray(null, dtype=bool), bitorder="little")), n_null


def primitive(values: Any, null: Any = None, type: pa.DataType = pa.int64()) -> pa.Array:
    """An int64/float64/int32 array over ``values``; ``null`` (bool mask) marks nulls.

    The values under a null are never read by Arrow or the parquet writer.
    """
    data = np.ascontiguousarray(values, dtype=_NUMPY[type])
    validity, n_null = _validity(None if null is None else np.asarray(null, dtype=bool))
    return pa.Array.from_buffers(type, len(data), [validity, pa.py_buffer(data)], null_count=n_null)


def optional_ints(values: Sequence[int | None]) -> pa.Array:
    """int64 array of Python ints and Nones."""
    null = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    data = np.fromiter((0 if v is None else v for v in values), dtype=np.int64, count=len(values))
    return primitive(data, null, pa.int64())


def _encode(values: Sequence[str | None]) -> tuple[list[bytes], np.ndarray | None]:
    try:   # the usual case, in one comprehension: strings and Nones
        encoded = [b"" if v is None else v.encode("utf-8") for v in values]
    except AttributeError:   # something that is not a string: say so as pa.array does
        bad = next(v for v in values if v is not None and not isinstance(v, str))
        raise pa.ArrowTypeError(f"Expected bytes, got a '{type(bad).__name__}' object") from None
    if None not in values:
        return encoded, None
    return encoded, np.fromiter((v is None for v in values), dtype=bool, count=len(values))


def _offsets(lengths: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def strings(values: Sequence[str | None]) -> pa.Array:
    """A ``string`` array of ``values`` (None → null)."""
    encoded, null = _encode(values)
    n = len(encoded)
    offsets = _offsets(np.fromiter(map(len, encoded), dtype=np.int64, count=n))
    if offsets[-1] > _INT32_MAX:   # too large for 32-bit offsets: pa.array chunks it, so does it here
        return pa.array(values, type=pa.string())
    validity, n_null = _validity(null)
    data = pa.py_buffer(b"".join(encoded))
    return pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(offsets.astype(np.int32)), data],
                                 null_count=n_null)


def lists(items: Sequence[Sequence[Any]], value_type: pa.DataType) -> pa.Array:
    """A ``list<value_type>`` array (no null lists) of ``items``; values may be None.

    ``value_type`` is ``pa.string()`` or ``pa.int64()``.
    """
    counts = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
    return flat_lists([v for item in items for v in item], counts, value_type)


def flat_lists(flat: Sequence[Any], counts: np.ndarray, value_type: pa.DataType) -> pa.Array:
    """:func:`lists` of the items ``flat[0:counts[0]]``, ``flat[counts[0]:counts[0]+counts[1]]``, ..."""
    offsets = _offsets(np.asarray(counts, dtype=np.int64))
    if offsets[-1] > _INT32_MAX:
        bounds = offsets.tolist()
        return pa.array([flat[a:b] for a, b in zip(bounds, bounds[1:])], type=pa.list_(value_type))
    child = strings(flat) if value_type == pa.string() else optional_ints(flat)
    if isinstance(child, pa.ChunkedArray):
        bounds = offsets.tolist()
        return pa.array([flat[a:b] for a, b in zip(bounds, bounds[1:])], type=pa.list_(value_type))
    return pa.Array.from_buffers(pa.list_(value_type), len(offsets) - 1, [None, pa.py_buffer(offsets.astype(np.int32))],
                                 null_count=0, children=[child])


def take(table: pa.Table, rows: Sequence[int]) -> pa.Table:
    """Rows ``rows`` of ``table`` in that order (repeats allowed): ``table.take(rows)``.

    WHY not ``Table.take``: it goes through ``pyarrow.compute``, whose import builds Python
    wrappers for every compute function (~40 ms); the kernel it calls is reachable directly.
    """
    indices = primitive(np.asarray(rows, dtype=np.int64))
    try:
        from pyarrow._compute import TakeOptions, call_function
    except ImportError:  # pragma: no cover - a pyarrow without the private module
        return table.take(indices)
    return call_function("take", [table, indices], TakeOptions(boundscheck=True))
