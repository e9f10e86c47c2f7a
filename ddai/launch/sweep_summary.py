"""One comparison at the end of a multirun: bucket sizes, batches, and what Phase 2 would cost.

A Hydra callback (configured in ``conf/config.yaml``):

* ``on_job_end`` (runs inside each job, wherever it runs) writes ``ddai_run.json`` into the
  job's directory: overrides, outcome, and where the task wrote its outputs;
* ``on_multirun_end`` (on the submitting host) joins those with the launcher's record of
  Slurm job ids, states and log paths (``sweep_jobs.json``, :mod:`ddai.launch.submitit_launcher`),
  reads each run's ``manifest.json``, and writes ``sweep_summary.json`` and ``.csv`` (atomic)
  into the sweep directory, prints a table on stderr, and logs it to W&B when configured.

Expected Phase 2 cost per run: verl trains ``steps_per_epoch × train_batch_size`` prompts an
epoch (the dropped remainder is not trained); each prompt is rolled out
``sweep.rollouts_per_prompt`` times and every rollout costs ``calls_per_rollout`` judge and
generator calls, priced per call or per token (``conf/sweep/default.yaml``).

A failed run is listed with its job id, state, log and error; the others are summarized
anyway, and the command then exits non-zero.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from ddai.atomic import atomic_write_text
from ddai.curriculum.budget import sweep_signal
from ddai.sweep_labels import swept_labels, table_width

RUN_FILE = "ddai_run.json"
JOBS_FILE = "sweep_jobs.json"   # written by ddai.launch.submitit_launcher
TASK_OUTPUT = {"curriculum": "curriculum.out_dir"}


# ---------------------------------------------------------------------------------------------
# inside each job
# ---------------------------------------------------------------------------------------------
def run_record(config: DictConfig, job_return: JobReturn) -> dict[str, Any]:
    """What one job tells the summary about itself (JSON-safe)."""
    hydra = config.hydra
    task = OmegaConf.select(config, "task")
    out_dir = None
    key = TASK_OUTPUT.get(str(task))
    if key is not None:
        try:
            out_dir = os.path.abspath(os.path.expanduser(str(OmegaConf.select(config, key))))
        except Exception:  # an unresolvable out_dir is reported by the task itself
            out_dir = None
    ok = job_return.status == JobStatus.COMPLETED
    value = job_return._return_value
    return {
        "num": int(hydra.job.num),
        "job_id": str(OmegaConf.select(hydra, "job.id") or ""),
        "overrides": list(job_return.overrides or []),
        "task": task,
        "status": "COMPLETED" if ok else "FAILED",
        "error": None if ok else f"{type(value).__name__}: {value}",
        "output_dir": str(hydra.runtime.output_dir),
        "out_dir": out_dir,
        "log": str(Path(str(hydra.runtime.output_dir)) / f"{hydra.job.name}.log"),
        "result": _json_safe(value) if ok else None,
    }


def _json_safe(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=str, allow_nan=False))
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# on the submitting host
# ---------------------------------------------------------------------------------------------
def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def collect_runs(sweep_dir: Path, token: str | None = None) -> list[dict[str, Any]]:
    """Every job of the sweep: its own record joined with the launcher's, ordered by number.

    With ``token``, job records of other sweeps (same directory, earlier run) are ignored.
    """
    runs: dict[int, dict[str, Any]] = {}
    for path in sorted(sweep_dir.rglob(RUN_FILE)):
        if ".submitit" in path.parts:
            continue
        rec = _read_json(path)
        if isinstance(rec, dict) and "num" in rec and (token is None or rec.get("sweep_token") == token):
            runs[int(rec["num"])] = rec
    launched = _read_json(sweep_dir / JOBS_FILE)
    for job in (launched or {}).get("jobs", []):
        num = int(job["num"])
        own = runs.get(num, {})
        merged = {**job, **{k: v for k, v in own.items() if v is not None}}
        merged["job_id"] = job.get("job_id") or own.get("job_id")
        merged["state"] = job.get("state")
        merged["stdout"], merged["stderr"] = job.get("stdout"), job.get("stderr")
        if job.get("status") != "COMPLETED":
            merged["status"] = "FAILED"
            merged["error"] = own.get("error") or job.get("error")
            merged["log"] = job.get("stderr")
        runs[num] = merged
    return [runs[n] for n in sorted(runs)]


def _price_per_call(api: dict[str, Any]) -> float | None:
    if api.get("price_per_call") is not None:
        return float(api["price_per_call"])
    p_in, p_out = api.get("price_per_1m_input_tokens"), api.get("price_per_1m_output_tokens")
    if p_in is None and p_out is None:
        return None
    return (float(api.get("input_tokens_per_call") or 0) * float(p_in or 0)
            + float(api.get("output_tokens_per_call") or 0) * float(p_out or 0)) / 1e6


def phase2_cost(prompts_per_epoch: int, settings: dict[str, Any]) -> dict[str, Any]:
    """Judge and generator calls (and their estimated price) for one run."""
    rollouts = int(settings["rollouts_per_prompt"])
    epochs = int(settings["epochs"])
    out: dict[str, Any] = {"prompts_per_epoch": prompts_per_epoch, "rollouts_per_prompt": rollouts,
                           "epochs": epochs, "currency": settings.get("currency", "USD")}
    price_epoch: float | None = 0.0
    for role in ("judge", "generator"):
        api = settings[role]
        calls = prompts_per_epoch * rollouts * float(api.get("calls_per_rollout", 1))
        calls_i = int(calls) if float(calls).is_integer() else calls
        out[f"{role}_calls_per_epoch"] = calls_i
        out[f"{role}_calls_total"] = calls_i * epochs
        ppc = _price_per_call(api)
        out[f"{role}_price_per_call"] = ppc
        price_epoch = None if (ppc is None or price_epoch is None) else price_epoch + calls * ppc
    out["est_price_per_epoch"] = None if price_epoch is None else round(price_epoch, 4)
    out["est_price_total"] = None if price_epoch is None else round(price_epoch * epochs, 4)
    return out


def manifest_metrics(manifest: dict[str, Any]) -> dict[str, Any]:
    """The numbers the comparison needs, from one curriculum manifest."""
    match = manifest.get("match") or {}
    batch = manifest.get("batch") or {}
    buckets = dict(manifest.get("buckets") or {})
    steps = int(batch.get("steps_per_epoch") or 0)
    size = int(batch.get("train_batch_size") or 0)
    return {
        "buckets": buckets,
        "train_bucket": manifest.get("train_bucket"),
        "matched": match.get("matched_rows"),
        "unmatched": match.get("unmatched_rows", buckets.get("unmatched")),
        "train_prompts": batch.get("intended_rows"),
        "rows_written": batch.get("rows_written"),
        "train_batch_size": size,
        "steps_per_epoch": steps,
        "dropped": len(batch.get("dropped_ids") or []),
        "remainder_policy": batch.get("policy"),
        "prompts_per_epoch": steps * size,
    }


def build_summary(sweep_dir: Path, settings: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    runs = []
    for rec in collect_runs(sweep_dir, token):
        run = {k: rec.get(k) for k in ("num", "overrides", "status", "job_id", "state", "error", "out_dir")}
        run["log"] = rec.get("stderr") or rec.get("log")   # the scheduler's log when there is one
        if rec.get("status") == "COMPLETED" and rec.get("out_dir"):
            manifest_path = Path(rec["out_dir"]) / "manifest.json"
            manifest = _read_json(manifest_path)
            if isinstance(manifest, dict):
                run["manifest"] = str(manifest_path)
                run.update(manifest_metrics(manifest))
                run["phase2"] = phase2_cost(run["prompts_per_epoch"], settings)
                run["phase2"].update(sweep_signal(manifest_path, run["phase2"]))  # ddai.curriculum.budget
            else:
                run["status"] = "FAILED"
                run["error"] = f"{manifest_path}: missing or unreadable manifest"
        runs.append(run)
    return {
        "sweep_dir": str(sweep_dir),
        "runs_total": len(runs),
        "runs_failed": sum(1 for r in runs if r["status"] != "COMPLETED"),
        "settings": settings,
        "runs": runs,
    }


def bucket_names(runs: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for run in runs:
        for name in run.get("buckets") or {}:
            if name not in names:
                names.append(name)
    first = [n for n in ("A", "B", "0") if n in names]
    last = [n for n in ("unmatched",) if n in names]
    return first + sorted(n for n in names if n not in first and n not in last) + last


CSV_TAIL = ["matched", "unmatched", "train_prompts", "train_batch_size", "steps_per_epoch", "dropped",
            "prompts_per_epoch"]
COST_COLS = ["judge_calls_per_epoch", "generator_calls_per_epoch", "epochs", "judge_calls_total",
             "generator_calls_total", "est_price_per_epoch", "est_price_total",
             "expected_signal_share", "useful_groups_per_epoch", "useful_groups_per_dollar"]


def table_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Flat rows (CSV and W&B): one per run."""
    buckets = bucket_names(summary["runs"])
    columns = (["num", "overrides", "status", "job_id", "state"] + [f"bucket_{b}" for b in buckets]
               + CSV_TAIL + COST_COLS + ["out_dir", "log", "error"])
    rows = []
    for run in summary["runs"]:
        p2 = run.get("phase2") or {}
        row = [run["num"], " ".join(run.get("overrides") or []), run["status"], run.get("job_id"), run.get("state")]
        row += [(run.get("buckets") or {}).get(b) for b in buckets]
        row += [run.get(c) for c in CSV_TAIL]
        row += [p2.get(c) for c in COST_COLS]
        row += [run.get("out_dir"), run.get("log"), run.get("error")]
        rows.append(row)
    return columns, rows


def to_csv(columns: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def print_table(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    runs = summary["runs"]
    buckets = bucket_names(runs)
    currency = summary["settings"].get("currency", "USD")
    table = Table(title=f"ddai sweep: {summary['runs_total']} runs, {summary['runs_failed']} failed",
                  caption=f"{summary['sweep_dir']}", show_lines=False, padding=(0, 1), pad_edge=False)
    # Scheduler job ids only when they say more than the run number (Slurm, submitit).
    show_job = any(str(run.get("job_id") or "") not in ("", str(run["num"])) for run in runs)
    headers: list[tuple[str, str]] = [("#", "right"), ("swept", "left"), ("status", "left")]
    headers += [("job", "left")] if show_job else []
    headers += [(b, "right") for b in buckets]
    headers += [(n, "right") for n in ("matched", "steps/ep", "dropped", "judge/ep", "gen/ep", f"est. {currency}")]
    for name, justify in headers:  # numbers never wrap or shrink below their header
        table.add_column(name, justify=justify, no_wrap=True, min_width=len(name))  # type: ignore[arg-type]
    labels, common = swept_labels([run.get("overrides") or [] for run in runs])
    if common:
        table.caption = f"{summary['sweep_dir']}\nevery run: {' '.join(common)}"
    for run, label in zip(runs, labels):
        p2 = run.get("phase2") or {}
        ok = run["status"] == "COMPLETED"
        status = "[green]ok[/]" if ok else f"[red]{run.get('state') or run['status']}[/]"
        cells = [str(run["num"]), label, status] + ([run.get("job_id") or "-"] if show_job else [])
        cells += [_fmt((run.get("buckets") or {}).get(b)) for b in buckets]
        cells += [_fmt(run.get("matched")), _fmt(run.get("steps_per_epoch")), _fmt(run.get("dropped")),
                  _fmt(p2.get("judge_calls_per_epoch")), _fmt(p2.get("generator_calls_per_epoch")),
                  _fmt(p2.get("est_price_total"))]
        table.add_row(*cells)
    console = Console(stderr=True)
    if not console.is_terminal:  # logs and CI: COLUMNS when set, else wide enough not to squeeze
        console = Console(stderr=True, width=table_width(False, default=200))
    console.print(table)
    for run in runs:
        if run["status"] != "COMPLETED":
            console.print(f"[red]#{run['num']} failed[/] (job {run.get('job_id') or '-'}, "
                          f"state {run.get('state') or run['status']}): {run.get('error') or 'no error message'}\n"
                          f"    log: {run.get('log') or '-'}", highlight=False, soft_wrap=True)


def log_to_wandb(summary: dict[str, Any], wandb_cfg: dict[str, Any]) -> str | None:
    """Log the summary table to W&B (the key comes from the environment only)."""
    import wandb

    columns, rows = table_rows(summary)
    kwargs = {k: wandb_cfg[k] for k in ("project", "entity", "name", "mode") if wandb_cfg.get(k)}
    run = wandb.init(job_type="sweep-summary", tags=list(wandb_cfg.get("tags") or []),
                     dir=summary["sweep_dir"], config={"sweep_dir": summary["sweep_dir"], **summary["settings"]},
                     **kwargs)
    try:
        run.log({"sweep_summary": wandb.Table(columns=columns, data=[[_wandb_cell(v) for v in r] for r in rows])})
        run.summary["runs_total"] = summary["runs_total"]
        run.summary["runs_failed"] = summary["runs_failed"]
        return str(run.dir)
    finally:
        run.finish()


def _wandb_cell(v: Any) -> Any:
    return "" if v is None else v


def settings_from(config: DictConfig) -> dict[str, Any]:
    from ddai.launch.sweep_config import SweepConfig

    node = OmegaConf.select(config, "sweep")
    base = OmegaConf.structured(SweepConfig)
    merged = OmegaConf.merge(base, node) if node is not None else base
    return OmegaConf.to_container(merged, resolve=True)  # type: ignore[return-value]


def write_summary(sweep_dir: Path, settings: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    summary = build_summary(sweep_dir, {k: v for k, v in settings.items() if k not in ("wandb", "summary_name")},
                            token=token)
    name = settings.get("summary_name") or "sweep_summary"
    columns, rows = table_rows(summary)
    atomic_write_text(sweep_dir / f"{name}.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(sweep_dir / f"{name}.csv", to_csv(columns, rows))
    return summary


class SweepSummary(Callback):
    """Hydra callback: per-job records inside jobs, one summary at the end of the multirun.

    A token drawn at the start of the multirun travels with the callback into every job
    (Hydra pickles it along with the launcher), so records left in a reused sweep directory
    by an earlier sweep are not mistaken for this one's.
    """

    def __init__(self) -> None:
        self.token: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.token = uuid.uuid4().hex
        stale = Path(str(config.hydra.sweep.dir)) / JOBS_FILE
        stale.unlink(missing_ok=True)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        try:
            if HydraConfig.get().mode != RunMode.MULTIRUN:
                return
        except ValueError:
            return
        rec = run_record(config, job_return)
        rec["sweep_token"] = self.token
        atomic_write_text(Path(rec["output_dir"]) / RUN_FILE, json.dumps(rec, indent=2) + "\n")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra turns a callback's exception into a warning and exits 0: report it ourselves.
        try:
            self._summarize(config)
        except Exception as exc:  # noqa: BLE001 - one line (or a traceback for a bug), non-zero exit
            from ddai.launch.cli import fail

            fail(exc)

    def _summarize(self, config: DictConfig) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
        settings = settings_from(config)
        summary = write_summary(sweep_dir, settings, token=self.token)
        print_table(summary)
        name = settings.get("summary_name") or "sweep_summary"
        print(f"ddai: sweep summary: {sweep_dir / (name + '.json')} and .csv", file=sys.stderr)
        wandb_cfg = settings.get("wandb") or {}
        if wandb_cfg.get("project"):
            where = log_to_wandb(summary, wandb_cfg)
            print(f"ddai: sweep summary logged to W&B project {wandb_cfg['project']} ({where})", file=sys.stderr)
        if summary["runs_failed"]:
            print(f"ddai: error: {summary['runs_failed']} of {summary['runs_total']} sweep runs failed "
                  f"(see {sweep_dir / (name + '.json')})", file=sys.stderr)
            sys.exit(1)


__all__ = ["SweepSummary", "build_summary", "phase2_cost", "manifest_metrics", "write_summary"]
