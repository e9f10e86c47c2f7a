"""The ``campaign`` config group (schema registered with Hydra; see conf/campaign/default.yaml).

WHY the rule is a name plus its own small block: a campaign re-buckets the round's judge log
with the curriculum engine (``rebucket``: the same rules, the same usable-score filter as the
first curriculum) or runs a next-round preset of ``ddai-report`` (``nextround``: the users'
focus recipes); each keeps its own parameters, and the choice is recorded per round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ddai.campaign.schedule import ScheduleSettings, validate_schedule
from ddai.errors import ConfigError

RULES = ("rebucket", "nextround")


@dataclass
class RebucketSettings:
    """``rule=rebucket``: ``python -m ddai.launch task=curriculum`` on the round's judge log."""

    score: str = "final"                                   # ndcg | judge | final
    overrides: list[str] = field(default_factory=list)     # more curriculum.* overrides, e.g. curriculum.theta1=0.2


@dataclass
class NextRoundSettings:
    """``rule=nextround``: a next-round preset of :mod:`ddai.curriculum.nextround` (the one
    ``ddai-report --next-round-rule`` runs): ``focus`` | ``ddai47`` | ``stays_below``, with the
    preset's options in ``params`` (e.g. ``{score: final, max: 0.2}`` for focus), extra parquets
    appended after the selection (``include``) and a file of ids to leave out (``exclude``)."""

    preset: str = "focus"
    params: dict[str, Any] = field(default_factory=dict)
    include: list[str] = field(default_factory=list)
    exclude: str | None = None


@dataclass
class RetestSettings:
    """Second chances (``rule=rebucket``): every ``every`` rounds (0: never) the set gets up to
    ``rows`` prompts (whole batches) that earlier rounds left out (B, 0, uncertain, ...)."""

    every: int = 0
    rows: int = 64


@dataclass
class StageJobSettings:
    """Resources of the campaign's small CPU jobs (curriculum, next set, close)."""

    time_min: int = 60
    mem: str = "4G"
    cpus: int = 1


@dataclass
class CampaignConfig:
    dir: str = "campaigns/${phase2.experiment_name}"
    rounds: int = 2
    # Round 1's training set: an existing curriculum manifest, or (null) bucket
    # curriculum.phase1_log + curriculum.dataset as the campaign's first stage.
    manifest: str | None = None
    # The rows later rounds' sets are drawn from (joined by id); null: curriculum.dataset.
    dataset: str | None = None
    rule: str = "rebucket"
    rebucket: RebucketSettings = field(default_factory=RebucketSettings)
    nextround: NextRoundSettings = field(default_factory=NextRoundSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    retest: RetestSettings = field(default_factory=RetestSettings)
    job: StageJobSettings = field(default_factory=StageJobSettings)
    dry_run: bool = False


def validate_settings(c: CampaignConfig | object) -> None:
    """What types cannot say; reads no file."""
    if int(c.rounds) < 1:
        raise ConfigError(f"campaign.rounds={c.rounds}", where="campaign.rounds", expected="an integer >= 1")
    if c.rule not in RULES:
        raise ConfigError(f"campaign.rule={c.rule!r}", where="campaign.rule", expected=" or ".join(RULES))
    if c.rebucket.score not in ("ndcg", "judge", "final"):
        raise ConfigError(f"campaign.rebucket.score={c.rebucket.score!r}", where="campaign.rebucket.score",
                          expected="ndcg, judge or final")
    for o in c.rebucket.overrides:
        if not str(o).lstrip("+~").startswith("curriculum.") or "=" not in str(o):
            raise ConfigError(f"override {o!r}", where="campaign.rebucket.overrides",
                              expected="curriculum.KEY=VALUE")
    if c.rule == "nextround":
        from omegaconf import OmegaConf

        from ddai.curriculum.nextround import make_rule

        params = c.nextround.params
        params = OmegaConf.to_container(params) if not isinstance(params, dict) else params
        make_rule(str(c.nextround.preset), **params)  # unknown preset or option: exit 2 naming it
    validate_schedule(c.schedule)
    if c.schedule.stages and c.rule != "rebucket":
        raise ConfigError("a staged schedule mixes the buckets of a re-bucketing", where="campaign.schedule.stages",
                          expected="campaign.rule=rebucket (or no stages)")
    if int(c.retest.every) < 0 or int(c.retest.rows) < 0:
        raise ConfigError(f"campaign.retest every={c.retest.every} rows={c.retest.rows}", where="campaign.retest",
                          expected="integers >= 0")
    if int(c.retest.every) and c.rule != "rebucket":
        raise ConfigError("re-testing draws from the buckets of a re-bucketing", where="campaign.retest.every",
                          expected="campaign.rule=rebucket (or every=0)")


def register() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group="campaign", name="schema", node=CampaignConfig)
