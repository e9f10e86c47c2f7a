"""Staged schedules: which mix of buckets a round trains on, advanced or rolled back by a metric.

WHY between rounds: a campaign re-buckets every round anyway, so a schedule only decides
which buckets (and what share of each) make the next set — "A only → A + the hardest of B →
A + 0", cumulative or not, as in the users' bucketing guide. The rule is their SFT
curriculum's: advance when the round's metric clears ``advance_at``; when it drops by more
than ``rollback_drop`` since the previous round, go back one stage and hold there for a
cooldown that grows (×``cooldown_growth``) with every rollback.

:func:`decide` is pure (state in, state and event out) so the rule is tested on its own;
:func:`compose` builds the round's set from the re-bucketed files; :func:`log_wandb` logs
stage, event and metric under ``curriculum/…``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ddai.errors import ConfigError


@dataclass
class ScheduleStage:
    name: str = ""
    mix: dict[str, float] = field(default_factory=dict)   # bucket -> share of its rows (0..1]


@dataclass
class ScheduleWandb:
    project: str | None = None
    mode: str | None = None      # online | offline | disabled (default: WANDB_MODE)


@dataclass
class ScheduleSettings:
    stages: list[ScheduleStage] = field(default_factory=list)   # empty: no schedule (train bucket only)
    cumulative: bool = False
    metric: str = "judge_last_step"   # judge_last_step | judge_mean | final_last_step | final_mean
    advance_at: float = 0.5
    rollback_drop: float = 0.1
    cooldown_rounds: int = 1
    cooldown_growth: float = 2.0
    wandb: ScheduleWandb = field(default_factory=ScheduleWandb)


METRICS = ("judge_last_step", "judge_mean", "final_last_step", "final_mean")


def validate_schedule(s: Any) -> None:
    if not s.stages:
        return
    if s.metric not in METRICS:
        raise ConfigError(f"metric={s.metric!r}", where="campaign.schedule.metric", expected=", ".join(METRICS))
    for i, st in enumerate(s.stages):
        if not st.mix or any(not (0 < float(v) <= 1) for v in st.mix.values()):
            raise ConfigError(f"stage {i} ({st.name!r}) mix={dict(st.mix)}", where=f"campaign.schedule.stages[{i}].mix",
                              expected="bucket: share with 0 < share <= 1, at least one bucket")
    if float(s.rollback_drop) < 0 or int(s.cooldown_rounds) < 0 or float(s.cooldown_growth) < 1:
        raise ConfigError("rollback_drop >= 0, cooldown_rounds >= 0, cooldown_growth >= 1", where="campaign.schedule")


@dataclass
class ScheduleState:
    stage: int = 0
    cooldown_left: int = 0
    cooldown_next: int = 1
    last_metric: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def decide(state: ScheduleState, metric: float, s: Any) -> tuple[ScheduleState, dict[str, Any]]:
    """The next round's stage from this round's metric (see module doc)."""
    n = len(s.stages)
    new = ScheduleState(**state.to_json())
    event: dict[str, Any] = {"metric": metric, "previous_metric": state.last_metric, "from_stage": state.stage}
    if state.last_metric is not None and metric < state.last_metric - float(s.rollback_drop):
        new.stage = max(0, state.stage - 1)
        new.cooldown_left = state.cooldown_next
        new.cooldown_next = max(1, math.ceil(state.cooldown_next * float(s.cooldown_growth)))
        kind = "rollback"
    elif state.cooldown_left > 0:
        new.cooldown_left = state.cooldown_left - 1
        kind = "cooldown"
    elif metric >= float(s.advance_at) and state.stage < n - 1:
        new.stage = state.stage + 1
        kind = "advance"
    else:
        kind = "stay"
    new.last_metric = metric
    event.update(event=kind, to_stage=new.stage, stage_name=s.stages[new.stage].name,
                 cooldown_left=new.cooldown_left)
    return new, event


def round_metric(judge_log: str | Path, name: str) -> float | None:
    """The round's metric from its judge log: mean judge/final score, over all or the last step."""
    import json

    from ddai.reward.judge_log import log_files

    field_ = "judge_score" if name.startswith("judge") else "final_score"
    by_step: dict[int, list[float]] = {}
    for path in log_files(judge_log):  # one file per writer process
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    d = json.loads(line)
                except json.JSONDecodeError:
                    continue
                v = d.get(field_)
                if isinstance(v, (int, float)) and math.isfinite(v) and 0 <= v <= 1:  # the usable-score rule
                    by_step.setdefault(int(d.get("step") or 0), []).append(float(v))
    if not by_step:
        return None
    vals = by_step[max(by_step)] if name.endswith("last_step") else [v for vs in by_step.values() for v in vs]
    return round(sum(vals) / len(vals), 6)


def mix_for(s: Any, stage: int) -> dict[str, float]:
    """The stage's mix; cumulative schedules include every earlier stage's buckets (later shares win)."""
    if not s.cumulative:
        return {str(k): float(v) for k, v in s.stages[stage].mix.items()}
    out: dict[str, float] = {}
    for st in s.stages[: stage + 1]:
        out.update({str(k): float(v) for k, v in st.mix.items()})
    return out


def compose(set_dir: Path, mix: dict[str, float], batch: int) -> tuple[Any, dict[str, Any]]:
    """The round's rows from the re-bucketed files: the train bucket in its curriculum order, then
    from every other bucket the given share of rows closest to the train band (for B the
    hardest, for 0 the easiest), cut to whole batches."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    doc = json.loads((set_dir / "manifest.json").read_text(encoding="utf-8"))
    th = doc.get("thresholds") or {}
    lo, hi = float(th.get("theta1", 0.0)), float(th.get("theta_easy", 1.0))
    parts, taken = [], {}
    for bucket, share in mix.items():
        if bucket not in doc["files"]:
            raise ConfigError(f"bucket {bucket!r} is not among the re-bucketed files {sorted(doc['files'])}",
                              where="campaign.schedule.stages", expected="bucket names of the curriculum rule")
        t = pq.read_table(set_dir / doc["files"][bucket])
        if bucket != doc["train_bucket"]:
            means = [(i.get("phase1_mean") if i else None) for i in t.column("extra_info").to_pylist()]
            dist = [(0.0 if m is None else max(lo - m, m - hi, 0.0), k) for k, m in enumerate(means)]
            order = [k for _, k in sorted(dist)]
            t = t.take(pa.array(order, pa.int64()))
        keep = math.ceil(share * t.num_rows)
        parts.append(t.slice(0, keep))
        taken[bucket] = keep
    table = pa.concat_tables(parts, promote_options="permissive") if parts else None
    rows = table.num_rows - table.num_rows % batch if table is not None else 0
    return (table.slice(0, rows) if table is not None else None), {"taken": taken, "rows": rows}


def log_wandb(campaign_dir: Path, name: str, round_k: int, event: dict[str, Any], rows: int, s: Any) -> str | None:
    """Stage, event and metric under ``curriculum/…`` in the campaign's W&B run (key from the env only)."""
    import hashlib
    import os

    if not (s.wandb.project or s.wandb.mode or os.environ.get("WANDB_MODE")):
        return None
    import wandb

    run_id = "campaign-" + hashlib.sha1(str(campaign_dir).encode()).hexdigest()[:12]
    kwargs = {k: v for k, v in (("project", s.wandb.project), ("mode", s.wandb.mode)) if v}
    run = wandb.init(id=run_id, resume="allow", name=f"{name}-curriculum", job_type="campaign",
                     dir=str(campaign_dir), **kwargs)
    try:
        code = {"advance": 1, "rollback": -1}.get(event["event"], 0)
        run.log({"curriculum/round": round_k, "curriculum/stage": event["to_stage"],
                 "curriculum/metric": event["metric"], "curriculum/event": code, "curriculum/rows": rows,
                 "curriculum/cooldown_left": event["cooldown_left"]})
        run.summary["curriculum/last_event"] = event["event"]
        run.summary["curriculum/stage_name"] = event["stage_name"]
        return str(run.dir)
    finally:
        run.finish()
