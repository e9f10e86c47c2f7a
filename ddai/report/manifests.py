"""Read curriculum manifests and sweep directories for bucket counts and the Phase 1 join.

WHY: the manifest says how many prompts each bucket got and with which rule; the per-prompt
table (``prompt_stats.parquet``, or the bucket parquets' ``extra_info.phase1_*``) says each
prompt's Phase 1 difficulty, which the report joins to the Phase 2 log to answer "did the
curriculum's hard prompts get better?".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ddai.errors import InputError
from ddai.report.discover import sweep_manifests

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Curriculum:
    """One curriculum run: its manifest and where its files are."""

    manifest_path: Path
    manifest: dict[str, Any]

    @property
    def dir(self) -> Path:
        return self.manifest_path.parent

    @property
    def buckets(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in (self.manifest.get("buckets") or {}).items()}

    @property
    def score(self) -> str:
        s = self.manifest.get("score")
        if isinstance(s, dict):
            s = s.get("name")
        return str(s or "ndcg")

    def thresholds(self) -> dict[str, float]:
        """Numeric bucket thresholds (for drawing on histograms), flattened one level."""
        out: dict[str, float] = {}
        for src in (self.manifest.get("thresholds"), (self.manifest.get("rule") or {}).get("params")):
            if isinstance(src, dict):
                for k, v in src.items():
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0:
                        out.setdefault(str(k), float(v))
        return out

    def summary(self) -> dict[str, Any]:
        m = self.manifest
        rule = m.get("rule") or {}
        batch = m.get("batch") or {}
        return {
            "path": str(self.manifest_path),
            "buckets": self.buckets,
            "train_bucket": m.get("train_bucket"),
            "rule": rule.get("name") if isinstance(rule, dict) else rule,
            "rule_params": rule.get("params") if isinstance(rule, dict) else None,
            "thresholds": m.get("thresholds"),
            "score": self.score,
            "sort": m.get("sort"),
            "steps_per_epoch": batch.get("steps_per_epoch"),
            "train_batch_size": batch.get("train_batch_size"),
            "remainder": batch.get("remainder"),
            "ddai_version": m.get("ddai_version"),
        }

    def bucket_files(self) -> dict[str, Path]:
        files = self.manifest.get("files") or {}
        return {str(b): self.dir / str(f) for b, f in files.items()}

    def phase1_table(self) -> pd.DataFrame | None:
        """prompt → bucket, Phase 1 mean (columns ``prompt, bucket, phase1``), or None.

        A file of the curriculum that cannot be read as parquet ends in one line naming it."""
        try:
            return self._phase1_table()
        except InputError:
            raise
        except (OSError, ValueError, TypeError, KeyError) as exc:   # pyarrow's errors derive from these
            raise InputError(f"cannot read the curriculum's per-prompt table: {str(exc)[:200]}",
                             where=str(getattr(exc, "filename", None) or self.dir),
                             expected="the parquet files the curriculum wrote") from None

    def _phase1_table(self) -> pd.DataFrame | None:
        import pandas as pd  # here, not at import: the --json path reads the log first (fanout)

        stats = self.dir / "prompt_stats.parquet"
        if stats.is_file():
            df = pd.read_parquet(stats)
            if {"dataset_id", "bucket", "mean"} <= set(df.columns):
                out = df[df["dataset_id"].notna()][["dataset_id", "bucket", "mean"]]
                out = out.rename(columns={"dataset_id": "prompt", "mean": "phase1"})
                out["bucket"] = out["bucket"].astype(str)
                return out.drop_duplicates("prompt").reset_index(drop=True)
        frames = []
        for bucket, path in self.bucket_files().items():
            if not path.is_file():
                continue
            import pyarrow.parquet as pq

            t = pq.read_table(path, columns=["id", "extra_info"])
            ids = t.column("id").to_pylist()
            extra = t.column("extra_info").combine_chunks()
            key = f"phase1_{self.score}"
            names = [extra.type.field(i).name for i in range(extra.type.num_fields)]
            vals = extra.field(key).to_pylist() if key in names else [None] * len(ids)
            frames.append(pd.DataFrame({"prompt": ids, "bucket": bucket, "phase1": vals}))
        if not frames:
            return None
        return pd.concat(frames, ignore_index=True).drop_duplicates("prompt").reset_index(drop=True)


def load_curriculum(manifest: str) -> Curriculum:
    p = Path(manifest)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError("cannot read manifest: not UTF-8 text (binary content?)", where=str(p),
                         expected="a curriculum manifest.json") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise InputError(f"cannot read manifest: {str(exc)[:200]}", where=str(p),
                         expected="a curriculum manifest.json") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("buckets"), dict):
        raise InputError("manifest has no 'buckets' object", where=str(p),
                         expected='{"buckets": {"A": n, ...}, "files": {...}, ...}')
    check_manifest(doc, str(p))
    return Curriculum(p, doc)


_SHAPES: dict[str, tuple[tuple[type, ...], str]] = {
    # key: (accepted JSON types, what to say) -- what the report reads from a manifest
    "files": ((dict,), "an object bucket -> file name"),
    "batch": ((dict,), "an object (train_batch_size, steps_per_epoch, remainder)"),
    "rule": ((dict, str), "an object {name, params} or a rule name"),
    "thresholds": ((dict,), "an object name -> number"),
    "score": ((dict, str), "a score name or {name: ...}"),
    "train_bucket": ((str,), "a bucket name"),
    "sort": ((str, dict, list), "the ordering"),
}


def check_manifest(doc: dict[str, Any], where: str) -> None:
    """Refuse, with the key and what was expected, a manifest the report could not read.

    WHY here: a hand-edited or corrupt manifest (a count as text, a list where an object
    belongs) must end in one line naming the file and key, never in "internal error".
    """
    for bucket, n in doc["buckets"].items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InputError(f"buckets.{bucket} is {json.dumps(n)[:60]}", where=where,
                             expected="a count of rows (integer ≥ 0)")
    for key, (types, what) in _SHAPES.items():
        v = doc.get(key)
        if v is not None and not isinstance(v, types):
            raise InputError(f"{key} is {json.dumps(v)[:60]}", where=where, expected=what)
    for bucket, f in (doc.get("files") or {}).items():
        if not isinstance(f, str) or not f or "\x00" in f:
            raise InputError(f"files.{bucket} is {json.dumps(f)[:60]}", where=where,
                             expected="a file name relative to the manifest")
    rule = doc.get("rule")
    if isinstance(rule, dict) and rule.get("params") is not None and not isinstance(rule["params"], dict):
        raise InputError(f"rule.params is {json.dumps(rule['params'])[:60]}", where=where,
                         expected="an object of the rule's parameters")
    batch = doc.get("batch") or {}
    for k in ("train_batch_size", "steps_per_epoch"):
        v = batch.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise InputError(f"batch.{k} is {json.dumps(v)[:60]}", where=where, expected="an integer")


@dataclass
class Sweep:
    """A Hydra multirun directory: per-job curricula plus the sweep's own summary."""

    dir: Path
    jobs: list[tuple[str, Curriculum]] = field(default_factory=list)
    table: Any = None  # sweep_summary.json content, as written by the launcher
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # job -> its sweep_summary run

    def summary(self) -> dict[str, Any]:
        names = {b for _, c in self.jobs for b in c.buckets}
        first = [b for b in ("A", "B", "0") if b in names]
        last = [b for b in ("unmatched",) if b in names]
        buckets = first + sorted(names - set(first) - set(last)) + last
        jobs = []
        for name, c in self.jobs:
            run = self.runs.get(name, {})
            price = (run.get("phase2") or {}).get("est_price_total")
            jobs.append({"job": name, "overrides": run.get("overrides"), "status": run.get("status"),
                         "est_price_total": price, **c.summary()})
        failed = [{"job": n, "status": r.get("status"), "error": r.get("error"), "log": r.get("log")}
                  for n, r in self.runs.items() if r.get("status") not in (None, "COMPLETED")]
        return {
            "path": str(self.dir),
            "jobs": jobs,
            "failed_jobs": failed,
            "bucket_names": buckets,
            "sweep_summary": self.table,
        }


def load_sweep(path: str) -> Sweep:
    d = Path(path)
    sw = Sweep(d)
    summ = d / "sweep_summary.json"
    if summ.is_file():
        try:
            sw.table = json.loads(summ.read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as exc:   # UnicodeDecodeError is a ValueError
            raise InputError(f"not valid JSON: {str(exc)[:200]}", where=str(summ)) from None
        runs = sw.table.get("runs") if isinstance(sw.table, dict) else None
        for i, run in enumerate(runs if isinstance(runs, list) else []):
            if not isinstance(run, dict):
                continue
            for k in ("phase2", "overrides"):
                if run.get(k) is not None and not isinstance(run[k], (dict, list, str)):
                    raise InputError(f"runs[{i}].{k} is {json.dumps(run[k])[:60]}", where=str(summ),
                                     expected="an object")
            if isinstance(run.get("phase2"), (list, str)):
                raise InputError(f"runs[{i}].phase2 is {json.dumps(run['phase2'])[:60]}", where=str(summ),
                                 expected="an object")
            if run.get("manifest") is not None and not isinstance(run["manifest"], str):
                raise InputError(f"runs[{i}].manifest is {json.dumps(run['manifest'])[:60]}", where=str(summ),
                                 expected="a path")
    # the launcher's summary names each run's manifest (its out_dir may be anywhere) ...
    runs = sw.table.get("runs") if isinstance(sw.table, dict) else None
    seen: set[Path] = set()
    for run in runs if isinstance(runs, list) else []:
        if not isinstance(run, dict):
            continue
        name = str(run.get("num", len(sw.runs)))
        sw.runs[name] = run
        m = run.get("manifest")
        if m and Path(m).is_file():
            sw.jobs.append((name, load_curriculum(str(m))))
            seen.add(Path(m).resolve())
    # ... and job directories hold <job>/curriculum/manifest.json by default
    for m in sweep_manifests(d):
        if m.resolve() not in seen:
            sw.jobs.append((m.relative_to(d).parts[0], load_curriculum(str(m))))
    sw.jobs.sort(key=lambda jc: (0, int(jc[0])) if jc[0].isdigit() else (1, jc[0]))
    if not sw.jobs and sw.table is None:
        raise InputError("sweep directory has no job manifests and no sweep_summary.json", where=str(d))
    return sw
