"""``--wandb``: the report's summary, tables and figures as one W&B run.

WHY a run of its own (job type ``report``) rather than writing into the training run: the
report is re-run every morning on a growing log; each run is a snapshot that sits beside
the training curves in the same project. The W&B mode comes from the environment as usual
(``WANDB_MODE=offline`` writes ``wandb/offline-run-*`` to sync later); no key is read here.
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


def _flat(prefix: str, obj: Any, out: dict[str, Any]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flat(f"{prefix}/{k}" if prefix else str(k), v, out)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix] = obj


def log_to_wandb(rep: Report, figures: list[Figure] | None, *, project: str | None, name: str | None) -> str:
    try:
        import wandb
    except ImportError:
        raise ConfigError("--wandb needs the wandb package", where="--wandb",
                          expected="pip install 'ddai[wandb]'") from None
    from PIL import Image

    doc = _clean(document(rep))
    first = Path(rep.logs[0].path).stem if rep.logs else "inputs"
    run = wandb.init(project=project or os.environ.get("WANDB_PROJECT") or "ddai", job_type="report",
                     name=name or f"ddai-report-{first}",
                     config={"options": doc["options"], "inputs": [i["path"] for i in doc["inputs"]]})
    try:
        summary: dict[str, Any] = {}
        for i, log in enumerate(doc["logs"]):
            key = f"log{i}" if len(doc["logs"]) > 1 else "log"
            _flat(key, {k: log[k] for k in ("rollouts", "prompts", "scores", "rates", "latency_s",
                                             "tokens", "cost_usd", "judge_subscores") if log.get(k)}, summary)
            _flat(f"{key}/quadrants", {q: v["fraction"] for q, v in log["quadrants"]["rollouts"].items()
                                       if isinstance(v, dict)}, summary)
            data: dict[str, Any] = {}
            if log["per_step"]:
                cols = list(log["per_step"][0])
                data[f"{key}/per_step"] = wandb.Table(columns=cols, data=[[r[c] for c in cols] for r in log["per_step"]])
            disc = log["quadrants"]["most_discordant"]
            if disc:
                cols = list(disc[0])
                data[f"{key}/most_discordant"] = wandb.Table(columns=cols, data=[[r[c] for c in cols] for r in disc])
            cj = log.get("curriculum_join")
            if cj and cj["by_decile"]:
                cols = [c for c in cj["by_decile"][0] if c != "quadrants"]
                data[f"{key}/by_decile"] = wandb.Table(columns=cols, data=[[r[c] for c in cols] for r in cj["by_decile"]])
            if data:
                run.log(data)
        for c in doc["curricula"]:
            _flat(f"buckets/{Path(c['path']).parent.name}", c["buckets"], summary)
        for s in doc["sweeps"]:
            if s["jobs"]:
                names = s["bucket_names"]
                run.log({"sweep/buckets": wandb.Table(columns=["job", *names],
                                                       data=[[j["job"], *[j["buckets"].get(b) for b in names]]
                                                             for j in s["jobs"]])})
        if figures:
            run.log({f"plots/{Path(f.name).stem}": wandb.Image(Image.open(io.BytesIO(f.png)), caption=f.title)
                     for f in figures})
        for k, v in summary.items():
            run.summary[k] = v
        where = getattr(run, "dir", None) or run.id
    finally:
        run.finish()
    return str(where)
