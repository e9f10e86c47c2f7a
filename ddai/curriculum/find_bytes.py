"""``find(data, needle, start)``: ``bytes.find`` through the C library's ``memmem`` where there is one.

WHY: a step-keyed log is split at its ``"step_`` keys, so every byte of a 400 MB log is searched
once. ``bytes.find`` does that at ~1.3 GB/s on this text: its skip loop checks the byte after each
window against the needle's letters, and ``"``, ``s``, ``t``, ``e``, ``p`` and ``_`` are among the
commonest bytes of JSON holding English prose, so it rarely skips far. glibc's ``memmem`` (a
two-byte shift table) searched the same 64 MiB in half the time (0.024 s against 0.048 s), which
is ~0.12 s less for the worker that reads nine tenths of the 1 KB-rollout benchmark log.

Same results as ``bytes.find`` (``tests/curriculum/test_find_bytes.py`` compares them); where
``memmem`` is missing (a libc without it, no ctypes), ``bytes.find`` itself is used.
"""

from __future__ import annotations

from collections.abc import Callable


def _memmem_find() -> Callable[[bytes, bytes, int], int] | None:
    try:
        import ctypes

        memmem = ctypes.CDLL(None).memmem
    except (ImportError, OSError, AttributeError):
        return None
    memmem.restype = ctypes.c_void_p
    memmem.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
    address_of = ctypes.c_char_p
    as_address = ctypes.c_void_p
    cast = ctypes.cast

    def find(data: bytes, needle: bytes, start: int = 0) -> int:
        if type(data) is not bytes:
            return data.find(needle, start)
        n = len(data)
        if start < 0:
            start = max(0, n + start)
        if not needle or start >= n:
            return data.find(needle, start)
        # the address of the bytes object's own buffer (no copy); valid while ``data`` is alive
        base = cast(address_of(data), as_address).value
        hit = memmem(base + start, n - start, needle, len(needle))
        return -1 if not hit else hit - base

    return find


def _bytes_find(data: bytes, needle: bytes, start: int = 0) -> int:
    return data.find(needle, start)


find: Callable[[bytes, bytes, int], int] = _memmem_find() or _bytes_find
