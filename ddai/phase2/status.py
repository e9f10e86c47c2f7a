"""``python -m ddai.phase2.status RUN_DIR [--json]``: where a Phase 2 chain stands.

Reads only the run directory (plan, chain state, markers, checkpoints), so it works from a
login node without Slurm accounting. ``--json`` prints the machine-readable view on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ddai.errors import DdaiError
from ddai.phase2 import chain_state as cs
from ddai.phase2.plan import PLAN_NAME, read_plan


def collect(run_dir: Path) -> dict[str, Any]:
    plan = read_plan(run_dir / PLAN_NAME)
    st = cs.read(run_dir)
    ckpt = Path(plan["checkpoint_dir"])
    latest = cs.latest_checkpoint(ckpt)
    status = st.get("status", "new")
    if cs.marker(run_dir, cs.DONE_NAME) is not None:
        status = "done"
    elif cs.marker(run_dir, cs.FAILED_NAME) is not None:
        status = "failed"
    return {
        "run_dir": str(run_dir), "status": status, "message": st.get("message", ""),
        "step": latest, "total_steps": plan["total_steps"], "checkpoints": cs.checkpoint_steps(ckpt),
        "restarts": st.get("restarts", 0), "max_restarts": plan["max_restarts"],
        "no_progress": st.get("no_progress", 0), "max_no_progress": plan["max_no_progress"],
        "jobs": st.get("jobs", []), "log": str(run_dir / cs.LOG_NAME),
    }


def _t(stamp: float | None) -> str:
    return time.strftime("%m-%d %H:%M:%S", time.gmtime(stamp)) if stamp else "-"


def render(view: dict[str, Any]) -> str:
    lines = [f"run      {view['run_dir']}",
             f"status   {view['status']}  {view['message']}",
             f"progress step {view['step']} / {view['total_steps']}  checkpoints {view['checkpoints'][-5:]}",
             (f"budgets  restarts {view['restarts']}/{view['max_restarts']}  "
              f"jobs without progress {view['no_progress']}/{view['max_no_progress']}"),
             "jobs     id        started(UTC)    ended(UTC)      ckpt    rc   successor  reason"]
    for j in view["jobs"]:
        lines.append(f"         {j['job_id']:<9} {_t(j.get('started')):<15} {_t(j.get('ended')):<15} "
                     f"{j.get('ckpt_at_start')}->{j.get('ckpt_at_end') if j.get('ckpt_at_end') is not None else '?':<4} "
                     f"{j.get('rc')!s:<4} {j.get('successor_id')!s:<10} {j.get('end_reason') or ''}")
    lines.append(f"log      {view['log']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m ddai.phase2.status",
        description="Show where a Phase 2 job chain stands: status, step and checkpoints, restart "
                    "budgets, and every job of the chain. Reads only the run directory, so it works "
                    "from a login node without Slurm accounting.",
        epilog="example: python -m ddai.phase2.status $DDAI_RUNS_ROOT/gspo_phase2_gemini_flash --json")
    ap.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                    help="the run directory of the chain (phase2.run_dir; it holds plan.json)")
    ap.add_argument("--json", action="store_true", help="print the status as JSON on stdout")
    args = ap.parse_args(argv)
    try:
        view = collect(args.run_dir.resolve())
    except DdaiError as exc:
        print(f"ddai: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(view, indent=2) if args.json else render(view))
    return 0


if __name__ == "__main__":
    sys.exit(main())
