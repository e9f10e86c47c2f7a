"""``python -m ddai.campaign.show DIR``: a campaign's rounds side by side.

A table on stderr (rich) and campaign.json's rounds as one JSON document on stdout, so a
script can read what a human sees. (``ddai-report CAMPAIGN_DIR`` belongs to the report; this
is the campaign's own view.)
"""

from __future__ import annotations

import dataclasses
import json
import sys

from ddai.campaign import record as cr
from ddai.errors import DdaiError


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m ddai.campaign.show CAMPAIGN_DIR", file=sys.stderr)
        return 2
    try:
        rec = cr.load(args[0])
        if rec is None:
            raise DdaiError("no campaign.json", where=args[0], expected="a directory written by task=campaign")
    except DdaiError as exc:
        print(f"ddai: error: {exc}", file=sys.stderr)
        return 2
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"campaign {rec.name}: {rec.status} — {rec.message}")
    for col in ("round", "status", "set rows", "steps", "signal share", "rollouts", "cost so far", "decision",
                "start checkpoint"):
        t.add_column(col)
    for r in rec.round_records:
        sig = r.counts.get("signal") or {}
        rows = (r.counts.get("steps_per_epoch") or 0) * int(rec.settings.get("train_batch_size") or 0)
        decision = r.decision.get("rule", "curriculum" if r.round == 1 else "")
        if r.decision.get("schedule"):
            decision += f" ({r.decision['schedule']['event']} → {r.decision['schedule']['stage_name']})"
        t.add_row(str(r.round), r.status, str(rows or "-"), str(r.steps or "-"),
                  str(sig.get("expected_signal_share", "-")), str(r.judged_rollouts or "-"),
                  f"${r.cost_so_far_usd:.4f}" if r.cost_so_far_usd is not None else "-", decision,
                  r.start_checkpoint or "(phase2.model_path)")
    Console(stderr=True).print(t)
    print(json.dumps({"status": rec.status, "message": rec.message,
                      "rounds": [dataclasses.asdict(r) for r in rec.round_records]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
