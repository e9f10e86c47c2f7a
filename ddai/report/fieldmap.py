"""Which raw log keys the report's fast JSON Lines path reads for each canonical field.

WHY a separate module: the report's hot loop wants plain tuples of key names (one dict
lookup each), while the one alias map of the project lives in ``ddai.curriculum.fields``.
This module derives the tuples from that map when it is importable, so a new alias added
there reaches the report too; the literal fallback keeps the report usable on its own.
"""

from __future__ import annotations

_FALLBACK: dict[str, tuple[str, ...]] = {
    "judge": ("judge_score", "judge", "model_eval_score"),
    "ndcg": ("ndcg", "ndcg_value"),
    "final": ("final_score", "final", "⭐️final_score⭐️"),
    "prompt": ("dataset_id", "uid"),
    "step": ("step", "global_step"),
    # the question text: the only key of logs that carry no id (the users' batch-mode reward
    # log and its "rm.batch.summary" events, their judge detail log); used when no id is there
    "question": ("query", "question"),
}


def _from_fields() -> dict[str, tuple[str, ...]]:
    """Invert the curriculum's alias tables (normalized raw key -> canonical name)."""
    try:
        from ddai.curriculum import fields
    except Exception:  # noqa: BLE001 - any import problem means: use the fallback
        return {}
    scores = getattr(fields, "SCORE_ALIASES", None)
    others = getattr(fields, "FIELD_ALIASES", None)
    if not isinstance(scores, dict) or not isinstance(others, dict):
        return {}

    def raw(table: dict[str, str], canon: str) -> list[str]:
        return [k for k, v in table.items() if v == canon]

    out = {c: tuple(dict.fromkeys([*_FALLBACK[c], *raw(scores, c)])) for c in ("judge", "ndcg", "final")}
    out["prompt"] = tuple(dict.fromkeys([*raw(others, "dataset_id"), *_FALLBACK["prompt"], *raw(others, "group")]))
    out["step"] = tuple(dict.fromkeys([*_FALLBACK["step"], *raw(others, "step")]))
    out["question"] = tuple(dict.fromkeys([*_FALLBACK["question"], *raw(others, "question")]))
    return out


ALIASES: dict[str, tuple[str, ...]] = {**_FALLBACK, **_from_fields()}


def _usable_mask_fallback(values):  # same rule as ddai.curriculum.fields
    import numpy as np

    x = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (x >= 0.0) & (x <= 1.0)


try:  # the one usable-score rule (finite, in [0, 1]) lives in the curriculum's field module
    from ddai.curriculum.fields import usable_mask
except ImportError:  # pragma: no cover - an older curriculum module: the same rule, inline
    usable_mask = _usable_mask_fallback


def _is_reward_event_fallback(event_type):  # same rule as the curriculum reader
    return isinstance(event_type, str) and event_type not in ("rm.ndcg.debug", "rm.gemini.detail") and (
        event_type.startswith(("rm.", "reward")) or event_type in ("judge.result", "rollout.scored"))


try:  # which unified-log events are judged rollouts: one rule, the curriculum reader's
    from ddai.curriculum.read_lines import is_reward_event
except ImportError:  # pragma: no cover
    is_reward_event = _is_reward_event_fallback
