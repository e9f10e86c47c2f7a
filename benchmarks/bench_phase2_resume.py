#!/usr/bin/env python
"""Phase 2 chain: work lost per interruption and time until training resumes (local Slurm).

Runs on the REAL local cluster (tools/slurm_cluster.sh up) with the FAKE trainer
(DDAI_PHASE2_TRAINER=fake, 1 s per step, save_freq=3) through the production job script and
its save-on-stop path (stop file + signal; the real trainer's hook is ddai.phase2.save_on_stop),
and compares, in the same run, with a baseline continuation by `scontrol requeue`:

  A  time-limit signal (scancel --batch --signal=USR1, what --signal=B:USR1@N delivers)
  B  scancel (SIGTERM to every process of the job, SIGKILL after KillWait)
  C  hard kill (SIGKILL of every process of the job: no trap, no end record)
  D  baseline: a job that requeues itself; time from the requeue to its restart

Prints one JSON document on stdout (steps lost = steps the interrupted job trained after its
last checkpoint, which the successor trains again). Self-contained: it builds its inputs with
ddai's own example generator and ddai.phase2.smoke, never with the tests' fixtures.
Usage: python benchmarks/bench_phase2_resume.py [--repeat N] [--tiny]
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KINDS = ("time-limit signal", "scancel", "hard kill")


def write_bucket(out: Path, rows: int, batch: int) -> Path:
    """A curriculum bucket (users' nested parquet schema) and its manifest."""
    import pyarrow.parquet as pq

    from ddai.examples.generate import dataset_table, generate_dataset

    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(dataset_table(generate_dataset(rows, seed=0)).slice(0, rows), out / "bucket_A.parquet")
    manifest = {"buckets": {"A": rows}, "files": {"A": "bucket_A.parquet"}, "train_bucket": "A",
                "batch": {"train_batch_size": batch, "steps_per_epoch": rows // batch, "remainder": rows % batch,
                          "dropped_ids": []}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out / "manifest.json"


def run_inputs(tmp: Path) -> list[str]:
    """A model directory with tokenizer/processor files and an image root (the fake trainer loads neither)."""
    from ddai.phase2.smoke import write_model_stub, write_pages

    return [f"phase2.model_path={write_model_stub(tmp / 'model')}", f"phase2.image_root={write_pages(tmp / 'img')}",
            "+phase2.agent.settings.search_url=http://search.example:5002/search"]


def wait_for(pred, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise SystemExit("benchmark: timed out")


def steps(run_dir: Path) -> list[dict]:
    p = run_dir / "fake_steps.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def start_chain(tmp: Path, name: str, rows: int, step_s: float) -> tuple[Path, str]:
    manifest = write_bucket(tmp / "cur", rows=rows, batch=8)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(GEMINI_API_KEY="bench-key-000000", OPENAI_API_KEY="bench-key-000000",
               DDAI_PHASE2_TRAINER="fake", DDAI_FAKE_STEP_SECONDS=str(step_s))
    args = [sys.executable, "-m", "ddai.launch", "task=phase2", *run_inputs(tmp), f"phase2.manifest={manifest}",
            "phase2.train_batch_size=8", "phase2.ppo_mini_batch_size=8", "phase2.logger=[console]",
            f"phase2.run_dir={tmp / 'run'}", f"hydra.run.dir={tmp / 'h'}", f"phase2.slurm.job_name={name}",
            "phase2.slurm.cpus_per_task=1", "phase2.slurm.time_min=10", "phase2.slurm.signal_s=30",
            "phase2.slurm.step_minutes=0.025", "phase2.slurm.startup_minutes=0.05", "phase2.save_freq=3"]
    out = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp, check=True).stdout
    return tmp / "run", json.loads(out)["job_id"]


def interrupt(kind: str, rows: int = 96, step_s: float = 1.0) -> dict:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        name = f"bench-{kind.replace(' ', '-')}-{os.getpid()}"
        run_dir, job = start_chain(tmp, name, rows, step_s)
        try:
            wait_for(lambda: len(steps(run_dir)) >= 5)
            t0 = time.time()
            if kind == "time-limit signal":
                subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True)
            elif kind == "scancel":
                subprocess.run(["scancel", job], check=True)
            else:
                lines = subprocess.run(["scontrol", "listpids", job], capture_output=True, text=True).stdout
                for line in lines.splitlines()[1:]:
                    try:
                        os.kill(int(line.split()[0]), signal.SIGKILL)
                    except (ProcessLookupError, ValueError, IndexError):
                        pass
            wait_for(lambda: any(s["job"] != job for s in steps(run_dir)))
            done = steps(run_dir)
            last_before = max(s["step"] for s in done if s["job"] == job)
            first_after = next(s for s in done if s["job"] != job)
            return {"interruption": kind, "steps_lost": last_before - (first_after["step"] - 1),
                    "seconds_to_first_resumed_step_start": round(first_after["start"] - t0, 2),
                    "seconds_to_first_resumed_step_end": round(first_after["end"] - t0, 2)}
        finally:
            cancel_chain(name)


def cancel_chain(name: str) -> None:
    """Cancel every job of the chain and wait until Slurm lists none: a cancelled step still
    writes its state on the way out (and may have queued its successor), so the run directory is
    only left alone once the chain is gone."""
    def gone() -> bool:
        subprocess.run(["scancel", "-n", name], capture_output=True)
        listed = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i"], capture_output=True, text=True).stdout
        return not listed.strip()

    wait_for(gone, 180)


def baseline_requeue() -> dict:
    with tempfile.TemporaryDirectory() as d:
        stamp = Path(d) / "starts.txt"
        script = Path(d) / "requeue.sh"
        script.write_text("#!/bin/bash\necho \"$(date +%s.%N) ${SLURM_RESTART_COUNT:-0}\" >> " + str(stamp) + "\n"
                          "if [ \"${SLURM_RESTART_COUNT:-0}\" = 0 ]; then echo requeue $(date +%s.%N) >> "
                          + str(stamp) + "; scontrol requeue $SLURM_JOB_ID; sleep 30; fi\n")
        job = subprocess.run(["sbatch", "--parsable", "--requeue", "--time=2", f"--output={d}/o.txt", str(script)],
                             capture_output=True, text=True, check=True).stdout.strip()
        try:
            wait_for(lambda: stamp.exists() and len(stamp.read_text().splitlines()) >= 3, 180)
            lines = stamp.read_text().splitlines()
            t_req = float(lines[1].split()[1])
            t_restart = float(lines[2].split()[0])
            return {"interruption": "baseline: scontrol requeue", "seconds_to_job_restart": round(t_restart - t_req, 2)}
        finally:
            subprocess.run(["scancel", job], capture_output=True)


def main() -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=2, help="samples per interruption kind (default 2)")
    ap.add_argument("--tiny", action="store_true",
                    help="one time-limit interruption of a short run, no baseline (the test suite's smoke run)")
    args = ap.parse_args()
    if args.tiny:
        results = [interrupt("time-limit signal", rows=64, step_s=0.5)]
        step_s = 0.5
    else:
        results = [interrupt(kind) for kind in KINDS for _ in range(args.repeat)]
        results.append(baseline_requeue())
        step_s = 1.0
    print(json.dumps({"save_freq": 3, "step_seconds": step_s, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
