"""Human output: rich tables on stderr, plain and narrow enough for logs when not a TTY.

WHY stderr: stdout is reserved for ``--json`` so scripts can pipe it; people read stderr.
When stderr is not a terminal, rich prints the same tables without colour at a fixed width
(``COLUMNS`` or 100), which reads fine in a Slurm log or a CI job.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table

from ddai.report.logstats import QUADRANTS
from ddai.report.model import Report

QLABEL = {"solved": "solved", "guessing": "guessing (judge↑ NDCG↓)",
          "reasoning_failure": "reasoning failure (judge↓ NDCG↑)", "failure": "failure"}
MAX_STEP_ROWS = 15


def make_console(file: Any = None) -> Console:
    """stderr console; fixed width and no colour when it is not a terminal."""
    out = file or sys.stderr
    probe = Console(file=out, stderr=file is None)
    if probe.is_terminal:
        return probe
    width = int(os.environ.get("COLUMNS", "0") or 0) or 100
    return Console(file=out, stderr=file is None, width=width, color_system=None, force_terminal=False,
                   highlight=False, soft_wrap=False)


def f(x: Any, nd: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _table(title: str, cols: Iterable[str], *, left: int = 1) -> Table:
    t = Table(title=title, title_justify="left", show_edge=True, min_width=min(len(title), 100))
    for i, c in enumerate(cols):
        t.add_column(c, justify="left" if i < left else "right", no_wrap=i >= left)
    return t


def render(rep: Report, console: Console) -> None:
    for c in rep.curricula:
        console.print(buckets_table(f"Buckets — {c.dir}", c.summary()))
    for sw in rep.sweeps:
        console.print(sweep_table(sw.summary()))
    for lr in rep.logs:
        render_log(lr.summary, console)
    if rep.next_round:
        nr = rep.next_round
        t = _table(f"Next-round sets → {nr['dir']}", ["set", "rows", "file"])
        for k, v in nr["rows"].items():
            t.add_row(k, f(v), nr["files"][k])
        if nr.get("not_in_dataset"):
            t.caption = f"{nr['not_in_dataset']} prompts of the log are not in the dataset and were left out"
        console.print(t)


def buckets_table(title: str, s: dict[str, Any]) -> Table:
    total = sum(s["buckets"].values())
    t = _table(title, ["bucket", "prompts", "share"])
    for b, n in s["buckets"].items():
        mark = " (train)" if b == s.get("train_bucket") else ""
        t.add_row(f"{b}{mark}", f(n), pct(n / total if total else None))
    bits = [f"rule {s['rule']}" if s.get("rule") else "", f"score {s['score']}",
            ("thresholds " + " ".join(f"{k}={v}" for k, v in s["thresholds"].items()))
            if isinstance(s.get("thresholds"), dict) and s["thresholds"] else "",
            f"steps/epoch {s['steps_per_epoch']}" if s.get("steps_per_epoch") is not None else ""]
    t.caption = " · ".join(b for b in bits if b)
    return t


def sweep_table(s: dict[str, Any]) -> Table:
    names = s["bucket_names"]
    price = any(j.get("est_price_total") is not None for j in s["jobs"])
    t = _table(f"Sweep — {s['path']}", ["job", "overrides", *names, "steps/epoch", *(["est. cost"] if price else [])],
               left=2)
    for j in s["jobs"]:
        label = " ".join(j["overrides"]) if j.get("overrides") else f(j.get("rule"))
        t.add_row(j["job"], label, *[f(j["buckets"].get(b)) for b in names], f(j.get("steps_per_epoch")),
                  *([f(j.get("est_price_total"), 2)] if price else []))
    notes = [f"job {x['job']} {x['status']}: {x.get('error') or ''} {x.get('log') or ''}".strip()
             for x in s.get("failed_jobs", [])]
    if not s["jobs"]:
        notes.append("no job manifests found; see sweep_summary.json")
    t.caption = "; ".join(notes) or None
    return t


def render_log(s: dict[str, Any], console: Console) -> None:
    r = s["read"]
    st = s["steps"]
    t = _table(f"Log — {s['path']} ({s['format']})", ["", "value"])
    t.add_row("rollouts", f(s["rollouts"]))
    t.add_row("prompts", f(s["prompts"]))
    t.add_row("steps", f"{st['count']:,} ({st['first']}…{st['last']})" if st else "—")
    t.add_row("lines read", f(r["lines"]))
    t.add_row("malformed lines", f(r["malformed_lines"]))
    t.add_row("truncated last line", "yes" if r["truncated_last_line"] else "no")
    t.add_row("other records skipped", f(r["skipped_records"]))
    rates = s["rates"]
    t.add_row("error rate", pct(rates["error_rate"]))
    t.add_row("judge failed", pct(rates["judge_failed_rate"]))
    t.add_row("cache hits", pct(rates["cache_hit_rate"]))
    lat = s["latency_s"]
    t.add_row("latency p50 / p95 / p99 (s)", f"{f(lat['p50'], 2)} / {f(lat['p95'], 2)} / {f(lat['p99'], 2)}")
    if s.get("tokens"):
        tot = s["tokens"].get("total") or {}
        t.add_row("tokens (total, mean/rollout)", f"{f(tot.get('sum'), 0)} ({f(tot.get('mean'), 1)})")
    if s.get("cost_usd"):
        c = s["cost_usd"]
        t.add_row("judge cost (USD)", f"{f(c['sum'], 2)} ({f(c['mean'], 5)}/rollout)")
        if c.get("generator_sum") is not None:
            t.add_row("generator cost (USD)", f(c["generator_sum"], 2))
    kinds = rates.get("errors_by_kind") or {}
    if kinds:
        t.add_row("errors by kind", ", ".join(f"{k} {v:,}" for k, v in list(kinds.items())[:5]))
    if r["problems"]:
        t.caption = "; ".join(f"line {p['line']}: {p['reason']}" for p in r["problems"][:3])
    console.print(t)

    sc = _table("Scores per rollout", ["score", "n", "missing", "mean", "std", "p05", "p25", "p50", "p75", "p95"])
    for name, b in s["scores"].items():
        sc.add_row(name, f(b["n"]), f(b["missing"]), f(b["mean"]), f(b["std"]), f(b["p05"]), f(b["p25"]),
                   f(b["p50"]), f(b["p75"]), f(b["p95"]))
    if s.get("judge_subscores"):
        sc.caption = "judge subscores: " + ", ".join(f"{k} {f(v)}" for k, v in s["judge_subscores"].items())
    console.print(sc)

    steps = s["per_step"]
    if steps:
        pick = steps if len(steps) <= MAX_STEP_ROWS else [
            steps[round(i * (len(steps) - 1) / (MAX_STEP_ROWS - 1))] for i in range(MAX_STEP_ROWS)]
        tt = _table("Per step", ["step", "rollouts", "prompts", "judge", "ndcg", "final", "errors", "latency s"])
        for row in pick:
            tt.add_row(str(row["step"]), f(row["rollouts"]), f(row["prompts"]), f(row["judge_mean"]),
                       f(row["ndcg_mean"]), f(row["final_mean"]), pct(row["error_rate"]), f(row["latency_mean"], 2))
        if len(steps) > MAX_STEP_ROWS:
            tt.caption = f"{MAX_STEP_ROWS} of {len(steps)} steps shown, evenly spaced; all in --json"
        console.print(tt)

    q = s.get("quadrants")
    if q:
        th = q["thresholds"]
        qt = _table(f"Phase 3 quadrants (judge ≥ {th['judge_high']}, NDCG ≥ {th['ndcg_high']} is high)",
                    ["quadrant", "rollouts", "share", "prompts", "share "])
        for name in QUADRANTS:
            a, b = q["rollouts"][name], q["prompts"][name]
            qt.add_row(QLABEL[name], f(a["n"]), pct(a["fraction"]), f(b["n"]), pct(b["fraction"]))
        qt.caption = f"unscored: {q['rollouts']['unscored']:,} rollouts, {q['prompts']['unscored']:,} prompts"
        console.print(qt)
        if q["most_discordant"]:
            dt = _table("Most discordant prompts", ["prompt", "direction", "quadrant", "rollouts", "judge", "ndcg",
                                                      "gap"], left=3)
            for d in q["most_discordant"]:
                dt.add_row(d["prompt"], d["kind"], QLABEL.get(d.get("quadrant") or "", "—").split(" (")[0],
                           f(d["rollouts"]), f(d["judge_mean"]), f(d["ndcg_mean"]), f(d["gap"]))
            console.print(dt)

    cj = s.get("curriculum_join")
    if cj:
        cols = ["prompts", "rollouts", "phase1", "judge", "ndcg", "judge first", "judge last", "change"]
        bt = _table("By Phase 1 bucket", ["bucket", *cols])
        for b, g in cj["by_bucket"].items():
            bt.add_row(b, *_group_cells(g))
        console.print(bt)
        if cj["by_decile"]:
            dt = _table("By Phase 1 difficulty decile (1 = hardest)", ["decile", *cols])
            for g in cj["by_decile"]:
                dt.add_row(str(g["decile"]), *_group_cells(g))
            console.print(dt)

    nr = s.get("next_round")
    if nr:
        th = nr["thresholds"]
        nt = _table(f"Next-round split (fail < {th['fail_below']}, success ≥ {th['success_from']})",
                    ["set", "prompts"])
        for k, v in nr["counts"].items():
            nt.add_row(k, f(v))
        console.print(nt)


def _group_cells(g: dict[str, Any]) -> list[str]:
    return [f(g["prompts"]), f(g["rollouts"]), f(g["phase1_mean"]), f(g["judge_mean"]), f(g["ndcg_mean"]),
            f(g["judge_first"]), f(g["judge_last"]), f(g["judge_change"])]
