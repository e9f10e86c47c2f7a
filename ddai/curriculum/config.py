"""The curriculum task's configuration: a typed schema, Hydra registration, and validation.

WHY a dataclass schema: Hydra checks every ``curriculum.*`` override against it at
composition, so a misspelt key or a string where a number belongs fails before anything
runs. ``validate`` then checks what types cannot express (θ1 < θ_easy, known names, sane
quantiles) — still before any file is read, so a sweep can reject a combination up front.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddai.errors import ConfigError

# Names the rest of the engine dispatches on; one place so validate() and --help agree.
RULES = ("threshold", "spread", "pass_rate", "quantile")
SORTS = ("easy_to_hard", "hard_to_easy", "random", "frontier", "original", "interleave")
MATCHES = ("auto", "id", "deck", "question")
SCORES = ("ndcg", "judge", "final")
DUPLICATES = ("pool", "latest", "first")
FORMATS = ("auto", "steps_json", "jsonl", "events", "parquet")
REMAINDERS = ("warn", "trim", "pad")
FRONTIER_BY = ("pass_rate", "std")
PROGRESS = ("auto", "on", "off")
MISSING = ("exclude", "zero")

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples" / "data"

# ``curriculum.train_batch_size``'s default: follow ``phase2.train_batch_size`` when the
# phase2 group is composed (the Hydra app always composes it), else verl's usual 64.
BATCH_FROM_PHASE2 = "${oc.select:phase2.train_batch_size,64}"


def example_path(name: str) -> str:
    """Absolute path of a bundled example file (the OmegaConf resolver ``ddai_example``)."""
    return str(EXAMPLES_DIR / name)


@dataclass
class SpreadParams:
    """``rule=spread``: A also needs mixed outcomes within the group.

    A group in the threshold rule's A band qualifies when some rollout scored ≥ ``high`` and
    some ≤ ``low`` (a real success and a real failure), or — if ``min_std`` is set — when the
    group's std is at least ``min_std``. Groups that fail go to bucket ``flat_bucket``.
    """

    high: float = 0.7
    low: float = 0.1
    min_std: float | None = 0.15
    flat_bucket: str = "flat"


@dataclass
class PassRateParams:
    """``rule=pass_rate``: fraction of rollouts with score ≥ ``tau`` (Skywork-style filter).

    A when ``p_lo ≤ fraction ≤ p_hi``; B when above ``p_hi``; 0 when below ``p_lo``.
    """

    tau: float = 0.5
    p_lo: float = 0.2
    p_hi: float = 0.8


@dataclass
class QuantileParams:
    """``rule=quantile``: ``n`` equal-count buckets, or explicit ``edges`` on the mean.

    ``names`` lists bucket names from the lowest mean to the highest (default
    ``q1..qn``); ``train`` names the bucket written as the training set (default: the middle
    one). With ``edges=[0.3, 0.7]`` a mean ``m`` goes to the first bucket whose upper edge
    exceeds it (``m < 0.3`` → names[0], ``0.3 ≤ m < 0.7`` → names[1], else names[2]).
    """

    n: int = 3
    edges: list[float] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    train: str | None = None


@dataclass
class CurriculumConfig:
    """Everything one curriculum run needs; the contract other tools override by key."""

    # Inputs / outputs. Defaults point at the bundled example so a bare run works.
    phase1_log: str = "${ddai_example:gspo_phase1.json}"
    dataset: str = "${ddai_example:slidevqa_train_example.parquet}"
    out_dir: str = "${hydra:runtime.output_dir}/curriculum"
    format: str = "auto"
    strict: bool = False
    progress: str = "auto"

    # Scoring and bucketing.
    score: str = "ndcg"
    missing_score: str = "exclude"
    theta1: float = 0.1
    theta_easy: float = 0.7
    rule: str = "threshold"
    spread: SpreadParams = field(default_factory=SpreadParams)
    pass_rate: PassRateParams = field(default_factory=PassRateParams)
    quantile: QuantileParams = field(default_factory=QuantileParams)
    count_at: list[float] = field(default_factory=lambda: [0.1, 0.5, 0.7])

    # Linking log groups to dataset rows.
    match: str = "auto"
    duplicates: str = "pool"

    # Ordering of the training bucket.
    sort: str = "easy_to_hard"
    seed: int = 0
    frontier_by: str = "pass_rate"
    interleave_strata: int = 4

    # verl batch alignment. One source for the batch size: Phase 2's ``phase2.train_batch_size``
    # unless this key is set explicitly (64 when no phase2 config is composed, e.g. library use).
    # ``trim`` by default: the training file holds whole batches only, so it passes Phase 2's
    # data check as written; the rows verl would have dropped go to the ``remainder`` bucket.
    train_batch_size: int = BATCH_FROM_PHASE2  # type: ignore[assignment]
    remainder: str = "trim"
    allow_empty_train: bool = False


def register() -> None:
    """Register the schema as ``curriculum/schema`` and the ``ddai_example`` resolver."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("ddai_example"):
        OmegaConf.register_new_resolver("ddai_example", example_path)
    ConfigStore.instance().store(group="curriculum", name="schema", node=CurriculumConfig)


def _get(cfg: Any, key: str) -> Any:
    """Read ``key`` from a DictConfig/dataclass/dict without resolving unrelated keys."""
    if isinstance(cfg, dict):
        return cfg[key]
    return getattr(cfg, key)


def _one_of(cfg: Any, key: str, allowed: tuple[str, ...]) -> str:
    value = _get(cfg, key)
    if value not in allowed:
        raise ConfigError(f"unknown value {value!r}", where=f"curriculum.{key}",
                          expected=f"one of {', '.join(allowed)}")
    return value


def _unit(value: Any, key: str, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
            or not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"value {value!r} out of range", where=f"curriculum.{key}",
                          expected="a number in [0, 1]")


def validate_settings(cfg: Any) -> None:
    """Check every setting that a type cannot express. Reads no file.

    ``cfg`` is the ``curriculum`` node (DictConfig, dataclass or plain dict of the same shape).
    """
    for key, allowed in (("rule", RULES), ("sort", SORTS), ("match", MATCHES), ("score", SCORES),
                         ("duplicates", DUPLICATES), ("format", FORMATS),
                         ("remainder", REMAINDERS), ("frontier_by", FRONTIER_BY),
                         ("progress", PROGRESS), ("missing_score", MISSING)):
        _one_of(cfg, key, allowed)

    theta1, theta_easy = _get(cfg, "theta1"), _get(cfg, "theta_easy")
    _unit(theta1, "theta1")
    _unit(theta_easy, "theta_easy")
    if not theta1 < theta_easy:
        raise ConfigError(f"theta1={theta1} is not below theta_easy={theta_easy}",
                          where="curriculum.theta1", expected="theta1 < theta_easy")

    for i, t in enumerate(_get(cfg, "count_at")):
        _unit(t, f"count_at[{i}]")

    tbs = _get(cfg, "train_batch_size")
    if not isinstance(tbs, int) or isinstance(tbs, bool) or tbs < 1:
        raise ConfigError(f"value {tbs!r} is not a positive integer",
                          where="curriculum.train_batch_size", expected="an integer ≥ 1")
    strata = _get(cfg, "interleave_strata")
    if not isinstance(strata, int) or strata < 1:
        raise ConfigError(f"value {strata!r} is not a positive integer",
                          where="curriculum.interleave_strata", expected="an integer ≥ 1")

    rule = _get(cfg, "rule")
    if rule == "spread":
        sp = _get(cfg, "spread")
        _unit(_get(sp, "high"), "spread.high")
        _unit(_get(sp, "low"), "spread.low")
        _unit(_get(sp, "min_std"), "spread.min_std", allow_none=True)
        if not _get(sp, "low") < _get(sp, "high"):
            raise ConfigError("spread.low is not below spread.high", where="curriculum.spread.low",
                              expected="low < high")
        _bucket_name(_get(sp, "flat_bucket"), "spread.flat_bucket", reserved=("A", "B", "0"))
    elif rule == "pass_rate":
        pr = _get(cfg, "pass_rate")
        for k in ("tau", "p_lo", "p_hi"):
            _unit(_get(pr, k), f"pass_rate.{k}")
        if not _get(pr, "p_lo") <= _get(pr, "p_hi"):
            raise ConfigError("pass_rate.p_lo is above pass_rate.p_hi",
                              where="curriculum.pass_rate.p_lo", expected="p_lo ≤ p_hi")
    elif rule == "quantile":
        quantile_names(_get(cfg, "quantile"))


def quantile_names(q: Any) -> list[str]:
    """Validated bucket names of the quantile rule, lowest mean first (also used by the rule)."""
    edges = list(_get(q, "edges") or [])
    n = _get(q, "n")
    names = [str(x) for x in (_get(q, "names") or [])]
    if edges:
        for i, e in enumerate(edges):
            _unit(e, f"quantile.edges[{i}]")
        if any(b <= a for a, b in zip(edges, edges[1:])):
            raise ConfigError(f"edges {edges} are not strictly increasing",
                              where="curriculum.quantile.edges", expected="strictly increasing numbers in [0, 1]")
        count = len(edges) + 1
    else:
        if not isinstance(n, int) or isinstance(n, bool) or n < 2:
            raise ConfigError(f"value {n!r} is not an integer ≥ 2", where="curriculum.quantile.n",
                              expected="an integer ≥ 2 (or explicit quantile.edges)")
        count = n
    if not names:
        names = [f"q{i + 1}" for i in range(count)]
    if len(names) != count:
        raise ConfigError(f"{len(names)} names for {count} buckets", where="curriculum.quantile.names",
                          expected=f"exactly {count} names (lowest mean first)")
    if len({n.lower() for n in names}) != len(names):
        raise ConfigError(f"duplicate names in {names}", where="curriculum.quantile.names",
                          expected="distinct bucket names (case-insensitive: they become file names)")
    for i, name in enumerate(names):
        _bucket_name(name, f"quantile.names[{i}]", reserved=())
    train = _get(q, "train")
    if train is not None and str(train) not in names:
        raise ConfigError(f"train bucket {train!r} is not one of the names {names}",
                          where="curriculum.quantile.train", expected=f"one of {', '.join(names)}")
    return names


RESERVED_BUCKETS = ("unmatched", "no_score", "ambiguous", "remainder", "no_row", "ambiguous_group")


def _bucket_name(name: Any, key: str, *, reserved: tuple[str, ...]) -> None:
    """A bucket name becomes part of a file name: keep it short, safe and unambiguous."""
    s = str(name)
    ok = s != "" and all(c.isalnum() or c in "_-" for c in s) and len(s) <= 64
    if not ok:
        raise ConfigError(f"bucket name {s!r} is not usable in a file name", where=f"curriculum.{key}",
                          expected="letters, digits, '_' or '-' (≤ 64 chars)")
    if s in RESERVED_BUCKETS or s in reserved:
        raise ConfigError(f"bucket name {s!r} is reserved", where=f"curriculum.{key}",
                          expected=f"a name other than {', '.join(RESERVED_BUCKETS + reserved)}")
