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

Test knobs (environment): ``DDAI_FAKE_STEP_SECONDS`` (default 1.0),
``DDAI_FAKE_CRASH=start`` (exit 1 at once, like a trainer that cannot start),
``DDAI_FAKE_STEPS_LOG`` (path of the step log).
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
    if resume == "auto":
        try:
            global_step = int((ckpt_dir / "latest_checkpointed_iteration.txt").read_text().strip())
        except (FileNotFoundError, ValueError):
            global_step = 0
        if global_step:
            folder = ckpt_dir / f"global_step_{global_step}"
            loader.load_state_dict(torch.load(folder / "data.pt", weights_only=False))
            print(f"fake trainer: resumed from {folder}", flush=True)
    print(f"fake trainer: {len(ids)} rows, {steps_per_epoch} steps/epoch, total {total}, at step {global_step}",
          flush=True)

    def save(step: int) -> None:
        folder = ckpt_dir / f"global_step_{step}"
        (folder / "actor").mkdir(parents=True, exist_ok=True)
        torch.save({"global_step": step}, folder / "actor" / "model_world_size_1_rank_0.pt")
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
        steps_log.parent.mkdir(parents=True, exist_ok=True)
        with open(steps_log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": global_step, "ids": [ids[i] for i in batch], "job": job,
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
