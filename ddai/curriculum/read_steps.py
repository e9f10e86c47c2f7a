"""Streaming reader for the step-keyed JSON document (``{"step_N": {"<uid>": {...}}}``).

Why not ``json.load``: real files are one JSON value of gigabytes, ~90 % of whose bytes are response
texts the statistics never look at. This reader:

1. reads big blocks in a helper *thread* (reading, decompressing and SHA-256 release the GIL, so
   they overlap with the parsing on a second core; a thread dies with its process). A big plain
   file is instead cut into segments read by worker processes at once
   (:mod:`ddai.curriculum.read_parallel`), which hands back to this reader from the first step
   it does not read exactly;
2. splits the text at the top-level ``"step_N": {`` keys without parsing it (:class:`StepSplitter`):
   such a key, with an opening quote that follows ``{`` or ``,``, cannot occur inside a JSON string,
   where every quote is escaped. A step-like key nested inside a step also splits; the text before
   it then is not a complete object, the parser notices and joins the pieces again;
3. decodes each step with a *typed* msgspec decoder built from the first step's key layout
   (:mod:`ddai.curriculum.read_typed`): Structs that name only the score, prompt and reference
   fields, so responses are skipped in C and never become Python strings. The decoder refuses
   anything it was not built for (an unknown key, a string score, a NaN literal); that step is
   then read by the general path (orjson, then the standard library) with exactly the old
   semantics, so both paths give the same groups.

Records Python cannot represent (a 5,000-digit integer, 100,000 levels of nesting, a score too
large for a float) do not end the run: the step is split into its groups without recursion, the
bad group is skipped and counted like any malformed record, the others are read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import queue
import re
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import orjson

from ddai.curriculum import find_bytes
from ddai.curriculum.fields import (
    canonical_field,
    canonical_score,
    dataset_id_like,
    deck_of,
    question_from_prompt,
    score_value,
)
from ddai.curriculum.read_io import open_log, open_raw
from ddai.curriculum.records import Rollout
from ddai.errors import InputError

# Bytes handed over by the reading thread at a time. Big enough that per-block Python work does
# not matter, small enough that two or three blocks in flight cost little memory.
BLOCK = 4 * 1024 * 1024
_HEAD_LIMIT = 32 * 1024 * 1024  # bytes before the first step key at most (it is normally one "{")
_MAX_MERGE = 256 * 1024 * 1024  # bytes joined at most while looking for a step's end
_KEEP = 5                       # bytes kept back at a block's end: a '"step' cut by the block boundary
_BLOCKS_AHEAD = 2

_STEP_KEY = re.compile(rb'"(step_?(\d+))"\s*:\s*\{')
_KEY_REST = re.compile(rb'"step_?\d*(?:"\s*(?::\s*)?)?\Z')   # a step key cut by the end of the data
_HEAD = re.compile(rb'\A(?:\xef\xbb\xbf)?\s*\{\s*\Z')
_NAN = re.compile(rb'(?<=[:,\[])(\s*)(NaN|-?Infinity)(?=\s*[,\]}])')
_SPACE = frozenset(b" \t\n\r")
_OPENERS = (0x7B, 0x2C)  # "{", ","

MAX_STEP = 2 ** 63 - 1   # steps are written as int64 (prompt_stats.parquet); a larger one is malformed
RawStep = tuple[str, "int | None", bytes, Any, bool]  # (key, number or None, key text, step text, is last)


class _Incomplete(Exception):
    """The text is not one complete JSON value (a nested step-like key split it, or it is malformed)."""


class Unrepresentable(Exception):
    """Valid JSON that Python cannot hold (huge integer, deep nesting): split per group and skip."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- reading ------------------------------------------------------------------------------------

def _blocks(fh: BinaryIO, block: int) -> Iterator[bytes]:
    """Blocks of ``fh`` read ahead by a helper thread (daemon: it never outlives the process).

    The thread stops when the consumer stops (the generator is closed): it checks a flag
    between blocks and never blocks forever on a full queue.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=_BLOCKS_AHEAD)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            while not stop.is_set():
                data = fh.read(block)
                if not put(data):
                    return
                if not data:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(exc)

    t = threading.Thread(target=run, name="ddai-read", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if isinstance(item, BaseException):
                raise item
            if not item:
                return
            yield item
    finally:
        stop.set()
        t.join()


# --- splitting at step keys ------------------------------------------------------------------------

class SegmentMismatch(Exception):
    """A segment of the document (see :mod:`ddai.curriculum.read_parallel`) does not start at a
    step key or holds something only the sequential reader handles: read the file sequentially."""


class StepSplitter:
    """Cuts the document's text at the step keys; :meth:`feed` blocks in order, then :meth:`close`.

    ``mid=True`` starts in the middle of the document, at a step key that follows a ``,``
    (a segment of a parallel read): anything but white space before that key raises
    :class:`SegmentMismatch`.
    """

    def __init__(self, path: Path, *, mid: bool = False, offset: int = 0):
        self.path = path
        self.mid = mid
        self.offset = offset    # file offset of the next byte fed (of the kept tail, when there is one)
        self.cur_at = -1        # file offset of the open step's key
        self.yield_at = -1      # file offset of the key of the step just yielded
        self.next_at = -1       # file offset just past it (the next key, or the end of the segment)
        self.cur: tuple[str, int | None, bytes] | None = None   # (key, number, key text)
        self.pieces: list[Any] = []
        self.head: list[bytes] = []
        self.head_len = 0
        self.prev = 0x2C if mid else -1  # last non-space byte before the unprocessed data (-1: none yet)
        self.tail = b""

    def _opener_before(self, data: bytes, s: int) -> bool:
        j = s - 1
        while j >= 0 and data[j] in _SPACE:
            j -= 1
        return (data[j] if j >= 0 else self.prev) in _OPENERS

    def feed(self, block: bytes, final: bool = False) -> Iterator[RawStep]:
        data = self.tail + block if self.tail else block
        base = self.offset
        self.tail = b""
        view = memoryview(data)
        pos = 0
        stop = len(data)
        find = find_bytes.find
        s = find(data, b'"step_', 0)
        while s >= 0:
            m = _STEP_KEY.match(data, s)
            if m is None:
                if not final and _KEY_REST.match(data, s):
                    stop = s   # the key continues in the next block
                    break
                s = find(data, b'"step_', s + 1)
                continue
            if not self._opener_before(data, s):
                s = find(data, b'"step_', s + 1)
                continue
            if self.cur is None:
                self._add_head(data[pos:s])
                if self.mid:
                    if b"".join(self.head).strip():
                        raise SegmentMismatch("the segment does not start at a step key")
                elif not _HEAD.match(b"".join(self.head)):
                    raise InputError("unexpected content before the first step key", where=self.path,
                                     expected='a step-keyed JSON document {"step_1": {...}}')
            else:
                self.pieces.append(view[pos:s])
                self.yield_at, self.next_at = self.cur_at, base + s
                yield (*self.cur, self._take(), False)
            try:
                number: int | None = int(m.group(2))
            except ValueError:   # more digits than Python converts (4,300): skipped and counted
                number = None
            if number is not None and number > MAX_STEP:   # the outputs hold steps as int64: the same
                number = None
            key = m.group(1).decode() if number is not None else m.group(1)[:40].decode() + "..."
            self.cur = (key, number, data[s:m.end() - 1])
            self.cur_at = base + s
            pos = m.end() - 1
            s = find(data, b'"step_', m.end())
        if not final and stop == len(data) and data.find(b'"', max(0, len(data) - _KEEP)) >= 0:
            stop = max(pos, len(data) - _KEEP)   # a quote near the end may start a key cut by the block
        if pos < stop:
            if self.cur is not None:
                self.pieces.append(view[pos:stop])
            else:
                self._add_head(data[pos:stop])
        j = stop - 1
        while j >= 0 and data[j] in _SPACE:
            j -= 1
        if j >= 0:
            self.prev = data[j]
        self.tail = data[stop:]
        self.offset = base + stop

    def _add_head(self, b: bytes) -> None:
        self.head.append(b)
        self.head_len += len(b)
        if self.mid and b.strip():
            raise SegmentMismatch("the segment does not start at a step key")
        if self.head_len > _HEAD_LIMIT:
            raise InputError("no step keys found in the first part of the document", where=self.path,
                             expected='a step-keyed JSON document {"step_1": {"<uid>": {...}}, ...}')

    def _take(self) -> Any:
        pieces = self.pieces
        self.pieces = []
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def close(self, size: int, *, last: bool = True) -> Iterator[RawStep]:
        """The step still open. ``last=False`` ends a segment that stops before the next step key
        (its last step then ends like any step followed by another: ``},``)."""
        if self.tail:
            yield from self.feed(b"", final=True)
        if not last:
            if self.cur is None:
                raise SegmentMismatch("no step key in the segment")
            self.yield_at, self.next_at = self.cur_at, size
            yield (*self.cur, self._take(), False)
            self.cur = None
            return
        if self.cur is None:
            stripped = b"".join(self.head).strip()
            if stripped.startswith(b"\xef\xbb\xbf"):
                stripped = stripped[3:].strip()
            if stripped in (b"{}", b""):
                return
            if stripped.startswith(b"{") and not stripped.endswith(b"}"):
                raise InputError(f"the document is truncated (it ends at byte {size})", where=self.path,
                                 expected="a complete JSON document")
            raise InputError("the document has no step keys", where=self.path,
                             expected='a step-keyed JSON document {"step_1": {...}}')
        self.yield_at, self.next_at = self.cur_at, size
        yield (*self.cur, self._take(), True)


def split_steps(path: Path, fh: BinaryIO, size: int, block: int | None = None, *,
                start: int = 0) -> Iterator[RawStep]:
    """The raw text of each step of the document in ``fh``, in document order. ``start > 0``: ``fh``
    is positioned at that offset, on a top-level step key (the rest of a parallel read)."""
    splitter = StepSplitter(path, mid=start > 0, offset=start)
    for data in _blocks(fh, block or BLOCK):
        yield from splitter.feed(data)
    yield from splitter.close(size)


def _object_view(text: Any, last: bool) -> memoryview | None:
    """The step object in ``text`` (``{...},`` or, for the last step, ``{...}}``) as a view, or
    None when the text does not end like one (no copy of the text is made)."""
    view = memoryview(text)
    end = len(view)
    while end and view[end - 1] in _SPACE:
        end -= 1
    if last:
        if not end or view[end - 1] != 0x7D:  # "}"
            return None
        end -= 1
        while end and view[end - 1] in _SPACE:
            end -= 1
    elif not end or view[end - 1] != 0x2C:  # ","
        return None
    else:
        end -= 1
    if not end or view[end - 1] != 0x7D:
        return None
    return view[:end]


def loads_general(view: Any) -> Any:
    """One JSON value, the general way: orjson; NaN/Infinity literals (Python's json writes them);
    then the standard library (big integers). Raises :class:`_Incomplete` for text that is not
    valid JSON and :class:`Unrepresentable` for valid JSON Python cannot hold."""
    try:
        return orjson.loads(view)
    except orjson.JSONDecodeError:
        pass
    text = bytes(view)
    if b"NaN" in text or b"Infinity" in text:
        try:
            return orjson.loads(_NAN.sub(rb'\1"\2"', text))
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _Incomplete from None
    except RecursionError:
        raise Unrepresentable("nested too deeply to read") from None
    except (ValueError, OverflowError) as exc:
        raise Unrepresentable(f"a number Python cannot read ({str(exc)[:60]})") from None


def complete_steps(path: Path, raw_steps: Iterator[RawStep], size: int,
                   parse: Callable[[str, int | None, memoryview], Any]) -> Iterator[tuple[str, int | None, Any]]:
    """``(key, number, parse(...))`` per step; pieces of a step split at a nested step-like key are
    joined again (``parse`` raises :class:`_Incomplete` for a piece)."""
    pending: tuple[str, int | None, list[bytes]] | None = None
    for key, number, key_text, text, last in raw_steps:
        if pending is not None:
            pending[2].extend((key_text, bytes(text)))
            key, number, text = pending[0], pending[1], b"".join(pending[2])
        view = _object_view(text, last)
        if view is not None:
            try:
                result = parse(key, number, view)
            except _Incomplete:
                pass
            else:
                pending = None
                yield key, number, result
                continue
        if last:
            if not bytes(memoryview(text)[-64:]).rstrip().endswith(b"}"):
                _raise_truncated(path, key, size)
            _raise_malformed(path, key, size)
        if len(text) > _MAX_MERGE:
            _raise_malformed(path, key, size)
        pending = (key, number, [bytes(text)])


# --- the general path (also what the report's Rollout stream uses) --------------------------------

if sys.version_info >= (3, 11):
    _TOKENS = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{}:,]')
else:  # no possessive quantifiers before 3.11
    _TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}:,]')


def split_members(view: Any) -> list[tuple[bytes, memoryview]]:
    """The ``(key JSON, value text)`` members of a JSON object, found without recursion.

    Only used when a step holds something Python cannot parse whole (deep nesting, a huge
    number): each group is then parsed on its own, so one bad group does not take the step.
    """
    data = bytes(view)
    mv = memoryview(data)
    out: list[tuple[bytes, memoryview]] = []
    depth = 0
    key: bytes | None = None
    start = -1
    expect_key = False
    for m in _TOKENS.finditer(data):
        c = data[m.start()]
        if c == 0x22:  # a string
            if depth == 1 and expect_key:
                key = m.group()
                expect_key = False
        elif c in (0x7B, 0x5B):  # { [
            depth += 1
            if depth == 1:
                expect_key = True
        elif c in (0x7D, 0x5D):  # } ]
            if depth == 1 and key is not None and start >= 0:
                out.append((key, mv[start:m.start()]))
                key = None
            depth -= 1
        elif depth == 1:
            if c == 0x3A:  # :
                start = m.end()
            else:  # ,
                if key is not None and start >= 0:
                    out.append((key, mv[start:m.start()]))
                key, start, expect_key = None, -1, True
    return out


def _parse_general(key: str, number: int | None, view: memoryview) -> Any:
    try:
        return loads_general(view)
    except Unrepresentable as exc:
        exc.text = bytes(view)  # type: ignore[attr-defined]  # split per group by the caller
        return exc


def iter_steps(path: Path, advance: Callable[[int], None], digest: dict[str, str], *,
               block: int | None = None) -> Iterator[tuple[str, int, Any]]:
    """Yield ``(step_key, step_number, step_object)`` parsed the general way; sets
    ``digest["sha256"]`` at the end. A step whose key or content Python cannot read is yielded
    as an :class:`Unrepresentable` (number may be None) for the caller to count."""
    hasher = hashlib.sha256()
    size = path.stat().st_size
    with open_log(path, hasher, advance) as fh:
        for key, number, obj in complete_steps(path, split_steps(path, fh, size, block), size, _parse_general):
            if number is not None and not isinstance(obj, (dict, Unrepresentable)):
                raise InputError(f"{key!r} is not an object", where=path,
                                 expected='{"<uid>": {"prompt": ..., "agents": [...]}}')
            yield key, number, obj  # type: ignore[misc]
    digest["sha256"] = hasher.hexdigest()


def _step_offset(path: Path, key: str) -> int:
    """Byte offset of the top-level key ``key`` in the file (error path only: one linear scan)."""
    pattern = re.compile(rb'"' + re.escape(key.encode()) + rb'"\s*:\s*\{')
    lit = b'"' + key.encode() + b'"'
    offset = 0
    tail = b""
    with open_raw(path) as fh:
        while True:
            chunk = fh.read(BLOCK)
            if not chunk:
                return -1
            data = tail + chunk
            i = data.find(lit)
            while i >= 0:
                if (i == 0 or data[i - 1] != 92) and pattern.match(data, i):
                    return offset - len(tail) + i
                i = data.find(lit, i + 1)
            tail = data[-256:]
            offset += len(chunk)


def _error_offset(path: Path, start: int) -> tuple[int, str]:
    """Exact byte offset and message of the first JSON error in the value starting at ``start``."""
    with open_raw(path) as fh:
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
    except (RecursionError, ValueError):
        return start + skip, "a value Python cannot read"
    return start + skip + len(text[:end].encode("utf-8")), "unexpected data after the step object"


def _compressed(path: Path) -> bool:
    from ddai.curriculum.read_io import compression_of

    with open_raw(path) as fh:
        return compression_of(fh.read(4)) is not None


def _raise_truncated(path: Path, key: str, size: int) -> NoReturn:
    if _compressed(path):
        raise InputError(f"the document is truncated inside {key!r}", where=path,
                         expected="a complete JSON document (was the file still being written or copied?)")
    raise InputError(f"the document is truncated: it ends at byte {size} inside {key!r} "
                     f"(which starts at byte {_step_offset(path, key)})", where=path,
                     expected="a complete JSON document (was the file still being written or copied?)")


def _raise_malformed(path: Path, key: str, size: int) -> NoReturn:
    if _compressed(path):
        raise InputError(f"malformed JSON in {key!r}", where=path, expected="a valid step-keyed JSON document")
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
# doc name -> its deck id (or None): deck pages recur across agents and steps
_DOC_DECKS: dict[str, str | None] = {}


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


def deck_ids_cached(ref: tuple[str, ...]) -> tuple[str, ...]:
    """:func:`ddai.curriculum.fields.deck_ids` of a tuple of strings, cached per tuple and per page."""
    deck = _DECKS.get(ref)
    if deck is not None:
        return deck
    seen: dict[str, None] = {}
    cache = _DOC_DECKS
    for d in ref:
        dk = cache.get(d, _MISSING)
        if dk is _MISSING:
            dk = deck_of(d)
            if len(cache) < 100_000:
                cache[d] = dk
        if dk is not None:
            seen[dk] = None  # re-assigning keeps a key's first position, like setdefault
    deck = tuple(seen)
    if len(_DECKS) < 100_000:
        _DECKS[ref] = deck
    return deck


_QUESTIONS: dict[str, str | None] = {}


def question_cached(prompt: str) -> str | None:
    """:func:`question_from_prompt`, cached (the prompts of a log repeat across steps)."""
    q = _QUESTIONS.get(prompt, _MISSING)
    if q is _MISSING:
        q = question_from_prompt(prompt)
        if len(_QUESTIONS) < 200_000:
            _QUESTIONS[prompt] = q
    return q  # type: ignore[return-value]


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


def _score(v: Any) -> float | None:
    t = type(v)
    return v if t is float else (float(v) if t is int else score_value(v))


def rollouts_from_group(path: Path, source: str, key: str, step: int, uid: str, group: Any) -> list[Rollout]:
    """The Rollout records (one per agent) of one group of one step, in document order.

    Raises InputError for a group that is not ``{"agents": [...]}`` (a structural problem of the
    file) and OverflowError for a score too large for a float (the caller skips and counts it).
    """
    agents = group.get("agents") if type(group) is dict else None
    if type(agents) is not list:
        raise InputError(f"group {uid!r} in {key!r} has no 'agents' list", where=path,
                         expected='{"prompt": "...", "agents": [{"agent_id": 1, "scores": {...}}]}')
    prompt = group.get("prompt")
    question = question_cached(prompt) if type(prompt) is str else None
    dataset_id = uid if dataset_id_like(uid) else None
    if len(group) > 2:
        for gk, gv in group.items():
            if gk not in ("agents", "prompt") and canonical_field(gk) == "dataset_id" and isinstance(gv, str):
                dataset_id = gv
    layouts = _LAYOUTS
    out: list[Rollout] = []
    append = out.append
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
                scores[canon] = _score(so[k])
            det = so.get("ndcg_details")
            if type(det) is dict:
                ref = _docs(det.get("reference_documents"))
                ret = _docs(det.get("retrieved_documents"))
            fr = so.get("fail_reason")
            if fr and type(fr) is str:
                err = fr
        pairs = layouts.get(keys := tuple(agent), _MISSING)
        if pairs is _MISSING:
            pairs = _layout(keys)
        for k, canon in pairs:  # scores written beside "scores" (rare)
            if canon not in scores:
                scores[canon] = _score(agent[k])
        sample = agent.get("agent_id", i)
        latency = agent.get("latency_s")
        append(Rollout(
            uid, source, None, step,
            sample if type(sample) is int else i,
            dataset_id, question, deck_ids_cached(ref), ref, ret, scores,
            None if latency is None else score_value(latency),
            err,
        ))
    return out


def members_of_unreadable(path: Path, key: str, view: Any,
                          on_malformed: Callable[[str, str], None]) -> Iterator[tuple[str, Any]]:
    """The groups of a step that could not be parsed whole, parsed one by one."""
    for key_json, value in split_members(view):
        try:
            uid = json.loads(key_json)
        except (ValueError, RecursionError):
            on_malformed(f"{key} group key", "a key Python cannot read")
            continue
        try:
            group = loads_general(value)
        except Unrepresentable as exc:
            on_malformed(f"{key} group {str(uid)[:60]}", exc.reason)
            continue
        except _Incomplete:
            on_malformed(f"{key} group {str(uid)[:60]}", "not valid JSON")
            continue
        yield uid, group


def rollouts_from_step(path: Path, source: str, key: str, step: int, groups: dict[str, Any],
                       on_malformed: Callable[[str, str], None] | None = None) -> list[Rollout]:
    """Every Rollout of one parsed step (one per agent), in document order. A group holding a score
    too large for a float is skipped and reported to ``on_malformed`` (raised without one)."""
    out: list[Rollout] = []
    for uid, group in groups.items():
        try:
            out.extend(rollouts_from_group(path, source, key, step, uid, group))
        except OverflowError:
            if on_malformed is None:
                raise
            on_malformed(f"{key} group {uid[:60]}", "a score too large for a float")
    return out
