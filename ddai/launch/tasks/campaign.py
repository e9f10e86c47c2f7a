"""``task=campaign``: rounds of Phase 2, each on a set computed from the round before, submitted at once.

``python -m ddai.launch task=campaign campaign.rounds=3 phase2.model_path=... [curriculum.* | campaign.manifest=...]``
validates everything now, writes ``<campaign.dir>/campaign.json``, and submits the stages that
are not complete yet, linked by dependencies (:mod:`ddai.campaign.stages`). Re-running the
same command continues a stopped campaign (finished stages are skipped; a round whose chain
was cancelled resumes from its last checkpoint); while jobs of the campaign are still queued
or running it submits nothing and says so. ``campaign.dry_run=true`` prints the stages.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from ddai.campaign import record as cr
from ddai.campaign import stages as cst
from ddai.campaign import steps
from ddai.campaign.config import validate_settings
from ddai.errors import ConfigError
from ddai.jobs import executor
from ddai.jobs.stage import MarkerStage, submit_stages
from ddai.launch.tasks import curriculum as curriculum_task
from ddai.launch.tasks import phase2 as phase2_task
from ddai.launch.tasks.pipeline import _curriculum_overrides, curriculum_spec
from ddai.phase2.plan import build_plan
from ddai.phase2.submit import Phase2Stage


def _abs(path: str) -> str:
    return str(Path(path).expanduser().resolve())


def validate(cfg: DictConfig) -> None:
    c = cfg.campaign
    validate_settings(c)
    if c.manifest:
        if not Path(str(c.manifest)).is_file():
            raise ConfigError(f"{c.manifest} does not exist", where="campaign.manifest",
                              expected="a curriculum manifest.json")
    else:
        curriculum_task.validate(cfg)
        if int(cfg.curriculum.train_batch_size) != int(cfg.phase2.train_batch_size):
            raise ConfigError(f"curriculum.train_batch_size={cfg.curriculum.train_batch_size} but "
                              f"phase2.train_batch_size={cfg.phase2.train_batch_size}",
                              where="curriculum.train_batch_size", expected="the same batch size in both")
    if int(c.rounds) > 1 and not (c.dataset or (not c.manifest and cfg.curriculum.dataset)):
        raise ConfigError("later rounds need the dataset their sets are drawn from", where="campaign.dataset",
                          expected="a training parquet (or curriculum.dataset)")
    first = _abs(str(c.manifest)) if c.manifest else str(steps.round_dir(_abs(str(c.dir)), 1) / "set" / "manifest.json")
    with open_dict(cfg.phase2):  # what round 1 will train (each round gets its own copy in run())
        cfg.phase2.manifest, cfg.phase2.train_file = first, None
        cfg.phase2.defer_data_check = not c.manifest
    phase2_task.validate(cfg)


def _round_phase2(cfg: DictConfig, k: int, cdir: Path, prefix: str) -> tuple[Any, cr.RoundRecord]:
    """Round k's ``phase2`` node (own run dir, set manifest, judge log, job name) and record."""
    rdir = steps.round_dir(cdir, k)
    p = OmegaConf.create(OmegaConf.to_container(cfg.phase2, resolve=True))
    p = OmegaConf.merge(OmegaConf.structured(type(OmegaConf.to_object(cfg.phase2))), p)
    given = k == 1 and cfg.campaign.manifest
    manifest = _abs(str(cfg.campaign.manifest)) if given else str(rdir / "set" / "manifest.json")
    run_dir = rdir / "run"
    # The judge log's name; every writer process appends its own file beside it
    # (ddai.reward.judge_log), so a round's log is the directory's files.
    judge_log = run_dir / "judge_log" / "judge.jsonl"
    with open_dict(p):
        p.run_dir = str(run_dir)
        p.checkpoint_dir = None
        p.manifest, p.train_file = manifest, None
        p.defer_data_check = not given
        p.experiment_name = f"{cfg.phase2.experiment_name}-r{k}"
        p.slurm.job_name = f"{prefix}-r{k}"
        p.reward.kwargs["log_path"] = str(judge_log)
    rec = cr.RoundRecord(round=k, set_dir=str(rdir / "set"), manifest=manifest, run_dir=str(run_dir),
                         judge_log=str(judge_log))
    return p, rec


def _settings(cfg: DictConfig) -> dict[str, Any]:
    c = OmegaConf.to_container(cfg.campaign, resolve=True)
    dataset = c.get("dataset") or (None if c.get("manifest") else str(cfg.curriculum.dataset))
    c["dataset"] = _abs(dataset) if dataset else None
    c["train_batch_size"] = int(cfg.phase2.train_batch_size)
    c["rollout_n"] = int(cfg.phase2.rollout.n)
    from ddai.launch.sweep_summary import phase2_cost, settings_from

    prices = {**settings_from(cfg), "rollouts_per_prompt": 1, "epochs": 1}  # conf/sweep's price estimates
    c["price_per_rollout"] = phase2_cost(1, prices)["est_price_per_epoch"]
    c.pop("dry_run", None)
    c.pop("job", None)
    return c


def run(cfg: DictConfig) -> dict[str, Any]:
    c = cfg.campaign
    cdir = Path(_abs(str(c.dir)))
    name = str(cfg.phase2.experiment_name)
    prefix = str(cfg.phase2.slurm.job_name or f"ddai-c-{name}")
    python = sys.executable
    rounds = [_round_phase2(cfg, k, cdir, prefix) for k in range(1, int(c.rounds) + 1)]
    settings = _settings(cfg)
    rec = cr.load(cdir)
    same = lambda a, b: {k: v for k, v in a.items() if k != "price_per_rollout"} == \
        {k: v for k, v in b.items() if k != "price_per_rollout"}  # a new price estimate is not a new campaign
    if rec is not None and not same(rec.settings, settings):
        raise ConfigError("this campaign directory holds a different campaign", where=cr.path(cdir),
                          expected="the same campaign.* settings to continue it, or a new campaign.dir")
    ex = executor()
    if rec is not None and rec.submissions:
        live = {s: j for s, j in rec.submissions[-1].jobs.items() if ex.alive(j)}
        if live:
            out = {"submitted": False, "dir": str(cdir), "running": live,
                   "message": "the campaign's jobs are still queued or running; nothing submitted"}
            print(json.dumps(out, indent=2))
            return out
    plans = [build_plan(p) for p, _ in rounds]
    stage_list: list[Any] = []
    if not c.manifest:
        spec = curriculum_spec(f"{prefix}-r1-set", [*_curriculum_overrides(cfg, rounds[0][1].set_dir),
                                                                f"hydra.run.dir={rounds[0][1].set_dir}/.hydra"],
                               log_dir=str(cdir / "logs"), partition=cfg.phase2.slurm.partition,
                               account=cfg.phase2.slurm.account)
        stage_list.append(MarkerStage("round1-curriculum", spec, Path(rounds[0][1].manifest)))
    for k, plan in enumerate(plans, start=1):
        if k > 1:
            stage_list.append(cst.nextset_stage(cdir, k, prefix, python, c.job, cfg.phase2.slurm))
        stage_list.append(Phase2Stage(f"round{k}-phase2", plan))
    stage_list.append(cst.close_stage(cdir, prefix, python, c.job, cfg.phase2.slurm))
    if c.dry_run:
        out = {"dry_run": True, "dir": str(cdir), "stages": [s.describe() for s in stage_list]}
        print(json.dumps(out, indent=2))
        return out
    if rec is None:
        rec = cr.CampaignRecord(name=name, dir=str(cdir), rounds=int(c.rounds), rule=str(c.rule), settings=settings,
                                round_records=[r for _, r in rounds])
        cdir.mkdir(parents=True, exist_ok=True)
        cr.dump(rec)
    (cdir / "logs").mkdir(parents=True, exist_ok=True)
    done = submit_stages(stage_list, ex)
    with cr.locked(cdir) as rec:
        rec.submissions.append(cr.Submission(at=round(time.time(), 3),
                                             jobs={k: v.job_id for k, v in done.jobs.items()},
                                             skipped=list(done.skipped)))
        if done.jobs:
            rec.status, rec.message = "running", f"submitted {', '.join(done.jobs)}"
        cr.event(rec, "submitted", jobs={k: v.job_id for k, v in done.jobs.items()}, skipped=done.skipped)
    out = {"submitted": bool(done.jobs), "dir": str(cdir), **done.to_json(),
           "record": str(cr.path(cdir))}
    print(json.dumps(out, indent=2))
    return out
