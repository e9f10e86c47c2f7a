"""The one record every log reader yields: a single judged rollout.

All three Phase 1 log shapes (step-keyed JSON document, per-rollout JSON Lines, unified
event log) and parquet logs are reduced to this, so statistics, matching and the report
never care which shape a file had. Only what the statistics and the report need is kept:
response texts are deliberately not materialized (they dominate file size).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The canonical score names every reader fills (in this order), whatever a log calls them.
SCORE_FIELDS = ("ndcg", "judge", "final")


@dataclass(slots=True)
class Rollout:
    """One judged rollout of one prompt (group).

    ``group`` identifies the prompt within its log: the group uid of the step-keyed document
    (a random uuid), the ``uid`` of a JSON Lines record, etc. It is *not* necessarily a
    dataset id; linking groups to dataset rows is the matcher's job, using the evidence
    fields (``dataset_id``, ``deck_ids``, ``question``).
    Scores use canonical names (``ndcg``, ``judge``, ``final``); ``None`` means the field was
    absent, not usable values are kept as they were read (NaN, out of range) so the
    statistics can count them rather than treat them as 0.
    """

    group: str
    source: str                      # file path the record came from
    line: int | None = None          # 1-based line (JSON Lines) or None (document / parquet)
    step: int | None = None          # training step, when the log has one
    sample_idx: int | None = None    # agent / sample index within the group
    dataset_id: str | None = None    # e.g. "train_2", when the log carries it
    question: str | None = None      # question text (decoded from the prompt when needed)
    deck_ids: tuple[str, ...] = ()   # deck ids from reference documents ("2_7" -> "2")
    reference_docs: tuple[str, ...] = ()
    retrieved_docs: tuple[str, ...] = ()
    scores: dict[str, float | None] = field(default_factory=dict)
    latency_s: float | None = None
    error: str | None = None
    cache_hit: bool | None = None
    tokens: int | None = None
    cost_usd: float | None = None
    timestamp: str | None = None
    judge_failed: bool | None = None  # Phase 2 judge log: the judge call failed (score not usable)
