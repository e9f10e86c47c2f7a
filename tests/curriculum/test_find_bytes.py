"""find_bytes.find gives what bytes.find gives (it is libc's memmem where there is one)."""

from __future__ import annotations

import random

import pytest

from ddai.curriculum import find_bytes


def test_memmem_is_in_use_on_this_machine():
    """The CI machine (glibc) takes the fast path: a silent fallback would hide a broken binding."""
    assert find_bytes.find is not find_bytes._bytes_find


@pytest.mark.parametrize("seed", range(5))
def test_the_same_offsets_as_bytes_find(seed):
    rng = random.Random(seed)
    alphabet = b'"step_ 0123{}:,\n\x00'
    for _ in range(400):
        data = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 300)))
        needle = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 7)))
        for start in (0, 1, rng.randint(0, 320), -rng.randint(1, 50), len(data), len(data) + 3):
            assert find_bytes.find(data, needle, start) == data.find(needle, start), (data, needle, start)


def test_edges():
    data = b'{"step_1": {}, "step_2": {}}'
    assert find_bytes.find(data, b'"step_', 0) == 1
    assert find_bytes.find(data, b'"step_', 2) == data.index(b'"step_2')
    assert find_bytes.find(data, b'"step_', len(data)) == -1
    assert find_bytes.find(data, b"", 5) == 5                # an empty needle, as bytes.find has it
    assert find_bytes.find(b"", b"x", 0) == -1
    assert find_bytes.find(b"ab\x00cd\x00ef", b"\x00ef", 0) == 5   # NUL bytes are data, not ends
    assert find_bytes.find(bytearray(b"xxab"), b"ab", 0) == 2      # not bytes: bytes.find's own answer
    big = b"x" * (8 << 20) + b'"step_9"'
    assert find_bytes.find(big, b'"step_', 1 << 20) == 8 << 20
