"""Per-step judge metrics (failures, cache hits, tokens, cost) from the judge log, for W&B.

WHY from the log: verl 0.9.1's default (V1) trainer keeps a reward function's extra keys
only in TransferQueue ``extra_fields`` (generation dumps, DAPO filtering); it never averages
them into the training metrics, and a dropped rollout (failed judgment) returns nothing at
all. The judge log has every rollout, dropped ones included, with its step, so the numbers
are computed from it — over every per-writer file of every host.

    python -m ddai.reward.metrics logs/gspo_gemini_output.jsonl            # JSON line per step
    python -m ddai.reward.metrics logs/gspo_gemini_output.jsonl --wandb-run-id RUN --wandb-project P

With ``--wandb-run-id`` the metrics are added to that W&B run (the trainer's: export
``WANDB_RUN_ID`` for the training job so it is known) as ``judge/*`` against their own
x-axis ``judge/step``; the run is joined in W&B's shared mode as a non-primary writer, so it
can run beside the trainer or after it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from ddai.reward.judge_log import log_files


def read_records(log_path: str) -> list[dict[str, Any]]:
    """Every complete line of every file of the judge log (a partial last line is skipped)."""
    records = []
    for path in log_files(log_path):
        data = path.read_bytes()
        end = data.rfind(b"\n")
        for raw in data[: end + 1].split(b"\n"):
            if raw.strip():
                records.append(json.loads(raw))
    return records


def step_metrics(records: Iterable[dict[str, Any]]) -> dict[int, dict[str, float]]:
    """step -> judge/* numbers of the rollouts scored at that step."""
    acc: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for rec in records:
        m = acc[int(rec.get("step", -1))]
        m["judge/rollouts"] += 1
        m["judge/failures"] += bool(rec.get("judge_failed"))
        m["judge/dropped"] += bool(rec.get("dropped"))
        m["judge/cache_hits"] += bool(rec.get("cache_hit"))
        m["judge/image_errors"] += float(rec.get("image_errors") or 0)
        m["judge/cost_usd"] += float(rec.get("cost_usd") or 0.0)
        m["judge/generator_cost_usd"] += float(rec.get("generator_cost_usd") or 0.0)
        tokens = rec.get("tokens") or {}
        for kind in ("input", "output", "thinking", "total"):
            m[f"judge/tokens_{kind}"] += float(tokens.get(kind) or 0)
        paid = not rec.get("cache_hit") and float(tokens.get("total") or 0) > 0
        m["judge/paid_judgments"] += paid
    out: dict[int, dict[str, float]] = {}
    for step in sorted(acc):
        m = dict(acc[step])
        m["judge/failure_rate"] = m["judge/failures"] / m["judge/rollouts"]
        m["judge/cache_hit_rate"] = m["judge/cache_hits"] / m["judge/rollouts"]
        out[step] = m
    return out


def publish_wandb(metrics: dict[int, dict[str, float]], *, run_id: str, project: str | None = None,
                  entity: str | None = None) -> int:
    """Add the per-step judge metrics to an existing W&B run (shared mode, non-primary)."""
    import os

    import wandb

    if os.environ.get("WANDB_MODE") in ("offline", "disabled"):
        settings = wandb.Settings(x_label="ddai-judge-metrics")  # local files only (tests, air-gapped nodes)
    else:
        settings = wandb.Settings(mode="shared", x_primary=False, x_label="ddai-judge-metrics")
    run = wandb.init(id=run_id, project=project, entity=entity, resume="allow", settings=settings)
    try:
        run.define_metric("judge/step")
        run.define_metric("judge/*", step_metric="judge/step")
        for step, values in metrics.items():
            run.log({"judge/step": step, **values})
    finally:
        run.finish()
    return len(metrics)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ddai.reward.metrics", description=__doc__.splitlines()[0])
    ap.add_argument("log_path", help="the judge log's log_path (all per-host files are read)")
    ap.add_argument("--wandb-run-id", help="add the metrics to this W&B run")
    ap.add_argument("--wandb-project")
    ap.add_argument("--wandb-entity")
    args = ap.parse_args(argv)
    metrics = step_metrics(read_records(args.log_path))
    for step, values in metrics.items():
        sys.stdout.write(json.dumps({"step": step, **values}, sort_keys=True) + "\n")
    if args.wandb_run_id:
        n = publish_wandb(metrics, run_id=args.wandb_run_id, project=args.wandb_project, entity=args.wandb_entity)
        print(f"[ddai] {n} steps of judge metrics added to W&B run {args.wandb_run_id}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
