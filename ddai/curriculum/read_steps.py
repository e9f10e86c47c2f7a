"""Streaming reader for the step-keyed JSON document (``{"step_N": {"<uid>": {...}}}``).

Why not ``json.load``: real files are one JSON value of gigabytes, and >90 % of their bytes are
response texts the statistics never look at. Parsing them (even with orjson) costs time and
memory for nothing. This reader instead:

1. reads fixed-size chunks and, with one C-speed regular expression, replaces every *long*
   string value (responses, anything >= ``LONG`` characters) by ``""`` -- the result is a small
   "skeleton" of the document that is still valid JSON;
2. splits the skeleton at the top-level ``"step_N":`` keys and parses one step at a time with
   orjson (falling back to the standard library for the ``NaN`` literals Python's ``json.dump``
   writes), so memory is bounded by the largest step, not by the file;
3. keeps ``"prompt"`` strings whole (the question is decoded from them).

Why the string matching is exact: in valid JSON every ``"`` inside a string is escaped, so a
``"`` that is not preceded by a backslash is a string delimiter. A match can therefore only start
at an opening quote (a real string, consumed with the standard escape-aware pattern) or at a
closing quote, in which case it spans only the structural text up to the next string -- which in
this document is always far shorter than ``LONG`` -- and is rejected by the length test. Keys are
never replaced (``(?!\\s*:)``). The same argument makes the patterns position-independent, so a
chunk can be searched from any offset. Whatever slips through (a corrupt file) fails the orjson
parse of its step and is reported with the file and byte offset.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO, Callable, Iterator

import orjson

from ddai.curriculum.fields import (
    canonical_field,
    deck_ids,
    extract_scores,
    question_from_prompt,
    score_value,
)
from ddai.curriculum.records import Rollout
from ddai.errors import InputError

CHUNK = 8 * 1024 * 1024    # bytes read at a time
_MARGIN = 256               # bytes kept back at a chunk's end when no cut point is known

# A "response" value, replaced by "" in the skeleton. Exact escape-aware form (used when a
# segment contains a backslash directly before a quote's backslash, i.e. b'\\\\"') and a fast
# form: when the segment has no b'\\\\"', every quote preceded by a backslash is escaped, so
# "a run of non-quotes ending in backslash-quote" is exact -- and sre runs it ~4x faster.
_RESPONSE_EXACT = re.compile(rb'"response"\s*:\s*"[^"\\]*(?:\\.[^"\\]*)*"')
_RESPONSE_FAST = re.compile(rb'"response"\s*:\s*"(?:[^"]*\\")*[^"]*"')
_RESPONSE_EMPTY = b'"response":""'
_STEP_KEY = re.compile(rb'"(step_?(\d+))"\s*:\s*\{')
_HEAD = re.compile(rb'\A\s*\{\s*\Z')
_NAN = re.compile(rb'(?<=[:,\[])(\s*)(NaN|-?Infinity)(?=\s*[,\]}])')
_QUOTE = re.compile(rb'"(?<!\\")')          # a quote not directly preceded by a backslash


def _string_end(buf: bytes, start: int) -> int:
    """Index of the closing quote of the string whose body starts at ``start`` (-1: not in buf)."""
    pos = start
    while True:
        m = _QUOTE.search(buf, pos)
        if m is None:
            return -1
        q = m.start()
        k = q - 1
        while k >= start and buf[k] == 92:
            k -= 1
        if (q - 1 - k) % 2 == 0:
            return q
        pos = q + 1


def skeleton(segment: bytes) -> bytes:
    """``segment`` with every response string value replaced by ``""`` (C speed, exact)."""
    pattern = _RESPONSE_EXACT if b'\\\\"' in segment else _RESPONSE_FAST
    return pattern.sub(_RESPONSE_EMPTY, segment)


def _loads(text: bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    # NaN / Infinity literals (Python's json.dump writes them): quote them for orjson; if that
    # was wrong (the text sat inside a string) the parse fails and the standard library decides.
    if b"NaN" in text or b"Infinity" in text:
        try:
            return orjson.loads(_NAN.sub(rb'\1"\2"', text))
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def _error_offset(path: Path, start: int) -> tuple[int, str]:
    """Exact byte offset and message of the first JSON error in the value starting at ``start``.

    Only used on the error path: re-reads the step's original bytes (bounded).
    """
    with open(path, "rb") as fh:
        fh.seek(start)
        head = fh.read(1 << 16)
        m = re.match(rb'(?:\s*"(?:[^"\\]|\\.)*"\s*:\s*)?', head)
        skip = m.end() if m else 0
        fh.seek(start + skip)
        raw = fh.read(256 * 1024 * 1024)  # a step is far smaller; bounded on the error path
    text = raw.decode("utf-8", errors="replace")
    try:
        _, end = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as exc:
        return start + skip + len(text[: exc.pos].encode("utf-8")), exc.msg
    return start + skip + len(text[:end].encode("utf-8")), "unexpected data after the step object"


def _prefetched_chunks(fh: BinaryIO, hasher: Any, advance: Callable[[int], None],
                       chunk_size: int) -> Iterator[bytes]:
    """Chunks of ``fh``; the next chunk is read and hashed in a helper thread meanwhile.

    Reading and SHA-256 both release the GIL, so they overlap with the scanning.
    """
    def read_one() -> bytes:
        chunk = fh.read(chunk_size)
        if chunk:
            hasher.update(chunk)
        return chunk

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ddai-read") as pool:
        future = pool.submit(read_one)
        while True:
            chunk = future.result()
            if not chunk:
                return
            future = pool.submit(read_one)
            advance(len(chunk))
            yield chunk


def iter_steps(path: Path, fh: BinaryIO, hasher: Any, advance: Callable[[int], None],
               chunk_size: int = CHUNK) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """Yield ``(step_key, step_number, step_object_skeleton)`` in document order.

    Chunks are cut right before the last ``"response"`` key they contain (that literal cannot
    occur inside a JSON string, where quotes are escaped), so every response value lies whole
    in one region; the region is split at top-level step keys and reduced to its skeleton.
    """
    state = _StepState(path, path.stat().st_size)
    carry = b""
    carry_off = 0                        # file offset of carry[0]
    for chunk in _prefetched_chunks(fh, hasher, advance, chunk_size):
        data = carry + chunk if carry else chunk
        cut = data.rfind(b'"response"')
        if cut <= 0:
            # No response key: cut right before a quote near the end so no key straddles it.
            cut = max(data.rfind(b'"', 0, max(0, len(data) - _MARGIN)), 0)
        yield from state.feed(data[:cut] if cut < len(data) else data, carry_off)
        carry = data[cut:]
        carry_off += cut
    yield from state.feed(carry, carry_off)
    yield from state.close()


class _StepState:
    """Splits raw regions at top-level step keys, reduces them to skeletons, parses each step."""

    def __init__(self, path: Path, size: int):
        self.path = path
        self.size = size
        self.cur: tuple[str, int, int] | None = None
        self.pieces: list[bytes] = []
        self.head: list[bytes] = []

    def _add(self, raw: bytes) -> None:
        if raw:
            (self.pieces if self.cur is not None else self.head).append(skeleton(raw))

    def feed(self, data: bytes, off: int) -> Iterator[tuple[str, int, dict[str, Any]]]:
        """Raw document bytes starting at file offset ``off`` (no response value cut in two)."""
        pos = 0
        s = data.find(b'"step_')
        while s >= 0:
            m = _STEP_KEY.match(data, s) if (s == 0 or data[s - 1] != 92) else None
            if m is None:
                s = data.find(b'"step_', s + 1)
                continue
            self._add(data[pos:s])
            if self.cur is None:
                if not _HEAD.match(b"".join(self.head)):
                    raise InputError(f"unexpected content before the first step key (byte {off + s})",
                                     where=self.path, expected='a step-keyed JSON document {"step_1": {...}}')
            else:
                yield _finish(self.path, self.cur, self.pieces, last=False, size=self.size)
            self.cur = (m.group(1).decode(), int(m.group(2)), off + s)
            self.pieces = []
            pos = m.end() - 1
            s = data.find(b'"step_', pos)
        self._add(data[pos:] if pos else data)
        if self.cur is None and sum(map(len, self.head)) > 4 * CHUNK:
            raise InputError("no step keys found in the first part of the document", where=self.path,
                             expected='a step-keyed JSON document {"step_1": {"<uid>": {...}}, ...}')

    def close(self) -> Iterator[tuple[str, int, dict[str, Any]]]:
        if self.cur is None:
            stripped = b"".join(self.head).strip()
            if stripped in (b"{}", b""):
                return
            if stripped.startswith(b"{") and not stripped.endswith(b"}"):
                raise InputError(f"the document is truncated (it ends at byte {self.size})", where=self.path,
                                 expected="a complete JSON document")
            raise InputError("the document has no step keys", where=self.path,
                             expected='a step-keyed JSON document {"step_1": {...}}')
        yield _finish(self.path, self.cur, self.pieces, last=True, size=self.size)


def _finish(path: Path, cur: tuple[str, int, int], pieces: list[bytes], *, last: bool,
            size: int) -> tuple[str, int, dict[str, Any]]:
    key, number, offset = cur
    text = b"".join(pieces).rstrip()
    truncated_msg = (f"the document is truncated: it ends at byte {size} inside {key!r} "
                     f"(which starts at byte {offset})")
    truncated_exp = "a complete JSON document (was the file still being written or copied?)"
    if last:
        if not text.endswith(b"}"):
            raise InputError(truncated_msg, where=path, expected=truncated_exp)
        text = text[:-1].rstrip()
        if not text.endswith(b"}"):
            raise InputError(truncated_msg, where=path, expected=truncated_exp)
    else:
        if not text.endswith(b","):
            _raise_malformed(path, key, offset, size)
        text = text[:-1]
    try:
        obj = _loads(text)
    except (json.JSONDecodeError, ValueError):
        _raise_malformed(path, key, offset, size)
    if not isinstance(obj, dict):
        raise InputError(f"{key!r} at byte {offset} is not an object", where=path,
                         expected='{"<uid>": {"prompt": ..., "agents": [...]}}')
    return key, number, obj


def _raise_malformed(path: Path, key: str, offset: int, size: int) -> None:
    err_at, msg = _error_offset(path, offset)
    if err_at >= size - 1:
        raise InputError(f"the document is truncated: it ends at byte {size} inside {key!r} "
                         f"(which starts at byte {offset})", where=path,
                         expected="a complete JSON document (was the file still being written or copied?)")
    raise InputError(f"malformed JSON at byte {err_at} in {key!r}: {msg}", where=path,
                     expected="a valid step-keyed JSON document")


def _docs(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def rollouts_from_step(path: Path, source: str, key: str, step: int, groups: dict[str, Any]) -> Iterator[Rollout]:
    """Turn one parsed step object into Rollout records (one per agent)."""
    for uid, group in groups.items():
        if not isinstance(group, dict) or not isinstance(group.get("agents"), list):
            raise InputError(f"group {uid!r} in {key!r} has no 'agents' list", where=path,
                             expected='{"prompt": "...", "agents": [{"agent_id": 1, "scores": {...}}]}')
        prompt = group.get("prompt")
        question = question_from_prompt(prompt) if isinstance(prompt, str) else None
        dataset_id = None
        for gk, gv in group.items():
            if gk not in ("agents", "prompt") and canonical_field(gk) == "dataset_id" and isinstance(gv, str):
                dataset_id = gv
        for i, agent in enumerate(group["agents"]):
            if not isinstance(agent, dict):
                raise InputError(f"agent #{i + 1} of group {uid!r} in {key!r} is not an object", where=path,
                                 expected='{"agent_id": 1, "scores": {...}}')
            scores_obj = agent.get("scores")
            scores: dict[str, float | None] = {}
            ref: tuple[str, ...] = ()
            ret: tuple[str, ...] = ()
            err = None
            if isinstance(scores_obj, dict):
                extract_scores(scores_obj, scores)
                det = scores_obj.get("ndcg_details")
                if isinstance(det, dict):
                    ref = _docs(det.get("reference_documents"))
                    ret = _docs(det.get("retrieved_documents"))
                fr = scores_obj.get("fail_reason")
                if isinstance(fr, str) and fr:
                    err = fr
            extract_scores(agent, scores)
            sample = agent.get("agent_id", i + 1)
            yield Rollout(
                group=uid, source=source, line=None, step=step,
                sample_idx=sample if isinstance(sample, int) else i + 1,
                dataset_id=dataset_id, question=question, deck_ids=deck_ids(ref),
                reference_docs=ref, retrieved_docs=ret, scores=scores, error=err,
                latency_s=_num(agent.get("latency_s")),
            )


def _num(v: Any) -> float | None:
    return None if v is None else score_value(v)
