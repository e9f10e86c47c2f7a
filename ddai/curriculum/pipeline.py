"""One curriculum run: read → stats → match → bucket → order → batch-align → write.

WHY everything is decided before anything is written: a bad setting, an empty training
bucket or an unreadable input must fail with the previous outputs untouched. All output
files are then staged as temporary files beside their targets and only moved into place
once every one of them is complete, the manifest last (see :func:`_write_all`).
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import pyarrow as pa

from ddai.atomic import Generation
from ddai.curriculum import arrow_build, duplicates, manifest, retain, write
from ddai.curriculum import batch as batching
from ddai.curriculum import bucket as bucketing
from ddai.curriculum.config import validate_settings
from ddai.curriculum.dataset import Dataset, load_dataset
from ddai.curriculum.duplicates import Kept
from ddai.curriculum.match import DatasetIndex, MatchResult, match_groups, normalize_question
from ddai.curriculum.order import Item, easy_to_hard, order_items
from ddai.curriculum.records import Rollout
from ddai.curriculum.stats import (
    SCORE_FIELDS,
    GroupTable,
    Summary,
    SummaryColumns,
    collect_groups,
    segments_index,
    sums_per_run,
)
from ddai.errors import InputError

EXTRA_BUCKETS = ("no_score", "unmatched", "ambiguous")
PROMPT_STATS = "prompt_stats.parquet"
MANIFEST = "manifest.json"


@dataclass
class ReadInfo:
    """What the reader reports, in the manifest's shape."""

    inputs: list[manifest.InputFile] = field(default_factory=list)
    read: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    """The decided curriculum, before writing (also what tests inspect)."""

    dataset: Dataset
    index: DatasetIndex
    groups: GroupTable
    match: MatchResult
    kept: Kept                               # the groups that count, per matched row
    summaries: dict[int, Summary]            # row -> summary of the bucketing score
    columns: dict[str, SummaryColumns]       # score field -> summaries of the kept rows (in ``kept`` order)
    kept_index: np.ndarray                   # dataset row -> its entry in ``columns`` (-1: no kept group)
    labels: list[str]                        # bucket per dataset row
    bucketing: bucketing.Bucketing
    files: dict[str, list[int]]              # bucket -> rows in file order (pads repeated)
    plan: batching.BatchPlan
    duplicates: dict[str, Any]


# --- inputs --------------------------------------------------------------------------------

def log_paths(path: str | os.PathLike[str]) -> list[Path]:
    """A log file, or every log file of a directory (sorted by name, hidden files skipped).

    Same selection as the reader's; done here too so a wrong path (missing, a FIFO or device,
    unreadable) fails before the dataset is loaded.
    """
    from ddai.curriculum.read import log_files, log_parts

    p = Path(path)
    parts = log_parts(p)
    if parts:
        return log_files(parts)
    if not p.exists() and not p.is_symlink():
        raise InputError("Phase 1 log path does not exist", where=p,
                         expected="a log file or a directory of log files")
    return log_files(p)


def check_out_dir(path: str | os.PathLike[str], *, create: bool) -> Path:
    """Fail early (before reading gigabytes) if the output directory cannot be written."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError("output path exists and is not a directory", where=p,
                         expected="curriculum.out_dir to be a directory or a path that can be created")
    if create:
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the output directory ({exc.strerror or exc})", where=p,
                             expected="a writable location for curriculum.out_dir") from None
    if p.exists() and not os.access(p, os.W_OK | os.X_OK):
        raise InputError("output directory is not writable", where=p,
                         expected="a writable location for curriculum.out_dir")
    return p


def read_logs(c: Any, paths: list[Path], progress: bool) -> tuple[Iterator[Rollout], Callable[[], ReadInfo]]:
    """Stream rollouts (one record each); the returned callable gives the read report."""
    from ddai.curriculum.read import ReadStats, iter_rollouts

    stats = ReadStats()
    it = iter_rollouts(paths, fmt=c.format, strict=bool(c.strict), progress=progress, stats=stats)
    return it, partial(_read_info, stats)


def read_log_groups(c: Any, paths: list[Path], progress: bool) -> tuple[GroupTable, ReadInfo]:
    """The logs' per-prompt groups (the reader's fast path) and the read report."""
    from ddai.curriculum.read import ReadStats, read_groups

    stats = ReadStats()
    groups = read_groups(paths, normalize_question, fmt=c.format, strict=bool(c.strict), progress=progress,
                         stats=stats)
    return groups, _read_info(stats)


def _read_info(stats: Any) -> ReadInfo:
    inputs = [manifest.InputFile("phase1_log", str(Path(f.path).resolve()), int(f.size), f.digest, f.format)
              for f in stats.files]
    return ReadInfo(inputs, {"records": stats.records, "malformed": stats.malformed,
                             "malformed_examples": list(stats.malformed_examples)})


# --- deciding ------------------------------------------------------------------------------

def decide(c: Any, dataset: Dataset, rollouts: Iterable[Rollout] | None = None, *,
           groups: GroupTable | None = None) -> Result:
    """Everything up to (not including) writing; raises InputError for an unusable outcome.

    Takes either a rollout stream or the groups the reader already gathered.
    """
    index = DatasetIndex.build(dataset.ids, dataset.questions)
    if groups is None:
        groups = collect_groups(rollouts if rollouts is not None else (), normalize_question)
    matched = match_groups(groups, index, c.match)
    kept, dup_report = duplicates.select_table(matched.rows, matched.group_row, matched.table.step, c.duplicates)

    kept_rows = kept.rows.tolist()
    columns = {name: _summarize(matched.table, kept.gids, kept.counts, name, c) for name in SCORE_FIELDS}
    summaries = dict(zip(kept_rows, columns[c.score].summaries()))
    bk = bucketing.assign(summaries, c)

    n_rows = len(dataset.ids)
    kept_index = np.full(n_rows, -1, dtype=np.int64)
    if kept_rows:
        kept_index[np.asarray(kept_rows, dtype=np.int64)] = np.arange(len(kept_rows), dtype=np.int64)
    labels = []
    for row in range(n_rows):
        if row in bk.labels:
            labels.append(bk.labels[row])
        elif row in matched.ambiguous_rows:
            labels.append("ambiguous")
        else:
            labels.append("unmatched")

    def item(row: int) -> Item:
        s = summaries.get(row)
        return Item(row, dataset.ids[row], s.mean if s else None, s.std if s else None,
                    s.pass_rate if s else None)

    members: dict[str, list[int]] = {name: [] for name in list(bk.names) + list(EXTRA_BUCKETS)}
    for row, label in enumerate(labels):
        members.setdefault(label, []).append(row)

    files: dict[str, list[int]] = {}
    train_items = order_items([item(r) for r in members[bk.train]], c.sort, seed=int(c.seed),
                              frontier_by=c.frontier_by, strata=int(c.interleave_strata))
    plan = batching.plan(train_items, int(c.train_batch_size), c.remainder, ident=lambda it: it.id)
    files[bk.train] = [it.row for it in plan.train]
    for name in bk.names:
        if name != bk.train:
            files[name] = [it.row for it in easy_to_hard([item(r) for r in members[name]])]
    if c.remainder == "trim":
        files["remainder"] = [it.row for it in plan.remainder]
    for name in EXTRA_BUCKETS:
        files[name] = list(members[name])  # dataset order: no score to sort by

    n_train = len(files[bk.train])
    if not c.allow_empty_train:
        if n_train == 0 and train_items:   # the rule found prompts; fewer than one batch, trimmed away
            raise InputError(
                f"the training bucket {bk.train!r} has {len(train_items)} rows, fewer than one batch "
                f"(train_batch_size={c.train_batch_size}): remainder=trim moved them all to 'remainder'",
                where="curriculum.train_batch_size",
                expected="a smaller train_batch_size (it follows phase2.train_batch_size), curriculum.remainder=pad "
                         "or warn, or curriculum.allow_empty_train=true")
        if n_train == 0:
            raise InputError(
                f"the training bucket {bk.train!r} is empty ({_counts_text(files)})",
                where=f"rule {bk.rule['name']} {bk.rule['params']}",
                expected="some prompts in the training bucket: check the thresholds, curriculum.match, the logs; "
                         "or set curriculum.allow_empty_train=true")
        if plan.steps_per_epoch == 0:
            raise InputError(
                f"the training bucket {bk.train!r} has {n_train} rows, fewer than one batch "
                f"(train_batch_size={c.train_batch_size}): verl would train 0 steps",
                where="curriculum.train_batch_size",
                expected="a smaller train_batch_size, curriculum.remainder=pad, or curriculum.allow_empty_train=true")
    return Result(dataset, index, matched.table, matched, kept, summaries, columns, kept_index, labels, bk, files, plan,
                  dup_report)


def _summarize(table: GroupTable, gids: np.ndarray, counts: np.ndarray, name: str, c: Any) -> SummaryColumns:
    """Summary of score ``name`` pooled over runs of groups (run k: ``counts[k]`` of ``gids``), vectorized."""
    return table.summarize(name, gids, counts, count_at=[float(t) for t in c.count_at], tau=float(c.pass_rate.tau),
                           missing_as_zero=c.missing_score == "zero")


def _counts_text(files: dict[str, list[int]]) -> str:
    return ", ".join(f"{k}={len(set(v))}" for k, v in files.items())


# --- writing -------------------------------------------------------------------------------

def _arr(values: np.ndarray, null: np.ndarray, t: pa.DataType) -> pa.Array:
    """A primitive arrow array over ``values`` with ``null`` marking nulls (built from the buffers)."""
    return arrow_build.primitive(values, null, t)


def _summary_arrays(cols: SummaryColumns, idx: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(values, null mask) per Summary field for entries ``idx`` of ``cols`` (-1 → every field null).

    The float fields are also null where the summary has no usable score (None in a Summary).
    """
    absent = idx < 0
    j = np.where(absent, 0, idx)
    if len(cols) == 0:
        j = np.zeros(len(idx), dtype=np.int64)
        cols = SummaryColumns(*(np.zeros(1, dtype=np.int64) for _ in range(3)),
                              *(np.full(1, np.nan) for _ in range(5)), cols.count_at,
                              [np.zeros(1, dtype=np.int64) for _ in cols.count_at])
    n = cols.n[j]
    empty = absent | (n == 0)
    out = {"n": (n, absent), "n_missing": (cols.n_missing[j], absent), "n_invalid": (cols.n_invalid[j], absent),
           "n_unusable": (cols.n_missing[j] + cols.n_invalid[j], absent)}
    for k in ("mean", "std", "min", "max", "pass_rate"):
        out[k] = (getattr(cols, k)[j], empty)
    for t, cnt in zip(cols.count_at, cols.counts):
        out[f"n_ge_{t:g}"] = (cnt[j], absent)
    return out


def _kept_counts(res: Result) -> np.ndarray:
    """Per dataset row: how many groups count for it (0: none)."""
    idx = res.kept_index
    if len(res.kept) == 0:
        return np.zeros(len(idx), dtype=np.int64)
    return np.where(idx >= 0, res.kept.counts[np.maximum(idx, 0)], 0)


def phase1_columns(res: Result, c: Any, rows: list[int]) -> dict[str, pa.Array]:
    """The phase1_* values of dataset rows ``rows`` (in that order), as arrays for the writer."""
    r = np.asarray(rows, dtype=np.int64)
    idx = res.kept_index[r] if len(r) else np.zeros(0, dtype=np.int64)
    absent = idx < 0
    s = _summary_arrays(res.columns[c.score], idx)
    ndcg = _summary_arrays(res.columns["ndcg"], idx)
    n_groups = _kept_counts(res)[r] if len(r) else np.zeros(0, dtype=np.int64)
    f64, i64 = pa.float64(), pa.int64()
    return {
        "phase1_ndcg": _arr(*ndcg["mean"], f64),
        "phase1_mean": _arr(*s["mean"], f64),
        "phase1_std": _arr(*s["std"], f64),
        "phase1_min": _arr(*s["min"], f64),
        "phase1_max": _arr(*s["max"], f64),
        "phase1_pass_rate": _arr(*s["pass_rate"], f64),
        "phase1_n": _arr(*s["n"], i64),
        "phase1_n_unusable": _arr(*s["n_unusable"], i64),
        "phase1_groups": _arr(n_groups, absent, i64),
        "phase1_score_field": arrow_build.strings([None if a else c.score for a in absent.tolist()]),
        "phase1_bucket": arrow_build.strings([res.labels[x] for x in rows]),
    }


def prompt_stats_table(res: Result, c: Any) -> pa.Table:
    """The flat per-prompt table the report joins on: every dataset row, then log-only groups."""
    count_at = [float(t) for t in c.count_at]
    count_cols = [f"n_ge_{t:g}" for t in count_at]
    n_rows = len(res.dataset.ids)
    position = np.full(n_rows, -1, dtype=np.int64)
    for rows in res.files.values():
        if rows:
            r = np.asarray(rows, dtype=np.int64)
            first = np.unique(r, return_index=True)[1]          # first position of each row in this file
            rr = r[first]
            unset = position[rr] < 0
            position[rr[unset]] = first[unset]
    m = res.match
    table = res.groups
    log_only = np.sort(np.concatenate([m.no_row_idx, m.ambiguous_idx])).astype(np.int64)
    amb_reason = dict(zip(m.ambiguous_idx.tolist(), m.ambiguous_reasons))
    log_reasons = [amb_reason.get(g) for g in log_only.tolist()]
    n_log = len(log_only)
    ones = np.ones(n_log, dtype=np.int64)
    log_cols = {name: _summarize(table, log_only, ones, name, c) for name in SCORE_FIELDS}

    # every dataset row's kept groups (none for most unmatched rows), then each log-only group
    row_counts = _kept_counts(res)
    row_starts = res.kept.starts[np.maximum(res.kept_index, 0)] if len(res.kept) else np.zeros(n_rows, dtype=np.int64)
    flat = np.concatenate([res.kept.gids[segments_index(row_starts, row_counts)], log_only]).astype(np.int64)
    n_groups = np.concatenate([row_counts, ones]).astype(np.int64)
    row_idx = res.kept_index
    log_idx = np.arange(n_log, dtype=np.int64)

    def summary_part(name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        a = _summary_arrays(res.columns[name], row_idx)
        b = _summary_arrays(log_cols[name], log_idx)
        return {k: (np.concatenate([a[k][0], b[k][0]]), np.concatenate([a[k][1], b[k][1]])) for k in a}

    parts = {name: summary_part(name) for name in SCORE_FIELDS}
    s = parts[c.score]
    has = ~s["n"][1]
    i64, f64 = pa.int64(), pa.float64()
    no_null = np.zeros(n_rows + n_log, dtype=bool)
    flat_list = flat.tolist()
    cols: dict[str, pa.Array] = {
        "dataset_id": arrow_build.strings(list(res.dataset.ids) + [None] * n_log),
        "row": _arr(np.concatenate([np.arange(n_rows, dtype=np.int64), np.zeros(n_log, dtype=np.int64)]),
                    np.concatenate([np.zeros(n_rows, dtype=bool), np.ones(n_log, dtype=bool)]), i64),
        "bucket": arrow_build.strings(list(res.labels) + ["ambiguous_group" if w else "no_row" for w in log_reasons]),
        "position": _arr(np.concatenate([np.maximum(position, 0), np.zeros(n_log, dtype=np.int64)]),
                         np.concatenate([position < 0, np.ones(n_log, dtype=bool)]), i64),
        "groups": arrow_build.flat_lists([table.uid[g] for g in flat_list], n_groups, pa.string()),
        "steps": arrow_build.flat_lists([table.step[g] for g in flat_list], n_groups, pa.int64()),
        "n_groups": _arr(n_groups, no_null, i64),
        "n_rollouts": _arr(sums_per_run(table.n_rollouts[flat], n_groups), no_null, i64),
        "score_field": arrow_build.strings([c.score if h else None for h in has.tolist()]),
    }
    for k in ("n", "n_missing", "n_invalid", "n_unusable"):
        cols[k] = _arr(*s[k], i64)
    for k in ("mean", "std", "min", "max", "pass_rate"):
        cols[k] = _arr(*s[k], f64)
    for col in count_cols:
        cols[col] = _arr(*s[col], i64)
    for name in SCORE_FIELDS:
        cols[f"{name}_mean"] = _arr(*parts[name]["mean"], f64)
    reasons = [res.match.ambiguous_rows.get(row) for row in range(n_rows)] + log_reasons
    cols["reason"] = arrow_build.strings(reasons)

    schema = pa.schema(
        [("dataset_id", pa.string()), ("row", pa.int64()), ("bucket", pa.string()), ("position", pa.int64()),
         ("groups", pa.list_(pa.string())), ("steps", pa.list_(pa.int64())), ("n_groups", pa.int64()),
         ("n_rollouts", pa.int64()), ("score_field", pa.string()), ("n", pa.int64()), ("n_missing", pa.int64()),
         ("n_invalid", pa.int64()), ("n_unusable", pa.int64()), ("mean", pa.float64()), ("std", pa.float64()),
         ("min", pa.float64()), ("max", pa.float64()), ("pass_rate", pa.float64())]
        + [(col, pa.int64()) for col in count_cols]
        + [("ndcg_mean", pa.float64()), ("judge_mean", pa.float64()), ("final_mean", pa.float64()),
           ("reason", pa.string())])
    return pa.Table.from_arrays([cols[f.name] for f in schema], schema=schema)


def _write_all(out_dir: Path, tables: dict[str, pa.Table | Callable[[], pa.Table]],
               make_manifest: Callable[[dict], dict],
               writer: Callable[[pa.Table, Path], None] | None = None) -> dict[str, Any]:
    """Write every file into a new generation, the manifest last, then commit them as one set.

    A value of ``tables`` may be a callable that builds the table: it is called just before
    that file is written and the table is dropped right after, to bound peak memory.

    The fixed names in ``out_dir`` (what users point verl at) are links into the committed
    generation, swapped by one atomic rename (:class:`ddai.atomic.Generation`): a failure or a
    kill at any point leaves either the whole previous set or the whole new one, never a mix,
    and the manifest's sha256 of each file always matches the file beside it.
    """
    writer = writer or write.write_parquet
    write.remove_stale_temp_files(out_dir, [MANIFEST, *tables])  # left by runs of older versions
    outputs: dict[str, dict[str, Any]] = {}
    with Generation(out_dir, previous=_plain_outputs(out_dir)) as gen:
        for name in list(tables):
            path = gen.path(name)
            table = tables[name]
            if callable(table):
                table = table()
            writer(table, path)
            outputs[name] = {"rows": table.num_rows, "sha256": manifest.sha256_file(path)}
            del table
        man = make_manifest(outputs)
        gen.path(MANIFEST).write_text(manifest.dumps(man), encoding="utf-8")
    return man


def _plain_outputs(out_dir: Path) -> list[str]:
    """Files a run of an older ddai wrote as plain files (listed by its plain manifest.json)."""
    import json

    path = out_dir / MANIFEST
    if path.is_symlink() or not path.is_file():
        return []
    try:
        files = json.loads(path.read_text(encoding="utf-8")).get("files") or {}
        return [MANIFEST, *(str(v) for v in files.values())]
    except (OSError, ValueError, AttributeError):
        return []


def plain_config(c: Any) -> dict[str, Any]:
    """The resolved curriculum config as plain data (for the manifest and fast access)."""
    from omegaconf import OmegaConf

    if OmegaConf.is_config(c):
        return OmegaConf.to_container(c, resolve=True)  # type: ignore[return-value]
    if isinstance(c, SimpleNamespace):
        return {k: plain_config(v) if isinstance(v, SimpleNamespace) else v for k, v in vars(c).items()}
    return dict(c)


def _namespace(d: dict[str, Any]) -> SimpleNamespace:
    return SimpleNamespace(**{k: _namespace(v) if isinstance(v, dict) else v for k, v in d.items()})


def run(c: Any, *, progress: bool = False, rollouts: Iterable[Rollout] | None = None,
        read_info: ReadInfo | None = None) -> dict[str, Any]:
    """Run the whole curriculum for config node ``c``; returns the machine-readable summary.

    ``rollouts``/``read_info`` let tests feed records directly; normally the logs named by
    ``c.phase1_log`` are streamed.

    WHY the cyclic garbage collector is paused: a big log leaves hundreds of thousands of
    small, acyclic objects alive (groups, score lists); every few thousand allocations the
    collector would walk all of them again, which cost more than the statistics themselves.
    Nothing here creates reference cycles that need it; it is restored on return.
    """
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _run(c, progress=progress, rollouts=rollouts, read_info=read_info)
    finally:
        if gc_was_enabled:
            if retain.parking():
                # What the run parked stays until the process ends: take it (and everything else
                # alive now) out of the collector's sight, or its first full pass walks it all.
                gc.freeze()
            gc.enable()


def _without_groups(res: Result) -> Result:
    """``res`` without the per-group data (groups, matching, kept lists): only what writing needs."""
    empty = MatchResult.empty(res.match.strategy, res.match.n_groups)
    return replace(res, groups=empty.table, match=empty, kept=Kept.empty())


def _run(c: Any, *, progress: bool, rollouts: Iterable[Rollout] | None,
         read_info: ReadInfo | None) -> dict[str, Any]:
    config = plain_config(c)
    c = _namespace(config)     # attribute access without OmegaConf's per-access cost in hot loops
    validate_settings(c)
    out_dir = check_out_dir(c.out_dir, create=True)
    paths = log_paths(c.phase1_log) if rollouts is None else []
    dataset = load_dataset(c.dataset, need_question=c.match == "question")
    if rollouts is None:
        groups, info = read_log_groups(c, paths, progress)
        res = decide(c, dataset, groups=groups)
        del groups
    else:
        res = decide(c, dataset, rollouts)
        info = read_info or ReadInfo()
    del rollouts

    # Everything that needs the log's groups is computed first; then the groups are let go
    # before the dataset's full table is read, so the two never occupy memory together.
    file_names = {name: write.bucket_filename(name) for name in res.files}
    phase1 = {name: phase1_columns(res, c, rows) for name, rows in res.files.items()}
    prompt_stats = prompt_stats_table(res, c)
    match_report = res.match.report(res.index)
    retain.drop(res)            # freed here, or left to the process's end (ddai.curriculum.retain)
    res = _without_groups(res)

    tables: dict[str, pa.Table | Callable[[], pa.Table]] = {}
    for name, rows in res.files.items():   # built one at a time while writing: one in memory at once
        tables[file_names[name]] = partial(write.build_table_arrays, dataset.table, rows, phase1.pop(name))
    tables[PROMPT_STATS] = prompt_stats

    buckets = {name: len(set(rows)) for name, rows in res.files.items()}
    inputs = list(info.inputs) + [manifest.InputFile("dataset", str(dataset.path.resolve()),
                                                     dataset.path.stat().st_size,
                                                     manifest.sha256_file(dataset.path), "parquet")]
    sc = res.columns[c.score]
    score_stats = {"field": c.score, "missing": c.missing_score,
                   "rollouts": int(sc.n.sum() + sc.n_missing.sum() + sc.n_invalid.sum()),
                   "usable": int(sc.n.sum()),
                   "missing_scores": int(sc.n_missing.sum()),
                   "invalid_scores": int(sc.n_invalid.sum()),
                   "rows_without_usable_score": int((sc.n == 0).sum()),
                   "count_at": [float(t) for t in c.count_at]}
    config = {**config, "out_dir": "."}

    def make(outputs: dict) -> dict:
        return manifest.build(
            buckets=buckets, files={**file_names, "prompt_stats": PROMPT_STATS}, outputs=outputs,
            train_bucket=res.bucketing.train, rule=res.bucketing.rule,
            thresholds={"theta1": float(c.theta1), "theta_easy": float(c.theta_easy)}, sort=c.sort,
            sort_params={"seed": int(c.seed), "frontier_by": c.frontier_by,
                         "interleave_strata": int(c.interleave_strata), "ties": "dataset id (natural order)"},
            score=c.score, score_stats=score_stats, match=match_report,
            duplicates=res.duplicates, batch=res.plan.report, inputs=inputs, read=info.read, config=config)

    try:
        man = _write_all(out_dir, tables, make)
    except OSError as exc:   # disk full, permissions changed mid-run, ...: previous outputs are intact
        raise InputError(f"cannot write the outputs ({exc.strerror or exc}); previous outputs were left as they were",
                         where=out_dir, expected="a writable curriculum.out_dir with free space") from None
    return {
        # The fixed names (links into the current generation), never the generation's own paths:
        # the next run replaces that generation, the fixed names stay.
        "out_dir": os.path.abspath(out_dir),
        "manifest": os.path.abspath(out_dir / MANIFEST),
        "train_file": os.path.abspath(out_dir / file_names[res.bucketing.train]),
        "train_bucket": res.bucketing.train,
        "buckets": buckets,
        "files": file_names,
        "steps_per_epoch": res.plan.steps_per_epoch,
        "dropped": len(res.plan.dropped),
        "remainder": man["batch"]["remainder"],
        "match": {k: man["match"][k] for k in ("matched_rows", "unmatched_rows", "groups_without_row",
                                                "ambiguous_groups", "ambiguous_rows")},
        "duplicates": res.duplicates["rows_with_several_groups"],
        "read": {"records": info.read.get("records"), "malformed": info.read.get("malformed")},
    }
