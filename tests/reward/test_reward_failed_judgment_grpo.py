"""A failed judgment must not move the policy: GRPO advantages computed with verl's own code.

The rollouts go through ddai's hook inside verl's ``NaiveRewardManager.run_single`` (what a
reward-loop worker runs), one session each, settled by verl V1's own
``AgentLoopWorkerTQ._run_prompt`` (the code that decides what a failed session means for its
group). Advantages then come from verl's ``compute_advantage`` (GRPO). Under the default
policy (``drop``) the group with one failed judgment yields exactly the advantages of the
group without that rollout; the alternatives do not, which is why they are not the default.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fake_servers import gemini_prompt_text

pytestmark = pytest.mark.verl

# (answer, pages viewed): judged scores differ, so the group has a real spread
ROLLOUTS = [
    ("Credit Cards", ["2_7"]),
    ("Debit", ["2_3", "2_7"]),
    ("Cheques", ["2_1"]),  # the judge fails on this one (persistent 503)
    ("Credit Cards", ["2_3"]),
    ("Cash", ["2_7", "2_1"]),
]
FAILING = 2
HOOK = str(Path(__file__).resolve().parents[2] / "ddai" / "reward" / "verl_reward.py")


def _data(tok, answer, pages, i):
    import torch
    from verl import DataProto

    response = f"<think>look</think><search>payments</search><think>ok</think><search_complete>true</search_complete><answer>{answer}</answer>"
    prompt = tok.encode("Question: Which is used more?", add_special_tokens=False)
    resp = tok.encode(response, add_special_tokens=False)
    extra = {"question": "Which is used more?", "answer": "Credit Cards", "file_name": "2.pdf", "reference_page": [7],
             "index": 0, "split": "train"}
    agent = {"dataset_id": "train_2", "uid": "grp", "sample_idx": i, "retrieved_basenames": pages,
             "retrieved_images": [], "generated_answer": answer, "format_ok": True, "step": 3}
    return DataProto.from_dict(
        tensors={"prompts": torch.tensor([prompt]), "responses": torch.tensor([resp]),
                 "attention_mask": torch.ones(1, len(prompt) + len(resp), dtype=torch.long)},
        non_tensors={"data_source": ["slidevqa_train"], "reward_model": [{"ground_truth": "Credit Cards"}],
                     "extra_info": [extra], "tool_extra_fields": [{"ddai": agent}]},
    ), len(resp)


def _group(reward_kwargs, members):
    """Run verl's own group settlement over one session per member; return (status, rewards kept)."""
    from agent_tiny_tokenizer import build_tokenizer
    from omegaconf import OmegaConf
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.trainer.ppo.v1 import agent_loop_tq

    cfg = OmegaConf.create({"reward": {"custom_reward_function": {"path": HOOK, "name": "compute_score",
                                                                   "reward_kwargs": reward_kwargs}}})
    fn = get_custom_reward_fn(cfg)
    tok = build_tokenizer()
    kept: list[tuple[int, float, int]] = []  # (member, reward, response length): what reaches TransferQueue
    statuses: list[str] = []

    async def kv_put(key, partition_id, tag):  # verl's TransferQueue call, recorded
        statuses.append(tag["status"])

    async def run_agent_loop(sampling_params, trajectory, trace, session_id, **prompt):
        member = members[session_id]
        answer, pages = ROLLOUTS[member]
        data, length = _data(tok, answer, pages, member)
        manager = NaiveRewardManager(config=OmegaConf.create({}), tokenizer=tok, compute_score=fn)
        result = await manager.run_single(data)  # raises for a dropped rollout, as in a reward worker
        kept.append((member, float(result["reward_score"]), length))

    worker = SimpleNamespace(
        config=OmegaConf.create({"actor_rollout_ref": {"rollout": {"n": len(members), "val_kwargs": {"n": 1}}}}),
        _run_agent_loop=run_agent_loop,
    )
    run_prompt = agent_loop_tq.AgentLoopWorkerTQ.__ray_metadata__.modified_class._run_prompt
    original = agent_loop_tq.tq.async_kv_put
    agent_loop_tq.tq.async_kv_put = kv_put
    try:
        asyncio.run(run_prompt(worker, {"uid": "grp"}, {}, trajectory={"validate": False}))
    finally:
        agent_loop_tq.tq.async_kv_put = original
    return statuses[-1], sorted(kept)


def _advantages(kept, norm_by_std=True, extra_rows=()):
    """verl's compute_advantage (GRPO) over the trajectories present, plus V1's padding rows."""
    import torch
    from verl import DataProto
    from verl.trainer.ppo.core_algos import AdvantageEstimator
    from verl.trainer.ppo.ray_trainer import compute_advantage

    rows = [("grp", r, n) for _, r, n in kept] + list(extra_rows)
    width = max(n for _, _, n in rows)
    rewards = torch.zeros(len(rows), width)
    mask = torch.zeros(len(rows), width)
    for i, (_, r, n) in enumerate(rows):
        mask[i, :n] = 1
        rewards[i, n - 1] = r  # verl puts the score on the last response token
    data = DataProto.from_dict(tensors={"token_level_rewards": rewards, "response_mask": mask},
                               non_tensors={"uid": np.array([u for u, _, _ in rows], dtype=object)})
    out = compute_advantage(data, AdvantageEstimator.GRPO, norm_adv_by_std_in_grpo=norm_by_std)
    return out.batch["advantages"][:, 0][: len(kept)]


def test_default_policy_drops_the_failed_rollout_so_the_group_is_as_if_it_were_absent(fake_gemini, reward_kwargs):
    fake_gemini.decide = lambda n, body: ("status", 503) if "Cheques" in gemini_prompt_text(body) else None
    status, with_failure = _group(reward_kwargs, list(range(len(ROLLOUTS))))
    assert status == "failure"  # verl: the session raised; the group keeps what it has
    assert [m for m, _, _ in with_failure] == [0, 1, 3, 4]

    without = [m for m in range(len(ROLLOUTS)) if m != FAILING]
    status2, absent = _group(reward_kwargs, without)  # the same group had the rollout never existed
    assert status2 == "finished"
    assert [(m, r) for m, r, _ in with_failure] == [(m, r) for m, r, _ in absent]
    rewards = [r for _, r, _ in absent]
    assert len(set(rewards)) > 2  # a real spread, so std normalisation matters

    adv_failed = _advantages(with_failure)
    adv_absent = _advantages(absent)
    assert adv_failed.tolist() == adv_absent.tolist()  # exactly equal, std normalisation included
    # V1 pads the batch with no-op rows under their own uid: still identical
    pad = [("pad0", 0.0, 1), ("pad0", 0.0, 1)]
    assert _advantages(with_failure, extra_rows=pad).tolist() == adv_absent.tolist()


def test_why_not_fill_in_a_score(fake_gemini, reward_kwargs):
    """What "as if absent" requires: any score put in for the failed rollout changes the others'
    advantages under std-normalised GRPO — the reference's 0.2*NDCG shifts the mean; even the
    mean of the judged rollouts (advantage 0 for the failed one, mean unchanged) shrinks the std
    by sqrt((n_J - 1) / (n - 1)). Only with norm_adv_by_std_in_grpo=False (Dr.GRPO) is the mean
    fill exact."""
    fake_gemini.decide = lambda n, body: ("status", 503) if "Cheques" in gemini_prompt_text(body) else None
    _, absent = _group(reward_kwargs, [m for m in range(len(ROLLOUTS)) if m != FAILING])
    baseline = _advantages(absent)
    n_j = len(absent)
    length = absent[0][2]

    zero = {**reward_kwargs, "judge_failure_policy": "zero_judge", "log_path": reward_kwargs["log_path"] + ".zero"}
    _, ref_group = _group(zero, list(range(len(ROLLOUTS))))
    assert len(ref_group) == len(ROLLOUTS)
    ref_adv = _advantages(ref_group)
    others = [i for i, (m, _, _) in enumerate(ref_group) if m != FAILING]
    assert ref_adv[others].tolist() != baseline.tolist()

    mean = float(np.mean([r for _, r, _ in absent]))
    filled = sorted([*absent, (FAILING, mean, length)])
    fill_adv = _advantages(filled)
    others = [i for i, (m, _, _) in enumerate(filled) if m != FAILING]
    assert fill_adv[[i for i, (m, _, _) in enumerate(filled) if m == FAILING]].abs().max() < 1e-6
    ratio = math.sqrt((len(filled) - 1) / (n_j - 1))
    assert fill_adv[others].tolist() == pytest.approx((baseline * ratio).tolist(), rel=1e-4)
    assert fill_adv[others].tolist() != pytest.approx(baseline.tolist(), rel=1e-3)
    # Dr.GRPO: the mean fill would be exact
    assert _advantages(filled, norm_by_std=False)[others].tolist() == pytest.approx(
        _advantages(absent, norm_by_std=False).tolist(), abs=1e-6)
