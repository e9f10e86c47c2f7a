"""The campaign's own jobs: ``nextset`` between rounds and ``close`` at the end.

``python -m ddai.campaign.steps nextset DIR K`` runs after round K-1's Phase 2 finished: it
settles round K-1 (final checkpoint, judged rollouts, cost), computes round K's training set
from round K-1's judge log by the campaign's rule, seeds round K's checkpoint directory with
round K-1's final checkpoint as ``global_step_0`` (weights and optimizer; no ``data.pt``, so
verl's data loader starts fresh on the new set), and writes ``round_K/ready.json`` last: the
stage's completion marker. ``python -m ddai.campaign.steps close DIR`` runs after everything
(``afterany``): it settles the rounds and records ``done``, or why the campaign stopped.
Both exit 1 with a one-line message when the campaign cannot go on (later stages are then
cancelled by Slurm: ``--kill-on-invalid-dep``).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ddai.atomic import atomic_path, atomic_write_text
from ddai.campaign import record as cr
from ddai.errors import DdaiError, InputError
from ddai.phase2 import chain_state as cs

READY_NAME = "ready.json"
SEED_STEP = 0


def round_dir(campaign_dir: str | Path, k: int) -> Path:
    return Path(campaign_dir) / f"round_{k}"


def judge_log_files(path: str | Path) -> list[Path]:
    """Every file of a round's judge log (one per writer process; see ddai.reward.judge_log)."""
    from ddai.reward.judge_log import log_files

    return log_files(path)


def judge_log_totals(path: str | Path) -> dict[str, Any]:
    """Judged rollouts and their cost (judge + generator) in one Phase 2 judge log (all its files)."""
    n, cost = 0, 0.0
    for p in judge_log_files(path):
        with open(p, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    d = json.loads(line)
                except json.JSONDecodeError:
                    continue
                n += 1
                for key in ("cost_usd", "generator_cost_usd"):
                    v = d.get(key)
                    if isinstance(v, (int, float)) and math.isfinite(v):
                        cost += float(v)
    return {"judged_rollouts": n, "cost_usd": round(cost, 6)}


def final_checkpoint(run_dir: str | Path) -> Path | None:
    """``<run>/checkpoints/global_step_N`` of the newest complete checkpoint (None: there is none)."""
    ckpt = Path(run_dir) / "checkpoints"
    tracker = ckpt / cs.LATEST_NAME
    try:
        step = int(tracker.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    folder = ckpt / f"global_step_{step}"
    return folder if folder.is_dir() else None


def _set_counts(manifest: str | Path) -> tuple[str | None, dict[str, Any]]:
    """Training file and counts of a set manifest (curriculum or campaign-written)."""
    p = Path(manifest)
    if not p.exists():
        return None, {}
    doc = json.loads(p.read_text(encoding="utf-8"))
    train = doc["files"][doc["train_bucket"]]
    train_path = str((p.parent / train).resolve()) if not Path(train).is_absolute() else train
    counts = {"buckets": doc.get("buckets", {}), "train_bucket": doc["train_bucket"],
              "steps_per_epoch": (doc.get("batch") or {}).get("steps_per_epoch")}
    return train_path, counts


def _signal(rec: cr.CampaignRecord, r: cr.RoundRecord) -> dict[str, Any] | None:
    """Expected GRPO signal of the round's set before it trains (:mod:`ddai.curriculum.budget`)."""
    from ddai.curriculum.budget import train_file_signal

    s = rec.settings
    steps = r.counts.get("steps_per_epoch")
    if not steps or not s.get("rollout_n"):
        return None
    try:
        return train_file_signal(r.manifest, int(s["rollout_n"]), s.get("price_per_rollout"),
                                 rows=int(steps) * int(s["train_batch_size"]))
    except (OSError, KeyError, ValueError):
        return None


def settle(rec: cr.CampaignRecord) -> None:
    """Fill in what finished rounds produced (idempotent: recomputed from files every time)."""
    so_far = 0.0
    for r in rec.round_records:
        if not r.train_file:
            r.train_file, counts = _set_counts(r.manifest)
            if counts:
                r.counts = {**counts, **r.counts}
        if r.train_file and "signal" not in r.counts:
            sig = _signal(rec, r)
            if sig is not None:
                r.counts["signal"] = sig
        run = Path(r.run_dir)
        if cs.marker(run, cs.DONE_NAME) is not None:
            r.status = "done"
            final = final_checkpoint(run)
            r.final_checkpoint = str(final) if final else None
            r.steps = cs.latest_checkpoint(run / "checkpoints")
            r.message = cs.marker(run, cs.DONE_NAME).strip()
        elif cs.marker(run, cs.FAILED_NAME) is not None:
            r.status = "failed"
            r.message = cs.marker(run, cs.FAILED_NAME).strip()
        tot = judge_log_totals(r.judge_log)
        if tot["judged_rollouts"] or r.status == "done":
            r.judged_rollouts, r.cost_usd = tot["judged_rollouts"], tot["cost_usd"]
            so_far += tot["cost_usd"]
            r.cost_so_far_usd = round(so_far, 6)


def seed_checkpoint(src: Path, run_dir: Path) -> str:
    """Make ``src`` (a ``global_step_N`` folder) round K's starting point as ``global_step_0``.

    The actor's files are linked, not copied (checkpoints are tens of GB); ``data.pt`` is left
    out on purpose: verl then starts the new set's data loader from the beginning. An
    existing real checkpoint of the round (a resumed round) is never touched.
    """
    ckpt = run_dir / "checkpoints"
    if cs.latest_checkpoint(ckpt) > SEED_STEP:
        return str(ckpt / f"global_step_{cs.latest_checkpoint(ckpt)}")
    actor = ckpt / f"global_step_{SEED_STEP}" / "actor"
    actor.mkdir(parents=True, exist_ok=True)
    for entry in sorted((src / "actor").iterdir()):
        link = actor / entry.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(entry.resolve())
    atomic_write_text(ckpt / cs.LATEST_NAME, str(SEED_STEP))
    return str((src / "actor").resolve())


def _python() -> str:
    return os.environ.get("DDAI_PYTHON") or sys.executable


def _run(argv: list[str], what: str) -> str:
    res = subprocess.run(argv, capture_output=True, text=True)
    if res.returncode != 0:
        tail = (res.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise DdaiError(f"{what} failed: {tail}", where=" ".join(argv[:4]))
    return res.stdout


def rebucket(rec: cr.CampaignRecord, prev: cr.RoundRecord, cur: cr.RoundRecord) -> dict[str, Any]:
    """Round K's set: the curriculum engine on round K-1's judge log (same rules as round 1).

    With a staged schedule the buckets go to ``set/buckets`` and the set is the stage's mix.
    """
    s = rec.settings
    staged = bool((s.get("schedule") or {}).get("stages"))
    retest = retest_due(s, cur.round)
    out = Path(cur.set_dir) / "buckets" if (staged or retest) else Path(cur.set_dir)
    argv = [_python(), "-m", "ddai.launch", "task=curriculum", f"curriculum.phase1_log={Path(prev.judge_log).parent}",
            f"curriculum.dataset={s['dataset']}", f"curriculum.out_dir={out}", "curriculum.format=jsonl",
            f"curriculum.score={s['rebucket']['score']}", f"curriculum.train_batch_size={s['train_batch_size']}",
            "curriculum.remainder=trim", "curriculum.progress=off", f"hydra.run.dir={out / '.hydra'}",
            *(["curriculum.allow_empty_train=true"] if staged else []),  # the mix decides what trains
            *s["rebucket"]["overrides"]]
    _run(argv, "re-bucketing the round's judge log")
    decision = {"rule": "rebucket", "source_log": prev.judge_log, "score": s["rebucket"]["score"],
                "overrides": list(s["rebucket"]["overrides"]), "manifest": str(out / "manifest.json")}
    if staged:
        decision["schedule"] = staged_set(rec, prev, cur, out)
    elif retest:
        _copy_train_bucket(out, Path(cur.set_dir), int(s["train_batch_size"]))
    if retest:
        decision["retest"] = add_retest(rec, cur)
    return decision


EXTRA = ("unmatched", "no_score", "ambiguous", "remainder", "prompt_stats")


def retest_due(s: dict[str, Any], k: int) -> bool:
    """Whether round k re-tests excluded prompts (every ``retest.every`` rounds; 0: never)."""
    every = int((s.get("retest") or {}).get("every") or 0)
    return every > 0 and k % every == 0


def _copy_train_bucket(buckets: Path, set_dir: Path, tbs: int) -> None:
    """The round's set = the re-bucketed training bucket (whole batches), as set/train.parquet + manifest."""
    import pyarrow.parquet as pq

    doc = json.loads((buckets / "manifest.json").read_text(encoding="utf-8"))
    table = pq.read_table(buckets / doc["files"][doc["train_bucket"]])
    rows = table.num_rows - table.num_rows % tbs
    with atomic_path(set_dir / "train.parquet") as tmp:
        pq.write_table(table.slice(0, rows), tmp, compression="snappy")
    manifest = {"kind": "campaign_round", "files": {"train": "train.parquet"}, "train_bucket": "train",
                "buckets": doc["buckets"], "batch": {"train_batch_size": tbs, "steps_per_epoch": rows // tbs,
                                                     "remainder": 0}}
    atomic_write_text(set_dir / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _excluded_pool(rec: cr.CampaignRecord, k: int) -> list[tuple[str, Path, str]]:
    """(id, bucket file, bucket) of prompts earlier rounds left out (B, 0, uncertain, ...), newest round first."""
    import pyarrow.parquet as pq

    seen: set[str] = set()
    out = []
    for j in range(k - 1, 0, -1):
        rdir = Path(rec.round(j).set_dir)
        mpath = rdir / "buckets" / "manifest.json" if (rdir / "buckets" / "manifest.json").exists() else \
            rdir / "manifest.json"
        if not mpath.exists():
            continue
        doc = json.loads(mpath.read_text(encoding="utf-8"))
        if doc.get("kind") == "campaign_round":
            continue
        for bucket, name in doc["files"].items():
            if bucket == doc["train_bucket"] or bucket in EXTRA:
                continue
            for pid in pq.read_table(mpath.parent / name, columns=["id"]).column("id").to_pylist():
                if pid not in seen:
                    seen.add(pid)
                    out.append((pid, mpath.parent / name, bucket))
    return out


def add_retest(rec: cr.CampaignRecord, cur: cr.RoundRecord) -> dict[str, Any]:
    """Second chances: append whole batches of prompts earlier rounds excluded, never re-tested before.

    Which ones is a seeded hash of (round, id): reproducible, and over the rounds it walks
    through the whole pool, so no prompt stays excluded for ever on one noisy reading.
    """
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    s = rec.settings
    tbs = int(s["train_batch_size"])
    set_dir = Path(cur.set_dir)
    table = pq.read_table(set_dir / "train.parquet")
    current = set(table.column("id").to_pylist())
    done = {i for e in rec.events if e.get("event") == "retest" for i in e.get("ids", [])}
    pool = [p for p in _excluded_pool(rec, cur.round) if p[0] not in current and p[0] not in done]
    pool.sort(key=lambda p: hashlib.sha256(f"{cur.round}\0{p[0]}".encode()).hexdigest())
    want = min(int(s["retest"]["rows"]), len(pool))
    chosen = pool[: want - want % tbs]
    parts, from_bucket = [table], {}
    for path in sorted({p[1] for p in chosen}):
        ids = [p[0] for p in chosen if p[1] == path]
        t = pq.read_table(path)
        mask = pa.array([i in set(ids) for i in t.column("id").to_pylist()])
        parts.append(t.filter(mask))
    for _, _, bucket in chosen:
        from_bucket[bucket] = from_bucket.get(bucket, 0) + 1
    if chosen:
        merged = pa.concat_tables(parts, promote_options="permissive")
        with atomic_path(set_dir / "train.parquet") as tmp:
            pq.write_table(merged, tmp, compression="snappy")
        doc = json.loads((set_dir / "manifest.json").read_text(encoding="utf-8"))
        doc["batch"]["steps_per_epoch"] = merged.num_rows // tbs
        doc["retest"] = {"rows": len(chosen), "from_buckets": from_bucket}
        atomic_write_text(set_dir / "manifest.json", json.dumps(doc, indent=2, sort_keys=True) + "\n")
    ids = sorted(p[0] for p in chosen)
    with cr.locked(rec.dir) as live:
        if not any(e.get("event") == "retest" and e.get("round") == cur.round for e in live.events):
            cr.event(live, "retest", round=cur.round, ids=ids, from_buckets=from_bucket, pool=len(pool))
    return {"rows": len(chosen), "from_buckets": from_bucket, "pool": len(pool)}


def staged_set(rec: cr.CampaignRecord, prev: cr.RoundRecord, cur: cr.RoundRecord, buckets: Path) -> dict[str, Any]:
    """Decide the stage from round K-1's metric, write round K's mix and its manifest, log the event."""
    import pyarrow.parquet as pq
    from omegaconf import OmegaConf

    from ddai.campaign import schedule as sch

    s = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(sch.ScheduleSettings),
                                            rec.settings["schedule"]))
    # A re-run of this round's job decides from the same state again (never advances twice).
    before = rec.schedule.get("before") if rec.schedule.get("round") == cur.round else rec.schedule.get("after")
    state = sch.ScheduleState(**before) if before else sch.ScheduleState(cooldown_next=s.cooldown_rounds)
    before = state.to_json()
    metric = sch.round_metric(prev.judge_log, s.metric)
    if metric is None:
        raise DdaiError(f"round {prev.round}'s judge log has no usable {s.metric} score", where=prev.judge_log)
    state, event = sch.decide(state, metric, s)
    mix = sch.mix_for(s, state.stage)
    tbs = int(rec.settings["train_batch_size"])
    table, taken = sch.compose(buckets, mix, tbs)
    out = Path(cur.set_dir)
    with atomic_path(out / "train.parquet") as tmp:
        pq.write_table(table, tmp, compression="snappy")
    manifest = {"kind": "campaign_round", "files": {"train": "train.parquet"}, "train_bucket": "train",
                "buckets": json.loads((buckets / "manifest.json").read_text())["buckets"],
                "schedule": {"stage": state.stage, "name": event["stage_name"], "mix": mix, **taken},
                "batch": {"train_batch_size": tbs, "steps_per_epoch": taken["rows"] // tbs, "remainder": 0}}
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    event.update(round=cur.round, rows=taken["rows"], mix=mix)
    with cr.locked(rec.dir) as live:
        again = live.schedule.get("round") == cur.round
        live.schedule = {"round": cur.round, "before": before, "after": state.to_json(), "event": event}
        if not again:
            cr.event(live, event["event"], **{k: v for k, v in event.items() if k != "event"})
    try:
        sch.log_wandb(Path(rec.dir), rec.name, cur.round, event, taken["rows"], s)
    except Exception as exc:  # noqa: BLE001 - W&B is a view; the decision is already recorded
        print(f"ddai: warning: W&B logging failed: {exc}", file=sys.stderr)
    return event


def nextround(rec: cr.CampaignRecord, prev: cr.RoundRecord, cur: cr.RoundRecord) -> dict[str, Any]:
    """Round K's set: a next-round preset on round K-1's judge log, in whole batches.

    :mod:`ddai.curriculum.nextround` writes the sets and a manifest Phase 2 reads directly
    (files, train_bucket, batch); rows past the last whole batch go to its ``remainder`` set.
    """
    from ddai.curriculum.nextround import export_from_logs, make_rule

    s, nr = rec.settings, rec.settings["nextround"]
    rule = make_rule(nr["preset"], **(nr.get("params") or {}))
    files = judge_log_files(prev.judge_log)
    if not files:
        raise InputError("round's judge log has no files", where=prev.judge_log, expected="the Phase 2 judge log")
    res = export_from_logs(files, [s["dataset"]], Path(cur.set_dir), rule,
                           include=list(nr.get("include") or []), exclude=nr.get("exclude"), progress=False,
                           batch_size=int(s["train_batch_size"]), remainder="trim")
    return {"rule": "nextround", "preset": nr["preset"], "params": dict(nr.get("params") or {}),
            "source_log": prev.judge_log, "manifest": str(Path(cur.set_dir) / "manifest.json"),
            "rows": res.get("rows")}


RULES = {"rebucket": rebucket, "nextround": nextround}


def nextset(campaign_dir: Path, k: int) -> int:
    with cr.locked(campaign_dir) as rec:
        settle(rec)
        prev, cur = rec.round(k - 1), rec.round(k)
        if prev.status != "done":
            return _stop(rec, cur, f"round {k - 1} did not finish ({prev.message or prev.status})")
        if not prev.final_checkpoint:
            return _stop(rec, cur, f"round {k - 1} finished without a checkpoint in {prev.run_dir}/checkpoints "
                                   f"(phase2.save_freq must be > 0 for a campaign)")
        if Path(cur.set_dir, READY_NAME).exists():
            return 0
    try:  # the set is computed outside the lock (it may take minutes on a big log)
        decision = RULES[rec.rule](rec, prev, cur)
        train_file, counts = _set_counts(cur.manifest)
    except (DdaiError, OSError, KeyError) as exc:
        with cr.locked(campaign_dir) as rec:
            return _stop(rec, rec.round(k), f"computing round {k}'s set: {exc}")
    with cr.locked(campaign_dir) as rec:
        cur = rec.round(k)
        tbs = int(rec.settings["train_batch_size"])
        steps = counts.get("steps_per_epoch") or 0
        if not steps:
            return _stop(rec, cur, f"round {k}'s set has less than one batch of {tbs} rows "
                                   f"({counts.get('buckets')}): nothing left to train by rule {rec.rule}")
        cur.start_checkpoint = seed_checkpoint(Path(prev.final_checkpoint), Path(cur.run_dir))
        cur.train_file, cur.counts, cur.decision = train_file, counts, decision
        sig = _signal(rec, cur)
        if sig is not None:
            cur.counts["signal"] = sig
        cur.status = "ready"
        cr.event(rec, "round_ready", round=k, rows=steps * tbs, rule=rec.rule)
        atomic_write_text(Path(cur.set_dir) / READY_NAME,
                          json.dumps({"round": k, "train_file": train_file, "start_checkpoint": cur.start_checkpoint},
                                     indent=2, sort_keys=True) + "\n")
    print(f"round {k}: {steps} steps on {train_file}, starting from {cur.start_checkpoint}")
    return 0


def _stop(rec: cr.CampaignRecord, r: cr.RoundRecord, why: str) -> int:
    r.status, r.message = "failed", why
    rec.status, rec.message = "failed", f"stopped at round {r.round}: {why}"
    cr.event(rec, "stopped", round=r.round, message=why)
    print(f"ddai: error: campaign {rec.dir} {rec.message}", file=sys.stderr)
    return 1


def close(campaign_dir: Path) -> int:
    with cr.locked(campaign_dir) as rec:
        settle(rec)
        pending = [r for r in rec.round_records if r.status != "done"]
        if not pending:
            last = rec.round_records[-1]
            rec.status = "done"
            rec.message = (f"{rec.rounds} round(s) done; final checkpoint {last.final_checkpoint}; "
                           f"cost ${last.cost_so_far_usd or 0:.4f}")
            cr.event(rec, "done")
            print(rec.message)
            return 0
        r = pending[0]
        if r.status != "failed":
            r.status = "failed"
            r.message = r.message or "its jobs were cancelled or never ran"
        if rec.status != "failed":
            rec.status, rec.message = "failed", f"stopped at round {r.round}: {r.message}"
            cr.event(rec, "stopped", round=r.round, message=r.message)
        print(f"ddai: error: campaign {rec.dir} {rec.message}; run the same command again to continue",
              file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if len(args) == 3 and args[0] == "nextset":
            return nextset(Path(args[1]).resolve(), int(args[2]))
        if len(args) == 2 and args[0] == "close":
            return close(Path(args[1]).resolve())
    except (DdaiError, InputError) as exc:
        print(f"ddai: error: {exc}", file=sys.stderr)
        return 2
    print("usage: python -m ddai.campaign.steps {nextset DIR K | close DIR}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
