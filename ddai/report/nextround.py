"""``ddai-report --next-round``: the report's front end to :mod:`ddai.curriculum.nextround`.

WHY thin: the rules, the join to the dataset and the atomic write live in the curriculum
layer so that a campaign computes the same set between rounds without the report. This
module only turns the command line into a rule, reads the log once more through the
curriculum reader (so every rollout passes the usable-score rule), and adapts the report's
per-prompt table for the per-log "next-round split" summary.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ddai.errors import ConfigError, InputError

if TYPE_CHECKING:
    import pandas as pd

    from ddai.curriculum import nextround as core

# The curriculum's names (ddai.curriculum.nextround RULES, SCORES, ORDERS, StaysBelowRule.sets),
# spelled out so that building the command line does not import that module and pandas with it:
# ``ddai-report --json LOG`` imports pandas while its workers read the log (ddai.report.fanout).
# tests/report/test_report_read_fanout.py checks that they are the curriculum's.
RULE_NAMES = ("focus", "ddai47", "stays_below")
SCORES = ("judge", "ndcg", "final")
ORDERS = ("source", "easy_to_hard")
SETS = ("success", "potential", "fail")

# command-line flags of each rule (besides --order, --include, --exclude, which all rules take)
_RULE_FLAGS = {"focus": ("focus_score", "focus_max")}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``--next-round-*`` options (the rule presets and their parameters)."""
    g = p.add_argument_group("next round", "which prompts the next round trains on (docs/report.md)")
    g.add_argument("--next-round-rule", choices=RULE_NAMES, default=None,
                   help="preset: focus (mean score <= --focus-max, dataset order), ddai47 (success / potential / "
                        "fail of DDAI-47; potential is trained next) or stays_below (the earlier rule, default)")
    g.add_argument("--focus-score", choices=SCORES, default=None, help="focus: the score averaged (default final)")
    g.add_argument("--focus-max", type=float, default=None, metavar="X",
                   help="focus: keep prompts whose mean score is <= X, inclusive (default 0.2)")
    g.add_argument("--include", action="append", default=[], metavar="PARQUET",
                   help="append all rows of PARQUET after the training set, in their own order (repeatable)")
    g.add_argument("--exclude", metavar="FILE", default=None,
                   help="ids to leave out of every set and of the appended rows: one per line, or a JSON list")
    g.add_argument("--order", choices=ORDERS, default=None,
                   help="source: the dataset's order (focus, ddai47); easy_to_hard: mean descending (stays_below)")
    g.add_argument("--next-round-batch", type=int, default=None, metavar="N",
                   help="align the training set to verl batches of N (Phase 2's train_batch_size); default: no alignment")
    g.add_argument("--next-round-remainder", choices=("warn", "trim", "pad"), default=None,
                   help="with --next-round-batch: trim (rest -> remainder.parquet), pad (repeat the first rows) "
                        "or warn (list what verl drops); default trim")


def rule_from_args(a: argparse.Namespace) -> core.NextRoundRule | None:
    """The rule the flags name (None without ``--next-round``: nothing is exported); flags of
    another rule, or without ``--next-round``, are errors."""
    name = a.next_round_rule or "stays_below"
    given = [f for f in ("next_round_rule", "focus_score", "focus_max", "exclude", "order", "next_round_batch",
                         "next_round_remainder")
             if getattr(a, f, None) is not None] + (["include"] if a.include else [])
    if given and not a.next_round:
        flag = "--" + given[0].replace("_", "-")
        raise ConfigError(f"{flag} has no effect without --next-round DIR", where="command line")
    for rule, flags in _RULE_FLAGS.items():
        for f in flags:
            if rule != name and getattr(a, f) is not None:
                raise ConfigError(f"--{f.replace('_', '-')} applies to --next-round-rule {rule}, not {name}",
                                  where="command line")
    if a.next_round_remainder is not None and a.next_round_batch is None:
        raise ConfigError("--next-round-remainder needs --next-round-batch N", where="command line")
    if a.next_round_batch is not None and a.next_round_batch < 1:
        raise ConfigError(f"--next-round-batch is {a.next_round_batch}", where="command line",
                          expected="an integer >= 1")
    for path, what in [(p, "--include parquet") for p in a.include] + [(a.exclude, "exclude file")]:
        if path is not None and not Path(path).is_file():
            raise InputError(f"{what} not found" if not Path(path).exists() else f"{what} is not a regular file",
                             where=path, expected="an existing file")
    if not a.next_round:   # no rule flags either (checked above): the default rule, never used
        return None
    from ddai.curriculum import nextround as core

    if name == "focus":
        return core.make_rule("focus", score=a.focus_score, max=a.focus_max, order=a.order)
    if name == "stays_below":
        return core.make_rule("stays_below", fail_below=a.fail_below, success_from=a.success_from, order=a.order)
    return core.make_rule(name, order=a.order)


def export(log_path: str, dataset_paths: list[Path], out_dir: Path, a: argparse.Namespace,
           progress: bool) -> dict[str, Any]:
    """Write the sets of the rule ``a`` names for one judge log (:func:`ddai.curriculum.nextround.export`)."""
    from ddai.curriculum import nextround as core

    return core.export_from_logs(log_path, dataset_paths, out_dir, a.next_round_preset,
                                 include=[Path(p) for p in a.include], exclude=a.exclude, strict=a.strict,
                                 progress=progress, batch_size=a.next_round_batch,
                                 remainder=a.next_round_remainder or "trim")


def _as_scores(prompts: pd.DataFrame) -> pd.DataFrame:
    """The report's per-prompt table in the shape :func:`core.split` reads."""
    import pandas as pd

    return pd.DataFrame({
        "id": prompts["prompt"].to_numpy(), "judge_mean": prompts["judge_mean"].to_numpy(dtype=float),
        "judge_last": prompts["judge_last"].to_numpy(dtype=float),
        "ndcg_mean": prompts["ndcg_mean"].to_numpy(dtype=float),
        "final_mean": (prompts["final_mean"] if "final_mean" in prompts else
                       pd.Series(np.nan, index=prompts.index)).to_numpy(dtype=float),
    }, index=prompts.index)


def split_sets(prompts: pd.DataFrame, fail: float, success: float) -> dict[str, pd.DataFrame]:
    """The report's prompts in each set of the ``stays_below`` rule, easy → hard."""
    from ddai.curriculum import nextround as core

    sets = core.split(_as_scores(prompts), core.StaysBelowRule(fail_below=fail, success_from=success))
    return {k: prompts.loc[v.index] for k, v in sets.items()}


def next_round_block(prompts: pd.DataFrame, fail: float, success: float) -> dict[str, Any]:
    """Per-log summary: how many prompts the ``stays_below`` rule puts in each set."""
    sets = split_sets(prompts, fail, success)
    return {
        "rule": "stays_below",
        "thresholds": {"fail_below": fail, "success_from": success},
        "counts": {k: len(sets[k]) for k in SETS},
        "unscored_prompts": int((~np.isfinite(prompts["judge_mean"])).sum()),
    }
