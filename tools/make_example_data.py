#!/usr/bin/env python
"""Write realistic ddai example data with known ground truth (thin CLI over ddai.examples.generate).

Example:
    python tools/make_example_data.py --out /tmp/ex --prompts 2000 --seed 7 \
        --shapes steps_json,jsonl,events,phase2_jsonl,parquet_log --response-bytes 2000
    python tools/make_example_data.py --bundled --out ddai/examples/data   # the shipped set, byte-identical
Prints a JSON summary (files, sizes, counts) on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ddai.examples.generate import DEFAULT_SHAPES, SHAPES, write_bundled, write_example_set


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="output directory")
    ap.add_argument("--prompts", type=int, default=400, help="dataset rows (default 400)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shapes", default=",".join(DEFAULT_SHAPES), help=f"comma list of {', '.join(SHAPES)}")
    ap.add_argument("--response-bytes", type=int, default=2000, help="mean response length in bytes")
    ap.add_argument("--agents", type=int, default=5, help="rollouts per group (n_agent)")
    ap.add_argument("--coverage", type=float, default=0.75, help="share of dataset rows with log records")
    ap.add_argument("--orphans", type=float, default=0.05, help="orphan groups relative to --prompts")
    ap.add_argument("--repeats", type=float, default=0.08, help="share of prompts logged again later")
    ap.add_argument("--bad-scores", type=float, default=0.01, help="share of rollouts with unusable NDCG")
    ap.add_argument("--groups-per-step", type=int, default=32)
    ap.add_argument("--indent", type=int, default=None, help="pretty-print the step-keyed document")
    ap.add_argument("--bundled", action="store_true",
                    help="write the set shipped in ddai/examples/data (fixed settings; the other options are ignored)")
    args = ap.parse_args(argv)
    if args.bundled:
        truth = write_bundled(args.out)
        files = {p.name: {"path": str(p), "bytes": p.stat().st_size} for p in sorted(args.out.iterdir()) if p.is_file()}
        print(json.dumps({"files": files, "rows": len(truth.rows)}, indent=2))
        return 0
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    bad = [s for s in shapes if s not in SHAPES]
    if bad or args.prompts < 1:
        print(f"make_example_data: error: unknown shapes {bad} (expected some of {', '.join(SHAPES)})"
              if bad else "make_example_data: error: --prompts must be >= 1", file=sys.stderr)
        return 2
    truth = write_example_set(args.out, args.prompts, args.seed, shapes=shapes, response_bytes=args.response_bytes,
                              n_agents=args.agents, coverage=args.coverage, orphan_fraction=args.orphans,
                              repeat_fraction=args.repeats, bad_score_fraction=args.bad_scores,
                              groups_per_step=args.groups_per_step, indent=args.indent)
    files = {k: {"path": str(args.out / v), "bytes": (args.out / v).stat().st_size} for k, v in truth.files.items()}
    print(json.dumps({"files": files, "rows": len(truth.rows), "rows_logged": sum(r.logged for r in truth.rows),
                      "groups": len(truth.groups),
                      "orphan_groups": sum(g.dataset_id is None for g in truth.groups)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
