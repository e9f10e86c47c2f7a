"""``ddai-report RUN_DIR [--watch]``: a Phase 2 training week seen while it runs.

WHY here: a Phase 2 run is a chain of Slurm jobs (``ddai.phase2.chain``) that keeps its
history in the run directory (``plan.json``, ``chain_state.json``, checkpoints) while the
reward function appends one line per judged rollout to the judge log. Someone checking on
the run wants both at once: is the chain healthy (jobs, restarts, checkpoints, when will it
finish) and are the scores moving. :func:`run_view` reads the chain the way
``python -m ddai.phase2.status`` does (its reader, never its writer); :class:`Follower`
keeps the judge log's aggregate and, on each refresh, parses only the bytes appended since
the last one (complete lines only: a line still being written waits for the next refresh).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ddai.errors import InputError
from ddai.report.logstats import Partial, Thresholds, scan_bytes

PLAN = "plan.json"
STATE = "chain_state.json"
LOG_KEY = "reward.custom_reward_function.reward_kwargs.log_path"
DEFAULT_LOG = "logs/gspo_gemini_output.jsonl"  # ddai.reward.config.RewardConfig.log_path


def is_run_dir(path: str | Path) -> bool:
    """A Phase 2 run directory: rendered by ``task=phase2`` (plan.json), maybe started."""
    p = Path(path)
    return p.is_dir() and (p / PLAN).is_file()


def _override(plan: dict[str, Any], key: str) -> str | None:
    for o in plan.get("overrides") or []:
        k, _, v = str(o).lstrip("+~").partition("=")
        if k == key:
            return v.strip("'\"")
    return None


def judge_log_path(run_dir: Path, plan: dict[str, Any]) -> Path | None:
    """Where the reward function writes the judge log: the plan's ``log_path`` override
    (relative paths are tried against the run directory, its parent and the current
    directory: the job's working directory is where it was submitted from)."""
    given = _override(plan, LOG_KEY)
    if given in ("null", "None", ""):
        return None
    rel = Path(given or DEFAULT_LOG)
    if rel.is_absolute():
        return rel
    for base in (run_dir, run_dir.parent, Path.cwd()):
        if (base / rel).is_file():
            return base / rel
    return run_dir / rel


def run_view(run_dir: Path, *, log_last_step: int | None = None, now: float | None = None) -> dict[str, Any]:
    """The chain's state plus the pace and time to finish.

    Pace: steps gained since the first job started, per second of wall clock (queue waits
    and restarts included — that is the pace the week will really have). The current step
    is the newer of the latest checkpoint and the judge log's last step.
    """
    from ddai.phase2.status import collect

    run_dir = run_dir.resolve()
    try:
        view = collect(run_dir)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read the Phase 2 run: {exc}", where=str(run_dir),
                         expected="a run directory written by `python -m ddai.launch task=phase2`") from None
    from ddai.phase2.plan import read_plan

    plan = read_plan(run_dir / PLAN)
    now = time.time() if now is None else now
    step = max(int(view.get("step") or 0), int(log_last_step or 0))
    total = int(view.get("total_steps") or 0)
    jobs = view.get("jobs") or []
    started = [j["started"] for j in jobs if isinstance(j.get("started"), (int, float))]
    t0 = min(started) if started else None
    s0 = int(jobs[0].get("ckpt_at_start") or 0) if jobs else 0
    end = now if view["status"] not in ("done", "failed") else max(
        [j.get("ended") or 0 for j in jobs] + [t0 or 0])
    pace = (step - s0) / (end - t0) if t0 is not None and end > t0 and step > s0 else None
    eta = 0.0 if total and step >= total else ((total - step) / pace if pace and total else None)
    view.update(step=step, checkpoint_step=int(view.get("step") or 0), pace_steps_per_hour=pace * 3600 if pace else None,
                eta_s=eta, wandb_run_id=plan.get("wandb_run_id") or None,
                wandb_project=_override(plan, "trainer.project_name"),
                experiment=_override(plan, "trainer.experiment_name"),
                plan={k: plan.get(k) for k in ("run_dir", "checkpoint_dir", "train_file", "train_rows",
                                               "steps_per_epoch", "total_steps", "save_freq", "max_restarts",
                                               "max_no_progress", "nodes", "gpus_per_node", "wandb_run_id")})
    return view


class Follower:
    """The aggregate of a growing JSON Lines log, updated from the bytes appended since.

    WHY offsets and not re-reading: a week-long log reaches GBs; each refresh costs only
    what was written since the last one. A log that shrank (rotated, rewritten) is read again
    from the start.
    """

    def __init__(self, path: str | Path, th: Thresholds):
        self.path = str(path)
        self.th = th
        self.part = Partial(th)
        self.offset = 0
        self.bytes_read = 0   # total bytes parsed, for tests and the footer

    def poll(self) -> bool:
        """Parse complete new lines; True when something new was folded in."""
        try:
            size = os.path.getsize(self.path)
        except FileNotFoundError:
            return False
        if size < self.offset:
            self.part, self.offset = Partial(self.th), 0
        if size == self.offset:
            return False
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(size - self.offset)
        cut = data.rfind(b"\n") + 1
        if not cut:
            return False
        part = scan_bytes(data[:cut], self.th, base_offset=self.offset, at_eof=False)
        self.part.merge(part)
        self.offset += cut
        self.bytes_read += cut
        return True

    def report(self, derive: Callable[[Any], None]) -> Any:
        """A :class:`~ddai.report.summarize.LogReport` of everything read so far."""
        import copy

        from ddai.report.summarize import summarize

        lr = summarize(self.path, "jsonl", self.offset, copy.deepcopy(self.part))
        derive(lr)
        return lr


def render_live(run: dict[str, Any] | None, lr: Any, *, waiting: bool = False) -> Any:
    """One rich renderable: the chain's state beside the judge-log figures so far."""
    from rich.columns import Columns
    from rich.console import Group
    from rich.table import Table

    from ddai.report.html import _dur, pct
    from ddai.report.render_terminal import f
    from ddai.report.views import headline, trend_text

    blocks = []
    if run is not None:
        t = Table(title=f"Phase 2 run — {run['run_dir']}", title_justify="left")
        t.add_column("", justify="left")
        t.add_column("value", justify="right")
        t.add_row("status", f"{run['status']}")
        t.add_row("step", f"{run['step']} / {run['total_steps']} (checkpoint {run['checkpoint_step']})")
        t.add_row("jobs / restarts", f"{len(run['jobs'])} / {run['restarts']} of {run['max_restarts']}")
        t.add_row("checkpoints", ", ".join(str(c) for c in run["checkpoints"][-4:]) or "—")
        t.add_row("pace", "—" if run["pace_steps_per_hour"] is None else f"{run['pace_steps_per_hour']:.1f} steps/h")
        t.add_row("time to finish", "—" if run["eta_s"] is None else _dur(run["eta_s"]))
        t.add_row("W&B run", run.get("wandb_run_id") or "—")
        if run.get("message"):
            t.caption = run["message"]
        blocks.append(t)
    if lr is not None:
        s = lr.summary
        h = headline(s)
        t = Table(title=f"Judge log — {Path(lr.path).name}", title_justify="left")
        t.add_column("", justify="left")
        t.add_column("value", justify="right")
        t.add_row("rollouts", f(h["rollouts"]))
        t.add_row("prompts", f(h["prompts"]))
        t.add_row("steps", f"{h['steps']} ({h['first_step']}…{h['last_step']})" if h["steps"] else "—")
        for k in ("judge", "ndcg", "final"):
            tr = h[f"{k}_trend"]
            t.add_row(f"mean {k}", f(h[f"{k}_mean"]) + ("" if tr is None else f" ({trend_text(tr)}/100 steps)"))
        t.add_row("error rate", pct(h["error_rate"]))
        t.add_row("cache hits", pct(h["cache_hit_rate"]))
        t.add_row("cost so far", "—" if h["cost_usd"] is None else f"${h['cost_usd']:,.2f}")
        last = (s.get("per_step") or [])[-5:]
        blocks.append(t)
        if last:
            st = Table(title="Last steps", title_justify="left")
            for c in ("step", "rollouts", "judge", "ndcg", "errors"):
                st.add_column(c, justify="right")
            for r in last:
                st.add_row(str(r["step"]), f(r["rollouts"]), f(r["judge_mean"]), f(r["ndcg_mean"]),
                           pct(r["error_rate"]))
            blocks.append(st)
    elif waiting:
        blocks.append("[dim]no judge log lines yet[/dim]")
    return Group(Columns(blocks, padding=(0, 2)))


def watch(console: Any, build: Callable[[], Any], *, interval: float, stop: Callable[[], bool] | None = None,
          on_refresh: Callable[[Any], None] | None = None) -> None:
    """Refresh ``build()`` in a rich Live display every ``interval`` seconds until ``stop()``
    (or Ctrl-C). ``on_refresh`` sees each renderable (tests synchronise on it)."""
    from rich.live import Live

    with Live(build(), console=console, refresh_per_second=4, transient=False) as live:
        while not (stop and stop()):
            time.sleep(interval)
            r = build()
            live.update(r)
            if on_refresh:
                on_refresh(r)
