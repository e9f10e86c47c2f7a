"""``--wandb``: the report's per-step figures as history of the Phase 2 training run.

WHY the training run: people look at the judge score next to the loss and the reward of the
same run. The chain gives each Phase 2 run one stable W&B run id (``plan.json``'s
``wandb_run_id``, the id every job of the chain resumes with ``WANDB_RESUME=allow``), so the
report resumes that run and adds its rows under the ``ddai/`` prefix. W&B refuses rows at a
step older than the run's current one, so the rows carry their own x axis, ``ddai/step``
(declared with ``define_metric``), holding the training step each row describes: W&B charts
of ``ddai/*`` use it, and the figures overlay the trainer's curves step for step. The summary
tables (per step, most discordant, quadrants, deciles, buckets) go into the run's summary
under ``ddai/``. Only when no training run is known (no run directory, no ``--wandb-run-id``)
is a run of its own created (job type ``report``).

The W&B mode comes from the environment (``WANDB_MODE=offline`` writes
``wandb/offline-run-*-<id>`` to sync later); no key is read here.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from ddai.errors import ConfigError
from ddai.report.model import Report
from ddai.report.plots import Figure
from ddai.report.render_json import _clean, document

PREFIX = "ddai"
STEP_KEYS = ("rollouts", "prompts", "judge_mean", "ndcg_mean", "final_mean", "error_rate", "latency_mean")


def _flat(prefix: str, obj: Any, out: dict[str, Any]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flat(f"{prefix}/{k}" if prefix else str(k), v, out)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix] = obj


def history_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per training step: ``ddai/step`` and the step's figures (``ddai/<log>/judge_mean``…).

    With one log the log level is left out (``ddai/judge_mean``); with several, each log's
    figures sit under ``ddai/log<i>/`` and rows of the same step are merged.
    """
    rows: dict[int, dict[str, Any]] = {}
    many = len(doc["logs"]) > 1
    for i, log in enumerate(doc["logs"]):
        base = f"{PREFIX}/log{i}" if many else PREFIX
        for r in log.get("per_step") or []:
            row = rows.setdefault(int(r["step"]), {f"{PREFIX}/step": int(r["step"])})
            for k in STEP_KEYS:
                if r.get(k) is not None:
                    row[f"{base}/{k}"] = r[k]
    return [rows[s] for s in sorted(rows)]


def _table(wandb: Any, rows: list[dict[str, Any]], drop: tuple[str, ...] = ()) -> Any:
    cols = [c for c in rows[0] if c not in drop]
    return wandb.Table(columns=cols, data=[[r.get(c) for c in cols] for r in rows])


def _last_logged(run: Any) -> int | None:
    try:
        v = run.summary.get(f"{PREFIX}/last_step_logged")
    except Exception:  # noqa: BLE001 - an unreadable summary only means "log everything"
        return None
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def log_to_wandb(rep: Report, figures: list[Figure] | None, *, project: str | None, name: str | None,
                 run_id: str | None = None) -> str:
    try:
        import wandb
    except ImportError:
        raise ConfigError("--wandb needs the wandb package", where="--wandb",
                          expected="pip install 'ddai[wandb]'") from None

    doc = _clean(document(rep))
    first = Path(rep.logs[0].path).stem if rep.logs else "inputs"
    project = project or os.environ.get("WANDB_PROJECT") or "ddai"
    if run_id:
        run = wandb.init(project=project, id=run_id, resume="allow")
    else:
        run = wandb.init(project=project, job_type="report", name=name or f"ddai-report-{first}",
                         config={"options": doc["options"], "inputs": [i["path"] for i in doc["inputs"]]})
    try:
        run.define_metric(f"{PREFIX}/step")
        run.define_metric(f"{PREFIX}/*", step_metric=f"{PREFIX}/step")
        rows = history_rows(doc)
        # a resumed run remembers the last step a previous report logged (online runs fetch
        # their summary): log from that step on — it may have been partial then — not again
        # from step 1
        done = _last_logged(run)
        for row in rows:
            if done is None or row[f"{PREFIX}/step"] >= done:
                run.log(row)
        summary: dict[str, Any] = {}
        tables: dict[str, Any] = {}
        for i, log in enumerate(doc["logs"]):
            key = f"{PREFIX}/log{i}" if len(doc["logs"]) > 1 else PREFIX
            _flat(key, {k: log[k] for k in ("rollouts", "prompts", "scores", "rates", "latency_s",
                                             "tokens", "cost_usd", "judge_subscores") if log.get(k)}, summary)
            quad = log.get("quadrants") or {}
            _flat(f"{key}/quadrants", {q: v["fraction"] for q, v in (quad.get("rollouts") or {}).items()
                                       if isinstance(v, dict)}, summary)
            if log.get("per_step"):
                tables[f"{key}/tables/per_step"] = _table(wandb, log["per_step"])
            if quad.get("most_discordant"):
                tables[f"{key}/tables/most_discordant"] = _table(wandb, quad["most_discordant"])
            if quad:
                tables[f"{key}/tables/quadrants"] = wandb.Table(
                    columns=["quadrant", "rollouts", "rollout_share", "prompts", "prompt_share"],
                    data=[[q, quad["rollouts"][q]["n"], quad["rollouts"][q]["fraction"], quad["prompts"][q]["n"],
                           quad["prompts"][q]["fraction"]] for q in ("solved", "guessing", "reasoning_failure",
                                                                      "failure")])
            cj = log.get("curriculum_join")
            if cj and cj.get("by_decile"):
                tables[f"{key}/tables/by_decile"] = _table(wandb, cj["by_decile"], drop=("quadrants",))
        for c in doc["curricula"]:
            _flat(f"{PREFIX}/buckets/{Path(c['path']).parent.name}", c["buckets"], summary)
        for s in doc["sweeps"]:
            if s["jobs"]:
                from ddai.report.views import swept_labels

                labels = swept_labels(s["jobs"])
                names = s["bucket_names"]
                tables[f"{PREFIX}/tables/sweep_buckets"] = wandb.Table(
                    columns=["job", "swept", *names],
                    data=[[str(j["job"]), labels[str(j["job"])], *[j["buckets"].get(b) for b in names]]
                          for j in s["jobs"]])
        last = rows[-1][f"{PREFIX}/step"] if rows else None
        if figures:
            from PIL import Image

            images = {f"{PREFIX}/plots/{Path(f.name).stem}": wandb.Image(Image.open(io.BytesIO(f.png)),
                                                                         caption=f.title) for f in figures}
            run.log({**({f"{PREFIX}/step": last} if last is not None else {}), **images})
        for k, v in {**summary, **tables}.items():
            run.summary[k] = v
        if last is not None:
            run.summary[f"{PREFIX}/last_step_logged"] = last
        where = f"run {run.id} ({getattr(run, 'dir', '') or project})"
    finally:
        run.finish()
        # wandb-core may still be writing the run's files after finish(); shutting the service
        # down waits for it, so an offline run is complete when ddai-report exits
        wandb.teardown()
    return where
