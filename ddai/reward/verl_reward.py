"""The verl 0.9 reward hook: ``reward.custom_reward_function.path=<this file>``, ``name=compute_score``.

verl's reward loop (``naive`` manager) awaits ``compute_score(data_source=, solution_str=,
ground_truth=, extra_info=, **reward_kwargs)`` once per finished trajectory, as soon as the
agent loop ends, so judging overlaps with generation. ``extra_info`` is the row's
``extra_info`` plus the agent loop's ``extra_fields`` (the pages the searcher viewed, the
frozen generator's answer, ...). The return value is a dict with the SAME scalar keys for
every sample (verl builds its arrays from the first sample's keys); ``score`` is the reward.

final = w_judge * judge + w_ndcg * ndcg + w_format * format; optional format gate.

A judgment (or frozen answer) that failed after bounded retries is logged with
``judge_failed`` and then handled by ``judge_failure_policy``. The default, ``drop``, raises
:class:`JudgmentUnavailable`: verl 0.9's trainer (V1, the default) then leaves that rollout
out of its GRPO group (``agent_loop_tq._run_prompt`` marks the group ``failure`` and the
replay buffer trains the group with the rollouts it has), so the others' advantages are
exactly those of the group without it. ``zero_judge`` is the reference's behaviour (judge
scored 0, final = w_ndcg·ndcg); ``ndcg_only`` and ``fixed`` are kept as explicit options.

The judgment is cached before the log line is written; a log or cache that cannot be
written raises :class:`RewardStorageError` naming the file, and this process then refuses
every later rollout with the same message (nothing is judged, paid or scored unrecorded).
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime, timezone
from typing import Any

from ddai.clients.protocol import extract_answer, response_format_ok
from ddai.clients.secrets import safe_text
from ddai.reward.config import RewardConfig
from ddai.reward.ndcg import basename, ndcg, reference_basenames
from ddai.reward.storage import RewardStorageError, host_name

# Keys of the dict returned to verl (all floats, identical for every sample).
RETURN_KEYS = (
    "score", "judge_score", "ndcg", "judge_answer_accuracy", "judge_visual_grounding",
    "judge_reasoning_consistency", "judge_failed", "cache_hit", "format_ok", "judge_cost_usd",
    "generator_cost_usd", "judge_latency_s", "judge_tokens_total", "judge_image_errors",
)


class JudgmentUnavailable(Exception):
    """No judgment for this rollout (judge or frozen generator failed after retries): drop it.

    Raised only under ``judge_failure_policy=drop``, after the rollout's judge-log line is
    written. verl 0.9 treats the exception as a failed session and trains the group without it.
    """

_runtimes: dict[str, RewardRuntime] = {}
_runtimes_lock = threading.Lock()


class RewardRuntime:
    """Per-process judge, cache and log for one reward configuration."""

    def __init__(self, config: RewardConfig):
        from ddai.reward.judge import GeminiJudge
        from ddai.reward.judge_log import JudgeLog

        self.config = config
        self.fatal: str | None = None  # set once the cache or the log cannot be written
        self.judge = GeminiJudge(config)
        self.log = JudgeLog(config.log_path) if config.log_path else None


def runtime_for(reward_kwargs: dict[str, Any]) -> RewardRuntime:
    """The process's runtime for these kwargs (parsed and validated once, not per rollout)."""
    key = json.dumps(reward_kwargs, sort_keys=True, default=str) + f"|{os.getpid()}"
    rt = _runtimes.get(key)
    if rt is None:
        with _runtimes_lock:
            rt = _runtimes.get(key)
            if rt is None:
                rt = _runtimes[key] = RewardRuntime(RewardConfig.from_kwargs(reward_kwargs))
    return rt


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _reference_basenames(extra_info: dict) -> list[str]:
    explicit = extra_info.get("reference_basenames") or extra_info.get("reference_documents")
    if explicit is not None and len(_as_list(explicit)):
        return [basename(str(x)) for x in _as_list(explicit)]
    file_name = extra_info.get("file_name")
    pages = _as_list(extra_info.get("reference_page"))
    if not file_name or not pages:
        return []
    return reference_basenames(str(file_name), pages)


def _step(extra_info: dict, agent: dict) -> int:
    for value in (agent.get("step"), extra_info.get("global_steps"), extra_info.get("max_global_steps")):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
    return -1


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else float(value)


async def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict | None = None,
    **reward_kwargs: Any,
) -> dict[str, float]:
    """Judge + NDCG reward for one trajectory (see module docstring)."""
    extra_info = dict(extra_info or {})
    for verl_only in ("reward_router_address", "reward_model_tokenizer"):
        reward_kwargs.pop(verl_only, None)
    rt = runtime_for(reward_kwargs)
    if rt.fatal is not None:
        raise RewardStorageError(rt.fatal)
    try:
        return await _score(rt, data_source, solution_str, ground_truth, extra_info)
    except RewardStorageError as exc:
        rt.fatal = str(exc)  # every later rollout of this process stops here, unpaid
        raise


async def _score(rt: RewardRuntime, data_source: str, solution_str: str, ground_truth: Any,
                 extra_info: dict) -> dict[str, float]:
    config = rt.config
    started = time.monotonic()
    # What the agent loop recorded: extra_fields["ddai"] (a dict), or flat "ddai_*" keys.
    agent = {k[len("ddai_"):]: v for k, v in extra_info.items() if k.startswith("ddai_")}
    agent.update(extra_info.get("ddai") or {})

    # -- what the searcher did (from the agent loop's extra_fields, else from the text) --
    retrieved_paths = [str(p) for p in _as_list(agent.get("retrieved_images"))]
    retrieved = [str(b) for b in _as_list(agent.get("retrieved_basenames"))] or [
        basename(p) for p in retrieved_paths
    ]
    reference = _reference_basenames(extra_info)
    ndcg_value = ndcg(retrieved, reference)

    raw_answer = agent.get("generated_answer")
    if raw_answer is None:
        raw_answer = extract_answer(solution_str, strip=False)
    raw_answer = raw_answer or ""
    generated = raw_answer.strip()
    generator_failed = bool(agent.get("generator_failed", False))
    generator_error = safe_text(agent.get("generator_error")) if agent.get("generator_error") else None
    format_ok = agent.get("format_ok")
    format_ok = bool(format_ok) if format_ok is not None else response_format_ok(solution_str)
    format_term = config.w_format * (1.0 if format_ok else 0.0)

    query = str(extra_info.get("question") or "")
    reference_answer = str(ground_truth if ground_truth is not None else extra_info.get("answer", ""))
    dataset_id = str(agent.get("dataset_id") or extra_info.get("id") or f"{data_source}:{extra_info.get('index', '')}")

    judgment = None
    error: str | None = None
    judge_failed = False
    final: float | None
    if config.format_gate and not format_ok:
        judge_score = None
        final = float(config.format_fail_reward)
        error = "format_gate: response failed the format check (judge not called)"
    elif generator_failed:
        # The answer is missing because a paid API failed, not because the policy did: treat
        # it like a judge failure so an outage is not taught as a wrong answer.
        judge_score, judge_failed = None, True
        error = safe_text(f"generator_failed: {generator_error or 'no answer'}")
        final = _failure_reward(config, ndcg_value, format_term)
    elif not generated:
        # The searcher never completed (or no answer text): a genuine zero, labelled, not paid.
        judge_score = 0.0
        final = config.w_ndcg * ndcg_value + format_term
        error = "no_answer: the rollout produced no answer (judge not called)"
    else:
        from ddai.reward.judge import JudgeRequest

        root = config.image_root or ""
        judgment = await rt.judge.judge(
            JudgeRequest(
                prompt_id=dataset_id,
                query=query,
                response=solution_str,
                # the production judge sees the answer exactly as it stands between the tags
                generated_answer=raw_answer if config.judge_mode == "production_text" else generated,
                reference_answer=reference_answer,
                retrieved_images=retrieved_paths or [os.path.join(root, f"{b}.jpg") for b in retrieved],
                reference_images=[os.path.join(root, f"{b}.jpg") for b in reference],
            )
        )
        if judgment.failed:
            judge_score, judge_failed, error = None, True, judgment.error
            final = _failure_reward(config, ndcg_value, format_term)
        else:
            judge_score = judgment.score
            final = config.w_judge * float(judge_score) + config.w_ndcg * ndcg_value + format_term

    subs = judgment.subscores if judgment is not None else {
        "answer_accuracy": judge_score if judge_score is not None else None,
        "visual_grounding": None,
        "reasoning_consistency": None,
    }
    tokens = judgment.usage.as_log() if judgment is not None else {"input": 0, "output": 0, "thinking": 0, "total": 0}
    judge_cost = judgment.cost_usd if judgment is not None else 0.0
    latency = judgment.latency_s if judgment is not None else 0.0
    cache_hit = bool(judgment.cache_hit) if judgment is not None else False
    image_errors = judgment.image_errors if judgment is not None else 0
    dropped = final is None

    if rt.log is not None:
        rt.log.write(
            {
                "uid": str(agent.get("uid") or dataset_id),
                "dataset_id": dataset_id,
                "sample_idx": int(agent.get("sample_idx", -1)),
                "step": _step(extra_info, agent),
                "query": query,
                "generated_answer": generated,
                "reference_answer": reference_answer,
                "retrieved_basenames": retrieved,
                "reference_basenames": reference,
                "judge_score": judge_score,
                "judge_subscores": subs,
                "ndcg": ndcg_value,
                "final_score": final,
                "latency_s": latency if judgment is not None else time.monotonic() - started,
                "tokens": tokens,
                "cost_usd": judge_cost,
                "generator_cost_usd": float(agent.get("generator_cost_usd", 0.0) or 0.0),
                "cache_hit": cache_hit,
                "judge_failed": judge_failed,
                "error": error,
                "format_ok": format_ok,
                "format_score": 1.0 if format_ok else 0.0,
                "image_errors": image_errors,
                "dropped": dropped,
                "failure_policy": config.judge_failure_policy if judge_failed else None,
                "timestamp": datetime.now(timezone.utc).isoformat(),
                "judge_model": config.judge_model,
                "prompt_version": config.version,
                "judge_mode": config.judge_mode,
                "data_source": str(data_source),
                "host": host_name(),
            }
        )

    if final is None:
        raise JudgmentUnavailable(safe_text(
            f"no judgment for {dataset_id} (group {agent.get('uid', '?')}, sample {agent.get('sample_idx', '?')}): "
            f"{error}; dropped from its group (judge_failure_policy=drop)"
        ))

    return {
        "score": float(final),
        "judge_score": _nan_if_none(judge_score),
        "ndcg": float(ndcg_value),
        "judge_answer_accuracy": _nan_if_none(subs.get("answer_accuracy")),
        "judge_visual_grounding": _nan_if_none(subs.get("visual_grounding")),
        "judge_reasoning_consistency": _nan_if_none(subs.get("reasoning_consistency")),
        "judge_failed": 1.0 if judge_failed else 0.0,
        "cache_hit": 1.0 if cache_hit else 0.0,
        "format_ok": 1.0 if format_ok else 0.0,
        "judge_cost_usd": float(judge_cost),
        "generator_cost_usd": float(agent.get("generator_cost_usd", 0.0) or 0.0),
        "judge_latency_s": float(latency),
        "judge_tokens_total": float(tokens["total"]),
        "judge_image_errors": float(image_errors),
    }


def _failure_reward(config: RewardConfig, ndcg_value: float, format_term: float) -> float | None:
    """Reward of a rollout whose judgment (or answer) failed for API reasons; None: drop it."""
    policy = config.judge_failure_policy
    if policy == "drop":
        return None
    if policy == "zero_judge":  # the reference: the judge counted as 0
        return config.w_ndcg * ndcg_value + format_term
    if policy == "fixed":
        return float(config.judge_failure_reward)
    return float(ndcg_value)  # "ndcg_only": the retrieval part alone, on the same 0..1 scale

