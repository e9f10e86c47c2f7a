"""The next round's training set, computed from what a Phase 2 round logged.

WHY here and not in the report: a campaign computes the next set between two training
rounds, in a small CPU job that has no business importing the report. The report's
``--next-round`` flags and the campaign both call :func:`export`.

The pieces, each small:

* :func:`score_table` — per dataset id, the mean of every score over its *usable* values
  (finite, in [0, 1]); values outside [0, 1] and non-finite or missing ones are counted per
  id, never averaged in. It also keeps the mean judge score at the id's last step (the
  legacy rule needs it) and the position of the id's first record.
* :class:`NextRoundRule` and its presets — a rule assigns each scored id to a named set;
  the base class owns ordering, exclusion, the appended parquets and the manifest entry.

  ``focus``        the users' focus recipe: ids whose mean ``score`` (final, judge or ndcg)
                   is at most ``max`` (inclusive), in the dataset's order; round 1 was
                   ``score=final max=0.2`` plus the hand-checked bucket-0 parquet appended,
                   round 2 ``max=0.3`` on round 1's set minus the ids with a wrong ground truth.
  ``ddai47``       the DDAI-47 document's post-round classification: success (mean judge >
                   0.9), potential (0.1 ≤ mean NDCG ≤ 0.8 or 0.1 ≤ mean judge ≤ 0.8; trained
                   next), fail (both below 0.1); ids that fall in none of them are ``other``.
  ``stays_below``  ddai's earlier rule, unchanged: fail = mean judge < 0.3 and still below it
                   at the last step (trained next), success = mean judge ≥ 0.7, potential =
                   the rest; easy → hard.

* :func:`select` joins the chosen ids back to the dataset rows (every row of a selected id,
  nothing rewritten but ``extra_info``'s appended ``phase2_*`` fields), appends the
  ``include`` parquets' rows after the training set in their own order, drops the
  ``exclude`` ids everywhere, and describes all of it in a manifest dict.
* :func:`write` writes every set as parquet in the dataset's own schema (nested types and HF
  metadata kept) and ``manifest.json`` last, each atomically; the same inputs give the same
  bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ddai.atomic import atomic_path, atomic_write_text
from ddai.errors import ConfigError, InputError

SCORES = ("judge", "ndcg", "final")
ORDERS = ("source", "easy_to_hard")
MANIFEST = "manifest.json"
KIND = "next_round"
_CHUNK = 200_000          # rollouts reduced at a time (memory stays bounded by the number of ids)
_LIST_IDS = 50            # ids listed by name in the manifest before it only counts them


# Thresholds compare in decimal terms: a mean that equals a threshold in decimal arithmetic
# ((0.0 + 0.4 + 0.2) / 3 = 0.2) must land on the threshold's side, not on the side binary
# rounding puts it (0.20000000000000004). Means are compared with this slack both ways.
EPS = 1e-9


def le(x: Any, t: float) -> Any:
    """x ≤ t, inclusive in decimal terms (see :data:`EPS`); NaN is never ≤."""
    return x <= t + EPS


def lt(x: Any, t: float) -> Any:
    """x < t, strict in decimal terms: a mean that rounds to t is not below it."""
    return x < t - EPS


# -- the usable-score rule ------------------------------------------------------------------

try:  # the one usable-score rule lives in fields.py (contract 3) once the reader's version lands
    from ddai.curriculum.fields import usable_mask
except ImportError:  # until then, the same rule here
    def usable_mask(values: Any) -> np.ndarray:
        """True where a score may enter a mean: finite and within [0, 1].

        WHY: reference-style NDCG exceeds 1 when a page is retrieved twice, and a judge that
        failed may leave NaN; averaging either would move a prompt across a threshold silently.
        """
        v = np.asarray(values, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return np.isfinite(v) & (v >= 0.0) & (v <= 1.0)


# -- per-id scores --------------------------------------------------------------------------

def _reduce(rows: pd.DataFrame, offset: int) -> pd.DataFrame:
    """Per (id, step) sums and counts of one chunk of per-rollout rows."""
    n = len(rows)
    out: dict[str, Any] = {
        "id": rows["id"].astype(str).to_numpy(),
        "step": (pd.to_numeric(rows["step"], errors="coerce").fillna(-1).astype(np.int64).to_numpy()
                 if "step" in rows else np.full(n, -1, dtype=np.int64)),
        "first": np.arange(offset, offset + n, dtype=np.int64),
        "rollouts": np.ones(n, dtype=np.int64),
    }
    for s in SCORES:
        x = (pd.to_numeric(rows[s], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
             if s in rows else np.full(n, np.nan))
        ok = usable_mask(x)
        fin = np.isfinite(x)
        out[f"{s}_sum"] = np.where(ok, x, 0.0)
        out[f"{s}_n"] = ok.astype(np.int64)
        out[f"{s}_out_of_range"] = (fin & ~ok).astype(np.int64)
        out[f"{s}_missing"] = (~fin).astype(np.int64)
    df = pd.DataFrame(out)
    agg = {c: "sum" for c in df.columns if c not in ("id", "step", "first")}
    agg["first"] = "min"
    return df.groupby(["id", "step"], sort=False, as_index=False).agg(agg)


def _chunks_from_rollouts(rollouts: Iterable[Any]) -> Iterable[pd.DataFrame]:
    cols: dict[str, list[Any]] = {"id": [], "step": [], **{s: [] for s in SCORES}}
    for r in rollouts:
        cols["id"].append(r.dataset_id or r.group)
        cols["step"].append(r.step)
        sc = r.scores or {}
        for s in SCORES:
            v = sc.get(s)
            cols[s].append(np.nan if v is None else v)
        if len(cols["id"]) >= _CHUNK:
            yield pd.DataFrame(cols)
            cols = {k: [] for k in cols}
    if cols["id"]:
        yield pd.DataFrame(cols)


def score_table(rows: pd.DataFrame | Iterable[Any]) -> pd.DataFrame:
    """One row per id: rollouts, per score mean/n/out_of_range/missing, judge at the last step.

    ``rows``: a DataFrame of per-rollout rows (``id``, optional ``step``, any of ``judge``,
    ``ndcg``, ``final``; NaN or absent = no value), or an iterable of
    :class:`~ddai.curriculum.records.Rollout` (id = its ``dataset_id``, else its group).
    Rows come out in the order of each id's first record (``first`` = that record's index).
    """
    if isinstance(rows, pd.DataFrame):
        if "id" not in rows.columns:
            raise InputError("score rows have no 'id' column", where="next round",
                             expected="columns id, step, judge, ndcg, final")
        chunks = (rows.iloc[i:i + _CHUNK] for i in range(0, max(len(rows), 1), _CHUNK))
    else:
        chunks = _chunks_from_rollouts(rows)
    parts, offset = [], 0
    for ch in chunks:
        if len(ch):
            parts.append(_reduce(ch, offset))
            offset += len(ch)
    cols = ["id", "first", "rollouts"] + [f"{s}_{k}" for s in SCORES for k in ("mean", "n", "out_of_range",
                                                                                 "missing")]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "id" else np.float64) for c in
                             cols + ["judge_last", "last_step"]})
    g = pd.concat(parts, ignore_index=True)
    agg = {c: "sum" for c in g.columns if c not in ("id", "step", "first")}
    agg["first"] = "min"
    g = g.groupby(["id", "step"], sort=False, as_index=False).agg(agg)
    per = g.drop(columns="step").groupby("id", sort=False, as_index=False).agg(
        {**{c: "sum" for c in agg if c != "first"}, "first": "min"})
    with np.errstate(invalid="ignore", divide="ignore"):
        for s in SCORES:
            per[f"{s}_mean"] = np.where(per[f"{s}_n"] > 0, per[f"{s}_sum"] / per[f"{s}_n"].clip(lower=1), np.nan)
    # the judge mean at the id's last step that has a usable judge score
    judged = g[g["judge_n"] > 0].sort_values(["id", "step"], kind="mergesort")
    last = judged.groupby("id", sort=False).tail(1)
    last = pd.DataFrame({"id": last["id"], "judge_last": last["judge_sum"] / last["judge_n"],
                         "last_step": last["step"]})
    per = per.merge(last, on="id", how="left")
    per = per.sort_values("first", kind="mergesort").reset_index(drop=True)
    return per[cols + ["judge_last", "last_step"]]


def score_summary(scores: pd.DataFrame) -> dict[str, Any]:
    """Counts for the manifest: ids, rollouts, and per score usable / out of range / missing."""
    return {
        "ids": len(scores),
        "rollouts": int(scores["rollouts"].sum()) if len(scores) else 0,
        "scores": {s: {"usable": int(scores[f"{s}_n"].sum()), "out_of_range": int(scores[f"{s}_out_of_range"].sum()),
                       "missing_or_nonfinite": int(scores[f"{s}_missing"].sum())} for s in SCORES},
    }


# -- rules ----------------------------------------------------------------------------------

def _unit(name: str, v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} is {v!r}", where="next-round rule", expected="a number in [0, 1]") from None
    if not 0.0 <= x <= 1.0:
        raise ConfigError(f"{name} is {x}", where="next-round rule", expected="a number in [0, 1]")
    return x


class NextRoundRule:
    """A named way to split a round's ids into sets; one set is the next round's training set.

    Subclasses declare ``name``, ``sets``, ``train_set``, the score their easy → hard order
    sorts by, and implement :meth:`assign` (and :meth:`params` / :meth:`descriptions` for the
    manifest). Ordering, joining, including and excluding are the base's (:func:`select`).
    """

    name: ClassVar[str]
    sets: ClassVar[tuple[str, ...]]
    train_set: ClassVar[str]
    default_order: ClassVar[str] = "source"
    # extra_info fields the sets' rows gain (score means over the round's log)
    annotate: ClassVar[tuple[str, ...]] = ("judge", "ndcg", "rollouts", "final")

    def __init__(self, order: str | None = None):
        order = order or self.default_order
        if order not in ORDERS:
            raise ConfigError(f"order {order!r}", where=f"next-round rule {self.name}",
                              expected=f"one of {', '.join(ORDERS)}")
        self.order = order

    @property
    def order_score(self) -> str:
        return "judge"

    def params(self) -> dict[str, Any]:
        return {}

    def descriptions(self) -> dict[str, str]:
        raise NotImplementedError

    def assign(self, scores: pd.DataFrame) -> pd.Series:
        """The set name of each id of ``scores`` (same index), or None for ids in no set."""
        raise NotImplementedError

    def manifest_entry(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params(), "order": self.order, "sets": self.descriptions(),
                "train_set": self.train_set}


class FocusRule(NextRoundRule):
    """The users' focus recipe: ids with mean ``score`` ≤ ``max`` (inclusive), dataset order."""

    name = "focus"
    sets = ("focus",)
    train_set = "focus"

    def __init__(self, score: str = "final", max: float = 0.2, order: str | None = None):
        super().__init__(order)
        if score not in SCORES:
            raise ConfigError(f"focus score {score!r}", where="next-round rule focus",
                              expected=f"one of {', '.join(SCORES)}")
        self.score = score
        self.max = _unit("focus max", max)

    @property
    def order_score(self) -> str:
        return self.score

    def params(self) -> dict[str, Any]:
        return {"score": self.score, "max": self.max}

    def descriptions(self) -> dict[str, str]:
        return {"focus": f"mean {self.score} (usable values) <= {self.max:g}"}

    def assign(self, scores: pd.DataFrame) -> pd.Series:
        m = scores[f"{self.score}_mean"]
        return pd.Series(np.where(m.notna() & le(m, self.max), "focus", None), index=scores.index, dtype=object)


class DDAI47Rule(NextRoundRule):
    """DDAI-47's classification after a focused round (success / potential / fail, + other)."""

    name = "ddai47"
    sets = ("success", "potential", "fail", "other")
    train_set = "potential"

    def __init__(self, success_above: float = 0.9, potential_low: float = 0.1, potential_high: float = 0.8,
                 fail_below: float = 0.1, order: str | None = None):
        super().__init__(order)
        self.success_above = _unit("success_above", success_above)
        self.potential_low = _unit("potential_low", potential_low)
        self.potential_high = _unit("potential_high", potential_high)
        self.fail_below = _unit("fail_below", fail_below)
        if not self.potential_low <= self.potential_high:
            raise ConfigError(f"potential_low {self.potential_low} is above potential_high {self.potential_high}",
                              where="next-round rule ddai47")

    def params(self) -> dict[str, Any]:
        return {"success_above": self.success_above, "potential_low": self.potential_low,
                "potential_high": self.potential_high, "fail_below": self.fail_below}

    def descriptions(self) -> dict[str, str]:
        lo, hi = f"{self.potential_low:g}", f"{self.potential_high:g}"
        return {"success": f"mean judge > {self.success_above:g}",
                "potential": f"not success, and {lo} <= mean ndcg <= {hi} or {lo} <= mean judge <= {hi}",
                "fail": f"mean ndcg < {self.fail_below:g} and mean judge < {self.fail_below:g}",
                "other": "scored, but in none of the sets above (the document leaves these gaps)"}

    def assign(self, scores: pd.DataFrame) -> pd.Series:
        j = scores["judge_mean"].to_numpy(dtype=np.float64)
        nd = scores["ndcg_mean"].to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            success = ~le(j, self.success_above) & np.isfinite(j)
            band = lambda x: le(self.potential_low, x) & le(x, self.potential_high)
            potential = band(nd) | band(j)
            fail = lt(nd, self.fail_below) & lt(j, self.fail_below)
        scored = np.isfinite(j) | np.isfinite(nd)
        out = np.select([success, potential, fail, scored], ["success", "potential", "fail", "other"], default="")
        return pd.Series([v or None for v in out], index=scores.index, dtype=object)


class StaysBelowRule(NextRoundRule):
    """ddai's earlier rule: fail = mean judge below ``fail_below`` and still below at the last step."""

    name = "stays_below"
    sets = ("success", "potential", "fail")
    train_set = "fail"
    default_order = "easy_to_hard"
    annotate = ("judge", "ndcg", "rollouts")

    def __init__(self, fail_below: float = 0.3, success_from: float = 0.7, order: str | None = None):
        super().__init__(order)
        self.fail_below = _unit("fail_below", fail_below)
        self.success_from = _unit("success_from", success_from)
        if not self.fail_below < self.success_from:
            raise ConfigError(f"--fail-below {self.fail_below} must be smaller than --success-from "
                              f"{self.success_from}", where="next-round thresholds")

    def params(self) -> dict[str, Any]:
        return {"fail_below": self.fail_below, "success_from": self.success_from}

    def descriptions(self) -> dict[str, str]:
        return {"fail": "mean judge < fail_below and last-appearance judge < fail_below",
                "success": "mean judge >= success_from", "potential": "every other scored prompt"}

    def assign(self, scores: pd.DataFrame) -> pd.Series:
        m = scores["judge_mean"].to_numpy(dtype=np.float64)
        last = scores["judge_last"].fillna(scores["judge_mean"]).to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            success = le(self.success_from, m)
            fail = lt(m, self.fail_below) & lt(last, self.fail_below)
        out = np.select([~np.isfinite(m), success, fail], ["", "success", "fail"], default="potential")
        return pd.Series([v or None for v in out], index=scores.index, dtype=object)


RULES: dict[str, type[NextRoundRule]] = {r.name: r for r in (FocusRule, DDAI47Rule, StaysBelowRule)}


def make_rule(name: str, **params: Any) -> NextRoundRule:
    """A rule by preset name with its options (None values mean "the preset's default")."""
    cls = RULES.get(name)
    if cls is None:
        raise ConfigError(f"unknown next-round rule {name!r}", where="next-round rule",
                          expected=f"one of {', '.join(RULES)}")
    try:
        return cls(**{k: v for k, v in params.items() if v is not None})
    except TypeError as exc:
        raise ConfigError(f"{exc}", where=f"next-round rule {name}") from None


def split(scores: pd.DataFrame, rule: NextRoundRule) -> dict[str, pd.DataFrame]:
    """The rows of ``scores`` in each set of ``rule``, easy → hard (mean descending, then id)."""
    who = rule.assign(scores)
    key = f"{rule.order_score}_mean"
    return {s: scores[who == s].sort_values([key, "id"], ascending=[False, True], kind="mergesort")
            for s in rule.sets}


# -- inputs: datasets, appended parquets, excluded ids ---------------------------------------

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def read_parquet(path: str | Path, what: str):
    """A training parquet (must have ``id`` and ``extra_info``), or a one-line InputError."""
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} not found" if not p.exists() else f"{what} is not a regular file", where=p,
                         expected="a training parquet (id, ..., extra_info)")
    try:
        t = pq.read_table(p)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds for a bad file
        raise InputError(f"cannot read {what}: {str(exc).splitlines()[0][:200]}", where=p,
                         expected="a parquet file") from None
    missing = [c for c in ("id", "extra_info") if c not in t.column_names]
    if missing:
        raise InputError(f"{what} has no {' / '.join(repr(c) for c in missing)} column", where=p,
                         expected="the training schema (id, file_name, ..., extra_info)")
    import pyarrow as pa

    if not pa.types.is_struct(t.schema.field("extra_info").type):
        raise InputError(f"{what}'s extra_info is {t.schema.field('extra_info').type}, not a struct", where=p,
                         expected="extra_info as a struct (the training schema)")
    return t


def concat(tables: Sequence[Any], paths: Sequence[Path]):
    """Rows of all ``tables`` in order; ``extra_info`` fields are unified, other columns must agree.

    WHY this strict: an appended file whose ``prompt`` or ``reward_model`` type differs would
    make verl read the rows differently; only ``extra_info`` legitimately gains fields
    (``phase1_*``, ``phase2_*``) from one step of the pipeline to the next.
    """
    import pyarrow as pa

    base = tables[0]
    for t, p in zip(tables[1:], paths[1:]):
        if t.schema.names != base.schema.names:
            raise InputError(f"columns {t.schema.names} differ from {base.schema.names} of {paths[0]}", where=p,
                             expected="the same columns as the dataset")
        for name in base.schema.names:
            if name != "extra_info" and t.schema.field(name).type != base.schema.field(name).type:
                raise InputError(f"column {name!r} is {t.schema.field(name).type}, but "
                                 f"{base.schema.field(name).type} in {paths[0]}", where=p,
                                 expected="the dataset's column types")
    if len(tables) == 1:
        return base
    try:
        out = pa.concat_tables([t.replace_schema_metadata(None) for t in tables], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"extra_info fields do not agree: {exc}", where=paths[-1],
                         expected="extra_info fields of the same types as the dataset's") from None
    return out.replace_schema_metadata(base.schema.metadata)


def read_ids(path: str | Path) -> list[str]:
    """Ids to exclude: one per line (blank lines and ``#`` comments skipped), or a JSON list.

    A JSON object is accepted in the shape of the users' GT-check result
    (``{"filter_uids": {"all": [...]}}``).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("exclude file not found", where=p, expected="ids, one per line, or a JSON list") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read exclude file: {exc}", where=p, expected="a UTF-8 text file") from None
    s = text.strip()
    if s[:1] in ("[", "{"):
        try:
            doc = json.loads(s)
        except ValueError as exc:
            raise InputError(f"not valid JSON ({exc})", where=p, expected="a JSON list of ids") from None
        if isinstance(doc, dict):
            doc = (doc.get("filter_uids") or {}).get("all") if isinstance(doc.get("filter_uids"), dict) else None
        if not isinstance(doc, list) or not all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in doc):
            raise InputError("not a list of ids", where=p,
                             expected='a JSON list of id strings (or {"filter_uids": {"all": [...]}})')
        return [str(x) for x in doc]
    ids = []
    for n, line in enumerate(text.splitlines(), 1):
        v = line.split("#", 1)[0].strip()
        if not v:
            continue
        if any(ch.isspace() for ch in v) or "," in v:
            raise InputError(f"line {n}: {v[:60]!r} is not one id", where=f"{p}:{n}", expected="one id per line")
        ids.append(v)
    return ids


# -- selection --------------------------------------------------------------------------------

@dataclass
class Selection:
    """What :func:`select` chose: one table per set (dataset schema) and the manifest dict."""

    tables: dict[str, Any]
    manifest: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)


def _annotated(table, rows: pd.DataFrame | None, n_extra: int, fields: tuple[str, ...]):
    """``table`` with ``extra_info.phase2_<field>`` set from ``rows`` (then null for the
    ``n_extra`` appended rows)."""
    import pyarrow as pa

    from ddai.curriculum.write import add_extra_info_features

    def col(name: str) -> pa.Array:
        if name == "rollouts":
            vals = [] if rows is None else rows["rollouts"].astype(np.int64).tolist()
            return pa.array(vals + [None] * n_extra, pa.int64())
        vals = [] if rows is None else [None if not np.isfinite(v) else float(v) for v in
                                        rows[f"{name}_mean"].to_numpy(dtype=np.float64)]
        return pa.array(vals + [None] * n_extra, pa.float64())

    new = {f"phase2_{f}": col(f) for f in fields}
    ei = table.column("extra_info").combine_chunks()
    if isinstance(ei, pa.ChunkedArray):
        ei = pa.array([], type=ei.type)
    kept_fields, arrays = [], []
    for i in range(ei.type.num_fields):
        f = ei.type.field(i)
        if f.name not in new:
            kept_fields.append(f)
            arrays.append(ei.field(i))
    for name, arr in new.items():
        kept_fields.append(pa.field(name, arr.type))
        arrays.append(arr)
    mask = ei.is_null() if ei.null_count else None
    struct = pa.StructArray.from_arrays(arrays, fields=kept_fields, mask=mask)
    idx = table.column_names.index("extra_info")
    old = table.schema.field(idx)
    out = table.set_column(idx, pa.field("extra_info", struct.type, nullable=old.nullable), struct)
    added = [(n, a.type) for n, a in new.items()]
    return out.replace_schema_metadata(add_extra_info_features(table.schema.metadata, added))


def _ids_list(ids: Iterable[str]) -> list[str]:
    return sorted(ids)[:_LIST_IDS]


def select(scores: pd.DataFrame, dataset_paths: Sequence[str | Path], rule: NextRoundRule, *,
           include: Sequence[str | Path] = (), exclude: str | Path | Sequence[str] | None = None,
           source_log: str | Sequence[str] | None = None, batch_size: int | None = None,
           remainder: str = "warn") -> Selection:
    """Join ``rule``'s sets of ``scores`` (see :func:`score_table`) to the dataset rows.

    Every dataset row whose id a set chose is taken (duplicates kept, as a filter keeps
    them); ``order=source`` keeps the dataset's order, ``easy_to_hard`` sorts by the rule's
    score mean descending, then id. The ``include`` parquets' rows follow the training set
    in their own order. ``exclude`` (a file of ids, or the ids) removes ids from every set
    and from the appended rows. ``batch_size`` (optional) aligns the training set to verl's
    batches by ``remainder`` (``warn`` | ``trim`` | ``pad``, as the curriculum's
    ``curriculum.remainder``; trimmed rows go to a ``remainder`` set) and records
    ``batch.steps_per_epoch``, which Phase 2 cross-checks.
    """
    import pyarrow as pa

    from ddai.curriculum import batch as batching

    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool)
                                   or batch_size < 1):
        raise ConfigError(f"batch size {batch_size!r}", where="next round", expected="an integer >= 1")
    if remainder not in ("warn", "trim", "pad"):
        raise ConfigError(f"remainder policy {remainder!r}", where="next round", expected="warn, trim or pad")

    if not dataset_paths:
        raise InputError("no dataset to join the next-round sets to", where="--next-round",
                         expected="--dataset FILE.parquet or a curriculum directory among the inputs")
    dpaths = [Path(p) for p in dataset_paths]
    base = concat([read_parquet(p, "dataset") for p in dpaths], dpaths)
    ipaths = [Path(p) for p in include]
    inc_tables = [read_parquet(p, "--include parquet") for p in ipaths]
    if inc_tables:
        concat([base, *inc_tables], [dpaths[0], *ipaths])  # type check before any work
    if exclude is None:
        excl_ids: list[str] = []
        excl_src = None
    elif isinstance(exclude, (str, Path)):
        excl_ids, excl_src = read_ids(exclude), str(exclude)
    else:
        excl_ids, excl_src = [str(x) for x in exclude], "ids"
    excl = set(excl_ids)

    sets = split(scores, rule)
    ids = pd.Series(base.column("id").to_pylist(), dtype=object)
    in_dataset = set(ids.dropna())
    tables: dict[str, Any] = {}
    entries: dict[str, Any] = {}
    excluded_hits: set[str] = set()
    batch_report: dict[str, Any] | None = None
    for name in rule.sets:
        chosen = sets[name]
        missing = chosen.loc[~chosen["id"].isin(in_dataset), "id"].tolist()
        keep = chosen[chosen["id"].isin(in_dataset) & ~chosen["id"].isin(excl)]
        excluded_hits.update(chosen.loc[chosen["id"].isin(excl), "id"])
        rank = pd.Series(np.arange(len(keep)), index=keep["id"].to_numpy())
        hit = ids.isin(rank.index)
        pos = np.flatnonzero(hit.to_numpy())
        if rule.order == "easy_to_hard":
            pos = pos[np.lexsort((pos, rank.loc[ids.iloc[pos]].to_numpy()))]
        row_ids = ids.iloc[pos]
        per_row = keep.set_index("id").loc[row_ids.to_numpy()].reset_index() if len(pos) else keep.iloc[:0]
        taken = base.take(pa.array(pos, pa.int64()))
        entry: dict[str, Any] = {"file": f"{name}.parquet", "ids": len(keep),
                                 "not_in_dataset": _ids_list(missing), "not_in_dataset_count": len(missing)}
        n_inc = 0
        if name == rule.train_set and inc_tables:
            inc_entries = []
            parts = [taken]
            for p, t in zip(ipaths, inc_tables):
                tid = pd.Series(t.column("id").to_pylist(), dtype=object)
                keep_rows = np.flatnonzero(~tid.isin(excl).to_numpy())
                excluded_hits.update(tid[tid.isin(excl)])
                parts.append(t.take(pa.array(keep_rows, pa.int64())))
                inc_entries.append({"path": str(p), "sha256": _sha256(p), "rows": t.num_rows,
                                    "appended": len(keep_rows),
                                    "excluded": int(t.num_rows - len(keep_rows))})
                n_inc += len(keep_rows)
            taken = concat(parts, [dpaths[0], *ipaths])
            entry["included"] = inc_entries
        t = _annotated(taken, per_row, n_inc, rule.annotate)
        out_ids = t.column("id").to_pylist()
        dup = len(out_ids) - len(set(out_ids))
        entry.update({"rows": t.num_rows, "rows_selected": len(pos), "rows_appended": n_inc,
                      "duplicate_id_rows": dup})
        trimmed = None
        if name == rule.train_set and batch_size is not None:
            plan = batching.plan(list(range(t.num_rows)), batch_size, remainder, ident=out_ids.__getitem__)
            batch_report = plan.report
            if plan.remainder:
                trimmed = t.take(pa.array(plan.remainder, pa.int64()))
            t = t.take(pa.array(plan.train, pa.int64()))
            entry["rows"] = t.num_rows
        tables[name] = t
        entries[name] = entry
        if trimmed is not None:
            tables["remainder"] = trimmed
            entries["remainder"] = {"file": "remainder.parquet", "rows": trimmed.num_rows, "trimmed_from": name}
    unscored = scores.loc[rule.assign(scores).isna(), "id"]
    manifest: dict[str, Any] = {
        "kind": KIND,
        "rule": rule.manifest_entry(),
        "thresholds": rule.params(),
        "sort": ("dataset order" if rule.order == "source"
                 else f"{rule.order_score} mean descending, then id"),
        "source_log": source_log if source_log is None or isinstance(source_log, str) else list(source_log),
        "log": score_summary(scores),
        "dataset": [{"path": str(p), "sha256": _sha256(p)} for p in dpaths],
        "dataset_rows": base.num_rows,
        "dataset_ids_without_scores": len(in_dataset - set(scores["id"])),
        "ids_in_no_set": len(unscored),
        "exclude": None if excl_src is None else {
            "source": excl_src, "ids": len(excl), "removed": len(excluded_hits),
            "removed_ids": _ids_list(excluded_hits),
            "not_selected_anyway": len(excl - excluded_hits)},
        "added_extra_info": [f"phase2_{f}" for f in rule.annotate],
        "sets": entries,
        "train_set": rule.train_set,
        "train_file": entries[rule.train_set]["file"],
        "not_in_dataset": sum(e.get("not_in_dataset_count", 0) for e in entries.values()),
        # the keys Phase 2 reads from a curriculum manifest, so phase2.manifest can point here
        "files": {k: v["file"] for k, v in entries.items()},
        "train_bucket": rule.train_set,
        "batch": batch_report,
    }
    return Selection(tables=tables, manifest=manifest, files={k: v["file"] for k, v in entries.items()})


# -- writing ------------------------------------------------------------------------------------

_ALL_SET_FILES = sorted({f"{s}.parquet" for r in RULES.values() for s in r.sets} | {"remainder.parquet"})


def write(selection: Selection, out_dir: str | Path) -> dict[str, Any]:
    """Write each set's parquet, then ``manifest.json`` (all atomic); drop other rules' set files.

    Returns the short summary the report shows: dir, files, rows, not_in_dataset, rule.
    """
    import ddai
    from ddai.curriculum.write import remove_stale_temp_files, write_parquet

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a directory", where=out, expected="a directory for the next-round sets")
    names = [*selection.files.values(), MANIFEST]
    remove_stale_temp_files(out, names)
    for name, table in selection.tables.items():
        with atomic_path(out / selection.files[name]) as tmp:
            write_parquet(table, tmp)
    manifest = {"ddai_version": ddai.__version__, **selection.manifest}
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    # set files another rule wrote here before would now be described by no manifest
    for stale in _ALL_SET_FILES:
        if stale not in selection.files.values():
            (out / stale).unlink(missing_ok=True)
    return {"dir": str(out), "rule": manifest["rule"]["name"], "train_file": manifest["train_file"],
            "files": dict(selection.files), "rows": {k: t.num_rows for k, t in selection.tables.items()},
            "not_in_dataset": manifest["not_in_dataset"]}


def export(rows: pd.DataFrame | Iterable[Any], dataset_paths: Sequence[str | Path], out_dir: str | Path,
           rule: NextRoundRule, *, include: Sequence[str | Path] = (),
           exclude: str | Path | Sequence[str] | None = None,
           source_log: str | Sequence[str] | None = None, batch_size: int | None = None,
           remainder: str = "warn") -> dict[str, Any]:
    """:func:`score_table` → :func:`select` → :func:`write`: the whole next-round step in one call."""
    scores = rows if _is_score_table(rows) else score_table(rows)
    return write(select(scores, dataset_paths, rule, include=include, exclude=exclude, source_log=source_log,
                        batch_size=batch_size, remainder=remainder), out_dir)


def export_from_logs(logs: str | Path | Sequence[str | Path], dataset_paths: Sequence[str | Path],
                     out_dir: str | Path, rule: NextRoundRule, *, include: Sequence[str | Path] = (),
                     exclude: str | Path | Sequence[str] | None = None, strict: bool = False,
                     progress: bool | None = None, batch_size: int | None = None,
                     remainder: str = "warn") -> dict[str, Any]:
    """:func:`export` reading the round's log(s) with the curriculum reader (any log shape)."""
    from ddai.curriculum.read import iter_rollouts

    paths = [logs] if isinstance(logs, (str, Path)) else list(logs)
    rows = score_table(iter_rollouts(paths, strict=strict, progress=progress))
    src = str(paths[0]) if len(paths) == 1 else [str(p) for p in paths]
    return export(rows, dataset_paths, out_dir, rule, include=include, exclude=exclude, source_log=src,
                  batch_size=batch_size, remainder=remainder)


def _is_score_table(x: Any) -> bool:
    return isinstance(x, pd.DataFrame) and {"first", "rollouts", "judge_mean"} <= set(x.columns)
