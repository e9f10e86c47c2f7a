"""The judge's prompts, versioned: (mode, version) -> text, answer schema and score fields.

Each mode reproduces a known reward. Wording is ddai's own; the MEANING (inputs, rubric,
scale, fields) is that of the reward it reproduces, so a new version is added whenever the
text changes and old versions stay here: the version is part of the cache key and of every
judge-log line, so a run can always say which text produced its scores.

- ``production_text`` p1 — the users' registered Phase 2 reward manager (``rm_phase2.py``):
  text only; inputs query, reference answer, the frozen generator's answer; semantic
  equivalence, lenient on formatting; 1.0 equivalent, 0.5–0.9 partially correct, 0.0 wrong or
  unrelated; reply ``{"score": number}``; clipped to [0, 1].
- ``trajectory_vlm`` t1 — the users' trajectory judge (``rm_phase2_trajectory.py``): the
  retrieved pages then the reference pages as images, a line counting them, the query, the
  agent's whole response, the reference answer; criteria in order of importance: answer
  accuracy, visual grounding (claims supported by the images, hallucinations penalised),
  reasoning consistency; correctness first; partial credit; reply four numbers, the reward
  is ``final_score``.
- ``answer`` v1 — ddai's earlier deterministic answer judge (temperature 0, thinking low),
  kept so runs made with it can be reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass

SUBSCORE_KEYS = ("answer_accuracy", "visual_grounding", "reasoning_consistency")

PRODUCTION_TEXT_P1 = """You grade the answers of a question-answering assistant.

You receive a question, the reference answer and the assistant's answer. Decide how correct
the assistant's answer is.

## Question
{query}

## Reference answer
{reference_answer}

## Assistant's answer
{generated_answer}

## How to grade
- Judge whether the assistant's answer means the same as the reference answer.
- Meaning counts, not the exact string: different wording with the same core meaning is correct.
- Be lenient about formatting (for example "$4.5B" and "4.5 billion dollars" are the same).

## Score
Give one score between 0.0 and 1.0:
- 1.0: the same meaning as the reference (correct)
- 0.5 to 0.9: partly correct
- 0.0: wrong or unrelated
"""

TRAJECTORY_VLM_T1 = """You grade a visual question-answering agent that searched slide images.
Use the images and the reference answer to evaluate the agent's response.

## Input
- Images: {image_description} (the pages the agent retrieved, in viewing order, then the reference pages)
- Question: {query}
- The agent's response:
{response}
- Reference answer: {reference_answer}

## Criteria, most important first

### 1. Answer accuracy (most important)
Does the final answer answer the question correctly?
- Compare it with the reference answer.
- Meaning counts, not an exact match.
- Give partial credit to partly correct answers.

### 2. Visual grounding
Do the images actually support what the response claims?
- Check that descriptions of the images match what the images show.
- Penalise invented or hallucinated details.

### 3. Reasoning consistency
Is the reasoning coherent?
- Does the conclusion follow from what was observed?
- Does the reasoning contradict itself?

## Scoring
- Correctness of the answer outweighs everything else.
- A correct answer with small reasoning flaws scores higher than a wrong answer with good reasoning.
- Give partial credit where it is due.
"""

ANSWER_V1 = """You judge whether a generated answer is correct.
Question: {query}
Reference answer: {reference_answer}
Generated answer: {generated_answer}

Judge semantic equivalence and be lenient with formatting. 1.0 = correct, 0.5-0.9 = partially
correct, 0.0 = wrong or missing. Reply with JSON only: {{"score": <number>}}"""

_SCORE_SCHEMA = {
    "type": "OBJECT",
    "properties": {
        "score": {"type": "NUMBER", "description": "How correct the answer is, from 0.0 (wrong) to 1.0 (correct)"}
    },
    "required": ["score"],
}
_TRAJECTORY_SCHEMA = {
    "type": "OBJECT",
    "properties": {
        "answer_accuracy": {"type": "NUMBER", "description": "How well the answer matches the reference (0.0-1.0)"},
        "visual_grounding": {"type": "NUMBER", "description": "How well the claims are supported by the images (0.0-1.0)"},
        "reasoning_consistency": {"type": "NUMBER", "description": "How coherent the reasoning is (0.0-1.0)"},
        "final_score": {"type": "NUMBER", "description": "Overall grade over all criteria (0.0-1.0)"},
    },
    "required": [*SUBSCORE_KEYS, "final_score"],
}
_ANSWER_SCHEMA = {"type": "OBJECT", "properties": {"score": {"type": "NUMBER"}}, "required": ["score"]}


@dataclass(frozen=True)
class JudgePrompt:
    mode: str
    version: str
    text: str
    schema: dict
    score_field: str  # the reply field that is the judge score
    uses_images: bool
    judges_whole_response: bool  # cache key: the whole response (trajectory) or the answer only
    temperature: float | None  # None: not sent (the SDK's / model's default)
    thinking_level: str | None  # None: not sent


PROMPTS: dict[tuple[str, str], JudgePrompt] = {
    ("production_text", "p1"): JudgePrompt("production_text", "p1", PRODUCTION_TEXT_P1, _SCORE_SCHEMA, "score",
                                           uses_images=False, judges_whole_response=False,
                                           temperature=None, thinking_level=None),
    ("trajectory_vlm", "t1"): JudgePrompt("trajectory_vlm", "t1", TRAJECTORY_VLM_T1, _TRAJECTORY_SCHEMA, "final_score",
                                          uses_images=True, judges_whole_response=True,
                                          temperature=None, thinking_level=None),
    ("answer", "v1"): JudgePrompt("answer", "v1", ANSWER_V1, _ANSWER_SCHEMA, "score",
                                  uses_images=False, judges_whole_response=False,
                                  temperature=0.0, thinking_level="low"),
}
CURRENT_VERSION = {"production_text": "p1", "trajectory_vlm": "t1", "answer": "v1"}
JUDGE_MODES = tuple(CURRENT_VERSION)
MODE_ALIASES = {"trajectory": "trajectory_vlm", "production": "production_text"}  # earlier / short names


def prompt_for(mode: str, version: str | None) -> JudgePrompt:
    mode = MODE_ALIASES.get(mode, mode)
    key = (mode, version or CURRENT_VERSION[mode])
    return PROMPTS[key]
