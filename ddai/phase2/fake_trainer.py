"""FAKE trainer for tests: a CPU stand-in for ``verl.trainer.main_ppo``. Not for training.

Selected ONLY by ``DDAI_PHASE2_TRAINER=fake`` in the job's environment (see
``ddai.phase2.chain.trainer_argv``); production never sets it. It exists because the job
chain must be proven on a real Slurm cluster without GPUs: it takes the very same verl
command-line overrides the real run gets and keeps verl 0.9's checkpoint contract —

* ``<default_local_dir>/global_step_N/`` with ``actor/`` and ``data.pt`` (the state dict of a
  real ``torchdata`` ``StatefulDataLoader`` with a ``SequentialSampler`` and
  ``drop_last=True``, as verl builds it for ``data.shuffle=False``),
* ``<default_local_dir>/latest_checkpointed_iteration.txt`` written last,
* saves when ``step % trainer.save_freq == 0`` and at the last step; ``resume_mode=auto``
  resumes from the tracker file and restores the loader state.

Unlike verl 0.9's V1 trainer it also checkpoints when told to stop (SIGTERM/SIGUSR1/SIGUSR2): it
finishes the current step, saves, and exits 0. Every finished step is appended to
``<run_dir>/fake_steps.jsonl`` (step, row ids, job id, times) so tests can prove that each
step ran exactly once and in curriculum order.

For campaigns it also stands in for the policy and the reward: the "weights" are a counter
of optimizer updates (``actor/model_world_size_1_rank_0.pt``), carried across rounds when a
round starts from the previous round's checkpoint; every step appends one judge-log line per
rollout (``actor_rollout_ref.rollout.n`` per prompt) in the real format of
:mod:`ddai.reward.judge_log` to ``reward_kwargs.log_path``. Scores come from a seeded
per-prompt success model whose success probability rises with the update counter, so a next
round computed from this log really depends on what was "learned". A start checkpoint is a
``global_step_0`` folder (no ``data.pt``: the data loader starts fresh) or
``trainer.resume_mode=resume_path`` with ``trainer.resume_from_path``.

Test knobs (environment): ``DDAI_FAKE_STEP_SECONDS`` (default 1.0),
``DDAI_FAKE_CRASH=start`` (exit 1 at once, like a trainer that cannot start),
``DDAI_FAKE_STEPS_LOG`` (path of the step log), ``DDAI_FAKE_SEED`` (success model, default 0),
``DDAI_FAKE_LEARN_RATE`` (logit gain per update, default 0.15).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ddai.atomic import atomic_write_text


def parse_overrides(argv: list[str]) -> dict[str, str]:
    """``key=value`` Hydra overrides -> dict (``+``/``++`` prefixes and simple quotes removed)."""
    out: dict[str, str] = {}
    for arg in argv:
        if "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+")
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1].replace("\\'", "'").replace("\\\\", "\\")
        out[key] = value
    return out


MODEL_FILE = "model_world_size_1_rank_0.pt"
JUDGE_MODEL = "fake-judge"
COST_PER_CALL = 0.0004  # USD per judged rollout, so cost columns have something to add up


def _unit(*parts: object) -> float:
    """A reproducible number in [0, 1) from its parts (no global RNG: resumed steps repeat exactly)."""
    import hashlib

    digest = hashlib.sha256("\0".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def success_p(seed: int, prompt_id: str, updates: int, rate: float) -> float:
    """The stand-in policy's chance to answer ``prompt_id`` after ``updates`` optimizer updates.

    Each prompt gets a fixed difficulty (logit drawn once from its id and the seed); training
    adds ``rate`` per update to every logit, so success rises with steps, fastest near 50 %.
    """
    import math

    u = min(max(_unit("difficulty", seed, prompt_id), 1e-6), 1 - 1e-6)
    logit = 2.5 * math.log(u / (1 - u)) - 0.5
    return 1.0 / (1.0 + math.exp(-(logit + rate * updates)))


def judge_lines(row: dict[str, Any], *, step: int, n: int, updates: int, seed: int, rate: float,
                run_key: str) -> list[dict[str, Any]]:
    """``n`` judged rollouts of one prompt, as :mod:`ddai.reward.verl_reward` logs them."""
    from datetime import datetime, timezone

    pid = str(row.get("id"))
    info = row.get("extra_info") or {}
    deck = str(row.get("file_name") or info.get("file_name") or "").removesuffix(".pdf")
    pages = list(row.get("reference_page") or info.get("reference_page") or [])
    reference = [f"{deck}_{p}" for p in pages]
    p = success_p(seed, pid, updates, rate)
    uid = f"{_unit('uid', run_key, step, pid):.16f}"[2:]
    out = []
    for k in range(n):
        hit = _unit("judge", seed, pid, step, k, updates) < p
        found = _unit("ndcg", seed, pid, step, k, updates) < min(1.0, p + 0.2)
        judge = 1.0 if hit else 0.0
        nd = 1.0 if (found and reference) else 0.0
        out.append({
            "uid": uid, "dataset_id": pid, "sample_idx": k, "step": step,
            "query": str(info.get("question") or ""), "generated_answer": "FAKE" if not hit else str(info.get("answer") or ""),
            "reference_answer": str(info.get("answer") or ""),
            "retrieved_basenames": reference[:1] if found else [f"{deck}_999"],
            "reference_basenames": reference, "judge_score": judge,
            "judge_subscores": {"answer_accuracy": judge, "visual_grounding": None, "reasoning_consistency": None},
            "ndcg": nd, "final_score": round(0.8 * judge + 0.2 * nd, 6), "latency_s": 0.0,
            "tokens": {"input": 0, "output": 0, "thinking": 0, "total": 0}, "cost_usd": COST_PER_CALL,
            "generator_cost_usd": 0.0, "cache_hit": False, "judge_failed": False, "error": None,
            "timestamp": datetime.now(timezone.utc).isoformat(), "judge_model": JUDGE_MODEL,
            "prompt_version": "v1", "judge_mode": "fake", "data_source": str(row.get("data_source") or ""),
        })
    return out


class _Stop:
    requested = False
    signal_name = ""


def _on_signal(signum: int, _frame: Any) -> None:
    _Stop.requested = True
    _Stop.signal_name = signal.Signals(signum).name


def main(argv: list[str] | None = None) -> int:
    ov = parse_overrides(list(sys.argv[1:] if argv is None else argv))
    print("FAKE TRAINER (ddai.phase2.fake_trainer): a CPU stand-in for tests, not verl", flush=True)
    if os.environ.get("DDAI_FAKE_CRASH") == "start":
        print("fake trainer: simulated crash at start-up", file=sys.stderr, flush=True)
        return 1
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGUSR1, _on_signal)
    signal.signal(signal.SIGUSR2, _on_signal)  # submitit signals every process of its step

    import pyarrow.parquet as pq
    import torch
    from torch.utils.data import SequentialSampler
    from torchdata.stateful_dataloader import StatefulDataLoader

    train_file = ov["data.train_files"]
    tbs = int(ov["data.train_batch_size"])
    epochs = int(ov.get("trainer.total_epochs", "1"))
    save_freq = int(ov.get("trainer.save_freq", "-1"))
    ckpt_dir = Path(ov["trainer.default_local_dir"])
    resume = ov.get("trainer.resume_mode", "auto")
    step_s = float(os.environ.get("DDAI_FAKE_STEP_SECONDS", "1.0"))
    steps_log = Path(os.environ.get("DDAI_FAKE_STEPS_LOG", str(ckpt_dir.parent / "fake_steps.jsonl")))
    job = os.environ.get("SLURM_JOB_ID", "local")

    table = pq.read_table(train_file)
    ids = table.column("id").to_pylist() if "id" in table.column_names else list(range(table.num_rows))
    dataset = list(range(len(ids)))
    loader = StatefulDataLoader(dataset, batch_size=tbs, sampler=SequentialSampler(dataset), drop_last=True,
                                num_workers=0, collate_fn=lambda rows: rows)
    steps_per_epoch = len(loader)
    total = int(ov.get("trainer.total_training_steps") or 0) or steps_per_epoch * epochs

    global_step = 0
    updates = 0            # the stand-in "weights": optimizer updates received so far
    start_from = None      # the checkpoint folder this job loaded, if any
    folder = None
    if resume == "auto":
        try:
            global_step = int((ckpt_dir / "latest_checkpointed_iteration.txt").read_text().strip())
            folder = ckpt_dir / f"global_step_{global_step}"
        except (FileNotFoundError, ValueError):
            global_step = 0
    elif resume == "resume_path" and ov.get("trainer.resume_from_path"):
        folder = Path(ov["trainer.resume_from_path"])
        global_step = int(folder.name.split("global_step_")[-1])
    if folder is not None and folder.is_dir():
        state = torch.load(folder / "actor" / MODEL_FILE, weights_only=False)
        updates = int(state.get("updates", state.get("global_step", 0)))
        start_from = str((folder / "actor" / MODEL_FILE).resolve())
        if (folder / "data.pt").exists():  # verl: no data.pt -> the data loader starts from scratch
            loader.load_state_dict(torch.load(folder / "data.pt", weights_only=False))
        print(f"fake trainer: resumed from {folder} (weights after {updates} updates)", flush=True)
    print(f"fake trainer: {len(ids)} rows, {steps_per_epoch} steps/epoch, total {total}, at step {global_step}",
          flush=True)

    rows = table.to_pylist()
    n = int(ov.get("actor_rollout_ref.rollout.n", "1"))
    seed = int(os.environ.get("DDAI_FAKE_SEED", "0"))
    rate = float(os.environ.get("DDAI_FAKE_LEARN_RATE", "0.15"))
    log_path = ov.get("reward.custom_reward_function.reward_kwargs.log_path")
    judge_log = None
    if log_path and log_path != "null":
        from ddai.reward.judge_log import JudgeLog

        judge_log = JudgeLog(Path(log_path).expanduser())

    def save(step: int) -> None:
        folder = ckpt_dir / f"global_step_{step}"
        (folder / "actor").mkdir(parents=True, exist_ok=True)
        torch.save({"global_step": step, "updates": updates}, folder / "actor" / MODEL_FILE)
        torch.save(loader.state_dict(), folder / "data.pt")
        atomic_write_text(ckpt_dir / "latest_checkpointed_iteration.txt", str(step))
        print(f"fake trainer: saved checkpoint {folder}", flush=True)

    it = iter(loader)
    saved_at = global_step
    while global_step < total:
        if _Stop.requested:
            break
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            batch = next(it)
        global_step += 1
        started = time.time()
        deadline = started + step_s
        while time.time() < deadline:  # the "work"; a stop request waits for the step to end
            time.sleep(min(0.05, max(0.0, deadline - time.time())))
        if judge_log is not None:  # rollouts are judged with the weights before this step's update
            for i in batch:
                for line in judge_lines(rows[i], step=global_step, n=n, updates=updates, seed=seed, rate=rate,
                                        run_key=str(ckpt_dir)):
                    judge_log.write(line)
        updates += 1
        steps_log.parent.mkdir(parents=True, exist_ok=True)
        with open(steps_log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": global_step, "ids": [ids[i] for i in batch], "job": job,
                                 "updates": updates, "start_from": start_from,
                                 "start": round(started, 3), "end": round(time.time(), 3)}) + "\n")
        print(f"fake trainer: step {global_step}/{total} done", flush=True)
        if save_freq > 0 and (global_step % save_freq == 0 or global_step >= total):
            save(global_step)
            saved_at = global_step
    if _Stop.requested:
        if saved_at != global_step:
            save(global_step)
        print(f"fake trainer: stopped by SIG{_Stop.signal_name.removeprefix('SIG')} after step {global_step}",
              flush=True)
        return 0
    print(f"fake trainer: training finished at step {global_step}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
