#!/usr/bin/env python
"""Prove that two ddai trees write byte-identical curriculum outputs over many inputs and options.

    python benchmarks/curriculum_equivalence.py --base /path/to/old/tree [--quick]

For every input (the bundled example, generated logs of every shape and several seeds, the
users'-shape benchmark log in its tiny size) and every option combination (rule, match,
duplicates, score, missing_score, sort, remainder), runs ``ddai.curriculum.pipeline.run`` once
with this tree and once with ``--base`` (each in its own interpreter, ``PYTHONPATH`` pointing at
the tree), then compares every output file byte for byte. Exits 1 and lists the differences if
there are any. Used to show that a reader rewrite changed nothing users can see.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

OPTIONS = {
    "rule": ["threshold", "spread", "pass_rate", "quantile"],
    "match": ["auto", "deck", "question", "id"],
    "duplicates": ["pool", "latest", "first"],
    "score": ["ndcg", "judge", "final"],
    "missing_score": ["exclude", "zero"],
    "sort": ["easy_to_hard", "frontier", "interleave", "random"],
    "remainder": ["warn", "trim", "pad"],
}

CHILD = r"""
import json, os, sys, hashlib
from pathlib import Path
if os.environ.get("DDAI_EQUIV_PARALLEL_READ"):   # every step-keyed log, however small, read by N processes
    from ddai.curriculum import read_parallel
    read_parallel.MIN_PARALLEL_BYTES = 0
from omegaconf import OmegaConf
from ddai.curriculum.config import CurriculumConfig, register
from ddai.curriculum import pipeline
from ddai.errors import DdaiError
register()
jobs = json.loads(sys.stdin.read())
out = {}
for job in jobs:
    c = OmegaConf.merge(OmegaConf.structured(CurriculumConfig), OmegaConf.create(job["cfg"]))
    d = Path(job["cfg"]["out_dir"])
    try:
        pipeline.run(c)
        out[job["name"]] = {f.name: hashlib.sha256(f.read_bytes()).hexdigest()
                            for f in sorted(d.iterdir()) if f.is_file()}
    except DdaiError as exc:
        out[job["name"]] = {"error": str(exc)}
print(json.dumps(out))
"""


def inputs(tmp: Path) -> list[tuple[str, Path, Path]]:
    """(name, log, dataset) pairs: every shape the tests use."""
    sys.path.insert(0, str(REPO))
    from ddai.examples import DATA_DIR
    from ddai.examples.generate import DEFAULT_NAMES, SHAPES, write_example_set

    out = []
    bundled = DATA_DIR
    out.append(("bundled", bundled / "gspo_phase1.json", bundled / "slidevqa_train_example.parquet"))
    for seed, shapes, kw in ((4, SHAPES, {"response_bytes": 200}),
                             (11, SHAPES, {"response_bytes": 400, "bad_score_fraction": 0.08, "groups_per_step": 8}),
                             (5, ("steps_json",), {"response_bytes": 300, "groups_per_step": 6, "repeat_fraction": 0.4})):
        d = tmp / f"gen{seed}"
        write_example_set(d, 150, seed=seed, shapes=shapes, write_truth=False, **kw)
        for shape in shapes:
            out.append((f"gen{seed}-{shape}", d / DEFAULT_NAMES[shape], d / DEFAULT_NAMES["dataset"]))
    sys.path.insert(0, str(REPO / "benchmarks"))
    import bench_curriculum as bench

    log, ds = bench.ensure_data(tmp / "users", 2, 1, 1.0, rows=300)
    out.append(("users-1kb", log, ds))
    return out


def run_tree(tree: Path, jobs: list[dict], read_processes: int = 0) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    if read_processes:
        env.update(DDAI_EQUIV_PARALLEL_READ="1", DDAI_READ_WORKERS=str(read_processes))
    proc = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(jobs), capture_output=True, text=True,
                          env=env, cwd=tree)
    if proc.returncode != 0:
        raise SystemExit(f"run with {tree} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="the other ddai tree (e.g. a checkout of main)")
    ap.add_argument("--quick", action="store_true", help="one option at a time instead of a sample of combinations")
    ap.add_argument("--read-processes", type=int, default=0,
                    help="this tree reads every step-keyed log with N processes, however small (0: as it would)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ddai-equiv-") as tmp:
        tmp_p = Path(tmp)
        combos: list[dict] = [{}]
        for key, values in OPTIONS.items():
            combos += [{key: v} for v in values[1:]]
        if not args.quick:
            keys = list(OPTIONS)
            for i, combo in enumerate(itertools.product(*OPTIONS.values())):
                if i % 97 == 0:   # a spread-out sample of the 3,456 combinations
                    combos.append(dict(zip(keys, combo)))
        jobs_by_tree: dict[str, list[dict]] = {"new": [], "base": []}
        for name, log, ds in inputs(tmp_p):
            for j, opts in enumerate(combos):
                for tree in jobs_by_tree:
                    cfg = {"phase1_log": str(log), "dataset": str(ds), "out_dir": str(tmp_p / tree / name / str(j)),
                           "train_batch_size": 8, "allow_empty_train": True, "progress": "off", **opts}
                    jobs_by_tree[tree].append({"name": f"{name}#{j}:{json.dumps(opts, sort_keys=True)}", "cfg": cfg})
        new = run_tree(REPO, jobs_by_tree["new"], args.read_processes)
        base = run_tree(args.base.resolve(), jobs_by_tree["base"])
    diffs = [(k, new[k], base.get(k)) for k in new if new[k] != base.get(k)]
    # output paths differ between the two trees' runs only in out_dir, which the manifest records as "."
    print(json.dumps({"runs": len(new), "identical": len(new) - len(diffs),
                      "errors_both": sum(1 for v in new.values() if "error" in v),
                      "differences": [{"run": k, "new": a, "base": b} for k, a, b in diffs[:20]]}, indent=2))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
