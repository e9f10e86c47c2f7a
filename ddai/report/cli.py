"""``ddai-report PATH...``: judge logs, curricula and sweeps, summarized for people and scripts.

WHY this flow: discover every input first (and say what it is), read the small things
(manifests, sweeps), then stream each log once into a bounded aggregate, derive every
figure from that, and hand one :class:`~ddai.report.model.Report` to each renderer.
Errors a user can fix (:class:`~ddai.errors.DdaiError`, unreadable files) end with one
line on stderr and exit status 2 — never a traceback (set ``DDAI_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ddai.errors import ConfigError, DdaiError, InputError
from ddai.report.discover import Found, discover, group_parts
from ddai.report.logstats import Partial, Thresholds, scan_jsonl, scan_rollouts
from ddai.report.model import Options, Report

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ddai-report",
        description="Summarize judge logs, curriculum manifests and sweeps: bucket counts, judge/NDCG "
                    "statistics, Phase 3 quadrants and the next-round sets.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="judge log (.jsonl, step-keyed .json, event log, parquet), curriculum directory "
                        "or manifest.json, sweep (multirun) directory, or Phase 2 run directory (plan.json: "
                        "the job chain's state beside its judge log)")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument("--plots", metavar="DIR", help="write PNG figures to DIR")
    p.add_argument("--html", metavar="FILE", help="write one self-contained HTML page (tables, interactive charts)")
    p.add_argument("--wandb", action="store_true",
                   help="log per-step figures (history under ddai/) and summary tables to W&B: into the Phase 2 "
                        "training run when a run directory is given (--wandb-run-id otherwise), else a run of its own")
    p.add_argument("--wandb-run-id", default=None, metavar="ID",
                   help="W&B run to resume and log into (default: the Phase 2 run's id from RUN_DIR/plan.json)")
    p.add_argument("--watch", action="store_true",
                   help="keep refreshing the view while the judge log grows (reads only the new bytes; Ctrl-C stops)")
    p.add_argument("--interval", type=float, default=10.0, metavar="SEC",
                   help="seconds between --watch refreshes (default 10)")
    p.add_argument("--wandb-project", default=None, help="W&B project (default: $WANDB_PROJECT or 'ddai')")
    p.add_argument("--wandb-name", default=None, help="W&B run name (default: ddai-report-<log name>)")
    p.add_argument("--strict", action="store_true",
                   help="malformed or truncated lines are fatal (reported with file and line)")
    p.add_argument("--judge-high", type=float, default=0.5, help="judge score counted as high (≥), default 0.5")
    p.add_argument("--ndcg-high", type=float, default=0.5, help="NDCG counted as high (≥), default 0.5")
    p.add_argument("--top", type=int, default=10, help="most discordant prompts listed (default 10)")
    p.add_argument("--deciles", type=int, default=10, help="Phase 1 difficulty groups (default 10)")
    p.add_argument("--prompt", action="append", default=[], metavar="ID",
                   help="draw this prompt's learning curve (repeatable; default: the most discordant)")
    p.add_argument("--curriculum", metavar="PATH",
                   help="curriculum directory or manifest to join the logs with (default: the first "
                        "curriculum among PATHs)")
    p.add_argument("--fail-below", type=float, default=0.3,
                   help="next round: prompts whose mean judge stays below this are 'fail' (default 0.3)")
    p.add_argument("--success-from", type=float, default=0.7,
                   help="next round: prompts with mean judge at least this are 'success' (default 0.7)")
    p.add_argument("--next-round", metavar="DIR",
                   help="export the success / potential / fail sets as training parquet + manifest.json")
    p.add_argument("--dataset", action="append", default=[], metavar="PARQUET",
                   help="training parquet to join the next-round sets to (default: the curriculum's buckets)")
    from ddai.report.nextround import add_arguments as add_next_round_arguments

    add_next_round_arguments(p)
    p.add_argument("--progress", choices=("auto", "on", "off"), default="auto",
                   help="progress bar on stderr (auto: only on a terminal)")
    return p


def _check(a: argparse.Namespace) -> Options:
    for name in ("judge_high", "ndcg_high", "fail_below", "success_from"):
        v = getattr(a, name)
        if not 0.0 <= v <= 1.0:
            raise ConfigError(f"--{name.replace('_', '-')} is {v}", where="command line", expected="a value in [0, 1]")
    if a.fail_below >= a.success_from:
        raise ConfigError(f"--fail-below {a.fail_below} is not below --success-from {a.success_from}",
                          where="command line")
    if a.top < 0 or a.deciles < 1:
        raise ConfigError("--top must be ≥ 0 and --deciles ≥ 1", where="command line")
    if a.html and Path(a.html).is_dir():
        raise ConfigError(f"--html {a.html} is a directory", where=a.html,
                          expected=f"a file name for the page, e.g. {Path(a.html) / 'report.html'}")
    if a.watch and (a.json or a.next_round):
        raise ConfigError("--watch cannot be combined with --json or --next-round", where="command line")
    if not a.interval >= 0:
        raise ConfigError(f"--interval is {a.interval}", where="command line", expected="seconds ≥ 0")
    from ddai.report.nextround import rule_from_args

    a.next_round_preset = rule_from_args(a)  # flag errors before any file is read
    return Options(thresholds=Thresholds(a.judge_high, a.ndcg_high), top=a.top, deciles=a.deciles,
                   prompts=list(a.prompt), fail_below=a.fail_below, success_from=a.success_from,
                   strict=a.strict)


def run(argv: Sequence[str] | None = None, *, watch_hooks: tuple[Any, Any] | None = None) -> int:
    """``watch_hooks`` = (stop, on_refresh) callables for ``--watch`` (tests synchronise on them)."""
    a = build_parser().parse_args(argv)
    if len(a.paths) == 1 and (Path(a.paths[0]) / "campaign.json").is_file():
        # A campaign directory: its rounds side by side (table on stderr, JSON on stdout).
        from ddai.campaign.show import main as show_campaign

        return show_campaign([str(a.paths[0])])
    opts = _check(a)
    from ddai.report.render_terminal import make_console

    console = make_console()
    from ddai.report.live import is_run_dir

    run_dirs = [p for p in a.paths if is_run_dir(p)]
    if len(run_dirs) > 1:
        raise ConfigError(f"{len(run_dirs)} Phase 2 run directories given", where="command line",
                          expected="one run directory per report")
    found = group_parts([discover(p) for p in a.paths if p not in run_dirs])
    run_info = _run_info(run_dirs[0], found, console) if run_dirs else None
    if run_info is not None and run_info["log_found"] is not None:
        found.append(run_info["log_found"])
    if a.watch:
        return _watch(a, opts, found, run_info, console, watch_hooks)
    for fd in found:
        console.print(f"found {fd.path}: {fd.describe()}", highlight=False, soft_wrap=True)
    rep = Report(inputs=found, options=opts)
    _load_small(rep, a)
    show_progress = a.progress == "on" or (a.progress == "auto" and console.is_terminal)
    for fd in found:
        if fd.kind == "log":
            rep.logs.append(_read_log(fd, opts, console if show_progress else None))
    _derive(rep, a)
    known = {k for lr in rep.logs for k in lr.part.keys}
    for lr in rep.logs:   # the usable-score rule: out-of-range values are shown, never averaged
        for name, b in lr.summary["scores"].items():
            if b.get("out_of_range"):
                console.print(f"warning: {lr.path}: {b['out_of_range']:,} {name} values outside [0, 1] "
                              f"(min {b['out_of_range_min']}, max {b['out_of_range_max']}) are left out of every "
                              "figure (docs/logs.md: NDCG above 1)", highlight=False, soft_wrap=True)
    for pid in opts.prompts:
        if pid not in known:
            console.print(f"warning: --prompt {pid} is not a prompt of any log (no learning curve drawn)",
                          highlight=False, soft_wrap=True)

    run_view = None
    if run_info is not None:
        from ddai.report.live import render_live
        from ddai.report.live import run_view as _view

        steps = rep.logs[0].summary.get("steps") if rep.logs else None
        run_view = _view(Path(run_info["run_dir"]), log_last_step=steps["last"] if steps else None)
        if not a.json:
            console.print(render_live(run_view, None))
    if not a.json:
        from ddai.report.render_terminal import render

        render(rep, console)
    figures = None
    if a.plots or a.html or a.wandb:
        from ddai.report.plots import make_figures

        figures = make_figures(rep)
    if a.plots:
        from ddai.report.plots import write_pngs

        written = write_pngs(figures, Path(a.plots))
        console.print(f"wrote {len(written)} figures to {a.plots}", highlight=False, soft_wrap=True)
    if a.html:
        from ddai.report.html import write_html

        write_html(rep, figures, Path(a.html), run=run_view)
        console.print(f"wrote {a.html}", highlight=False, soft_wrap=True)
    if a.wandb:
        from ddai.report.wandb_log import log_to_wandb

        where = log_to_wandb(rep, figures, project=a.wandb_project or (run_view or {}).get("wandb_project"),
                             name=a.wandb_name, run_id=a.wandb_run_id or (run_view or {}).get("wandb_run_id"))
        console.print(f"logged to W&B: {where}", highlight=False, soft_wrap=True)
    if a.json:  # last, so a failure above never leaves a document on stdout with a failing status
        from ddai.report.render_json import dumps

        sys.stdout.write(dumps(rep))
        sys.stdout.flush()
    return 0


def _load_small(rep: Report, a: argparse.Namespace) -> None:
    from ddai.report.manifests import load_curriculum, load_sweep

    for fd in rep.inputs:
        if fd.kind == "curriculum":
            rep.curricula.append(load_curriculum(fd.manifest))
        elif fd.kind == "sweep":
            rep.sweeps.append(load_sweep(fd.path))
    if a.curriculum:
        fd = discover(a.curriculum)
        if fd.kind != "curriculum":
            raise InputError(f"is a {fd.describe()}", where=a.curriculum, expected="a curriculum directory or manifest")
        rep.join_with = load_curriculum(fd.manifest)
    elif rep.curricula:
        rep.join_with = rep.curricula[0]


def _read_log(fd: Found, opts: Options, console: Any) -> Any:
    from ddai.report.summarize import summarize

    size = sum(os.path.getsize(f) for f in fd.files())
    if fd.fmt not in ("jsonl", "events"):
        part = _read_other(fd, opts, progress=console is not None)
        return summarize(fd.path, fd.fmt or "jsonl", size, part)
    progress = None
    on_bytes = None
    if console is not None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                            TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True)
        progress.start()
        task = progress.add_task(f"reading {Path(fd.path).name}", total=size)
        on_bytes = lambda n: progress.advance(task, n)
    try:
        part = scan_jsonl(fd.files(), opts.thresholds, strict=opts.strict, on_bytes=on_bytes)
    finally:
        if progress:
            progress.stop()
    return summarize(fd.path, fd.fmt, size, part)


def _read_other(fd: Found, opts: Options, *, progress: bool) -> Partial:
    """Step-keyed JSON documents and parquet logs, through the curriculum's reader (its own bar)."""
    from ddai.curriculum.read import ReadStats, iter_rollouts
    from ddai.report.logstats import MAX_EXAMPLES, Malformed

    stats = ReadStats()
    part = scan_rollouts(iter_rollouts([fd.path], fmt=fd.fmt, strict=opts.strict, progress=progress,
                                       stats=stats), opts.thresholds)
    part.malformed = stats.malformed
    part.lines = stats.records + stats.malformed
    part.examples = [Malformed(str(ex.get("reason")), line=ex.get("line"))
                     for ex in stats.malformed_examples[:MAX_EXAMPLES]]
    return part


def _derive(rep: Report, a: argparse.Namespace) -> None:
    phase1 = rep.join_with.phase1_table() if rep.join_with else None
    for lr in rep.logs:
        _derive_log(rep, lr, phase1)
    if a.next_round:
        _export_next_round(rep, a)


def _derive_log(rep: Report, lr: Any, phase1: Any) -> None:
    """Quadrants, curriculum join and next-round split of one log (also per --watch refresh)."""
    from ddai.report.quadrants import add_quadrants

    opts = rep.options
    add_quadrants(lr, opts.thresholds, opts.top)
    if phase1 is not None and len(lr.prompts):
        from ddai.report.join import join_curriculum

        join_curriculum(lr, phase1, opts.deciles)
    if len(lr.prompts):
        from ddai.report.nextround import next_round_block

        lr.summary["next_round"] = next_round_block(lr.prompts, opts.fail_below, opts.success_from)


def _run_info(run_dir: str, found: list[Found], console: Any) -> dict[str, Any]:
    """A Phase 2 run directory: its judge log (unless a log was given too) and its chain."""
    from ddai.phase2.plan import read_plan
    from ddai.report.live import judge_log_path

    rd = Path(run_dir).resolve()
    info: dict[str, Any] = {"run_dir": str(rd), "log_found": None, "log_path": None}
    if any(f.kind == "log" for f in found):
        return info
    lp = judge_log_path(rd, read_plan(rd / "plan.json"))
    info["log_path"] = str(lp) if lp is not None else None
    if lp is not None and lp.is_file():
        info["log_found"] = discover(str(lp))
        console.print(f"found {run_dir}: Phase 2 run directory; judge log {lp}", highlight=False, soft_wrap=True)
    else:
        console.print(f"found {run_dir}: Phase 2 run directory; no judge log yet (expected at {lp})",
                      highlight=False, soft_wrap=True)
    return info


def _watch(a: argparse.Namespace, opts: Options, found: list[Found], run_info: dict[str, Any] | None,
           console: Any, hooks: tuple[Any, Any] | None) -> int:
    """``--watch``: follow one JSON Lines judge log (and the run's chain) in a live display."""
    from ddai.report.live import Follower, render_live, run_view, watch

    logs = [f for f in found if f.kind == "log"]
    path = logs[0].path if logs else (run_info or {}).get("log_path")
    if len(logs) > 1 or (logs and logs[0].fmt not in ("jsonl", "events")) or path is None:
        raise ConfigError("--watch follows one JSON Lines judge log (or a Phase 2 run directory)",
                          where="command line", expected="ddai-report RUN_DIR --watch, or LOG.jsonl --watch")
    rep = Report(inputs=found, options=opts)
    _load_small(rep, a)
    phase1 = rep.join_with.phase1_table() if rep.join_with else None
    follower = Follower(path, opts.thresholds)

    def build() -> Any:
        follower.poll()
        lr = follower.report(lambda x: _derive_log(rep, x, phase1)) if follower.offset else None
        view = None
        if run_info is not None:
            steps = lr.summary.get("steps") if lr is not None else None
            view = run_view(Path(run_info["run_dir"]), log_last_step=steps["last"] if steps else None)
        return render_live(view, lr, waiting=True)

    stop, on_refresh = hooks or (None, None)
    try:
        watch(console, build, interval=a.interval, stop=stop, on_refresh=on_refresh)
    except KeyboardInterrupt:
        pass
    return 0


def _export_next_round(rep: Report, a: argparse.Namespace) -> None:
    from ddai.report.nextround import export

    if len(rep.logs) != 1:
        raise ConfigError(f"--next-round needs exactly one judge log among the inputs, got {len(rep.logs)}",
                          where="command line")
    datasets = [Path(p) for p in a.dataset]
    datasets += [Path(f.path) for f in rep.inputs if f.kind == "dataset"]
    if not datasets and rep.join_with is not None:
        datasets = [p for p in rep.join_with.bucket_files().values() if p.is_file()]
    lr = rep.logs[0]
    rep.next_round = export(lr.path, datasets, Path(a.next_round), a, progress=a.progress == "on")


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point: exit 0 on success, 2 with one message on a user error."""
    from ddai import blas_threads

    blas_threads.install()   # numpy's BLAS threads would spin beside the reading (ddai.blas_threads)
    try:
        code = run(argv)
    except DdaiError as exc:
        _fail(str(exc))
        code = EXIT_USAGE
    except OSError as exc:
        _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
        code = EXIT_USAGE
    except KeyboardInterrupt:
        _fail("interrupted")
        code = 130
    except Exception as exc:
        if os.environ.get("DDAI_DEBUG"):
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc} (set DDAI_DEBUG=1 for a traceback)")
        code = 1
    return code


def _fail(msg: str) -> None:
    sys.stderr.write(f"ddai-report: error: {msg}\n")
    sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
