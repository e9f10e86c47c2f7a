"""The scanning helper process queues steps ahead of the parser (it no longer waits in ``send``
for every step): the queue must not change what is read, must not hang when the reader stops
early, and must still deliver the helper's errors (sent through the same queue)."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path

import pytest

import ddai.curriculum.read_steps as rs
from ddai.errors import InputError


def _doc(n_steps: int, groups: int = 3) -> bytes:
    doc = {}
    for s in range(1, n_steps + 1):
        doc[f"step_{s}"] = {
            f"g{s}_{g}": {"prompt": f"Question: q{s}-{g}?<|im_end|>",
                          "agents": [{"agent_id": a, "response": "x\\\"y" * 40,
                                      "scores": {"ndcg_value": a / 4,
                                                 "ndcg_details": {"reference_documents": [f"{g}_1"],
                                                                  "retrieved_documents": [f"{g}_1", "9_2"]}}}
                                     for a in range(1, 4)]}
            for g in range(groups)}
    return json.dumps(doc).encode()


def _no_helper_left(timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not [p for p in mp.active_children() if p.name == "ddai-scan"]:
            return True
        time.sleep(0.05)
    return False


def test_helper_queue_yields_what_the_in_process_scan_yields(tmp_path: Path):
    p = tmp_path / "many.json"
    p.write_bytes(_doc(3 * rs._SEND_AHEAD))  # more steps than the queue holds
    here: dict[str, str] = {}
    there: dict[str, str] = {}
    a = list(rs.iter_steps(p, lambda n: None, here, chunk_size=512, parallel=False))
    b = list(rs.iter_steps(p, lambda n: None, there, chunk_size=512, parallel=True))
    assert a == b and len(a) == 3 * rs._SEND_AHEAD
    assert here["sha256"] == there["sha256"]


def test_stopping_early_ends_the_helper(tmp_path: Path):
    p = tmp_path / "many.json"
    p.write_bytes(_doc(4 * rs._SEND_AHEAD))
    gen = rs.iter_steps(p, lambda n: None, {}, chunk_size=256, parallel=True)
    key, number, obj = next(gen)
    assert (key, number) == ("step_1", 1) and len(obj) == 3
    time.sleep(0.2)  # let the helper fill its queue and block on the pipe
    gen.close()
    assert _no_helper_left()


def test_helper_error_reaches_the_parent_through_the_queue(tmp_path: Path):
    p = tmp_path / "junk.json"
    p.write_bytes(b'{"oops": 1, ' + _doc(2 * rs._SEND_AHEAD)[1:])
    with pytest.raises(InputError, match="before the first step key"):
        list(rs.iter_steps(p, lambda n: None, {}, chunk_size=256, parallel=True))
    assert _no_helper_left()
