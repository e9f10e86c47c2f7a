"""The searcher's tag protocol: parse one assistant turn into an action, and the fixed messages.

A turn is ``<think>...</think>`` followed by exactly one action:
``<search>query</search>``, ``<bbox>[x1, y1, x2, y2]</bbox>`` or
``<search_complete>true</search_complete>``. The first action tag in the turn is the one
executed (as in the reference agent). Pure text code: no verl, no tokenizer.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

ACTION_RE = re.compile(r"<(search|bbox|search_complete)>(.*?)</\1>", re.DOTALL)
THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)
ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)

# The reference agent's corrective message for a turn without a valid action (its
# "</search_compelte>" typo is fixed here: the model must not learn a wrong closing tag).
INVALID_ACTION_MESSAGE = (
    "Your previous action is invalid. "
    "You must conduct reasoning inside <think> and </think> every time you get new information. "
    "After reasoning, if you find you lack some knowledge, you can call a search engine using "
    "<search> query </search> and the user will return the search results. "
    "Whenever you retrieve an image, you may crop it for a clearer view using <bbox>[x1, y1, x2, y2]</bbox>. "
    "You can search as many times as you want. "
    "If you determine that no further external knowledge is needed, you must finish with "
    "<search_complete>true</search_complete>. "
    "Otherwise, continue with <search> or <bbox> actions until you are ready to finish. "
    "Please try again."
)

INVALID_BBOX_BASE = (
    "Your previous bbox is invalid.\n"
    "- Expected one line: <bbox>[x1, y1, x2, y2]</bbox>\n"
    "- Pixel coordinates, origin at top-left (0,0), x to the right, y downward\n"
    "- Must satisfy: 0 <= x1 < x2 <= image_width, 0 <= y1 < y2 <= image_height (positive area)\n"
    "- If x1 >= x2 or y1 >= y2, the bbox will be rejected.\n"
)

FORCED_COMPLETION = (
    "<think>Maximum turn limit reached. Trigger search_complete.</think>"
    "<search_complete>true</search_complete>"
)


def invalid_bbox_message(reason: str = "") -> str:
    reason_line = f"- We rejected your bbox because: {reason}\n" if reason else ""
    return f"{INVALID_BBOX_BASE}{reason_line}Please output a valid bbox now."


@dataclass(frozen=True)
class Action:
    kind: str  # "search" | "bbox" | "search_complete" | "invalid" | "invalid_bbox"
    query: str = ""
    bbox: tuple[float, float, float, float] | None = None
    reason: str = ""


def parse_bbox(content: str) -> tuple[float, float, float, float]:
    """'[x1, y1, x2, y2]' -> 4 non-negative finite numbers; ValueError names what is wrong."""
    try:
        value = json.loads(content)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"not a JSON list: {content.strip()[:60]!r}") from exc
    if not isinstance(value, list) or len(value) != 4:
        raise ValueError("expected a list of 4 numbers")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise ValueError("all 4 values must be numbers")
    if not all(math.isfinite(v) and v >= 0 for v in value):
        raise ValueError("values must be finite and >= 0")
    x1, y1, x2, y2 = (float(v) for v in value)
    return x1, y1, x2, y2


def parse_action(turn_text: str) -> Action:
    """The first action tag of one assistant turn, validated."""
    match = ACTION_RE.search(turn_text)
    if not match:
        return Action("invalid", reason="no action tag")
    kind, content = match.group(1), match.group(2).strip()
    if kind == "search":
        return Action("search", query=content) if content else Action("invalid", reason="empty search query")
    if kind == "search_complete":
        if content.lower() == "true":
            return Action("search_complete")
        return Action("invalid", reason=f"search_complete must be true, got {content[:20]!r}")
    try:
        return Action("bbox", bbox=parse_bbox(content))
    except ValueError as exc:
        return Action("invalid_bbox", reason=str(exc))


_ACTION_OPEN = ("<search>", "<bbox>", "<search_complete>")


def turn_format_problem(turn_text: str) -> str | None:
    """Why one ACTION turn breaks the users' format rules (``simple_format_checker``), else None.

    The rules (spec, docs/phase2_plugins.md "Format reward"):
    1. the turn, stripped, starts with ``<think>``;
    2. exactly one ``<think>`` and one ``</think>``;
    3. exactly one opening action tag among ``<search>``, ``<bbox>``, ``<search_complete>``;
    4. ``<search>`` has non-blank content; ``<bbox>`` holds a JSON list of 4 numbers;
       ``<search_complete>`` reads ``true`` (spaces ignored);
    5. no ``<answer>`` inside an action turn (the answer is the frozen generator's).
    """
    text = turn_text.strip()
    if not text.startswith("<think>"):
        return "turn does not start with <think>"
    if text.count("<think>") != 1 or text.count("</think>") != 1:
        return "turn needs exactly one <think>...</think>"
    n_actions = sum(text.count(tag) for tag in _ACTION_OPEN)
    if n_actions != 1:
        return f"turn has {n_actions} action tags, expected 1"
    if "<answer>" in text or "</answer>" in text:
        return "<answer> inside an action turn"
    if "<search>" in text:
        m = re.search(r"<search>(.*?)</search>", text, re.DOTALL)
        if not m or not m.group(1).strip():
            return "empty or unclosed <search>"
    elif "<bbox>" in text:
        m = re.search(r"<bbox>(.*?)</bbox>", text, re.DOTALL)
        if not m:
            return "unclosed <bbox>"
        try:
            box = json.loads(m.group(1).strip())
        except json.JSONDecodeError:
            return "<bbox> is not JSON"
        if not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, (int, float)) for v in box):
            return "<bbox> is not a list of 4 numbers"
    elif "<search_complete>true</search_complete>" not in text.replace(" ", ""):
        return "<search_complete> is not true"
    return None


def turn_format_ok(turn_text: str) -> bool:
    """One action turn follows the users' format rules (see :func:`turn_format_problem`)."""
    return turn_format_problem(turn_text) is None


def turns_format_problem(turns: list[str]) -> str | None:
    """The whole checker over the assistant turns of one rollout: None when the format passes.

    Besides the per-turn rules: a turn without an action tag is allowed only if it is exactly
    ``<answer>...</answer>`` (the frozen generator's) and comes after the last action turn;
    there must be at least one action turn and the last one must be ``<search_complete>``.
    """
    actions: list[tuple[int, str]] = []
    answers: list[int] = []
    for i, turn in enumerate(turns):
        text = turn.strip()
        if not any(tag in text for tag in _ACTION_OPEN) and ("<answer>" in text or "</answer>" in text):
            if text.startswith("<answer>") and text.endswith("</answer>"):
                answers.append(i)
                continue
            return f"turn {i}: malformed <answer> block"
        problem = turn_format_problem(text)
        if problem:
            return f"turn {i}: {problem}"
        actions.append((i, text))
    if not actions:
        return "no action turns"
    last_i, last = actions[-1]
    if "<search_complete>" not in last:
        return "the last action turn is not <search_complete>"
    if any(i < last_i for i in answers):
        return "an answer block comes before search_complete"
    return None


def extract_answer(text: str, *, strip: bool = True) -> str | None:
    """Content of the LAST <answer>...</answer> in ``text`` (the frozen generator's), else None."""
    end = text.rfind("</answer>")
    if end < 0:
        return None
    start = text.rfind("<answer>", 0, end)
    if start < 0:
        return None
    content = text[start + len("<answer>") : end]
    return content.strip() if strip else content


def response_format_ok(text: str) -> bool:
    """Coarse check on a decoded whole response (used when the agent loop did not report one).

    Every action is preceded by a think block, and the last action is search_complete=true.
    """
    actions = ACTION_RE.findall(text)
    if not actions or actions[-1][0] != "search_complete" or actions[-1][1].strip().lower() != "true":
        return False
    return len(THINK_RE.findall(text)) >= len(actions)
