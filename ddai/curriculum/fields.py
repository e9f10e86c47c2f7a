"""The one place where the log's field names are mapped to ddai's canonical names.

Why one place: the users' logs spell the same quantity several ways across versions
(``ndcg_value`` in the legacy step-keyed document, ``ndcg`` in JSON Lines; ``model_eval_score``
vs ``judge_score``; ``"⭐️final_score⭐️"`` decorated with emoji). Readers, the report and the
config (``curriculum.score=judge``) all go through :func:`canonical_score` so a new alias is
added here once and nowhere else.

Canonical score names: ``ndcg``, ``judge``, ``final``, ``format``, plus the judge's sub-scores
``answer_accuracy``, ``visual_grounding``, ``reasoning_consistency``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache
from typing import Any

SCORE_NAMES = ("ndcg", "judge", "final", "format", "answer_accuracy", "visual_grounding", "reasoning_consistency")

# normalized key -> canonical score name (keys are normalized by normalize_key first)
SCORE_ALIASES: dict[str, str] = {
    "ndcg": "ndcg", "ndcg_value": "ndcg", "ndcg_score": "ndcg", "retrieval_ndcg": "ndcg",
    "judge": "judge", "judge_score": "judge", "model_eval_score": "judge", "vlm_score": "judge",
    "gemini_score": "judge", "llm_judge_score": "judge",
    "parsed_score": "judge",  # the users' Gemini judge detail log (rm_phase2.py, "_gemini_detail.jsonl")
    "final": "final", "final_score": "final", "reward": "final", "total_score": "final",
    "format": "format", "format_score": "format", "raw_score": "format",
    "answer_accuracy": "answer_accuracy", "visual_grounding": "visual_grounding",
    "reasoning_consistency": "reasoning_consistency",
}

# Other record fields, normalized key -> canonical attribute (used by the JSON Lines/event readers).
FIELD_ALIASES: dict[str, str] = {
    "uid": "group", "group": "group", "group_id": "group", "prompt_uid": "group",
    "dataset_id": "dataset_id", "data_id": "dataset_id",
    "step": "step", "global_step": "step",
    "sample_idx": "sample_idx", "agent_id": "sample_idx", "rollout_idx": "sample_idx",
    "query": "question", "question": "question",
    "prompt": "prompt",
    "retrieved_basenames": "retrieved_docs", "retrieved_documents": "retrieved_docs",
    "reference_basenames": "reference_docs", "reference_documents": "reference_docs",
    "golden_basenames": "reference_docs",
    "latency_s": "latency_s", "latency": "latency_s",
    "error": "error",
    "cache_hit": "cache_hit",
    "tokens": "tokens",
    "cost_usd": "cost_usd", "cost": "cost_usd",
    "timestamp": "timestamp", "ts": "timestamp", "time": "timestamp",
    "judge_subscores": "judge_subscores",
    "judge_failed": "judge_failed",
    "ndcg_details": "ndcg_details",
    "scores": "scores",
    "event_type": "event_type",
    # the judge's own result object, nested in a record (rm_phase2_trajectory.py: "vlm_result")
    "vlm_result": "judge_result", "judge_result": "judge_result",
}

# Inside a judge result object (``judge_result`` above) these keys hold the judge's score; the
# record's own ``final_score`` beside it is the mix ``0.8 * judge + 0.2 * ndcg``.
JUDGE_OBJECT_SCORE_KEYS = frozenset({"score", "final_score", "judge_score", "vlm_score"})

_SEP = re.compile(r"[\s\-.]+")


@lru_cache(maxsize=4096)
def normalize_key(key: str) -> str:
    """Strip decorations (emoji, symbols, variation selectors), lower-case, unify separators.

    ``"⭐️final_score⭐️"`` -> ``"final_score"``; ``"📣generated_answer📣"`` -> ``"generated_answer"``;
    ``"NDCG Value"`` -> ``"ndcg_value"``. Letters of any script and digits are kept.
    """
    kept = "".join(ch for ch in key if ch == "_" or ch.isspace() or ch in "-." or
                   unicodedata.category(ch)[0] in ("L", "N"))
    return _SEP.sub("_", kept.strip()).strip("_").lower()


@lru_cache(maxsize=4096)
def canonical_score(key: str) -> str | None:
    """Canonical score name for a raw key, or None when the key is not a score."""
    return SCORE_ALIASES.get(normalize_key(key))


@lru_cache(maxsize=4096)
def canonical_field(key: str) -> str | None:
    """Canonical record attribute for a raw key (``uid`` -> ``group``), or None."""
    return FIELD_ALIASES.get(normalize_key(key))


def canonical_score_or_raise(name: str) -> str:
    """Validate a user's ``curriculum.score`` choice (accepts any alias); ValueError if unknown."""
    canon = canonical_score(name)
    if canon is None:
        raise ValueError(f"unknown score field {name!r}; known: {', '.join(SCORE_NAMES)} "
                         f"(aliases: {', '.join(sorted(SCORE_ALIASES))})")
    return canon


def score_value(value: Any) -> float | None:
    """A score as read, for ``Rollout.scores``: numbers as float (NaN/inf/out of range kept),
    JSON null as None, anything else (strings that are not numbers, booleans, lists) as NaN —
    unusable, so the statistics count it and never treat it as 0."""
    if value is None:
        return None
    if isinstance(value, bool):
        return math.nan
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return math.nan
    return math.nan


def is_usable(value: float | None) -> bool:
    """True for a finite float score in [0, 1] (a value as :func:`score_value` returns it)."""
    return value is not None and isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0


# --- the one usable-score rule (contract #3: curriculum, report and next round all use it) ---------
#
# A score is *usable* when it is a real number (int or float, never a bool), finite, and within
# [0, 1]. Everything else -- absent, JSON null, NaN, +-inf, out of range (reference-style NDCG can
# exceed 1 when a page is viewed twice), strings, lists -- is excluded from every statistic and
# counted, never averaged in and never treated as 0.

USABLE_MIN = 0.0
USABLE_MAX = 1.0

# codes of :func:`classify_scores`
USABLE, MISSING, INVALID = 0, 1, 2


def usable(value: Any) -> bool:
    """The usable-score rule for one raw value (see the section comment)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value) and USABLE_MIN <= value <= USABLE_MAX
    except OverflowError:  # an int too large for a float
        return False


def usable_mask(values: Any) -> Any:
    """The usable-score rule, vectorised: a boolean numpy array for a float array (or sequence
    of floats); NaN and +-inf are not usable. Use :func:`classify_scores` for raw Python values."""
    import numpy as np

    x = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (x >= USABLE_MIN) & (x <= USABLE_MAX)   # NaN fails both comparisons


def classify_scores(values: Any) -> tuple[Any, Any]:
    """``(x, code)`` for raw score values: ``x`` float64, ``code`` int8 per value --
    :data:`USABLE` (0), :data:`MISSING` (1: absent / JSON null, ``None``) or :data:`INVALID` (2:
    anything else). ``x`` is only meaningful where ``code == USABLE``.

    Accepts a float array (NaN counts as invalid) or a sequence of raw Python values.
    """
    import numpy as np

    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        x = values.astype(np.float64, copy=False)
        code = np.where(usable_mask(x), USABLE, INVALID).astype(np.int8)
        return x, code
    vals = list(values)
    x = np.zeros(len(vals), dtype=np.float64)
    code = np.full(len(vals), INVALID, dtype=np.int8)
    for i, v in enumerate(vals):
        if v is None:
            code[i] = MISSING
        elif usable(v):
            x[i] = float(v)
            code[i] = USABLE
    return x, code


def extract_scores(obj: dict[str, Any], into: dict[str, float | None] | None = None) -> dict[str, float | None]:
    """Canonical scores found among the keys of ``obj`` (first spelling wins)."""
    out = {} if into is None else into
    for key, value in obj.items():
        canon = canonical_score(key)
        if canon is not None and canon not in out:
            out[canon] = score_value(value)
    return out


_DATASET_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]*_\d+$")


def dataset_id_like(value: str) -> bool:
    """Whether a group id looks like a dataset id (``train_2``) rather than a uuid.

    DDAI's streaming reward log (and its batch log when no uuid was set) writes the dataset id
    as ``uid``; readers then also offer it as ``dataset_id`` evidence for matching.
    """
    return bool(_DATASET_ID.match(value))


_DECK_DOC = re.compile(r"^(.*)_(\d+)$")


def doc_basename(doc: str) -> str:
    """``"./search_engine/corpus/img/2_7.jpg"`` -> ``"2_7"``."""
    base = doc.rstrip("/").rsplit("/", 1)[-1]
    for ext in (".jpg", ".jpeg", ".png", ".webp"):
        if base.lower().endswith(ext):
            return base[: -len(ext)]
    return base


def deck_of(doc: str) -> str | None:
    """Deck id of a page image name: ``"6391_9"`` -> ``"6391"``; None if it has no page suffix."""
    m = _DECK_DOC.match(doc_basename(doc))
    return m.group(1) if m else None


def deck_ids(docs: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Distinct deck ids of reference documents, in first-seen order."""
    seen: dict[str, None] = {}
    for d in docs:
        if isinstance(d, str):
            deck = deck_of(d)
            if deck is not None:
                seen.setdefault(deck, None)
    return tuple(seen)


# End-of-turn markers of the chat templates the users' models use (Qwen, Llama 3, Mistral, Gemma).
_TURN_ENDS = ("<|im_end|>", "<|eot_id|>", "</s>", "<end_of_turn>")
# Image placeholders a user turn may carry before its text (Qwen-VL tokens, the generic tag).
_VISION = re.compile(r"<\|vision_start\|>.*?<\|vision_end\|>|<image>", re.DOTALL)
# Start of a user turn, template tokens present.
_USER_STARTS = ("<|im_start|>user", "<|start_header_id|>user<|end_header_id|>", "<start_of_turn>user", "[INST]")


def _user_turn(prompt: str) -> str | None:
    """The text of the last user turn of a decoded chat prompt; None when it has no user turn.

    Three shapes reach the logs: template tokens present (``<|im_start|>user\n...<|im_end|>``),
    template tokens stripped by ``skip_special_tokens`` decoding (``system\n...\nuser\n...
    \nassistant\n`` -- the role names stay, each on its own line), or a bare string.
    """
    i = prompt.rfind("<|im_start|>user")   # Qwen's template, by far the most common: one search
    if i >= 0 and "<|start_header_id|>" not in prompt and "<start_of_turn>" not in prompt and "[INST]" not in prompt:
        start = i + 16
        end = prompt.find("<|im_end|>", start)
        if end < 0:
            end = len(prompt)
        for e in ("<|eot_id|>", "</s>", "<end_of_turn>", "[/INST]"):
            if e in prompt:
                j = prompt.find(e, start, end)
                if j >= 0:
                    end = j
        return prompt[start:end]
    best = -1
    marker = ""
    for m in _USER_STARTS:
        i = prompt.rfind(m)
        if i > best:
            best, marker = i, m
    if best >= 0:
        start = best + len(marker)
        end = len(prompt)
        for e in _TURN_ENDS + ("[/INST]",):
            j = prompt.find(e, start, end)
            if j >= 0:
                end = j
        return prompt[start:end]
    # Stripped template: role names on their own lines. Drop the trailing generation prompt
    # ("\nassistant\n"), then take what follows the last "user" line.
    body = prompt.rstrip()
    if body.endswith("\nassistant") or body == "assistant":
        body = body[: -len("assistant")]
    if body.startswith("user\n"):
        start = 5
    else:
        i = body.rfind("\nuser\n")
        if i < 0:
            return None
        start = i + 6
    return body[start:]


def question_from_prompt(prompt: str) -> str | None:
    """The question inside a logged prompt, whatever the shape the users' logs give it.

    Handles: chat template tokens present or stripped, with or without a system turn, with or
    without the ``Question:`` prefix (a bare string needs the prefix: without chat structure
    nothing says which text is the question). The user turn is isolated
    first (so a system prompt that mentions "Question:" cannot be taken), then the text after
    its last ``Question:`` -- or the whole turn when there is no prefix -- is returned stripped.
    Returns None when nothing is left.
    """
    turn = _user_turn(prompt)
    if turn is None:  # no chat structure: only a "Question:" prefix marks the question
        if "Question:" not in prompt:
            return None
        turn = prompt
    idx = turn.rfind("Question:")
    q = turn[idx + 9:] if idx >= 0 else _VISION.sub("", turn)
    for e in _TURN_ENDS:  # a bare "Question: ...<|im_end|>" string without a user marker
        j = q.find(e)
        if j >= 0:
            q = q[:j]
    q = q.strip()
    return q or None
