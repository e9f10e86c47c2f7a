"""Rollout budgets per prompt, and the expected GRPO signal of a training set.

WHY: a GRPO group carries a learning signal only when its rollouts disagree; for a binary
outcome with success rate p and k rollouts that happens with probability
``P(mixed) = 1 − pᵏ − (1−p)ᵏ``. A prompt at p = 0.5 is mixed with 4 rollouts 94 % of the
time, one at p = 0.05 only 19 % — so spending the same n on both wastes judge calls. Graded
scores are reduced to this binary case by the pass rate at the curriculum's ``tau``.

:func:`allocate` gives each prompt its own n (verl 0.9's V1 agent loop reads a per-row
``__rollout_n__``) so that the expected number of mixed groups is maximal under a fixed
total per training batch: every consecutive ``train_batch_size`` rows together get exactly
``train_batch_size × rollout_n`` rollouts, which keeps verl's mini-batch arithmetic
(``ppo_mini_batch_size × rollout.n`` samples) exact. Marginal gains of P(mixed) fall with k,
so adding rollouts one at a time to the best row is optimal for this separable objective.

Estimates are shrunk towards 0.5 with a Jeffreys prior (Beta(½, ½)): a prompt seen 0 times
out of 5 is "rarely solved", not "never solvable".
"""

from __future__ import annotations

import heapq
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ddai.errors import ConfigError, DdaiError, InputError

ROLLOUT_N = "__rollout_n__"
PRIOR = 0.5  # Jeffreys Beta(1/2, 1/2)


def p_mixed(p: float, k: int) -> float:
    """Probability that k independent rollouts with success rate p are not all equal."""
    if k < 2:
        return 0.0
    return max(0.0, 1.0 - p ** k - (1.0 - p) ** k)


def estimate_p(rate: float | None, n: int | None) -> float | None:
    """Posterior mean success rate from an observed rate over n rollouts (None: no evidence)."""
    if rate is None or n is None or n <= 0 or not math.isfinite(rate):
        return None
    return (rate * n + PRIOR) / (n + 2 * PRIOR)


def allocate(ps: Sequence[float], *, batch: int, rollout_n: int, n_min: int, n_max: int) -> list[int]:
    """Rollouts per row: each consecutive ``batch`` rows share ``batch × rollout_n`` rollouts."""
    if not (1 <= n_min <= rollout_n <= n_max):
        raise ConfigError(f"n_min={n_min}, rollout_n={rollout_n}, n_max={n_max}", where="budget",
                          expected="1 <= n_min <= rollout_n <= n_max")
    out: list[int] = []
    for start in range(0, len(ps), batch):
        chunk = list(ps[start:start + batch])
        ns = [n_min] * len(chunk)
        budget = len(chunk) * rollout_n - n_min * len(chunk)
        heap = [(-(p_mixed(p, n_min + 1) - p_mixed(p, n_min)), i) for i, p in enumerate(chunk)]
        heapq.heapify(heap)
        while budget > 0 and heap:
            _, i = heapq.heappop(heap)
            ns[i] += 1
            budget -= 1
            if ns[i] < n_max:
                p = chunk[i]
                heapq.heappush(heap, (-(p_mixed(p, ns[i] + 1) - p_mixed(p, ns[i])), i))
        out.extend(ns)
    return out


def row_estimates(table: Any) -> list[float | None]:
    """Success-rate estimate per row from what earlier phases appended to ``extra_info``.

    ``phase1_pass_rate``/``phase1_n`` (the curriculum, also when it re-buckets a Phase 2 log),
    else ``phase2_judge``/``phase2_rollouts`` (a next-round export).
    """
    if "extra_info" not in table.column_names:
        return [None] * table.num_rows
    out: list[float | None] = []
    for info in table.column("extra_info").to_pylist():
        info = info or {}
        if info.get("phase1_pass_rate") is not None:
            out.append(estimate_p(info["phase1_pass_rate"], info.get("phase1_n")))
        elif info.get("phase2_judge") is not None:
            out.append(estimate_p(info["phase2_judge"], info.get("phase2_rollouts")))
        else:
            out.append(None)
    return out


def signal(ps: Sequence[float | None], ns: Sequence[int]) -> dict[str, Any]:
    """Expected share of groups with a non-zero GRPO advantage, and the calls it takes."""
    known = [(p, n) for p, n in zip(ps, ns) if p is not None]
    useful = sum(p_mixed(p, n) for p, n in known)
    return {"groups": len(ps), "groups_without_estimate": len(ps) - len(known),
            "expected_useful_groups": round(useful, 3),
            "expected_signal_share": round(useful / len(known), 4) if known else None,
            "rollouts": int(sum(ns))}


def train_file_signal(manifest_path: str | Path, rollout_n: int, price_per_rollout: float | None = None,
                      rows: int | None = None) -> dict[str, Any]:
    """:func:`signal` of a curriculum manifest's training file at a uniform ``rollout_n``.

    ``rows`` limits it to what verl trains (steps × batch); ``price_per_rollout`` (judge +
    generator) adds the price and the useful groups per dollar.
    """
    import pyarrow.parquet as pq

    mp = Path(manifest_path)
    doc = json.loads(mp.read_text(encoding="utf-8"))
    name = doc["files"][doc["train_bucket"]]
    table = pq.read_table(mp.parent / name if not Path(name).is_absolute() else name)
    if rows is not None:
        table = table.slice(0, rows)
    ps = row_estimates(table)
    own = table.column(ROLLOUT_N).to_pylist() if ROLLOUT_N in table.column_names else None
    out = signal(ps, own or [rollout_n] * table.num_rows)
    if price_per_rollout is not None:
        out["est_price"] = round(out["rollouts"] * price_per_rollout, 4)
        out["useful_groups_per_dollar"] = (round(out["expected_useful_groups"] / out["est_price"], 3)
                                           if out["est_price"] else None)
    return out


def sweep_signal(manifest_path: str | Path, phase2: dict[str, Any]) -> dict[str, Any]:
    """Columns for the sweep summary: expected signal share and useful groups per epoch and per dollar.

    ``phase2`` is the run's cost block (prompts per epoch, rollouts per prompt, estimated price
    per epoch); a training file without per-prompt estimates gives empty columns, not zeros.
    """
    empty = {"expected_signal_share": None, "useful_groups_per_epoch": None, "useful_groups_per_dollar": None}
    try:
        s = train_file_signal(manifest_path, int(phase2["rollouts_per_prompt"]),
                              rows=int(phase2["prompts_per_epoch"]))
    except (OSError, KeyError, ValueError, json.JSONDecodeError):
        return empty
    if s["expected_signal_share"] is None:
        return empty
    price = phase2.get("est_price_per_epoch")
    useful = s["expected_useful_groups"]
    return {"expected_signal_share": s["expected_signal_share"], "useful_groups_per_epoch": useful,
            "useful_groups_per_dollar": round(useful / price, 3) if price else None}


def write_budgeted(manifest_path: str | Path, out_dir: str | Path, *, rollout_n: int, n_min: int,
                   n_max: int) -> dict[str, Any]:
    """Copy a curriculum's training file with ``__rollout_n__`` per row, and a manifest for Phase 2.

    Rows without an estimate count as p = 0.5 (the allocation's most optimistic case is the
    least harmful one: they keep about the default n). The manifest records the allocation,
    the expected useful groups before and after, and the expected judge calls.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ddai.atomic import atomic_path, atomic_write_text

    mp = Path(manifest_path)
    doc = json.loads(mp.read_text(encoding="utf-8"))
    name = doc["files"][doc["train_bucket"]]
    table = pq.read_table(mp.parent / name if not Path(name).is_absolute() else name)
    batch = int((doc.get("batch") or {}).get("train_batch_size") or 0)
    if batch <= 0:
        raise InputError("manifest lacks batch.train_batch_size", where=mp, expected="a curriculum manifest")
    steps = table.num_rows // batch
    table = table.slice(0, steps * batch)
    est = row_estimates(table)
    ps = [0.5 if p is None else p for p in est]
    ns = allocate(ps, batch=batch, rollout_n=rollout_n, n_min=n_min, n_max=n_max)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    budgeted = table.append_column(pa.field(ROLLOUT_N, pa.int64()), pa.array(ns, pa.int64()))
    with atomic_path(out / "train.parquet") as tmp:
        pq.write_table(budgeted, tmp, compression="snappy")
    before, after = signal(est, [rollout_n] * len(ns)), signal(est, ns)
    hist: dict[str, int] = {}
    for n in ns:
        hist[str(n)] = hist.get(str(n), 0) + 1
    manifest = {"kind": "rollout_budget", "source_manifest": str(mp.resolve()), "files": {"train": "train.parquet"},
                "train_bucket": "train", "buckets": {"train": len(ns)},
                "batch": {"train_batch_size": batch, "steps_per_epoch": steps, "remainder": 0, "dropped_ids": []},
                "budget": {"rollout_n": rollout_n, "n_min": n_min, "n_max": n_max,
                           "rollouts_per_batch": batch * rollout_n, "allocation": dict(sorted(hist.items(),
                                                                                              key=lambda kv: int(kv[0]))),
                           "expected_judge_calls": int(sum(ns)), "expected_generator_calls": int(sum(ns)),
                           "uniform": before, "budgeted": after}}
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    """``python -m ddai.curriculum.budget MANIFEST OUT_DIR --rollout-n 8 --n-min 2 --n-max 16``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m ddai.curriculum.budget", description=main.__doc__)
    ap.add_argument("manifest")
    ap.add_argument("out_dir")
    ap.add_argument("--rollout-n", type=int, required=True, help="phase2.rollout.n: the average per prompt")
    ap.add_argument("--n-min", type=int, default=2)
    ap.add_argument("--n-max", type=int, default=16)
    a = ap.parse_args(argv)
    try:
        m = write_budgeted(a.manifest, a.out_dir, rollout_n=a.rollout_n, n_min=a.n_min, n_max=a.n_max)
    except (DdaiError, OSError, KeyError, json.JSONDecodeError) as exc:
        print(f"ddai: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(m["budget"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
