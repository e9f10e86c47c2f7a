#!/usr/bin/env python
"""Benchmark: ddai's curriculum reading vs the reference approach, on a big step-keyed log.

What is compared (each in its own subprocess; wall time and peak RSS from ``os.wait4``):

* ``baseline`` -- what the users' reference script does: ``json.load`` of the whole document,
  Python loops over steps / uids / agents, mean ``ndcg_value`` per deck with later records
  overwriting earlier ones, a pandas merge with the dataset, bucket and sort;
* ``orjson``   -- a bare full parse of the file by the fastest JSON parser available (no work);
* ``ddai-read`` -- ddai's streaming reader plus per-group statistics (``iter_rollouts``);
* ``ddai-launch`` -- the whole job: ``python -m ddai.launch curriculum.phase1_log=...
  curriculum.dataset=... curriculum.out_dir=...`` (reading, stats, matching, buckets, parquet
  outputs, manifest).

The log (>= ``--size-mb``, realistic ~2 KB responses) is generated once with
``ddai.examples.generate`` and cached under ``--cache-dir`` (default ``~/.cache/ddai/bench``,
outside the repository). Prints a table on stderr and the figures as JSON on stdout.

    python benchmarks/bench_curriculum.py                # 400 MB, the issue's setting
    python benchmarks/bench_curriculum.py --size-mb 50   # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GENERATOR_VERSION = 3  # bump when the generator's output changes, to refresh the cache


# --- the variants (run in child processes) ----------------------------------------------------

def run_baseline(log: str, dataset: str) -> dict:
    """The reference approach: whole-file json.load, Python loops, pandas merge."""
    import pandas as pd

    with open(log, encoding="utf-8") as fh:
        data = json.load(fh)
    deck_scores: dict[str, float] = {}
    for _step, groups in data.items():  # noqa: PERF102 - the reference script's loops, kept as they are
        for _uid, group in groups.items():  # noqa: PERF102
            values = []
            deck = None
            for agent in group["agents"]:
                scores = agent.get("scores", {})
                v = scores.get("ndcg_value")
                values.append(float(v) if isinstance(v, (int, float)) else 0.0)  # missing -> 0, as the reference
                refs = scores.get("ndcg_details", {}).get("reference_documents", [])
                if refs and deck is None:
                    deck = refs[0].split("_")[0]
            if deck is not None and values:
                deck_scores[deck] = sum(values) / len(values)  # later records overwrite earlier ones
    df = pd.read_parquet(dataset)
    scores = pd.DataFrame({"id": [f"train_{d}" for d in deck_scores], "phase1_ndcg": list(deck_scores.values())})
    merged = df.merge(scores, on="id", how="inner")
    bucket_a = merged[(merged.phase1_ndcg >= 0.1) & (merged.phase1_ndcg <= 0.7)].sort_values(
        "phase1_ndcg", ascending=False)
    return {"matched": len(merged), "A": len(bucket_a), "B": int((merged.phase1_ndcg > 0.7).sum()),
            "0": int((merged.phase1_ndcg < 0.1).sum())}


def run_orjson(log: str, dataset: str) -> dict:
    import orjson

    with open(log, "rb") as fh:
        data = orjson.loads(fh.read())
    return {"steps": len(data)}


def run_ddai_read(log: str, dataset: str) -> dict:
    """ddai's reader + per-group statistics (mean NDCG per group), nothing written."""
    from ddai.curriculum.fields import is_usable
    from ddai.curriculum.read import ReadStats, iter_rollouts

    sums: dict[str, list[float]] = {}
    stats = ReadStats()
    for r in iter_rollouts(log, stats=stats, progress=False):
        v = r.scores.get("ndcg")
        acc = sums.get(r.group)
        if acc is None:
            acc = sums[r.group] = [0.0, 0.0]
        if is_usable(v):
            acc[0] += v
            acc[1] += 1
    means = {g: s / n for g, (s, n) in sums.items() if n}
    return {"records": stats.records, "groups": len(sums), "groups_scored": len(means)}


VARIANTS = {"baseline": run_baseline, "orjson": run_orjson, "ddai-read": run_ddai_read}


def _child(name: str, log: str, dataset: str) -> None:
    result = VARIANTS[name](log, dataset)
    print(json.dumps(result))


# --- the driver -------------------------------------------------------------------------------

def _tree_rss_kb(pid: int) -> int:
    """Resident set size of ``pid`` plus all its descendants (Linux /proc), in KB."""
    total = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
            continue
    return total


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Run ``cmd``; wall time and peak RSS.

    Peak RSS is the larger of what ``wait4`` reports (the child's peak, or its largest waited-for
    descendant's) and the peak of the whole process tree's summed RSS sampled every 10 ms -- so a
    helper process running beside the main one is counted, not hidden.
    """
    import threading

    start = time.perf_counter()
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, env=env, cwd=REPO)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.01):
                peak[0] = max(peak[0], _tree_rss_kb(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read(), err_f.read()
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed ({' '.join(cmd)}):\n{err.decode(errors='replace')[-3000:]}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": max(usage.ru_maxrss, peak[0]) / 1024, "stdout": out.decode(errors="replace")}


def ensure_data(cache: Path, size_mb: int, seed: int, response_bytes: int) -> tuple[Path, Path]:
    from ddai.examples.generate import write_big_steps_log

    tag = f"v{GENERATOR_VERSION}_{size_mb}mb_s{seed}_r{response_bytes}"
    log = cache / f"phase1_{tag}.json"
    dataset = cache / f"phase1_{tag}_dataset.parquet"
    if log.is_file() and dataset.is_file():
        return log, dataset
    cache.mkdir(parents=True, exist_ok=True)
    print(f"generating a {size_mb} MB step-keyed log in {cache} (cached for later runs) ...", file=sys.stderr)
    write_big_steps_log(log, size_mb * 1_000_000, seed, response_bytes=response_bytes, dataset_path=dataset)
    return log, dataset


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=400, help="log size in MB (default 400)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--response-bytes", type=int, default=2000, help="mean response length (default 2000)")
    ap.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("DDAI_BENCH_DIR",
                                                                           Path.home() / ".cache/ddai/bench")))
    ap.add_argument("--repeat", type=int, default=1, help="runs per variant; the best wall time is kept")
    ap.add_argument("--skip", default="", help="comma list of variants to skip (baseline,orjson,ddai-read,ddai-launch)")
    ap.add_argument("--child", nargs=3, metavar=("VARIANT", "LOG", "DATASET"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0

    log, dataset = ensure_data(args.cache_dir, args.size_mb, args.seed, args.response_bytes)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    load = os.getloadavg()
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="ddai-bench-") as tmp:
        cmds = {name: [sys.executable, str(Path(__file__).resolve()), "--child", name, str(log), str(dataset)]
                for name in VARIANTS}
        cmds["ddai-launch"] = [sys.executable, "-m", "ddai.launch", f"curriculum.phase1_log={log}",
                               f"curriculum.dataset={dataset}", f"curriculum.out_dir={tmp}/out",
                               f"hydra.run.dir={tmp}/run", "curriculum.progress=off"]
        for name, cmd in cmds.items():
            if name in skip:
                continue
            if name == "ddai-launch" and not (REPO / "ddai" / "curriculum" / "pipeline.py").is_file():
                continue
            best = None
            for _ in range(max(1, args.repeat)):
                r = run_measured(cmd, env)
                if best is None or r["wall_s"] < best["wall_s"]:
                    best = r
            results[name] = best
            print(f"  {name:12s} {best['wall_s']:7.2f} s  {best['cpu_s']:7.2f} CPU s  {best['peak_rss_mb']:8.0f} MB",
                  file=sys.stderr)

    base = results.get("baseline")
    rows = []
    for name, r in results.items():
        row = {"variant": name, "wall_s": round(r["wall_s"], 3), "cpu_s": round(r["cpu_s"], 3),
               "peak_rss_mb": round(r["peak_rss_mb"], 1)}
        if base:
            row["speedup_vs_baseline"] = round(base["wall_s"] / r["wall_s"], 2)
            row["memory_vs_baseline"] = round(r["peak_rss_mb"] / base["peak_rss_mb"], 3)
        rows.append(row)
    size = log.stat().st_size
    print(f"\nstep-keyed log: {log} ({size / 1e6:.0f} MB), dataset {dataset.name}; cpus {os.cpu_count()}",
          file=sys.stderr)
    print(f"load average before the runs: {load[0]:.2f} (wall times on a busy machine vary; CPU s is steadier)",
          file=sys.stderr)
    print(f"{'variant':14s}{'wall s':>9s}{'CPU s':>8s}{'peak RSS MB':>13s}{'speedup':>9s}{'RSS ratio':>11s}",
          file=sys.stderr)
    for row in rows:
        print(f"{row['variant']:14s}{row['wall_s']:9.2f}{row['cpu_s']:8.2f}{row['peak_rss_mb']:13.0f}"
              f"{row.get('speedup_vs_baseline', float('nan')):9.2f}{row.get('memory_vs_baseline', float('nan')):11.3f}",
              file=sys.stderr)
    print(json.dumps({"log": str(log), "log_bytes": size, "cpus": os.cpu_count(), "loadavg_before": load[0],
                      "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
