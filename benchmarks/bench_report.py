"""Benchmark (not a test): ``ddai-report --json`` vs a pandas ``read_json(lines=True)`` baseline.

Both compute the same summary of a Phase 2 judge log (JSON Lines, the fields ddai.reward
writes): rollouts, prompts, steps; judge / NDCG / final mean, std and quantiles; error,
judge-failure and cache-hit rates; latency p50/p95/p99; token and cost totals; per-step means;
per-prompt means, Phase 3 quadrants, the most discordant prompts and the next-round split.
Each run is a separate subprocess; wall time is measured around it; CPU is the child's and
its own children's (the report's reading workers); peak RSS is the child's own ``ru_maxrss``
plus, for the report, workers x the largest worker's (an upper bound). Two log sizes show
whether memory depends on the log size.

Modes, measured side by side in one run (report and pandas interleaved):
  calm  the machine as it is;
  busy  ``--busy`` (default 2) processes spinning a core each beside every measurement, the
        way a shared login node is: a reader whose lead needs a free second core loses it here.

    python benchmarks/bench_report.py                    # 0.5 GiB + 0.125 GiB logs of ~1 KB rollouts
    python benchmarks/bench_report.py --rollout-bytes 2700 --gib 1
    python benchmarks/bench_report.py --candidates       # the decoders considered, CPU s per log
    python benchmarks/bench_report.py --tiny --data DIR  # seconds: the test suite's smoke run

Logs are generated once into ``bench_data/`` (git-ignored) and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench_data"
WORDS = ["revenue", "growth", "share", "market", "chart", "slide", "deck", "page", "percent", "mobile", "payment", "India", "Brazil", "survey", "company", "ranks", "second", "year", "total", "users", "million", "billion", "increase", "decrease", "compared", "region"]


# --- data -----------------------------------------------------------------------------------

def generate(path: Path, target_bytes: int, seed: int = 0, rollout_bytes: int = 1000) -> None:
    """A realistic Phase 2 judge log: 5 rollouts per prompt, 64 prompts per step.

    ``rollout_bytes`` is the mean line length: the users' Phase 1/2 rollouts are short (~1 KB:
    a few tags, one search, a short think); the free-text fields are padded to reach it, so
    the same bytes hold more rollouts when it is small (per-rollout work dominates).
    """
    import orjson

    rng = random.Random(seed)
    tmp = path.with_suffix(".tmp")
    written = 0
    i = 0
    n_prompts = 6667
    with open(tmp, "wb") as fh:
        while written < target_bytes:
            group, agent = divmod(i, 5)
            step = group // 64 + 1
            pid = f"train_{(group * 7919) % n_prompts}"
            p_hit = ((group * 7919) % n_prompts) / n_prompts
            hit = rng.random() < p_hit
            ndcg = (1.0 if rng.random() < 0.7 else 0.631) if hit else 0.0
            judge = round(min(1.0, max(0.0, rng.gauss(0.75 if hit else 0.3, 0.25))), 2)
            failed = rng.random() < 0.01
            q = " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 25)))
            ans = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 40)))
            pad = max(0, rollout_bytes - 930 + rng.randint(-40, 40))
            ans = (ans + " " + " ".join(rng.choice(WORDS) for _ in range(pad // 7)))[: len(ans) + pad]
            tin, tout, think = rng.randint(900, 4000), rng.randint(20, 120), rng.randint(0, 600)
            rec = {
                "uid": f"{group:08x}-0000-4000-8000-{group:012x}", "dataset_id": pid, "sample_idx": agent,
                "step": step, "query": f"Question: {q}?", "generated_answer": ans, "reference_answer": ans[:30],
                "retrieved_basenames": [f"{pid[6:]}_{rng.randint(1, 30)}" for _ in range(rng.randint(1, 4))],
                "reference_basenames": [f"{pid[6:]}_7"],
                "judge_score": None if failed else judge,
                "judge_subscores": None if failed else {"answer_accuracy": judge, "visual_grounding": 0.5,
                                                        "reasoning_consistency": 0.7},
                "ndcg": ndcg, "final_score": None if failed else round(0.8 * judge + 0.2 * ndcg, 4),
                "latency_s": round(rng.lognormvariate(1.5, 0.5), 3),
                "tokens": {"input": tin, "output": tout, "thinking": think, "total": tin + tout + think},
                "cost_usd": round((tin * 0.3 + (tout + think) * 2.5) / 1e6, 8), "cache_hit": rng.random() < 0.1,
                "judge_failed": failed, "error": "judge: 503 UNAVAILABLE after 3 attempts" if failed else None,
                "timestamp": f"2026-11-20T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z",
                "judge_model": "gemini-3-flash-preview", "prompt_version": "v2",
            }
            line = orjson.dumps(rec) + b"\n"
            fh.write(line)
            written += len(line)
            i += 1
    os.replace(tmp, path)


def ensure(size_gib: float, rollout_bytes: int = 1000, data: Path = DATA) -> Path:
    data.mkdir(parents=True, exist_ok=True)
    path = data / f"judge_log_{size_gib:g}gib_{rollout_bytes}b.jsonl"
    if not path.exists() or path.stat().st_size < size_gib * (1 << 30):
        print(f"generating {path} ...", file=sys.stderr, flush=True)
        t = time.time()
        generate(path, int(size_gib * (1 << 30)), rollout_bytes=rollout_bytes)
        print(f"  {path.stat().st_size / (1 << 30):.2f} GiB in {time.time() - t:.0f} s", file=sys.stderr)
    return path


# --- the two workloads (run in child processes) -----------------------------------------------

def child_report(path: str) -> dict:
    from ddai.report.cli import main

    with open(os.devnull, "w") as devnull:
        saved = sys.stdout
        sys.stdout = devnull
        try:
            code = main([path, "--json", "--progress", "off"])
        finally:
            sys.stdout = saved
    assert code == 0
    return {}


def child_pandas(path: str) -> dict:
    import pandas as pd

    df = pd.read_json(path, lines=True)
    n = len(df)
    key = df["dataset_id"].fillna(df["uid"])
    out: dict = {"rollouts": n, "prompts": int(key.nunique()), "steps": int(df["step"].nunique())}
    for name, col in (("judge", "judge_score"), ("ndcg", "ndcg"), ("final", "final_score")):
        s = pd.to_numeric(df[col], errors="coerce")
        out[name] = {"mean": s.mean(), "std": s.std(ddof=0),
                     **{f"p{int(q * 100):02d}": s.quantile(q) for q in (0.05, 0.25, 0.5, 0.75, 0.95)}}
    out["error_rate"] = df["error"].notna().mean()
    out["judge_failed_rate"] = df["judge_failed"].fillna(False).astype(bool).mean()
    out["cache_hit_rate"] = df["cache_hit"].dropna().astype(bool).mean()
    lat = df["latency_s"]
    out["latency"] = {f"p{q}": lat.quantile(q / 100) for q in (50, 95, 99)}
    tok = pd.DataFrame([t if isinstance(t, dict) else {} for t in df["tokens"]])
    out["tokens"] = tok.sum().to_dict()
    out["cost"] = df["cost_usd"].sum()
    sub = pd.DataFrame([s if isinstance(s, dict) else {} for s in df["judge_subscores"]])
    out["subscores"] = sub.mean().to_dict()
    df["key"] = key
    out["per_step"] = df.groupby("step")[["judge_score", "ndcg", "final_score"]].mean().reset_index().to_dict("list")
    jh, nh = df["judge_score"] >= 0.5, df["ndcg"] >= 0.5
    both = df["judge_score"].notna() & df["ndcg"].notna()
    out["quadrants"] = {"solved": int((both & jh & nh).sum()), "guessing": int((both & jh & ~nh).sum()),
                        "reasoning_failure": int((both & ~jh & nh).sum()), "failure": int((both & ~jh & ~nh).sum())}
    per = df.groupby("key").agg(n=("ndcg", "size"), judge=("judge_score", "mean"), ndcg=("ndcg", "mean"))
    per["gap"] = (per["judge"] - per["ndcg"]).abs()
    out["discordant"] = per.sort_values("gap", ascending=False).head(10).index.tolist()
    last_step = df.groupby("key")["step"].transform("max")
    last = df[df["step"] == last_step].groupby("key")["judge_score"].mean()
    fail = (per["judge"] < 0.3) & (last.reindex(per.index) < 0.3)
    out["next_round"] = {"success": int((per["judge"] >= 0.7).sum()), "fail": int(fail.sum())}
    return out


def child(kind: str, path: str, result_file: str) -> None:
    t = time.perf_counter()
    res = child_report(path) if kind == "report" else child_pandas(path)
    wall = time.perf_counter() - t
    ru = resource.getrusage(resource.RUSAGE_SELF)
    # the report's reading workers (ddai.report.fanout) are children of this process: their
    # CPU counts, and their memory is added as (workers x the largest child's peak), an upper
    # bound of what was resident at once (pages shared with the parent are counted twice)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers = 0
    if kind == "report" and ch.ru_maxrss:
        from ddai.report.fanout import workers_wanted

        workers = workers_wanted()
    peak = (ru.ru_maxrss + workers * ch.ru_maxrss) * 1024  # Linux: KiB
    cpu = ru.ru_utime + ru.ru_stime + ch.ru_utime + ch.ru_stime
    Path(result_file).write_text(json.dumps({"inner_wall": wall, "peak_rss": peak, "cpu": cpu,
                                             "check": _check_figures(res) if res else None}, default=float))


def _check_figures(res: dict) -> dict:
    return {"rollouts": res["rollouts"], "judge_mean": round(float(res["judge"]["mean"]), 6),
            "ndcg_mean": round(float(res["ndcg"]["mean"]), 6), "quadrants": res["quadrants"]}


def measure(kind: str, path: Path, data: Path) -> dict:
    out = data / f".result_{kind}.json"
    if out.exists():
        out.unlink()
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", kind, str(path), str(out)],
                          check=False, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{proc.stderr[-3000:]}")
    res = json.loads(out.read_text())
    res["wall"] = wall
    return res


def report_figures(path: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "ddai.report.cli", str(path), "--json", "--progress", "off"],
                          check=True, capture_output=True, text=True)
    doc = json.loads(proc.stdout)["logs"][0]
    q = doc["quadrants"]["rollouts"]
    return {"rollouts": doc["rollouts"], "judge_mean": doc["scores"]["judge"]["mean"],
            "ndcg_mean": doc["scores"]["ndcg"]["mean"],
            "quadrants": {k: q[k]["n"] for k in ("solved", "guessing", "reasoning_failure", "failure")}}


class Busy:
    """``n`` processes spinning one core each while the block runs (a shared login node)."""

    def __init__(self, n: int):
        self.n = n
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> Busy:  # noqa: PYI034 - Python 3.10 has no typing.Self
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.n)]
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()


# --- decoder candidates (each run in its own process; CPU seconds are what a busy node has) ----

CANDIDATE_CODE = {
    "ddai: msgspec typed decode + columns + reduce (GC paused per chunk)": """
from ddai.report.logstats import _scan_chunk, Thresholds
for d in datas:
    _scan_chunk(d, 0, False, Thresholds())
""",
    "msgspec typed decode only": """
from ddai.report.decode import decode
for d in datas:
    decode(d)
""",
    "orjson.loads per line + dict lookups (ddai's tolerant path)": """
from ddai.report.logstats import scan_bytes, Thresholds
for d in datas:
    scan_bytes(d, Thresholds(), base_offset=0, at_eof=True)
""",
    "pyarrow.json, explicit schema, 1 thread (+ columnar reduce)": """
import pyarrow as pa
pa.set_cpu_count(1); pa.set_io_thread_count(1)
from ddai.report.logstats import scan_arrow, Thresholds
for d in datas:
    scan_arrow(d, Thresholds())
""",
    "pyarrow.json, explicit schema, all threads (+ columnar reduce)": """
from ddai.report.logstats import scan_arrow, Thresholds
for d in datas:
    scan_arrow(d, Thresholds())
""",
    "polars.read_ndjson, schema of the needed fields (read only)": """
import io, polars as pl
sch = {"dataset_id": pl.String, "uid": pl.String, "step": pl.Int64, "judge_score": pl.Float64,
       "ndcg": pl.Float64, "final_score": pl.Float64, "latency_s": pl.Float64, "error": pl.String,
       "judge_failed": pl.Boolean, "cache_hit": pl.Boolean, "cost_usd": pl.Float64,
       "tokens": pl.Struct({"input": pl.Float64, "output": pl.Float64, "thinking": pl.Float64, "total": pl.Float64})}
for d in datas:
    pl.read_ndjson(io.BytesIO(d), schema=sch)
""",
    "duckdb read_json, 1 thread, needed columns (read only)": """
import duckdb
con = duckdb.connect(); con.execute("SET threads=1")
cols = "{dataset_id:'VARCHAR',uid:'VARCHAR',step:'BIGINT',judge_score:'DOUBLE',ndcg:'DOUBLE',final_score:'DOUBLE',latency_s:'DOUBLE',error:'VARCHAR',judge_failed:'BOOLEAN',cache_hit:'BOOLEAN',cost_usd:'DOUBLE'}"
con.sql(f"select * from read_json('{path}', format='newline_delimited', columns={cols})").to_arrow_table()
""",
}


def candidate_child(name: str, path: str) -> None:
    from ddai.report.source import chunks

    datas = [d for _, d, _ in chunks(path) if d]
    code = CANDIDATE_CODE[name]
    c0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    exec(code, {"datas": datas, "path": path})  # noqa: S102 - our own fixed snippets
    wall = time.perf_counter() - t
    c1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime)
    print(json.dumps({"wall": wall, "cpu": cpu}))


def run_candidates(path: Path, repeat: int) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"decoding candidates on {path.name} ({path.stat().st_size / 2**20:.0f} MiB, data in memory; "
                    f"best of {repeat})")
    for c in ("candidate", "CPU s", "wall s", "MB/s per CPU s"):
        t.add_column(c, justify="right" if c != "candidate" else "left")
    for name in CANDIDATE_CODE:
        best = None
        for _ in range(repeat):
            proc = subprocess.run([sys.executable, __file__, "--candidate-child", name, str(path)],
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                best = {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:60]}
                break
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            best = r if best is None or r["cpu"] < best["cpu"] else best
        if "error" in best:
            t.add_row(name, "-", "-", best["error"])
        else:
            t.add_row(name, f"{best['cpu']:.2f}", f"{best['wall']:.2f}",
                      f"{path.stat().st_size / 2**20 / best['cpu']:.0f}")
    Console(width=160).print(t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=0.5, help="size of the large log (GiB)")
    ap.add_argument("--small-gib", type=float, default=0.125, help="size of the small log (GiB)")
    ap.add_argument("--rollout-bytes", type=int, default=1000,
                    help="mean line length: ~1000 is the users' short rollouts, ~2700 the older generated logs")
    ap.add_argument("--modes", default="calm,busy", help="calm, busy or both (default calm,busy)")
    ap.add_argument("--busy", type=int, default=2, help="spinning processes beside each busy measurement")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of each workload per log and mode; the fastest counts (the same for both)")
    ap.add_argument("--data", type=Path, default=DATA, help="where the generated logs live")
    ap.add_argument("--candidates", action="store_true", help="measure the decoders considered, then stop")
    ap.add_argument("--tiny", action="store_true", help="a few-MB smoke run (the test suite's)")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "PATH", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--candidate-child", nargs=2, metavar=("NAME", "PATH"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    if a.candidate_child:
        candidate_child(*a.candidate_child)
        return
    if a.tiny:
        a.gib, a.small_gib, a.modes = 4 / 1024, 1 / 1024, "calm"
    if a.candidates:
        run_candidates(ensure(a.small_gib, a.rollout_bytes, a.data), max(1, a.repeat))
        return
    from rich.console import Console
    from rich.table import Table

    big, small = ensure(a.gib, a.rollout_bytes, a.data), ensure(a.small_gib, a.rollout_bytes, a.data)
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    rows = []
    for mode in modes:
        for path in (small, big):
            size = path.stat().st_size / (1 << 30)
            reps, pdrs = [], []
            for _ in range(max(1, a.repeat)):     # interleaved, so both see the same machine load
                with Busy(a.busy if mode == "busy" else 0):
                    reps.append(measure("report", path, a.data))
                with Busy(a.busy if mode == "busy" else 0):
                    pdrs.append(measure("pandas", path, a.data))
            rep = min(reps, key=lambda r: r["wall"])
            pdr = min(pdrs, key=lambda r: r["wall"])
            rows.append((mode, path, size, rep, pdr))
            print(f"{mode} {path.name}: report {rep['wall']:.1f} s / {rep['peak_rss'] / 2**20:.0f} MiB; "
                  f"pandas {pdr['wall']:.1f} s / {pdr['peak_rss'] / 2**20:.0f} MiB", file=sys.stderr, flush=True)
    # same summary? (cross-check the headline figures on the large log)
    mine = report_figures(big)
    theirs = rows[-1][4]["check"]
    same = (mine["rollouts"] == theirs["rollouts"] and abs(mine["judge_mean"] - theirs["judge_mean"]) < 1e-6
            and abs(mine["ndcg_mean"] - theirs["ndcg_mean"]) < 1e-6 and mine["quadrants"] == theirs["quadrants"])
    t = Table(title=f"ddai-report --json vs pandas read_json(lines=True), same summary; "
                    f"~{a.rollout_bytes} B rollouts; busy = {a.busy} spinning processes beside it")
    for c in ("mode", "log", "GiB", "rollouts", "report s", "pandas s", "speedup", "report CPU s", "pandas CPU s",
              "report peak RSS", "pandas peak RSS"):
        t.add_column(c, justify="right")
    for mode, path, size, rep, pdr in rows:
        n = pdr["check"]["rollouts"] if pdr.get("check") else 0
        t.add_row(mode, path.name, f"{size:.3f}", f"{n:,}", f"{rep['wall']:.1f}", f"{pdr['wall']:.1f}",
                  f"{pdr['wall'] / rep['wall']:.1f}x", f"{rep['cpu']:.1f}", f"{pdr['cpu']:.1f}",
                  f"{rep['peak_rss'] / 2**20:.0f} MiB", f"{pdr['peak_rss'] / 2**20:.0f} MiB")
    con = Console(width=170)
    con.print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end "
              "(other processes share the CPUs: wall times vary from run to run)")
    con.print(t)
    for mode in modes:
        mrows = [r for r in rows if r[0] == mode]
        r_small, r_big = mrows[0][3]["peak_rss"], mrows[1][3]["peak_rss"]
        speed = mrows[1][4]["wall"] / mrows[1][3]["wall"]
        mem = mrows[1][3]["peak_rss"] / mrows[1][4]["peak_rss"]
        con.print(f"{mode}: report RSS growth {mrows[0][2]:.3f} -> {mrows[1][2]:.3f} GiB log: "
                  f"{(r_big - r_small) / 2**20:+.0f} MiB; memory {mem:.2f} of pandas; "
                  f"goal >= 5x faster: {'met' if speed >= 5 else 'NOT met'} ({speed:.1f}x on the large log)")
    con.print(f"figures agree with pandas: {same} (rollouts {mine['rollouts']:,}, judge mean {mine['judge_mean']}, "
              f"quadrants {mine['quadrants']})")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
