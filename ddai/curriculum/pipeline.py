"""One curriculum run: read → stats → match → bucket → order → batch-align → write.

WHY everything is decided before anything is written: a bad setting, an empty training
bucket or an unreadable input must fail with the previous outputs untouched. All output
files are then staged as temporary files beside their targets and only moved into place
once every one of them is complete, the manifest last (see :func:`_write_all`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Iterator

import pyarrow as pa

from ddai.atomic import atomic_path
from ddai.curriculum import batch as batching
from ddai.curriculum import bucket as bucketing
from ddai.curriculum import duplicates, manifest, write
from ddai.curriculum.config import validate_settings
from ddai.curriculum.dataset import Dataset, load_dataset
from ddai.curriculum.match import DatasetIndex, MatchResult, match_groups, normalize_question
from ddai.curriculum.order import Item, easy_to_hard, order_items
from ddai.curriculum.records import Rollout
from ddai.curriculum.stats import SCORE_FIELDS, Group, Summary, collect_groups, pooled, summarize
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
    groups: list[Group]
    match: MatchResult
    kept: dict[int, list[Group]]
    summaries: dict[int, Summary]
    extra: dict[int, dict[str, Summary]]     # row -> {score field: summary} for every field
    labels: list[str]                        # bucket per dataset row
    bucketing: bucketing.Bucketing
    files: dict[str, list[int]]              # bucket -> rows in file order (pads repeated)
    plan: batching.BatchPlan
    duplicates: dict[str, Any]


# --- inputs --------------------------------------------------------------------------------

def log_paths(path: str | os.PathLike[str]) -> list[Path]:
    """A log file, or every log file of a directory (sorted by name, hidden files skipped).

    Same selection as the reader's; done here too so a wrong path fails before the dataset
    is loaded.
    """
    from ddai.curriculum.read import LOG_SUFFIXES

    p = Path(path)
    if not p.exists():
        raise InputError("Phase 1 log path does not exist", where=p,
                         expected="a log file or a directory of log files")
    if p.is_file():
        return [p]
    found = sorted(f for f in p.iterdir()
                   if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in LOG_SUFFIXES)
    if not found:
        raise InputError("directory holds no log files", where=p,
                         expected=f"files ending in {', '.join(LOG_SUFFIXES)}")
    return found


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
    """Stream rollouts through H1a's reader; the returned callable gives the read report."""
    from ddai.curriculum.read import ReadStats, iter_rollouts

    stats = ReadStats()
    it = iter_rollouts(paths, fmt=c.format, strict=bool(c.strict), progress=progress, stats=stats)

    def info() -> ReadInfo:
        inputs = [manifest.InputFile("phase1_log", str(Path(f.path).resolve()), int(f.size), f.sha256, f.format)
                  for f in stats.files]
        return ReadInfo(inputs, {"records": stats.records, "malformed": stats.malformed,
                                 "malformed_examples": list(stats.malformed_examples)})

    return it, info


# --- deciding ------------------------------------------------------------------------------

def decide(c: Any, dataset: Dataset, rollouts: Iterable[Rollout]) -> Result:
    """Everything up to (not including) writing; raises InputError for an unusable outcome."""
    index = DatasetIndex.build(dataset.ids, dataset.questions)
    groups = collect_groups(rollouts, normalize_question)
    matched = match_groups(groups, index, c.match)
    kept, dup_report = duplicates.select(matched.row_groups, c.duplicates)

    zero = c.missing_score == "zero"
    count_at = [float(t) for t in c.count_at]
    tau = float(c.pass_rate.tau)
    extra: dict[int, dict[str, Summary]] = {}
    for row, gs in kept.items():
        extra[row] = {name: summarize(list(pooled(gs, name)), count_at=count_at, tau=tau, missing_as_zero=zero)
                      for name in SCORE_FIELDS}
    summaries = {row: s[c.score] for row, s in extra.items()}
    bk = bucketing.assign(summaries, c)

    n_rows = len(dataset.ids)
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
    return Result(dataset, index, groups, matched, kept, summaries, extra, labels, bk, files, plan, dup_report)


def _counts_text(files: dict[str, list[int]]) -> str:
    return ", ".join(f"{k}={len(set(v))}" for k, v in files.items())


# --- writing -------------------------------------------------------------------------------

def _row_fields(res: Result, c: Any, row: int) -> write.RowFields:
    label = res.labels[row]
    s = res.summaries.get(row)
    if s is None:
        return write.RowFields(bucket=label)
    ndcg = res.extra[row]["ndcg"]
    return write.RowFields(ndcg=ndcg.mean, mean=s.mean, std=s.std, min=s.min, max=s.max, pass_rate=s.pass_rate,
                           n=s.n, n_unusable=s.n_unusable, groups=len(res.kept[row]), score_field=c.score,
                           bucket=label)


def prompt_stats_table(res: Result, c: Any) -> pa.Table:
    """The flat per-prompt table the report joins on: every dataset row, then log-only groups."""
    count_at = [float(t) for t in c.count_at]
    count_cols = [f"n_ge_{t:g}" for t in count_at]
    cols: dict[str, list] = {k: [] for k in (
        "dataset_id", "row", "bucket", "position", "groups", "steps", "n_groups", "n_rollouts", "score_field",
        "n", "n_missing", "n_invalid", "n_unusable", "mean", "std", "min", "max", "pass_rate",
        *count_cols, "ndcg_mean", "judge_mean", "final_mean", "reason")}
    position: dict[int, tuple[str, int]] = {}
    for name, rows in res.files.items():
        for pos, r in enumerate(rows):
            position.setdefault(r, (name, pos))
    amb_reason = {id(a.group): a.reason for a in res.match.ambiguous}

    def add(did, row, bucket, pos, gs: list[Group], s: Summary | None, ex: dict[str, Summary] | None, reason):
        cols["dataset_id"].append(did)
        cols["row"].append(row)
        cols["bucket"].append(bucket)
        cols["position"].append(pos)
        cols["groups"].append([g.group for g in gs])
        cols["steps"].append([g.step for g in gs])
        cols["n_groups"].append(len(gs))
        cols["n_rollouts"].append(sum(g.n_rollouts for g in gs))
        cols["score_field"].append(c.score if s is not None else None)
        for k in ("n", "n_missing", "n_invalid", "n_unusable", "mean", "std", "min", "max", "pass_rate"):
            cols[k].append(getattr(s, k) if s is not None else None)
        for col, (_, cnt) in zip(count_cols, s.counts_at if s is not None else [(0, None)] * len(count_cols)):
            cols[col].append(cnt)
        for name in SCORE_FIELDS:
            cols[f"{name}_mean"].append(ex[name].mean if ex is not None else None)
        cols["reason"].append(reason)

    for row, did in enumerate(res.dataset.ids):
        name_pos = position.get(row)
        gs = res.kept.get(row, [])
        add(did, row, res.labels[row], name_pos[1] if name_pos else None, gs, res.summaries.get(row),
            res.extra.get(row), res.match.ambiguous_rows.get(row))
    zero = c.missing_score == "zero"
    tau = float(c.pass_rate.tau)
    log_only = [(g, "no_row", None) for g in res.match.no_row] + \
               [(a.group, "ambiguous_group", a.reason) for a in res.match.ambiguous]
    log_only.sort(key=lambda t: t[0].order)
    for g, bucket, reason in log_only:
        ex = {name: summarize(g.scores[name], count_at=count_at, tau=tau, missing_as_zero=zero)
              for name in SCORE_FIELDS}
        add(None, None, bucket, None, [g], ex[c.score], ex, reason or amb_reason.get(id(g)))

    schema = pa.schema(
        [("dataset_id", pa.string()), ("row", pa.int64()), ("bucket", pa.string()), ("position", pa.int64()),
         ("groups", pa.list_(pa.string())), ("steps", pa.list_(pa.int64())), ("n_groups", pa.int64()),
         ("n_rollouts", pa.int64()), ("score_field", pa.string()), ("n", pa.int64()), ("n_missing", pa.int64()),
         ("n_invalid", pa.int64()), ("n_unusable", pa.int64()), ("mean", pa.float64()), ("std", pa.float64()),
         ("min", pa.float64()), ("max", pa.float64()), ("pass_rate", pa.float64())]
        + [(col, pa.int64()) for col in count_cols]
        + [("ndcg_mean", pa.float64()), ("judge_mean", pa.float64()), ("final_mean", pa.float64()),
           ("reason", pa.string())])
    return pa.Table.from_pydict(cols, schema=schema)


def _write_all(out_dir: Path, tables: dict[str, pa.Table], make_manifest: Callable[[dict], dict],
               writer: Callable[[pa.Table, Path], None] | None = None) -> dict[str, Any]:
    """Stage every file beside its target, then move them into place, the manifest last.

    A failure (or a kill) while staging leaves every previous output untouched; temporary
    files of a killed run are dot-files that the next run ignores. The manifest records
    each file's sha256, so a reader can tell whether the files belong together.
    """
    writer = writer or write.write_parquet
    outputs: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        manifest_tmp = stack.enter_context(atomic_path(out_dir / MANIFEST))
        for name, table in tables.items():
            tmp = stack.enter_context(atomic_path(out_dir / name))
            writer(table, tmp)
            outputs[name] = {"rows": table.num_rows, "sha256": manifest.sha256_file(tmp)}
        man = make_manifest(outputs)
        manifest_tmp.write_text(manifest.dumps(man), encoding="utf-8")
    return man


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
    """
    config = plain_config(c)
    c = _namespace(config)     # attribute access without OmegaConf's per-access cost in hot loops
    validate_settings(c)
    out_dir = check_out_dir(c.out_dir, create=True)
    paths = log_paths(c.phase1_log) if rollouts is None else []
    dataset = load_dataset(c.dataset, need_question=c.match == "question")
    if rollouts is None:
        rollouts, info_fn = read_logs(c, paths, progress)
    else:
        info_fn = lambda: read_info or ReadInfo()  # noqa: E731
    res = decide(c, dataset, rollouts)
    info = info_fn()

    tables: dict[str, pa.Table] = {}
    file_names: dict[str, str] = {}
    for name, rows in res.files.items():
        fname = write.bucket_filename(name)
        file_names[name] = fname
        tables[fname] = write.build_table(dataset.table, rows, [_row_fields(res, c, r) for r in rows])
    tables[PROMPT_STATS] = prompt_stats_table(res, c)

    buckets = {name: len(set(rows)) for name, rows in res.files.items()}
    inputs = list(info.inputs) + [manifest.InputFile("dataset", str(dataset.path.resolve()),
                                                     dataset.path.stat().st_size,
                                                     manifest.sha256_file(dataset.path), "parquet")]
    all_summ = list(res.summaries.values())
    score_stats = {"field": c.score, "missing": c.missing_score,
                   "rollouts": sum(s.n + s.n_unusable for s in all_summ),
                   "usable": sum(s.n for s in all_summ),
                   "missing_scores": sum(s.n_missing for s in all_summ),
                   "invalid_scores": sum(s.n_invalid for s in all_summ),
                   "rows_without_usable_score": sum(1 for s in all_summ if s.n == 0),
                   "count_at": [float(t) for t in c.count_at]}
    config = {**config, "out_dir": "."}

    def make(outputs: dict) -> dict:
        return manifest.build(
            buckets=buckets, files={**file_names, "prompt_stats": PROMPT_STATS}, outputs=outputs,
            train_bucket=res.bucketing.train, rule=res.bucketing.rule,
            thresholds={"theta1": float(c.theta1), "theta_easy": float(c.theta_easy)}, sort=c.sort,
            sort_params={"seed": int(c.seed), "frontier_by": c.frontier_by,
                         "interleave_strata": int(c.interleave_strata), "ties": "dataset id (natural order)"},
            score=c.score, score_stats=score_stats, match=res.match.report(res.index),
            duplicates=res.duplicates, batch=res.plan.report, inputs=inputs, read=info.read, config=config)

    try:
        man = _write_all(out_dir, tables, make)
    except OSError as exc:   # disk full, permissions changed mid-run, ...: previous outputs are intact
        raise InputError(f"cannot write the outputs ({exc.strerror or exc}); previous outputs were left as they were",
                         where=out_dir, expected="a writable curriculum.out_dir with free space") from None
    return {
        "out_dir": str(out_dir.resolve()),
        "manifest": str((out_dir / MANIFEST).resolve()),
        "train_file": str((out_dir / file_names[res.bucketing.train]).resolve()),
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
