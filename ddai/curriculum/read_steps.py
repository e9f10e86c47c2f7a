"""Streaming reader for the step-keyed JSON document (``{"step_N": {"<uid>": {...}}}``).

Why not ``json.load``: real files are one JSON value of gigabytes, and ~90 % of their bytes are
response texts the statistics never look at. Parsing them -- even with orjson -- costs time and
memory for nothing. This reader instead:

1. reads 1 MB chunks (the next one is read and SHA-256-hashed in a helper thread) and cuts each
   right before the last ``"response"`` key it contains, so no response value is split;
2. removes every ``"response"`` value with one C-speed regular expression (:func:`skeleton`);
   what remains -- prompts, scores, documents -- is a small "skeleton" that is still valid JSON;
3. splits the skeleton at the ``"step_N": {`` keys and parses one step at a time with orjson,
   so memory is bounded by one chunk plus one step, whatever the file size.

Why cutting and matching on byte patterns is exact: inside a JSON string every ``"`` is escaped,
so the byte sequences ``"response"`` + ``:`` and ``"step_N": {`` with an unescaped opening
quote can only be real keys, never text inside a string; and a response value ends at the first
quote that follows an even run of backslashes (the pattern checks the run). A step-like key
nested inside a step also splits, but the text before it is then not a complete object: the
parser notices and joins the pieces again. Whatever else is wrong with a file fails the orjson
parse of its step and is reported with the file and the byte offset of the error.

Big files are scanned in a forked helper process (steps 1-3 up to the split) while this process
parses and builds the Rollout records: the two halves take about the same CPU time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing as mp
import os
import queue
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import orjson

from ddai.curriculum.fields import (
    canonical_field,
    canonical_score,
    dataset_id_like,
    deck_of,
    question_from_prompt,
    score_value,
)
from ddai.curriculum.records import Rollout
from ddai.errors import InputError

# Bytes read at a time. Small enough that a chunk is still in the CPU cache when the hasher and
# then the skeleton pass read it again (8 MB chunks measured ~20 % slower than 1-2 MB ones on
# the 400 MB benchmark log); large enough that per-chunk Python work does not matter.
CHUNK = 1024 * 1024
_HEAD_LIMIT = 32 * 1024 * 1024  # bytes before the first step key at most (it is normally one "{")
_MAX_CARRY = 64 * 1024 * 1024  # bytes held back at most while waiting for a cut point
_MAX_MERGE = 256 * 1024 * 1024  # skeleton bytes joined at most while looking for a step's end
_MARGIN = 256               # bytes kept back at a chunk's end when no cut point is known

# A "response" value, replaced by "" in the skeleton, in one C-speed pass. The body is consumed
# as runs of non-quote bytes; a quote ends it unless it is escaped, i.e. preceded by an odd run
# of backslashes -- checked exactly for runs up to 7 with fixed-width lookbehinds. A quote after
# 8 or more backslashes makes the whole match fail (possessive quantifiers: no backtracking), so
# such a value is simply kept and parsed: never wrong, only slower. ``[^"]`` loops are ~4x faster
# in sre than the textbook ``[^"\\]|\\.`` alternation.
_ESCAPED = rb'(?:(?<=[^\\]\\)|(?<=[^\\]\\\\\\)|(?<=[^\\]\\\\\\\\\\)|(?<=[^\\]\\\\\\\\\\\\\\))'
_NOT_AFTER_8 = rb'(?<!' + rb'\\' * 8 + rb')'   # not preceded by 8 backslashes
if sys.version_info >= (3, 11):
    _RESPONSE = re.compile(rb'"response"\s*:\s*"(?:[^"]*+' + _ESCAPED + rb'")*+[^"]*+' + _NOT_AFTER_8 + rb'"')
else:  # no possessive quantifiers before 3.11: the exact "unrolled loop" form, linear but slower
    _RESPONSE = re.compile(rb'"response"\s*:\s*"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_RESPONSE_EMPTY = b'"response":""'
_STEP_KEY = re.compile(rb'"(step_?(\d+))"\s*:\s*\{')
_HEAD = re.compile(rb'\A\s*\{\s*\Z')
_NAN = re.compile(rb'(?<=[:,\[])(\s*)(NaN|-?Infinity)(?=\s*[,\]}])')


_STRING_EXACT = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


def _aligned_cut(data: bytes) -> int:
    """End of the last complete string in ``data`` (which starts outside strings); slow, rare."""
    end = 0
    for m in _STRING_EXACT.finditer(data):
        end = m.end()
    return end


def skeleton(segment: bytes) -> bytes:
    """``segment`` with every response string value replaced by ``""`` (C speed, exact)."""
    return _RESPONSE.sub(_RESPONSE_EMPTY, segment)


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


RawStep = tuple[str, int, bytes, bytes, bool]  # (step key, number, key text, skeleton text, is last)


def scan_steps(path: Path, fh: BinaryIO, hasher: Any, advance: Callable[[int], None],
               chunk_size: int = CHUNK) -> Iterator[RawStep]:
    """The skeleton text of each top-level step, in document order (nothing parsed yet).

    Chunks are cut right before the last ``"response"`` key they contain (that literal cannot
    occur inside a JSON string, where quotes are escaped), so every response value lies whole
    in one region; each region is reduced to its skeleton, which is split at the top-level step
    keys (also unambiguous: ``"step_N": {`` with an unescaped quote is always a key).
    """
    state = _StepState(path, path.stat().st_size)
    carry = b""
    for chunk in _prefetched_chunks(fh, hasher, advance, chunk_size):
        first = chunk.find(b'"response"') if carry else 0
        if first < 0 or (carry and len(carry) + len(chunk) < 2 * _MARGIN):
            data = carry + chunk   # no key in this chunk: keep collecting (a very long response)
        elif carry:
            # The carried response ends before this chunk's first key: finish it on a small copy
            # and scan the rest of the chunk in place (no copy of the chunk).
            yield from state.feed(skeleton(carry + chunk[:first]))
            data = memoryview(chunk)[first:]
        else:
            data = chunk
        cut = _rfind(data, b'"response"')
        if cut <= 0:
            if len(data) < _MAX_CARRY:
                carry = bytes(data)  # a response longer than a chunk (or none yet): read on
                continue
            # Still none (a document without responses): cut after the last complete string,
            # found with the exact pattern -- slow, but only for such unusual documents.
            cut = _aligned_cut(bytes(data[: len(data) - _MARGIN]))
        yield from state.feed(skeleton(data[:cut] if cut < len(data) else data))
        carry = bytes(data[cut:])
    yield from state.feed(skeleton(carry))
    yield from state.close()


def _rfind(data: bytes | memoryview, needle: bytes) -> int:
    """``rfind`` for bytes or a memoryview of bytes (offset relative to ``data``)."""
    if isinstance(data, memoryview):
        base = data.obj
        start = len(base) - len(data)  # views here are always suffixes of their chunk
        i = base.rfind(needle, start)
        return i - start if i >= 0 else -1
    return data.rfind(needle)


# Files at least this big are scanned in a helper process (the skeleton pass runs on another
# core while this one parses); smaller ones are not worth the process start.
PARALLEL_MIN_BYTES = 64 * 1024 * 1024


def iter_steps(path: Path, advance: Callable[[int], None], digest: dict[str, str], *,
               chunk_size: int = CHUNK, parallel: bool | None = None) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """Yield ``(step_key, step_number, step_object_skeleton)``; sets ``digest["sha256"]`` at the end.

    ``parallel``: scan in a helper process (default: for files >= PARALLEL_MIN_BYTES when the
    machine has more than one CPU; ``DDAI_READ_PARALLEL=0`` turns it off).
    """
    size = path.stat().st_size
    if parallel is None:
        env = os.environ.get("DDAI_READ_PARALLEL", "").strip().lower()
        parallel = (env not in ("0", "false", "no") and size >= PARALLEL_MIN_BYTES
                    and (os.cpu_count() or 1) > 1 and "fork" in mp.get_all_start_methods()
                    and not mp.current_process().daemon)  # daemonic processes may not fork children
    raw_steps = _scan_in_worker(path, advance, digest, chunk_size) if parallel else _scan_here(
        path, advance, digest, chunk_size)
    pending: tuple[str, int, list[bytes]] | None = None
    for key, number, key_text, text, last in raw_steps:
        if pending is not None:
            # the previous split was at a nested step-like key: join and try again
            pending[2].extend((key_text, text))
            key, number, text = pending[0], pending[1], b"".join(pending[2])
        obj = _parse_step(text, last)
        if obj is not None:
            pending = None
            if not isinstance(obj, dict):
                raise InputError(f"{key!r} is not an object", where=path,
                                 expected='{"<uid>": {"prompt": ..., "agents": [...]}}')
            yield key, number, obj
            continue
        if last:
            if not text.rstrip().endswith(b"}"):
                _raise_truncated(path, key, size)
            _raise_malformed(path, key, size)
        if len(text) > _MAX_MERGE:
            _raise_malformed(path, key, size)
        pending = (key, number, [text])


def _scan_here(path: Path, advance: Callable[[int], None], digest: dict[str, str],
               chunk_size: int) -> Iterator[RawStep]:
    hasher = hashlib.sha256()
    with open(path, "rb") as fh:
        yield from scan_steps(path, fh, hasher, advance, chunk_size)
    digest["sha256"] = hasher.hexdigest()


# Messages the helper process may have queued ahead of the parent. The pipe itself holds only
# 64 KB, so without a queue the scanner would wait in ``send`` for every step until the parent
# had parsed the previous one: the two processes would take turns instead of running together.
_SEND_AHEAD = 16


def _worker(path_str: str, chunk_size: int, conn: Any) -> None:
    """Helper process: scan the file and send raw steps, progress, the digest, or the error.

    A sender thread writes to the pipe (``send`` releases the GIL) while the scan goes on.
    Ctrl-C is left to the parent, which stops this process when its reader is closed.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    path = Path(path_str)
    out: queue.Queue[tuple[str, Any] | None] = queue.Queue(maxsize=_SEND_AHEAD)
    broken = threading.Event()

    def pump() -> None:
        while True:
            message = out.get()
            if message is None:
                return
            if broken.is_set():
                continue  # the parent stopped reading: drain, so the scanner never blocks
            try:
                conn.send(message)
            except OSError:
                broken.set()

    def send(message: tuple[str, Any]) -> None:
        if broken.is_set():
            raise BrokenPipeError
        out.put(message)

    sender = threading.Thread(target=pump, name="ddai-send", daemon=True)
    sender.start()
    try:
        hasher = hashlib.sha256()
        with open(path, "rb") as fh:
            for raw in scan_steps(path, fh, hasher, lambda n: send(("progress", n)), chunk_size):
                send(("step", raw))
        send(("done", hasher.hexdigest()))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the parent stopped reading
    except InputError as exc:
        out.put(("input_error", (exc.what, exc.where, exc.expected)))
    except BaseException as exc:  # noqa: BLE001  # pragma: no cover - reported to the parent verbatim
        out.put(("crash", f"{type(exc).__name__}: {exc}"))
    finally:
        out.put(None)
        sender.join()
        conn.close()


def _scan_in_worker(path: Path, advance: Callable[[int], None], digest: dict[str, str],
                    chunk_size: int) -> Iterator[RawStep]:
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_worker, args=(str(path), chunk_size, send), daemon=True,
                       name="ddai-scan")
    proc.start()
    send.close()
    try:
        while True:
            try:
                tag, payload = recv.recv()
            except EOFError:
                raise RuntimeError(f"{path}: the scanning helper process ended unexpectedly "
                                   f"(exit code {proc.exitcode})") from None
            if tag == "step":
                yield payload
            elif tag == "progress":
                advance(payload)
            elif tag == "done":
                digest["sha256"] = payload
                return
            elif tag == "input_error":
                what, where, expected = payload
                raise InputError(what, where=where, expected=expected)
            else:
                raise RuntimeError(f"{path}: scanning failed: {payload}")
    finally:
        recv.close()
        if proc.is_alive():
            proc.terminate()
        proc.join()


class _StepState:
    """Splits the skeleton at step keys (every ``"step_N": {`` outside a string).

    A key named like a step *inside* a step (not top level) also splits here; the parser
    notices (the text before it is not a complete object) and joins the pieces again.
    """

    def __init__(self, path: Path, size: int):
        self.path = path
        self.size = size
        self.cur: tuple[str, int, bytes] | None = None   # (key, number, key text)
        self.pieces: list[bytes] = []
        self.head: list[bytes] = []

    def feed(self, data: bytes) -> Iterator[RawStep]:
        """Skeleton bytes, in document order (``data`` starts and ends outside any string)."""
        pos = 0
        s = data.find(b'"step_')
        while s >= 0:
            m = _STEP_KEY.match(data, s) if (s == 0 or data[s - 1] != 92) else None
            if m is None:
                s = data.find(b'"step_', s + 1)
                continue
            if self.cur is None:
                self.head.append(data[pos:s])
                if not _HEAD.match(b"".join(self.head)):
                    raise InputError("unexpected content before the first step key",
                                     where=self.path, expected='a step-keyed JSON document {"step_1": {...}}')
            else:
                self.pieces.append(data[pos:s])
                yield (*self.cur, b"".join(self.pieces), False)
            self.cur = (m.group(1).decode(), int(m.group(2)), data[s:m.end() - 1])
            self.pieces = []
            pos = m.end() - 1
            s = data.find(b'"step_', pos)
        if pos < len(data):
            (self.pieces if self.cur is not None else self.head).append(data[pos:] if pos else data)
        if self.cur is None and sum(map(len, self.head)) > _HEAD_LIMIT:
            raise InputError("no step keys found in the first part of the document", where=self.path,
                             expected='a step-keyed JSON document {"step_1": {"<uid>": {...}}, ...}')

    def close(self) -> Iterator[RawStep]:
        if self.cur is None:
            stripped = b"".join(self.head).strip()
            if stripped in (b"{}", b""):
                return
            if stripped.startswith(b"{") and not stripped.endswith(b"}"):
                raise InputError(f"the document is truncated (it ends at byte {self.size})", where=self.path,
                                 expected="a complete JSON document")
            raise InputError("the document has no step keys", where=self.path,
                             expected='a step-keyed JSON document {"step_1": {...}}')
        yield (*self.cur, b"".join(self.pieces), True)


def _step_offset(path: Path, key: str) -> int:
    """Byte offset of the top-level key ``key`` in the file (error path only: one linear scan)."""
    pattern = re.compile(rb'"' + re.escape(key.encode()) + rb'"\s*:\s*\{')
    lit = b'"' + key.encode() + b'"'
    offset = 0
    tail = b""
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                return -1
            data = tail + chunk
            i = data.find(lit)
            while i >= 0:
                if (i == 0 or data[i - 1] != 92) and pattern.match(data, i):
                    return offset - len(tail) + i
                i = data.find(lit, i + 1)
            tail = data[-_MARGIN:]
            offset += len(chunk)


_SPACE = frozenset(b" \t\n\r\x0b\x0c")  # what bytes.rstrip() strips


def _parse_step(text: bytes, last: bool) -> Any:
    """The step object in ``text`` (``{...},`` or, for the last step, ``{...}}``); None if it is
    not one complete JSON value.

    Works on end offsets and parses a zero-copy view: the trailing ``,`` / ``}`` would otherwise
    cost a copy of every step's text.
    """
    end = len(text)
    while end and text[end - 1] in _SPACE:
        end -= 1
    if last:
        if not end or text[end - 1] != 0x7D:  # "}"
            return None
        end -= 1
        while end and text[end - 1] in _SPACE:
            end -= 1
    elif not end or text[end - 1] != 0x2C:  # ","
        return None
    else:
        end -= 1
    if not end or text[end - 1] != 0x7D:
        return None
    try:
        return orjson.loads(memoryview(text)[:end])
    except orjson.JSONDecodeError:
        pass
    try:
        return _loads(text[:end])
    except (json.JSONDecodeError, ValueError):
        return None


def _raise_truncated(path: Path, key: str, size: int) -> NoReturn:
    raise InputError(f"the document is truncated: it ends at byte {size} inside {key!r} "
                     f"(which starts at byte {_step_offset(path, key)})", where=path,
                     expected="a complete JSON document (was the file still being written or copied?)")


def _raise_malformed(path: Path, key: str, size: int) -> NoReturn:
    offset = _step_offset(path, key)
    err_at, msg = _error_offset(path, max(offset, 0))
    if err_at >= size - 1:
        raise InputError(f"the document is truncated: it ends at byte {size} inside {key!r} "
                         f"(which starts at byte {offset})", where=path,
                         expected="a complete JSON document (was the file still being written or copied?)")
    raise InputError(f"malformed JSON at byte {err_at} in {key!r}: {msg}", where=path,
                     expected="a valid step-keyed JSON document")


# The hot loop builds Rollout records positionally (2.5x cheaper than keywords); make sure the
# field order it relies on is still the record's.
_POSITIONAL = ("group", "source", "line", "step", "sample_idx", "dataset_id", "question", "deck_ids",
               "reference_docs", "retrieved_docs", "scores", "latency_s", "error")
if tuple(f.name for f in dataclasses.fields(Rollout))[: len(_POSITIONAL)] != _POSITIONAL:  # pragma: no cover
    raise ImportError("ddai.curriculum.records.Rollout fields were reordered; update read_steps._POSITIONAL")

_MISSING = object()
# key layout of a scores object (the tuple of its keys, shared by almost every agent of a log)
# -> which of its keys are scores, and under which canonical name (first spelling wins)
_LAYOUTS: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {}
_DECKS: dict[tuple[str, ...], tuple[str, ...]] = {}


def _layout(keys: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    seen: set[str] = set()
    pairs = []
    for k in keys:
        canon = canonical_score(k)
        if canon is not None and canon not in seen:
            seen.add(canon)
            pairs.append((k, canon))
    out = tuple(pairs)
    if len(_LAYOUTS) < 10_000:
        _LAYOUTS[keys] = out
    return out


# doc name -> its deck id (or None): deck pages recur across agents and steps, while their
# reference lists (the _DECKS keys) often differ
_DOC_DECKS: dict[str, str | None] = {}
_QUESTION_ENDS = ("<|im_end|>", "<|eot_id|>", "</s>", "<end_of_turn>")


def _deck_ids(ref: tuple[str, ...]) -> tuple[str, ...]:
    """:func:`deck_ids` of a tuple of strings, with a per-document cache."""
    seen: dict[str, None] = {}
    cache = _DOC_DECKS
    for d in ref:
        deck = cache.get(d, _MISSING)
        if deck is _MISSING:
            deck = deck_of(d)
            if len(cache) < 100_000:
                cache[d] = deck
        if deck is not None:
            seen[deck] = None  # re-assigning keeps a key's first position, like setdefault
    return tuple(seen)


def _question(prompt: str) -> str | None:
    """:func:`question_from_prompt` (kept as a name for the hot loop)."""
    return question_from_prompt(prompt)


_join = "".join  # raises TypeError on a non-string item: a C-speed "all strings?" check


def _docs(value: Any) -> tuple[str, ...]:
    if type(value) is list:
        docs = tuple(value)
        try:
            _join(docs)
        except TypeError:
            return tuple(v for v in docs if isinstance(v, str))
        return docs
    return ()


def rollouts_from_step(path: Path, source: str, key: str, step: int, groups: dict[str, Any]) -> list[Rollout]:
    """Turn one parsed step object into Rollout records (one per agent), in document order.

    The hot loop of the reader (one pass per agent): plain dict/type checks and caches for
    alias lookups and deck ids, no per-agent helper calls when the data is well formed. A list,
    not a generator: the caller takes the whole step at once, and resuming a generator per
    record costs more than the list.
    """
    layouts = _LAYOUTS
    decks = _DECKS
    out: list[Rollout] = []
    append = out.append
    for uid, group in groups.items():
        agents = group.get("agents") if type(group) is dict else None
        if type(agents) is not list:
            raise InputError(f"group {uid!r} in {key!r} has no 'agents' list", where=path,
                             expected='{"prompt": "...", "agents": [{"agent_id": 1, "scores": {...}}]}')
        prompt = group.get("prompt")
        question = _question(prompt) if type(prompt) is str else None
        dataset_id = uid if dataset_id_like(uid) else None
        if len(group) > 2:
            for gk, gv in group.items():
                if gk not in ("agents", "prompt") and canonical_field(gk) == "dataset_id" and isinstance(gv, str):
                    dataset_id = gv
        for i, agent in enumerate(agents, 1):
            if type(agent) is not dict:
                raise InputError(f"agent #{i} of group {uid!r} in {key!r} is not an object", where=path,
                                 expected='{"agent_id": 1, "scores": {...}}')
            scores: dict[str, float | None] = {}
            ref: tuple[str, ...] = ()
            ret: tuple[str, ...] = ()
            err = None
            so = agent.get("scores")
            if type(so) is dict:
                pairs = layouts.get(keys := tuple(so), _MISSING)
                if pairs is _MISSING:
                    pairs = _layout(keys)
                for k, canon in pairs:
                    v = so[k]
                    t = type(v)
                    scores[canon] = v if t is float else (float(v) if t is int else score_value(v))
                det = so.get("ndcg_details")
                if type(det) is dict:  # _docs(), inlined for the usual lists of strings
                    docs = det.get("reference_documents")
                    if type(docs) is list:
                        ref = tuple(docs)
                        try:
                            _join(ref)
                        except TypeError:
                            ref = _docs(docs)
                    docs = det.get("retrieved_documents")
                    if type(docs) is list:
                        ret = tuple(docs)
                        try:
                            _join(ret)
                        except TypeError:
                            ret = _docs(docs)
                fr = so.get("fail_reason")
                if fr and type(fr) is str:
                    err = fr
            pairs = layouts.get(keys := tuple(agent), _MISSING)
            if pairs is _MISSING:
                pairs = _layout(keys)
            for k, canon in pairs:  # scores written beside "scores" (rare)
                if canon not in scores:
                    v = agent[k]
                    t = type(v)
                    scores[canon] = v if t is float else (float(v) if t is int else score_value(v))
            deck = decks.get(ref)
            if deck is None:
                deck = _deck_ids(ref)
                if len(decks) < 100_000:
                    decks[ref] = deck
            sample = agent.get("agent_id", i)
            latency = agent.get("latency_s")
            append(Rollout(
                uid, source, None, step,
                sample if type(sample) is int else i,
                dataset_id, question, deck, ref, ret, scores,
                None if latency is None else score_value(latency),
                err,
            ))
    return out
