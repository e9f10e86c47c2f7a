"""Readers for record-per-line logs (JSON Lines, unified event logs) and parquet logs.

Each line (or parquet row) is one judged rollout; the unified event log mixes reward events
with many other event types, which are skipped. Field names go through
:mod:`ddai.curriculum.fields`, so ``judge_score``/``model_eval_score`` etc. all land on the
canonical names. A line that is not valid JSON is skipped and counted (or, in strict mode,
ends the run naming file and line) -- never silently turned into a zero score.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from ddai.curriculum.fields import (
    JUDGE_OBJECT_SCORE_KEYS,
    canonical_field,
    canonical_score,
    dataset_id_like,
    deck_ids,
    normalize_key,
    question_from_prompt,
    score_value,
)
from ddai.curriculum.records import Rollout

# Event types that carry one judged rollout each (DDAI's unified logger and ddai's own log).
REWARD_EVENT_TYPES = frozenset({
    "rm.flash.detail", "rm.phase1.detail", "rm.phase2.detail", "rm.batch.summary", "rm.reward",
    "reward", "reward.judged", "judge.result", "rollout.scored",
})
IGNORED_EVENT_TYPES = frozenset({"rm.ndcg.debug", "rm.gemini.detail"})


def is_reward_event(event_type: Any) -> bool:
    """Whether an event of this type is a scored rollout (others are skipped, not counted)."""
    if not isinstance(event_type, str) or event_type in IGNORED_EVENT_TYPES:
        return False
    return event_type in REWARD_EVENT_TYPES or event_type.startswith(("rm.", "reward"))


class Malformed(Exception):
    """A record that cannot become a Rollout; the caller counts or raises it."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def parse_line(raw: bytes) -> Any:
    """One JSON value from a line; NaN/Infinity (written by Python's json) are accepted.

    Valid JSON that Python cannot hold -- an integer of more than 4,300 digits, nesting deeper
    than the interpreter's recursion limit -- is a malformed record too, never a crash.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            msg = getattr(exc, "msg", str(exc))
            raise Malformed(f"not valid JSON ({msg})") from None
        except RecursionError:
            raise Malformed("nested too deeply to read") from None
        except (ValueError, OverflowError) as exc:
            raise Malformed(f"a number Python cannot read ({str(exc)[:60]})") from None


def _docs(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value if isinstance(v, str))
    if hasattr(value, "tolist"):  # numpy arrays from parquet
        return _docs(value.tolist())
    return ()


def _opt_float(value: Any) -> float | None:
    return None if value is None else score_value(value)


_INT64 = 2 ** 63


def _opt_int(value: Any) -> int | None:
    """An integer field (step, sample, tokens) as the outputs can hold it (int64), else None."""
    if isinstance(value, bool) or value is None:
        return None
    out: int | None = None
    if isinstance(value, int):
        out = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        out = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 40:
        out = int(value)
    return out if out is not None and -_INT64 <= out < _INT64 else None


def _add_scores(mapping: dict[str, Any], scores: dict[str, float | None]) -> None:
    """Take the score fields of a nested object; a score already seen at the top level wins."""
    for key, value in mapping.items():
        canon = canonical_score(key)
        if canon is not None and canon not in scores:
            scores[canon] = score_value(value)


def rollout_from_record(rec: Any, source: str, line: int | None) -> Rollout:
    """Map one record (dict) of the JSON Lines / event / parquet shapes to a Rollout."""
    if not isinstance(rec, dict):
        raise Malformed(f"expected a JSON object, found {type(rec).__name__}")
    try:
        return _rollout_from_record(rec, source, line)
    except OverflowError:
        raise Malformed("a score too large for a float") from None


def _judge_object(obj: dict[str, Any], scores: dict[str, float | None], fields: dict[str, Any]) -> None:
    """The judge's own result object (``vlm_result`` of the trajectory reward manager): its
    ``final_score``/``score`` is the judge score (the record's top-level ``final_score`` mixes in
    NDCG), its sub-scores keep their names, its ``error`` is the record's error when none is set."""
    for key, value in obj.items():
        canon = canonical_score(key)
        if canon == "final" or normalize_key(key) in JUDGE_OBJECT_SCORE_KEYS:
            canon = "judge"
        if canon is not None and canon not in scores:
            scores[canon] = score_value(value)
        elif canonical_field(key) == "error" and fields.get("error") in (None, "") and value:
            fields["error"] = value


def _rollout_from_record(rec: dict[str, Any], source: str, line: int | None) -> Rollout:
    fields: dict[str, Any] = {}
    scores: dict[str, float | None] = {}
    for key, value in rec.items():
        canon = canonical_score(key)
        if canon is not None:
            if canon not in scores:
                scores[canon] = score_value(value)
            continue
        attr = canonical_field(key)
        if attr is not None and attr not in fields:
            fields[attr] = value
    nested = fields.get("scores")
    if isinstance(nested, dict):
        _add_scores(nested, scores)
        det = nested.get("ndcg_details")
        if isinstance(det, dict) and "ndcg_details" not in fields:
            fields["ndcg_details"] = det
    subs = fields.get("judge_subscores")
    if isinstance(subs, dict):
        _add_scores(subs, scores)
    judged = fields.get("judge_result")
    if isinstance(judged, dict):
        _judge_object(judged, scores, fields)
    det = fields.get("ndcg_details")
    ref = _docs(fields.get("reference_docs"))
    ret = _docs(fields.get("retrieved_docs"))
    if isinstance(det, dict):
        ref = ref or _docs(det.get("reference_documents"))
        ret = ret or _docs(det.get("retrieved_documents"))
    dataset_id = fields.get("dataset_id")
    dataset_id = str(dataset_id) if isinstance(dataset_id, (str, int)) and not isinstance(dataset_id, bool) else None
    group = fields.get("group")
    question = fields.get("question")
    if isinstance(group, (str, int)) and not isinstance(group, bool) and str(group) != "":
        group = str(group)
        if dataset_id is None and dataset_id_like(group):
            dataset_id = group
    elif dataset_id is not None:
        group = dataset_id
    elif isinstance(question, str) and question.strip() and scores:
        # The users' batch-mode reward log (and its unified "rm.batch.summary" events, the
        # trajectory reward manager's log) carries no uid: the question is the only key. All
        # rollouts of one question form one group; matching then goes by question text.
        group = question
    else:
        raise Malformed("no group id (expected a 'uid' field, or 'dataset_id', or a 'query' with scores)")
    if not isinstance(question, str):
        prompt = fields.get("prompt")
        question = question_from_prompt(prompt) if isinstance(prompt, str) else None
    tokens = fields.get("tokens")
    if isinstance(tokens, dict):
        tokens = _opt_int(tokens.get("total"))
        if tokens is None:
            parts = [_opt_int(v) for k, v in fields["tokens"].items() if k != "total"]
            tokens = sum(p for p in parts if p is not None) if any(p is not None for p in parts) else None
    else:
        tokens = _opt_int(tokens)
    err = fields.get("error")
    ts = fields.get("timestamp")
    cache_hit = fields.get("cache_hit")
    judge_failed = fields.get("judge_failed")
    return Rollout(
        group=group, source=source, line=line,
        step=_opt_int(fields.get("step")),
        sample_idx=_opt_int(fields.get("sample_idx")),
        dataset_id=dataset_id,
        question=question,
        deck_ids=deck_ids(ref),
        reference_docs=ref,
        retrieved_docs=ret,
        scores=scores,
        latency_s=_opt_float(fields.get("latency_s")),
        error=None if err is None or err == "" else str(err),
        cache_hit=cache_hit if isinstance(cache_hit, bool) else None,
        tokens=tokens,
        cost_usd=_opt_float(fields.get("cost_usd")),
        timestamp=None if ts is None else str(ts),
        judge_failed=judge_failed if isinstance(judge_failed, bool) else None,
    )


def iter_lines(path: Path, fh: BinaryIO, *, events: bool,
               on_malformed: Callable[[int, str], None]) -> Iterator[Rollout]:
    """Rollouts of a JSON Lines file; ``events``: keep only reward events (others skipped).

    ``fh`` is the (decompressed) stream from :func:`ddai.curriculum.read_io.open_log`, which
    hashes and counts the file's bytes. A line may be of any length.
    """
    source = str(path)
    for lineno, raw in enumerate(fh, start=1):
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # a byte-order mark some editors write
        if not raw.strip():
            continue
        try:
            rec = parse_line(raw)
            if events:
                if not isinstance(rec, dict):
                    raise Malformed(f"expected a JSON object, found {type(rec).__name__}")
                if not is_reward_event(rec.get("event_type")):
                    continue
            elif isinstance(rec, dict) and "event_type" in rec and not is_reward_event(rec.get("event_type")):
                continue
            yield rollout_from_record(rec, source, lineno)
        except Malformed as exc:
            on_malformed(lineno, exc.reason)


def iter_parquet(path: Path, advance: Callable[[int], None], *,
                 on_malformed: Callable[[int, str], None]) -> Iterator[Rollout]:
    """Rollouts of a parquet log (one row per rollout, the JSON Lines field names as columns)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ddai.errors import InputError

    try:
        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"not a readable parquet file ({str(exc).splitlines()[0][:120]})", where=path,
                         expected="a parquet rollout log (or set curriculum.format=auto for JSON logs)") from None
    if "extra_info" in names and "prompt" in names and not any(canonical_score(n) for n in names):
        raise InputError("this is a training dataset parquet, not a rollout log", where=path,
                         expected="a log with one row per rollout (uid, ndcg, judge_score, ...)")
    if not any(canonical_field(n) in ("group", "dataset_id") for n in names):
        raise InputError("the parquet log has no group column", where=path,
                         expected="a 'uid' (or 'dataset_id') column")
    source = str(path)
    total = path.stat().st_size
    n_rows = max(pf.metadata.num_rows, 1)
    row = 0
    batches = pf.iter_batches(batch_size=65536)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            break
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise InputError(f"the parquet log is corrupt ({str(exc).splitlines()[0][:120]})", where=path,
                             expected="a complete parquet file") from None
        for rec in batch.to_pylist():
            row += 1
            try:
                yield rollout_from_record(rec, source, None)
            except Malformed as exc:
                on_malformed(row, exc.reason)
        advance(int(total * batch.num_rows / n_rows))
