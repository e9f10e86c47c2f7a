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
  outputs, manifest); a big log is read by one process per free core;
* ``ddai-launch-1p`` -- the same job with ``DDAI_READ_WORKERS=1`` (one reading process: what a
  machine whose cores are all busy gets).

The log has the users' shape: a 6,667-row dataset whose prompts recur at many steps (about 12
groups per prompt, fresh uuids each time), 5 agents per group, and ``--rollout-kb`` KB per
rollout (default 1.0, the users' Phase 1 rollouts: a few tags, a search, a short think; 2.7 is
the size the readers were first tuned on). Rollouts come from ``ddai.examples.generate``
(a seed log of the dataset), resampled into steps of 128 groups until the log reaches
``--size-mb``. Logs are cached under ``--cache-dir`` (default ``~/.cache/ddai/bench``, outside
the repository). Every variant runs in the same invocation, one after the other, so the ratios
compare like with like on a shared machine. Prints a table on stderr and JSON on stdout.

    python benchmarks/bench_curriculum.py                      # 400 MB of 1 KB rollouts
    python benchmarks/bench_curriculum.py --rollout-kb 2.7     # the same bytes in 2.7 KB rollouts
    python benchmarks/bench_curriculum.py --tiny               # seconds: what the test suite runs
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GENERATOR_VERSION = 5  # bump when the generator's output changes, to refresh the cache
USERS_ROWS = 6667        # the users' Phase 1 dataset (DDAI-46: 1,560 + 2,791 + 637 + 1,679 rows)
GROUPS_PER_STEP = 128
N_AGENTS = 5


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

_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024 if hasattr(os, "sysconf") else 4


def _proc_bytes(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def _tree_rss_kb(pid: int) -> int:
    """Resident set size of ``pid`` plus all its descendants (Linux /proc), in KB.

    WHY statm through ``os.read`` (not ``status`` line by line): the sampler runs every 10 ms
    beside the measured job, and on a 2-core machine whose two cores the job uses, its CPU is
    taken from the job. Reading ``status`` cost ~0.18 ms of CPU per sample of a two-process
    tree (~2 % of a core), ``statm`` ~0.05 ms; both give the same resident size."""
    total = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            total += int(_proc_bytes(f"/proc/{p}/statm").split()[1]) * _PAGE_KB
            for task in os.listdir(f"/proc/{p}/task"):
                stack.extend(int(c) for c in _proc_bytes(f"/proc/{p}/task/{task}/children").split())
        except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError, IndexError):
            continue
    return total


def _last_json(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    try:
        return json.loads(text)
    except ValueError:
        return {}


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


def _seed_rollout_bytes(tmp: Path, response_bytes: int, rows: int, seed: int) -> tuple[Path, Path, float]:
    """A seed log (one group per covered row) + dataset; mean bytes per rollout of the seed log."""
    from ddai.examples.generate import write_example_set

    write_example_set(tmp, n_prompts=rows, seed=seed, shapes=("steps_json",), response_bytes=response_bytes,
                      n_agents=N_AGENTS, groups_per_step=GROUPS_PER_STEP, write_truth=False, nan_scores=False,
                      bad_score_fraction=0.0)
    log = tmp / "gspo_phase1.json"
    data = json.loads(log.read_bytes())
    n = sum(len(g["agents"]) for groups in data.values() for g in groups.values())
    return log, tmp / "slidevqa_train_example.parquet", log.stat().st_size / max(n, 1)


def write_users_shape_log(log: Path, dataset: Path, size_bytes: int, rollout_bytes: int, seed: int,
                          rows: int = USERS_ROWS) -> dict:
    """A step-keyed log of the users' shape (see the module docstring); returns its counts."""
    import random
    import shutil
    import uuid

    with tempfile.TemporaryDirectory(prefix="ddai-bench-seed-") as tmp:
        # calibrate the response length so that one rollout takes ``rollout_bytes`` on disk
        _, _, base = _seed_rollout_bytes(Path(tmp) / "probe", 0, 50, seed)
        response = max(0, int((rollout_bytes - base) / 1.08))
        seed_log, seed_ds, _ = _seed_rollout_bytes(Path(tmp) / "seed", response, rows, seed)
        groups = [g for groups in json.loads(seed_log.read_bytes()).values() for g in groups.values()]
        shutil.copyfile(seed_ds, dataset)
    rng = random.Random(seed)
    written = n_groups = n_rollouts = 0
    step = 0
    tmp_log = log.with_name("." + log.name + ".tmp")
    with open(tmp_log, "w", encoding="utf-8") as fh:
        fh.write("{")
        while written < size_bytes:
            step += 1
            parts = []
            for _ in range(GROUPS_PER_STEP):
                g = groups[rng.randrange(len(groups))]
                uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                parts.append(f"{json.dumps(uid)}: {json.dumps(g, ensure_ascii=False)}")
                n_groups += 1
                n_rollouts += len(g["agents"])
            text = ("" if step == 1 else ", ") + f'"step_{step}": {{' + ", ".join(parts) + "}"
            fh.write(text)
            written += len(text.encode("utf-8"))
        fh.write("}")
    counts = {"steps": step, "groups": n_groups, "rollouts": n_rollouts, "dataset_rows": rows,
              "rollout_bytes_target": rollout_bytes}
    log.with_suffix(".counts.json").write_text(json.dumps(counts))
    os.replace(tmp_log, log)
    return counts


def ensure_data(cache: Path, size_mb: float, seed: int, rollout_kb: float, rows: int = USERS_ROWS) -> tuple[Path, Path]:
    tag = f"v{GENERATOR_VERSION}_{size_mb:g}mb_s{seed}_r{rollout_kb:g}kb_n{rows}"
    log = cache / f"phase1_{tag}.json"
    dataset = cache / f"phase1_{tag}_dataset.parquet"
    if log.is_file() and dataset.is_file() and log.with_suffix(".counts.json").is_file():
        return log, dataset
    cache.mkdir(parents=True, exist_ok=True)
    print(f"generating a {size_mb:g} MB step-keyed log of {rollout_kb:g} KB rollouts in {cache} "
          "(cached for later runs) ...", file=sys.stderr)
    write_users_shape_log(log, dataset, int(size_mb * 1_000_000), int(rollout_kb * 1000), seed, rows)
    return log, dataset


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=float, default=400, help="log size in MB (default 400)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rollout-kb", type=float, default=1.0,
                    help="bytes per rollout on disk, in KB (default 1.0, the users' Phase 1 size; 2.7 for long rollouts)")
    ap.add_argument("--rows", type=int, default=USERS_ROWS, help=f"dataset rows (default {USERS_ROWS})")
    ap.add_argument("--tiny", action="store_true",
                    help="a seconds-long run on a 2 MB log of 300 rows (what the test suite runs)")
    ap.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("DDAI_BENCH_DIR",
                                                                           Path.home() / ".cache/ddai/bench")))
    ap.add_argument("--repeat", type=int, default=1, help="runs per variant; the best wall time is kept")
    ap.add_argument("--skip", default="", help="comma list of variants to skip "
                                               "(baseline,orjson,ddai-read,ddai-launch,ddai-launch-1p)")
    ap.add_argument("--child", nargs=3, metavar=("VARIANT", "LOG", "DATASET"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0

    if args.tiny:
        args.size_mb, args.rows = min(args.size_mb, 2), min(args.rows, 300)
    log, dataset = ensure_data(args.cache_dir, args.size_mb, args.seed, args.rollout_kb, args.rows)
    # ddai as installed: pip compiles a package's bytecode when it installs it; a checkout run with
    # PYTHONDONTWRITEBYTECODE=1 (CI, some clusters) would otherwise compile every changed module on
    # each run (~20-40 ms here, in the main process and in each reading worker)
    compileall.compile_dir(str(REPO / "ddai"), quiet=1)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    load = os.getloadavg()
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    results: dict[str, dict] = {}
    rounds: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="ddai-bench-") as tmp:
        cmds = {name: [sys.executable, str(Path(__file__).resolve()), "--child", name, str(log), str(dataset)]
                for name in VARIANTS}
        # the setting: the reference's link (deck) and duplicate rule (the latest group wins)
        cmds["ddai-launch"] = [sys.executable, "-m", "ddai.launch", f"curriculum.phase1_log={log}",
                               f"curriculum.dataset={dataset}", f"curriculum.out_dir={tmp}/out",
                               f"hydra.run.dir={tmp}/run", "curriculum.progress=off", "curriculum.rule=threshold",
                               "curriculum.match=deck", "curriculum.duplicates=latest",
                               "curriculum.remainder=warn"]   # keep every A row, as the reference does
        # the same job read by one process (DDAI_READ_WORKERS=1): what a machine without a free core gets
        cmds["ddai-launch-1p"] = cmds["ddai-launch"]
        envs = {"ddai-launch-1p": {**env, "DDAI_READ_WORKERS": "1"}}
        active = [name for name in cmds if name not in skip and not (
            name.startswith("ddai-launch") and not (REPO / "ddai" / "curriculum" / "pipeline.py").is_file())]
        # Rounds, each running every variant once: the machine's speed drifts (a shared host), and
        # a round compares variants measured seconds apart, not minutes.
        for rnd in range(max(1, args.repeat)):
            for name in active:
                r = run_measured(cmds[name], envs.get(name, env))
                rounds.setdefault(name, []).append(r)
                print(f"  round {rnd + 1} {name:14s} {r['wall_s']:7.2f} s  {r['cpu_s']:7.2f} CPU s  "
                      f"{r['peak_rss_mb']:8.0f} MB", file=sys.stderr)
        results = {name: min(rs, key=lambda r: r["wall_s"]) for name, rs in rounds.items()}

    base = results.get("baseline")
    rows = []
    for name, r in results.items():
        row = {"variant": name, "wall_s": round(r["wall_s"], 3), "cpu_s": round(r["cpu_s"], 3),
               "peak_rss_mb": round(r["peak_rss_mb"], 1),
               "wall_s_per_round": [round(x["wall_s"], 3) for x in rounds[name]]}
        out = _last_json(r["stdout"])
        if name == "baseline":
            row["buckets"] = {k: out[k] for k in ("A", "B", "0")}
        elif name.startswith("ddai-launch"):
            row["buckets"] = {k: out["buckets"][k] for k in ("A", "B", "0")}
        if base:
            row["speedup_vs_baseline"] = round(base["wall_s"] / r["wall_s"], 2)
            row["memory_vs_baseline"] = round(r["peak_rss_mb"] / base["peak_rss_mb"], 3)
            per_round = [b["wall_s"] / x["wall_s"] for b, x in zip(rounds["baseline"], rounds[name], strict=True)]
            row["speedup_per_round"] = [round(v, 2) for v in per_round]
            row["speedup_median_of_rounds"] = round(statistics.median(per_round), 2)
        rows.append(row)
    size = log.stat().st_size
    print(f"\nstep-keyed log: {log} ({size / 1e6:.0f} MB), dataset {dataset.name}; cpus {os.cpu_count()}",
          file=sys.stderr)
    print(f"load average before the runs: {load[0]:.2f} (wall times on a busy machine vary; CPU s is steadier)",
          file=sys.stderr)
    print(f"best of {max(1, args.repeat)} round(s) per variant; 'per round': the median over rounds of the "
          "baseline's wall time over the variant's in the same round", file=sys.stderr)
    print(f"{'variant':16s}{'wall s':>9s}{'CPU s':>8s}{'peak RSS MB':>13s}{'speedup':>9s}{'per round':>11s}"
          f"{'RSS ratio':>11s}", file=sys.stderr)
    for row in rows:
        print(f"{row['variant']:16s}{row['wall_s']:9.2f}{row['cpu_s']:8.2f}{row['peak_rss_mb']:13.0f}"
              f"{row.get('speedup_vs_baseline', float('nan')):9.2f}"
              f"{row.get('speedup_median_of_rounds', float('nan')):11.2f}"
              f"{row.get('memory_vs_baseline', float('nan')):11.3f}", file=sys.stderr)
    counts = json.loads(log.with_suffix(".counts.json").read_text())
    print(json.dumps({"log": {"path": str(log), **counts}, "log_bytes": size, "cpus": os.cpu_count(),
                      "loadavg_before": load[0], "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
