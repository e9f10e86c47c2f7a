"""compute_score as verl 0.9 calls it: signature, fixed keys, log contract, failure semantics."""

import asyncio
import json
import math
from pathlib import Path

import pytest

from ddai.reward.judge_log import LOG_KEYS, log_files
from ddai.reward.verl_reward import RETURN_KEYS, JudgmentUnavailable, compute_score

HOOK = str(Path(__file__).resolve().parents[2] / "ddai" / "reward" / "verl_reward.py")

RESPONSE = (
    "<think>find it</think><search>payment page 7</search>user\n[image]\nassistant\n"
    "<think>found</think><search_complete>true</search_complete><answer>Credit Cards</answer>"
)


def _extra(**agent):
    base = {"question": "Which is used more?", "answer": "Credit Cards", "file_name": "2.pdf", "reference_page": [7],
            "index": 0, "split": "test"}
    if agent:
        base["ddai"] = {"dataset_id": "train_2", "uid": "grp-1", "sample_idx": 3, "retrieved_basenames": ["2_3", "2_7"],
                        "retrieved_images": [], "generated_answer": "Credit Cards", "format_ok": True, **agent}
    return base


def _score(kwargs, **call):
    return asyncio.run(compute_score(data_source="slidevqa_train", **call, **kwargs))


def _log(kwargs):
    files = log_files(kwargs["log_path"])
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def test_judged_rollout_score_keys_and_log_line(fake_gemini, reward_kwargs):
    out = _score(reward_kwargs, solution_str=RESPONSE, ground_truth="Credit Cards", extra_info=_extra(step=12))
    assert tuple(out) == RETURN_KEYS and all(isinstance(v, float) for v in out.values())
    ndcg = 1 / math.log2(3)
    assert out["ndcg"] == pytest.approx(ndcg)
    assert out["score"] == pytest.approx(0.8 * 1.0 + 0.2 * ndcg)
    (line,) = _log(reward_kwargs)
    assert set(LOG_KEYS) <= set(line)
    assert line["uid"] == "grp-1" and line["dataset_id"] == "train_2" and line["sample_idx"] == 3 and line["step"] == 12
    assert line["retrieved_basenames"] == ["2_3", "2_7"] and line["reference_basenames"] == ["2_7"]
    assert line["judge_failed"] is False and line["error"] is None and line["cache_hit"] is False
    assert line["tokens"] == {"input": 1000, "output": 40, "thinking": 100, "total": 1140}
    assert line["cost_usd"] > 0 and line["judge_model"] == "gemini-3-flash-preview" and line["prompt_version"] == "p1"
    assert line["judge_mode"] == "production_text" and line["dropped"] is False
    assert set(line["judge_subscores"]) == {"answer_accuracy", "visual_grounding", "reasoning_consistency"}


def test_answer_falls_back_to_the_last_answer_tag_of_the_text(fake_gemini, reward_kwargs):
    out = _score(reward_kwargs, solution_str=RESPONSE.replace("Credit Cards", "Debit"), ground_truth="Credit Cards",
                 extra_info=_extra())
    assert out["judge_score"] == pytest.approx(0.2) and out["ndcg"] == 0.0
    assert _log(reward_kwargs)[0]["generated_answer"] == "Debit"


def test_judge_failure_is_logged_then_dropped_by_default(fake_gemini, reward_kwargs):
    fake_gemini.decide = lambda n, body: ("status", 503)
    with pytest.raises(JudgmentUnavailable, match="train_2.*503.*dropped from its group"):
        _score(reward_kwargs, solution_str=RESPONSE, ground_truth="Credit Cards", extra_info=_extra(step=1))
    (line,) = _log(reward_kwargs)
    assert line["judge_failed"] is True and line["dropped"] is True and line["final_score"] is None
    assert line["failure_policy"] == "drop" and "503" in line["error"]


@pytest.mark.parametrize("policy, extra, expected", [
    ("zero_judge", {}, 0.2 / math.log2(3)),  # the reference: 0.8*0 + 0.2*ndcg
    ("ndcg_only", {}, 1 / math.log2(3)),
    ("fixed", {"judge_failure_reward": 0.5}, 0.5),
])
def test_explicit_failure_policies(fake_gemini, reward_kwargs, policy, extra, expected):
    fake_gemini.decide = lambda n, body: ("status", 503)
    out = _score({**reward_kwargs, "judge_failure_policy": policy, **extra}, solution_str=RESPONSE,
                 ground_truth="Credit Cards", extra_info=_extra(step=1))
    assert out["judge_failed"] == 1.0 and math.isnan(out["judge_score"])
    assert out["score"] == pytest.approx(expected)
    (line,) = _log(reward_kwargs)
    assert line["judge_failed"] is True and "503" in line["error"] and line["judge_score"] is None
    assert line["failure_policy"] == policy and line["final_score"] == pytest.approx(expected)


def test_same_keys_for_every_kind_of_sample(fake_gemini, reward_kwargs):
    samples = [
        dict(solution_str=RESPONSE, extra_info=_extra()),  # judged
        dict(solution_str="<think>x</think><search>q</search>", extra_info=_extra(generated_answer=None)),  # no answer
        dict(solution_str=RESPONSE, extra_info=_extra(generator_failed=True, generator_error="500")),  # API failure
    ]
    kwargs = {**reward_kwargs, "judge_failure_policy": "zero_judge"}
    outs = [_score(kwargs, ground_truth="Credit Cards", **s) for s in samples]
    assert all(tuple(o) == RETURN_KEYS for o in outs)
    assert outs[1]["judge_score"] == 0.0 and outs[1]["judge_failed"] == 0.0
    assert outs[2]["judge_failed"] == 1.0
    errors = [l["error"] for l in _log(kwargs)]
    assert errors[0] is None and errors[1].startswith("no_answer") and errors[2].startswith("generator_failed")
    assert fake_gemini.calls == 1


def test_format_gate(fake_gemini, reward_kwargs):
    out = _score({**reward_kwargs, "format_gate": True, "format_fail_reward": -0.1}, solution_str=RESPONSE,
                 ground_truth="Credit Cards", extra_info=_extra(format_ok=False))
    assert out["score"] == -0.1 and out["format_ok"] == 0.0 and fake_gemini.calls == 0


def test_format_term_is_additive_as_in_the_users_unified_script(fake_gemini, reward_kwargs):
    """gspo_phase12_unified.sh: RM_FORMAT_COEF=0.1, RM_NDCG_COEF=0.5, RM_JUDGE_COEF=0.4, gate on."""
    unified = {**reward_kwargs, "w_judge": 0.4, "w_ndcg": 0.5, "w_format": 0.1, "format_gate": True}
    ok = _score(unified, solution_str=RESPONSE, ground_truth="Credit Cards", extra_info=_extra(format_ok=True))
    assert ok["score"] == pytest.approx(0.4 * 1.0 + 0.5 / math.log2(3) + 0.1)
    bad = _score(unified, solution_str=RESPONSE, ground_truth="Credit Cards", extra_info=_extra(format_ok=False))
    assert bad["score"] == 0.0 and fake_gemini.calls == 1  # gated: not judged, not paid


def test_repeated_batch_is_served_from_cache(fake_gemini, reward_kwargs):
    for _ in range(2):
        _score(reward_kwargs, solution_str=RESPONSE, ground_truth="Credit Cards", extra_info=_extra())
    assert fake_gemini.calls == 1
    assert [l["cache_hit"] for l in _log(reward_kwargs)] == [False, True]


@pytest.mark.verl
def test_verl_loads_and_awaits_the_hook_through_its_naive_reward_manager(fake_gemini, reward_kwargs):
    """verl's own loader + NaiveRewardManager on CPU: the hook is detected as async and its dict lands
    in reward_extra_info."""
    import torch
    from agent_tiny_tokenizer import build_tokenizer
    from omegaconf import OmegaConf
    from verl import DataProto
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
    from verl.trainer.ppo.reward import get_custom_reward_fn

    cfg = OmegaConf.create({"reward": {"custom_reward_function": {"path": HOOK, "name": "compute_score",
                                                                   "reward_kwargs": reward_kwargs}}})
    fn = get_custom_reward_fn(cfg)
    tok = build_tokenizer()
    prompt = tok.encode("Question: Which is used more?", add_special_tokens=False)
    resp = tok.encode(RESPONSE, add_special_tokens=False)
    data = DataProto.from_dict(
        tensors={"prompts": torch.tensor([prompt]), "responses": torch.tensor([resp]),
                 "attention_mask": torch.ones(1, len(prompt) + len(resp), dtype=torch.long)},
        non_tensors={"data_source": ["slidevqa_train"], "reward_model": [{"ground_truth": "Credit Cards"}],
                     "extra_info": [_extra()], "tool_extra_fields": [{"ddai": _extra(sample_idx=0)["ddai"]}]},
    )

    async def main():
        manager = NaiveRewardManager(config=OmegaConf.create({}), tokenizer=tok, compute_score=fn)
        assert manager.is_async_reward_score
        return await manager.run_single(data)

    result = asyncio.run(main())
    assert result["reward_score"] == pytest.approx(0.8 + 0.2 / math.log2(3))
    assert tuple(result["reward_extra_info"]) == RETURN_KEYS
    assert _log(reward_kwargs)[0]["dataset_id"] == "train_2"
