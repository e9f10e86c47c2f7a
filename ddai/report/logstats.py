"""Streaming aggregation of judge logs into one mergeable, bounded-size summary.

WHY columnar and chunked: ``ddai-report logs/gspo_gemini_output.jsonl`` runs every morning
on logs of many GB, on login nodes that other people keep busy. The file (plain, gzip or
zstd; one file or the per-host parts of one log) is streamed in 16 MiB chunks of whole lines
(:mod:`ddai.report.source`). Each chunk is decoded by msgspec with a record type that names
only the fields the report needs (:mod:`ddai.report.decode`), everything else skipped in C
on one core; a chunk the typed decoder refuses (a malformed or truncated line, a field of
an unexpected type, NaN, a huge integer, absurd nesting) is re-read line by line with
orjson, which counts and locates each problem. Either way the rollouts become flat typed
columns that numpy reduces into per-(prompt, step) groups, per-prompt and per-step sums and
quantile sketches; the raw lines are dropped. Memory holds two chunks plus the aggregate,
which grows with the number of prompts and of (prompt, step) groups (72 bytes per group for
the learning curves), never with the bytes or rollouts of the log.

Scores follow the one usable-score rule (finite and within [0, 1]): anything else is
counted — missing, non-finite, invalid, out of range — and never enters a mean.

The other log shapes (step-keyed JSON document, parquet) come through the curriculum
reader's ``iter_rollouts`` and feed the same partial via :meth:`Partial.add_rollout`.
"""

from __future__ import annotations

import json
import math
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from ddai.report.fieldmap import ALIASES, is_reward_event, usable_mask
from ddai.report.sketch import Sketch

BATCH = 65_536                 # rollouts buffered before a numpy reduction
CHUNK_BYTES = 16 * 1024 * 1024  # bytes decoded at once (whole lines)
MAX_EXAMPLES = 20              # malformed-line examples kept for the report
NAN = float("nan")
_BIG = 1 << 53   # integers beyond this are not added to float sums

QUADRANTS = ("solved", "guessing", "reasoning_failure", "failure")

# Columns of the per-(prompt, step) group table, reduced from each batch.
G_COLS = ("n", "j_sum", "j_sq", "j_n", "n_sum", "n_sq", "n_n", "f_sum", "f_sq", "f_n", "err", "jfail",
          "lat_sum", "lat_n", "q_solved", "q_guessing", "q_reasoning_failure", "q_failure", "disc_sum", "disc_n")
GI = {name: i for i, name in enumerate(G_COLS)}
# Narrow columns kept per group for learning curves and first/last-appearance figures.
CURVE_COLS = ("n", "j_sum", "j_n", "n_sum", "n_n", "f_sum", "f_n")


@dataclass
class Thresholds:
    """Where "high" starts for the Phase 3 quadrants (inclusive)."""

    judge_high: float = 0.5
    ndcg_high: float = 0.5


@dataclass
class Malformed:
    """One malformed line: where it is and what was wrong (offset → line at merge time)."""

    reason: str
    offset: int | None = None
    line: int | None = None
    path: str | None = None   # which part, when a log is read from several files


class Partial:
    """Aggregate of some rollouts of one log; partials of disjoint chunks merge exactly."""

    def __init__(self, th: Thresholds):
        self.th = th
        # reading counters
        self.lines = 0
        self.blank = 0
        self.malformed = 0
        self.truncated = 0
        self.skipped = 0          # valid JSON that is not a judged rollout (other events)
        self.examples: list[Malformed] = []
        self.invalid: dict[str, int] = {}  # non-numeric score values per metric
        # prompts
        self.keys: list[str] = []
        self.index: dict[str, int] = {}
        self.per_prompt = np.zeros((0, len(G_COLS)))
        # groups (prompt idx, step) -> curve columns; list of arrays reduced at finish
        self.group_chunks: list[np.ndarray] = []
        # steps
        self.per_step: dict[int, np.ndarray] = {}
        # distributions
        self.sk = {"judge": Sketch("unit"), "ndcg": Sketch("unit"), "final": Sketch("unit"),
                   "latency_s": Sketch("log")}
        self.density = np.zeros((50, 50), dtype=np.int64)  # judge (rows) x ndcg (cols)
        self.missing = {"judge": 0, "ndcg": 0, "final": 0}
        self.nonfinite = {"judge": 0, "ndcg": 0, "final": 0}
        # finite but outside [0, 1] (e.g. reference-style NDCG of a page viewed twice): counted,
        # never averaged (the one usable-score rule, ddai.curriculum.fields)
        self.out_of_range = {"judge": 0, "ndcg": 0, "final": 0}
        self.out_of_range_span: dict[str, list[float]] = {}   # metric -> [min, max] of those values
        self.nan_read = {"judge": 0, "ndcg": 0, "final": 0}  # NaNs in the current buffers
        self.rollouts = 0
        self.errors = 0
        self.judge_failed = 0
        self.cache = [0, 0]       # [hits, known]
        self.tokens = {k: [0.0, 0] for k in ("input", "output", "thinking", "total")}
        self.cost = [0.0, 0]
        self.subscores: dict[str, list[float]] = {}
        # small categorical counts (≤ 50 values each): judge model, prompt version, error kind
        self.labels: dict[str, dict[str, int]] = {"judge_model": {}, "prompt_version": {}, "error_kind": {}}
        self.generator_cost = [0.0, 0]   # ddai's Phase 2 log: the frozen generator's cost per rollout
        self._new_buffers()

    # -- buffers -----------------------------------------------------------------------
    def _new_buffers(self) -> None:
        self.b_p = array("q")
        self.b_s = array("q")
        self.b_j = array("d")
        self.b_n = array("d")
        self.b_f = array("d")
        self.b_l = array("d")
        self.b_e = array("b")
        self.b_x = array("b")
        self.b_c = array("b")
        self.b_t = [array("d") for _ in range(4)]
        self.b_cost = array("d")

    def prompt_index(self, key: str) -> int:
        idx = self.index.get(key)
        if idx is None:
            idx = self.index[key] = len(self.keys)
            self.keys.append(key)
        return idx

    def add_prompts(self, keys: list[str]) -> int | np.ndarray:
        """Indices of distinct ``keys`` (new ones appended, in order): an offset when all are new."""
        if not self.keys:   # a fresh chunk's partial: the keys are its first prompts, in order
            self.keys = list(keys)
            self.index = dict(zip(self.keys, range(len(self.keys))))
            return 0
        return np.array([self.prompt_index(k) for k in keys], dtype=np.int64)

    # -- one record --------------------------------------------------------------------
    def add_dict(self, d: dict[str, Any]) -> bool:
        """Add one parsed JSON object; returns False when it is not a judged rollout.

        Not a rollout: an event of the unified log whose type is not a reward event (even when
        it carries a score-like key, e.g. ``rm.ndcg.debug``), or a record with no score and
        either an ``event_type`` or no id at all. A scored record without an id is keyed by
        its question (the users' batch-mode reward log has no uid).
        """
        get = d.get
        if "event_type" in d and not is_reward_event(d["event_type"]):
            self.skipped += 1
            return False
        j = _first(get, ALIASES["judge"])
        nd = _first(get, ALIASES["ndcg"])
        f = _first(get, ALIASES["final"])
        if j is None and nd is None and f is None and (
                "event_type" in d or not any(k in d for k in ALIASES["prompt"])):
            self.skipped += 1
            return False
        key = _first(get, ALIASES["prompt"])
        if key is None:
            q = _first(get, ALIASES["question"])
            key = q.strip() if type(q) is str and q.strip() else "<no id>"
        elif type(key) is not str:
            key = str(key)
        step = _first(get, ALIASES["step"])
        lat = get("latency_s")
        err = get("error")
        tok = get("tokens")
        cost = get("cost_usd")
        hit = get("cache_hit")
        subs = get("judge_subscores")
        self._append(key, step, j, nd, f, lat, err, get("judge_failed"), hit, tok, cost)
        if subs is not None and type(subs) is dict:
            for name, v in subs.items():
                if type(v) is float or (type(v) is int and -_BIG < v < _BIG):
                    acc = self.subscores.get(name)
                    if acc is None:
                        acc = self.subscores[name] = [0.0, 0]
                    acc[0] += v
                    acc[1] += 1
        for lab in ("judge_model", "prompt_version"):
            v = get(lab)
            if v is not None:
                self._label(lab, str(v))
        if err:
            self._label("error_kind", error_kind(str(err)))
        g = get("generator_cost_usd")
        if type(g) is float or (type(g) is int and -_BIG < g < _BIG):
            self.generator_cost[0] += g
            self.generator_cost[1] += 1
        return True

    def _label(self, lab: str, v: str, n: int = 1) -> None:
        c = self.labels[lab]
        if v in c or len(c) < 50:
            c[v] = c.get(v, 0) + n

    def add_rollout(self, r: Any) -> None:
        """Add one ``ddai.curriculum.records.Rollout`` (from the non-JSONL readers)."""
        s = r.scores or {}
        try:
            self._append(r.dataset_id or r.group, r.step, s.get("judge"), s.get("ndcg"), s.get("final"),
                         r.latency_s, r.error, None, r.cache_hit, r.tokens, r.cost_usd)
        except (OverflowError, ValueError) as exc:   # a number no float can hold
            self.malformed += 1
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append(Malformed(f"a value out of range ({str(exc)[:100]})"))
            return
        if r.error:
            self._label("error_kind", error_kind(str(r.error)))

    def _append(self, key, step, j, nd, f, lat, err, jfail, hit, tok, cost) -> None:
        # convert everything first: a value that cannot become a float (a 400-digit integer)
        # raises here, before any buffer grew, so the caller can count the record as malformed
        sv = step if type(step) is int else _as_step(step)
        jv, nv, fv = self._num("judge", j), self._num("ndcg", nd), self._num("final", f)
        lv = lat if type(lat) is float else (float(lat) if type(lat) is int else NAN)
        if tok is None:
            tv = (NAN, NAN, NAN, NAN)
        elif type(tok) is dict:
            tg = tok.get
            tv = tuple(float(v) if type(v) in (int, float) else NAN for v in map(tg, ("input", "output",
                                                                                   "thinking", "total")))
        else:
            tv = (NAN, NAN, NAN, float(tok) if type(tok) in (int, float) else NAN)
        cv = float(cost) if type(cost) in (int, float) else NAN
        if not -(1 << 62) < sv < (1 << 62):
            raise OverflowError("step number out of range")
        for name, raw, v in (("judge", j, jv), ("ndcg", nd, nv), ("final", f, fv)):
            if type(raw) is float and math.isnan(v):   # a NaN written into the log: non-finite, not missing
                self.nan_read[name] += 1
        self.rollouts += 1
        self.b_p.append(self.prompt_index(key))
        self.b_s.append(sv)
        self.b_j.append(jv)
        self.b_n.append(nv)
        self.b_f.append(fv)
        self.b_l.append(lv)
        self.b_e.append(1 if err else 0)
        self.b_x.append(1 if jfail is True else 0)
        self.b_c.append(-1 if hit is None else (1 if hit else 0))
        for a, v in zip(self.b_t, tv):
            a.append(v)
        self.b_cost.append(cv)
        if len(self.b_p) >= BATCH:
            self.flush()

    def _num(self, metric: str, v: Any) -> float:
        t = type(v)
        if t is float:
            return v
        if t is int:
            return float(v)   # OverflowError for integers beyond a float: the record is malformed
        if v is None:
            return NAN
        self.invalid[metric] = self.invalid.get(metric, 0) + 1
        return NAN

    # -- batch reduction ---------------------------------------------------------------
    def flush(self) -> None:
        """Reduce the buffered rollouts into groups, prompts, steps and sketches."""
        if not len(self.b_p):
            return
        self.reduce(
            np.frombuffer(self.b_p, dtype=np.int64), np.frombuffer(self.b_s, dtype=np.int64),
            np.frombuffer(self.b_j, dtype=np.float64), np.frombuffer(self.b_n, dtype=np.float64),
            np.frombuffer(self.b_f, dtype=np.float64), np.frombuffer(self.b_l, dtype=np.float64),
            np.frombuffer(self.b_e, dtype=np.int8).astype(np.float64),
            np.frombuffer(self.b_x, dtype=np.int8).astype(np.float64),
            np.frombuffer(self.b_c, dtype=np.int8),
            [np.frombuffer(a, dtype=np.float64) for a in self.b_t],
            np.frombuffer(self.b_cost, dtype=np.float64))
        self._new_buffers()

    def reduce(self, p: np.ndarray, s: np.ndarray, j: np.ndarray, nd: np.ndarray, f: np.ndarray,
               lat: np.ndarray, e: np.ndarray, x: np.ndarray, c: np.ndarray, toks: list[np.ndarray],
               cost: np.ndarray) -> None:
        """Fold one batch of rollouts given as columns (NaN = absent; c: -1 unknown, 0, 1)."""
        fin = {}
        for name, arr in (("judge", j), ("ndcg", nd), ("final", f)):
            finite = np.isfinite(arr)
            nan = np.isnan(arr)
            ok = usable_mask(arr)
            self.missing[name] += int(nan.sum()) - self.nan_read[name]
            self.nonfinite[name] += int((~finite & ~nan).sum()) + self.nan_read[name]
            self.nan_read[name] = 0
            outside = finite & ~ok
            if outside.any():
                vals = arr[outside]
                self.out_of_range[name] += int(outside.sum())
                lo, hi = float(vals.min()), float(vals.max())
                cur = self.out_of_range_span.get(name)
                self.out_of_range_span[name] = [lo, hi] if cur is None else [min(cur[0], lo), max(cur[1], hi)]
            fin[name] = ok
            self.sk[name].add_many(arr[ok])
        lok = np.isfinite(lat) & (lat >= 0)
        self.sk["latency_s"].add_many(lat[lok])
        self.errors += int(e.sum())
        self.judge_failed += int(x.sum())
        known = c >= 0
        self.cache[0] += int((c == 1).sum())
        self.cache[1] += int(known.sum())
        for k, arr in zip(("input", "output", "thinking", "total"), toks):
            ok = np.isfinite(arr)
            self.tokens[k][0] += float(arr[ok].sum())
            self.tokens[k][1] += int(ok.sum())
        ok = np.isfinite(cost)
        self.cost[0] += float(cost[ok].sum())
        self.cost[1] += int(ok.sum())

        both = fin["judge"] & fin["ndcg"]
        jh = j >= self.th.judge_high
        nh = nd >= self.th.ndcg_high
        if both.any():
            ji = np.clip((j[both] * 50).astype(np.int64), 0, 49)
            ni = np.clip((nd[both] * 50).astype(np.int64), 0, 49)
            self.density += np.bincount(ji * 50 + ni, minlength=2500).reshape(50, 50)

        jz = np.where(fin["judge"], j, 0.0)
        nz = np.where(fin["ndcg"], nd, 0.0)
        fz = np.where(fin["final"], f, 0.0)
        lz = np.where(lok, lat, 0.0)
        cols = {
            "n": np.ones_like(j), "j_sum": jz, "j_sq": jz * jz, "j_n": fin["judge"].astype(np.float64),
            "n_sum": nz, "n_sq": nz * nz, "n_n": fin["ndcg"].astype(np.float64),
            "f_sum": fz, "f_sq": fz * fz, "f_n": fin["final"].astype(np.float64), "err": e, "jfail": x,
            "lat_sum": lz, "lat_n": lok.astype(np.float64),
            "q_solved": (both & jh & nh).astype(np.float64), "q_guessing": (both & jh & ~nh).astype(np.float64),
            "q_reasoning_failure": (both & ~jh & nh).astype(np.float64),
            "q_failure": (both & ~jh & ~nh).astype(np.float64),
            "disc_sum": np.where(both, jz - nz, 0.0), "disc_n": both.astype(np.float64),
        }
        # group by (prompt, step); step -1 means "no step"
        gkey = p * (1 << 32) + (s + 1)
        uniq, inv = np.unique(gkey, return_inverse=True)
        g = np.empty((uniq.size, len(G_COLS)))
        for i, name in enumerate(G_COLS):
            g[:, i] = np.bincount(inv, weights=cols[name], minlength=uniq.size)
        gp = uniq >> 32
        gs = (uniq & 0xFFFFFFFF) - 1
        # per prompt
        n_prompts = len(self.keys)
        if self.per_prompt.shape[0] < n_prompts:
            grown = np.zeros((n_prompts, len(G_COLS)))
            grown[: self.per_prompt.shape[0]] = self.per_prompt
            self.per_prompt = grown
        for i in range(len(G_COLS)):
            self.per_prompt[:, i] += np.bincount(gp, weights=g[:, i], minlength=n_prompts)
        # per step
        su, sinv = np.unique(gs, return_inverse=True)
        for k, step in enumerate(su.tolist()):
            if step < 0:
                continue
            row = g[sinv == k].sum(axis=0)
            cur = self.per_step.get(step)
            self.per_step[step] = row if cur is None else cur + row
        # curve columns
        curve = np.column_stack([gp.astype(np.float64), gs.astype(np.float64)]
                                + [g[:, GI[c]] for c in CURVE_COLS])
        self.group_chunks.append(curve)

    # -- merging -----------------------------------------------------------------------
    def merge(self, o: Partial) -> None:
        """Fold the partial of a later chunk into this one."""
        self.flush()
        o.flush()
        self.lines += o.lines
        self.blank += o.blank
        self.malformed += o.malformed
        self.truncated += o.truncated
        self.skipped += o.skipped
        room = MAX_EXAMPLES - len(self.examples)
        if room > 0:
            self.examples.extend(o.examples[:room])
        for k, v in o.invalid.items():
            self.invalid[k] = self.invalid.get(k, 0) + v
        known = list(map(self.index.get, o.keys))
        if None in known:
            known = [self.prompt_index(k) if i is None else i for k, i in zip(o.keys, known)]
        remap = np.array(known, dtype=np.int64)
        n_prompts = len(self.keys)
        if self.per_prompt.shape[0] < n_prompts:
            grown = np.zeros((n_prompts, len(G_COLS)))
            grown[: self.per_prompt.shape[0]] = self.per_prompt
            self.per_prompt = grown
        if len(o.keys):
            # o's keys are distinct, so remap has no repeats: one addition per cell, as
            # np.add.at would do, without its per-element overhead
            self.per_prompt[remap] += o.per_prompt[: len(o.keys)]
        for chunk in o.group_chunks:
            chunk = chunk.copy()
            chunk[:, 0] = remap[chunk[:, 0].astype(np.int64)]
            self.group_chunks.append(chunk)
        for step, row in o.per_step.items():
            cur = self.per_step.get(step)
            self.per_step[step] = row.copy() if cur is None else cur + row
        for k in self.sk:
            self.sk[k].merge(o.sk[k])
        self.density += o.density
        for d_self, d_o in ((self.missing, o.missing), (self.nonfinite, o.nonfinite),
                            (self.out_of_range, o.out_of_range)):
            for k in d_self:
                d_self[k] += d_o[k]
        for k, (lo, hi) in o.out_of_range_span.items():
            cur = self.out_of_range_span.get(k)
            self.out_of_range_span[k] = [lo, hi] if cur is None else [min(cur[0], lo), max(cur[1], hi)]
        self.rollouts += o.rollouts
        self.errors += o.errors
        self.judge_failed += o.judge_failed
        self.cache = [self.cache[0] + o.cache[0], self.cache[1] + o.cache[1]]
        for k in self.tokens:
            self.tokens[k] = [self.tokens[k][0] + o.tokens[k][0], self.tokens[k][1] + o.tokens[k][1]]
        self.cost = [self.cost[0] + o.cost[0], self.cost[1] + o.cost[1]]
        self.generator_cost = [self.generator_cost[0] + o.generator_cost[0],
                               self.generator_cost[1] + o.generator_cost[1]]
        for name, (sm, n) in o.subscores.items():
            acc = self.subscores.setdefault(name, [0.0, 0])
            acc[0] += sm
            acc[1] += n
        for lab, counts in o.labels.items():
            mine = self.labels[lab]
            for v, n in counts.items():
                if v in mine or len(mine) < 50:
                    mine[v] = mine.get(v, 0) + n

    def groups(self) -> np.ndarray:
        """All (prompt, step) groups, duplicates across batches summed, sorted by prompt, step."""
        self.flush()
        if not self.group_chunks:
            return np.zeros((0, 2 + len(CURVE_COLS)))
        g = np.concatenate(self.group_chunks)
        key = g[:, 0].astype(np.int64) * (1 << 32) + (g[:, 1].astype(np.int64) + 1)
        uniq, inv = np.unique(key, return_inverse=True)
        out = np.empty((uniq.size, g.shape[1]))
        out[:, 0] = uniq >> 32
        out[:, 1] = (uniq & 0xFFFFFFFF) - 1
        for i in range(2, g.shape[1]):
            out[:, i] = np.bincount(inv, weights=g[:, i], minlength=uniq.size)
        self.group_chunks = [out]
        return out


def _first(get: Callable[[str], Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        v = get(k)
        if v is not None:
            return v
    return None


def _as_step(v: Any) -> int:
    """Steps arrive as ints, numeric strings or "step_12"; anything else means no step."""
    if v is None or type(v) is bool:
        return -1
    if type(v) is float and v.is_integer():
        return int(v)
    if type(v) is str:
        digits = v.removeprefix("step_")
        if digits.isdigit():
            if len(digits) > 18:   # int() of thousands of digits raises; no real step is that big
                raise OverflowError(f"step {v[:20]}... has {len(digits)} digits")
            return int(digits)
    return -1


# -- JSON Lines scanning -----------------------------------------------------------------

def _loads(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        # stdlib json accepts NaN / Infinity, which Python writers emit for float("nan"); it is
        # tried only then (it recurses per nesting level and turns huge integers into ints)
        if b"NaN" in line or b"Infinity" in line:
            return json.loads(line)
        if "UTF-8" in str(exc) or "utf-8" in str(exc):
            # a stray byte in free text (an answer cut mid-character): the typed path skips
            # such text unread, so the record counts here too
            return orjson.loads(line.decode("utf-8", "replace"))
        raise


def scan_bytes(data: bytes, th: Thresholds, *, base_offset: int, at_eof: bool) -> Partial:
    """Aggregate the complete lines in ``data`` (a chunk that starts at a line start)."""
    part = Partial(th)
    pieces = data.split(b"\n")
    last = len(pieces) - 1
    offset = base_offset
    loads = _loads
    add = part.add_dict
    lines = 0
    for i, line in enumerate(pieces):
        if i == last and not line:
            break  # data ended with a newline
        lines += 1
        start = offset
        offset += len(line) + 1
        if not line or line.isspace():
            part.blank += 1
            continue
        try:
            d = loads(line)
        except (ValueError, RecursionError, OverflowError, MemoryError) as exc:
            if i == last and at_eof:
                part.truncated += 1
                reason = "truncated last line (no newline at end of file; log still being written?)"
            else:
                part.malformed += 1
                msg = getattr(exc, "msg", None) or str(exc).splitlines()[0]
                col = getattr(exc, "colno", None)
                reason = f"not valid JSON ({msg[:100]}{f' at column {col}' if col else ''})"
            if len(part.examples) < MAX_EXAMPLES:
                part.examples.append(Malformed(reason, offset=start))
            continue
        if type(d) is not dict:
            part.malformed += 1
            if len(part.examples) < MAX_EXAMPLES:
                part.examples.append(Malformed(f"a JSON {type(d).__name__}, not an object", offset=start))
            continue
        try:
            add(d)
        except (OverflowError, ValueError) as exc:   # a number no float can hold
            part.malformed += 1
            if len(part.examples) < MAX_EXAMPLES:
                part.examples.append(Malformed(f"a value out of range ({str(exc)[:100]})", offset=start))
    part.lines = lines
    part.flush()
    return part


def _arrow_schema():
    import pyarrow as pa

    fields: dict[str, Any] = {}
    for canon in ("judge", "ndcg", "final"):
        for k in ALIASES[canon]:
            fields[k] = pa.float64()
    for k in ALIASES["prompt"]:
        fields[k] = pa.string()
    for k in ALIASES["step"]:
        fields[k] = pa.int64()
    fields.update({
        "event_type": pa.string(), "latency_s": pa.float64(), "error": pa.string(),
        "judge_failed": pa.bool_(), "cache_hit": pa.bool_(), "cost_usd": pa.float64(),
        "generator_cost_usd": pa.float64(),
        "tokens": pa.struct([(k, pa.float64()) for k in ("input", "output", "thinking", "total")]),
        "judge_subscores": pa.struct([(k, pa.float64()) for k in SUBSCORES]),
        "judge_model": pa.string(), "prompt_version": pa.string(),
    })
    return pa.schema(list(fields.items()))


SUBSCORES = ("answer_accuracy", "visual_grounding", "reasoning_consistency")
_SCHEMA = None


def scan_arrow(data: bytes, th: Thresholds) -> Partial:
    """Columnar fast path: pyarrow's multi-threaded JSON reader with an explicit schema.

    Raises ``pyarrow.ArrowInvalid`` on anything unusual (a malformed or truncated line, a
    field of another type, a duplicate key); the caller then re-reads the chunk line by line
    with :func:`scan_bytes`, which counts and locates each problem.
    """
    global _SCHEMA
    import io

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj

    if _SCHEMA is None:
        _SCHEMA = _arrow_schema()
    if data.startswith(b"null") or b"\nnull" in data:
        # pyarrow reads a bare `null` line as an empty record; the line reader calls it malformed
        raise pa.ArrowInvalid("a line holds JSON null")
    table = pj.read_json(io.BytesIO(data), read_options=pj.ReadOptions(block_size=8 << 20),
                         parse_options=pj.ParseOptions(explicit_schema=_SCHEMA,
                                                       unexpected_field_behavior="ignore"))
    part = Partial(th)
    part.lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    part.blank = part.lines - table.num_rows

    def coalesce(names: tuple[str, ...]) -> Any:
        cols = [table.column(k) for k in names]
        return cols[0] if len(cols) == 1 else pc.coalesce(*cols)

    j, nd, f = (coalesce(ALIASES[c]) for c in ("judge", "ndcg", "final"))
    key = coalesce(ALIASES["prompt"])
    for name, col in (("judge", j), ("ndcg", nd), ("final", f)):
        part.nan_read[name] = int(pc.sum(pc.is_nan(col)).as_py() or 0)
    scored = pc.or_(pc.or_(pc.is_valid(j), pc.is_valid(nd)), pc.is_valid(f))
    rollout = pc.or_(scored, pc.and_(pc.is_null(table.column("event_type")), pc.is_valid(key)))
    rollout = pc.fill_null(rollout, False)
    n_roll = pc.sum(rollout).as_py() or 0
    part.skipped = table.num_rows - n_roll
    if n_roll == 0:
        return part
    if n_roll < table.num_rows:
        table = table.filter(rollout)
        j, nd, f = (coalesce(ALIASES[c]) for c in ("judge", "ndcg", "final"))
        key = coalesce(ALIASES["prompt"])
    key = pc.fill_null(key, "<no id>").combine_chunks().dictionary_encode()
    remap = np.array([part.prompt_index(k) for k in key.dictionary.to_pylist()], dtype=np.int64)
    p = remap[key.indices.to_numpy(zero_copy_only=False)]

    def num(col: Any) -> np.ndarray:
        return pc.fill_null(pc.cast(col, "float64"), NAN).to_numpy()

    def flag(col: Any) -> np.ndarray:
        return pc.fill_null(col, False).to_numpy().astype(np.float64)

    s = pc.fill_null(coalesce(ALIASES["step"]), -1).to_numpy()
    err = table.column("error")
    e = pc.fill_null(pc.and_(pc.is_valid(err), pc.not_equal(err, "")), False).to_numpy().astype(np.float64)
    hit = table.column("cache_hit")
    c = np.where(pc.is_null(hit).to_numpy(zero_copy_only=False), -1,
                 flag(hit).astype(np.int8)).astype(np.int8)
    tok = table.column("tokens").combine_chunks()
    toks = [num(tok.field(k)) for k in ("input", "output", "thinking", "total")]
    part.rollouts = n_roll
    part.reduce(p, s.astype(np.int64), num(j), num(nd), num(f), num(table.column("latency_s")), e,
                flag(table.column("judge_failed")), c, toks, num(table.column("cost_usd")))
    subs = table.column("judge_subscores").combine_chunks()
    for name in SUBSCORES:
        col = subs.field(name)
        if col.null_count < len(col):
            vals = num(col)
            ok = np.isfinite(vals)
            part.subscores[name] = [float(vals[ok].sum()), int(ok.sum())]
    for lab in ("judge_model", "prompt_version"):
        counts = pc.value_counts(table.column(lab).drop_null()).to_pylist()
        for item in counts[:50]:
            part._label(lab, str(item["values"]), int(item["counts"]))
    errs = err.drop_null()
    if len(errs):
        for item in pc.value_counts(errs).to_pylist():
            if item["values"]:
                part._label("error_kind", error_kind(item["values"]), int(item["counts"]))
    g = num(table.column("generator_cost_usd"))
    ok = np.isfinite(g)
    part.generator_cost = [float(g[ok].sum()), int(ok.sum())]
    return part


def error_kind(err: str) -> str:
    """The part of an error message before its first colon ("judge: 503 ..." -> "judge")."""
    return err.split(":", 1)[0].strip()[:60] or "error"


def _newlines(data: bytes) -> int:
    """``data.count(b"\\n")``, about twice as fast for a big chunk (one vectorised compare)."""
    if len(data) < 1 << 16:
        return data.count(b"\n")
    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == 10))


def _scan_chunk(data: bytes, offset: int, last: bool, th: Thresholds) -> Partial:
    """One chunk of whole lines: the typed decoder, or line by line when it refuses."""
    import gc

    from ddai.report.decode import Refused, decode, fold

    # The cyclic garbage collector would walk every live container each time the decoder's
    # allocations trip its threshold (half the CPU of this function, measured); nothing here
    # makes reference cycles, so it is paused for the chunk.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        try:
            recs = decode(data)
        except Refused:
            return scan_bytes(data, th, base_offset=offset, at_eof=last and not data.endswith(b"\n"))
        part = Partial(th)
        part.lines = _newlines(data) + (1 if data and not data.endswith(b"\n") else 0)
        part.blank = part.lines - len(recs)
        fold(part, recs, data)
        part.flush()
        return part
    finally:
        if was_enabled:
            gc.enable()


def _prefetch(it: Iterator[Any], ahead: int = 1) -> Iterator[Any]:
    """Run ``it`` (reading + decompressing) in a helper thread, ``ahead`` items in advance.

    A thread, never a process: it dies with the main process whatever kills it, and holds
    no file descriptor of the caller's beyond the process's own.
    """
    import queue
    import threading

    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def pump() -> None:
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            q.put(("error", exc))

    t = threading.Thread(target=pump, name="ddai-report-read", daemon=True)
    t.start()
    try:
        while True:
            tag, val = q.get()
            if tag == "item":
                yield val
            elif tag == "end":
                return
            else:
                raise val
    finally:
        stop.set()
        while True:   # unblock the pump if it waits on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                break


def _scan_serial(p: str, th: Thresholds, on_bytes: Callable[[int], None] | None) -> Iterator[Partial]:
    """The chunks of one file in this process (compressed files, small files, one CPU)."""
    from ddai.report.source import chunks

    for offset, data, last in _prefetch(chunks(p, CHUNK_BYTES, on_raw=on_bytes)):
        part = _scan_chunk(data, offset, last, th)
        for ex in part.examples:
            if ex.offset is not None:
                ex.line = data.count(b"\n", 0, ex.offset - offset) + 1
                ex.offset = None
        del data
        yield part


def _import_for_summary() -> None:
    """Import pandas (the per-prompt tables after the read) while the workers read the log:
    0.3-0.4 s of start-up this process would otherwise spend after them, waiting for nothing."""
    try:
        import pandas  # noqa: F401
    except ImportError:   # reported where it is used
        pass


def _scan_fanned(p: str, plan: list[tuple[int, int, bool]], n_workers: int, th: Thresholds,
                 on_bytes: Callable[[int], None] | None) -> Iterator[Partial]:
    """The same chunks read by worker processes (:mod:`ddai.report.fanout`), in order."""
    from ddai.report import fanout

    done = 0
    for (_, end, _), part in fanout.scan_parallel(p, plan, n_workers,
                                                  lambda data, start, last: _scan_chunk(data, start, last, th),
                                                  meanwhile=_import_for_summary):
        if on_bytes is not None:
            on_bytes(end - done)
            done = end
        yield part


def scan_jsonl(path: str | Sequence[str], th: Thresholds, *, strict: bool = False,
               on_bytes: Callable[[int], None] | None = None) -> Partial:
    """Aggregate a JSON Lines judge log (plain rollouts or a unified event log).

    ``path`` may be several files (the per-host, per-job parts of one log): they are read in
    the order given and aggregated as one log. Files are read in chunks of ``CHUNK_BYTES``.
    A big plain file's chunks are decoded by worker processes (:mod:`ddai.report.fanout`),
    others here, the next chunk read (and decompressed) by a helper thread meanwhile. Either
    way the chunks' partials are merged in file order, so the figures are the same bit for
    bit, and memory holds a few chunks and the running aggregate.
    """
    from ddai.report import fanout

    paths = [path] if isinstance(path, str) else list(path)
    total = Partial(th)
    n_workers = fanout.workers_wanted()
    for p in paths:
        lines_before = 0
        plan = fanout.plan(p, CHUNK_BYTES) if n_workers > 1 else None
        parts = _scan_serial(p, th, on_bytes) if plan is None else _scan_fanned(p, plan, n_workers, th, on_bytes)
        try:
            for part in parts:
                for ex in part.examples:   # ex.line counts from the chunk's start
                    ex.line += lines_before
                    if len(paths) > 1:
                        ex.path = p
                if strict and part.examples:
                    ex = part.examples[0]
                    from ddai.errors import InputError

                    raise InputError(ex.reason, where=f"{p}:{ex.line}",
                                     expected="one JSON object per line (--strict makes this fatal)")
                lines_before += part.lines
                total.merge(part)
        finally:
            parts.close()   # stops the reading thread or the worker processes now, not at GC
    return total


# -- other shapes through the curriculum reader ------------------------------------------

def scan_rollouts(rollouts: Iterable[Any], th: Thresholds) -> Partial:
    """Aggregate ``Rollout`` records from ``ddai.curriculum.read.iter_rollouts``."""
    part = Partial(th)
    for r in rollouts:
        part.add_rollout(r)
    part.flush()
    return part
