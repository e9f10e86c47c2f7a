"""Rollout budgets per prompt, checked against verl 0.9.1's own V1 code on CPU.

A curriculum run on the bundled example data gives per-prompt pass rates; the budget writes
``__rollout_n__`` per row. verl's RLHFDataset + collate_fn carry the column into the batch,
``AgentLoopWorkerTQ.generate_sequences`` (the V1 agent loop; TransferQueue calls stubbed)
starts exactly that many sessions per prompt, and verl's GRPO advantage normalises each
prompt's group on its own, whatever its size.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ddai.curriculum.budget import allocate, p_mixed, write_budgeted

pytestmark = pytest.mark.verl

BATCH, N = 8, 4


def test_allocation_keeps_the_batch_budget_and_favours_uncertain_prompts() -> None:
    ps = [0.5, 0.02, 0.98, 0.3, 0.5, 0.1, 0.9, 0.6]
    ns = allocate(ps, batch=BATCH, rollout_n=N, n_min=2, n_max=12)
    assert sum(ns) == BATCH * N and min(ns) >= 2 and max(ns) <= 12
    assert ns[1] < ns[0] and ns[2] < ns[0], "near-certain prompts get fewer rollouts than p = 0.5 ones"
    uniform = sum(p_mixed(p, N) for p in ps)
    assert sum(p_mixed(p, n) for p, n in zip(ps, ns)) >= uniform
    assert p_mixed(0.5, 4) == pytest.approx(1 - 2 * 0.5 ** 4) and p_mixed(0.3, 1) == 0.0


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["Question : what is on the slide ? system user assistant"] * 2,
                            trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "<|eot|>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="<|eot|>")
    fast.chat_template = ("{% for m in messages %}{{ m['role'] }} : {{ m['content'] if m['content'] is string "
                          "else '' }} <|eot|> {% endfor %}")
    return fast


@pytest.fixture
def budgeted(tmp_path: Path) -> Path:
    import subprocess

    res = subprocess.run([sys.executable, "-m", "ddai.launch", "task=curriculum", f"curriculum.out_dir={tmp_path / 'cur'}",
                          f"curriculum.train_batch_size={BATCH}", "curriculum.remainder=trim",
                          "curriculum.theta1=0.0", "curriculum.theta_easy=1.0",
                          f"hydra.run.dir={tmp_path / 'h'}"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    m = write_budgeted(tmp_path / "cur" / "manifest.json", tmp_path / "budget", rollout_n=N, n_min=2, n_max=12)
    assert m["budget"]["expected_judge_calls"] == m["batch"]["steps_per_epoch"] * BATCH * N
    assert m["budget"]["budgeted"]["expected_useful_groups"] >= m["budget"]["uniform"]["expected_useful_groups"]
    assert len(m["budget"]["allocation"]) > 1, "the pass rates differ, so must the allocation"
    return tmp_path / "budget" / "manifest.json"


def test_verl_v1_agent_loop_runs_rollout_n_sessions_per_row(budgeted: Path, tmp_path: Path, monkeypatch) -> None:
    import pyarrow.parquet as pq
    import torch
    from omegaconf import OmegaConf
    from torchdata.stateful_dataloader import StatefulDataLoader
    from verl.trainer.ppo import core_algos
    from verl.trainer.ppo.utils import create_rl_dataset
    from verl.trainer.ppo.v1 import agent_loop_tq
    from verl.utils import tensordict_utils as tu
    from verl.utils.dataset.rl_dataset import collate_fn

    train = budgeted.parent / "train.parquet"
    expected = pq.read_table(train).column("__rollout_n__").to_pylist()
    data = OmegaConf.create({"prompt_key": "prompt", "image_key": "images", "max_prompt_length": 4096,
                             "filter_overlong_prompts": False, "return_raw_chat": True, "truncation": "error",
                             "dataloader_num_workers": 0, "shuffle": False})
    dataset = create_rl_dataset([str(train)], data, tiny_tokenizer(), None, is_train=True)
    loader = StatefulDataLoader(dataset=dataset, batch_size=BATCH, num_workers=0, drop_last=True, collate_fn=collate_fn)
    batches = list(loader)
    got = [int(n) for b in batches for n in b["__rollout_n__"]]
    assert got == expected, "verl's dataset and collate_fn carry __rollout_n__ per row, in order"

    # One training batch, prepared as the V1 trainer's _fetch_one_gen_batch does.
    batch_dict = batches[0]
    batch_dict["uid"] = np.array([f"u{i}" for i in range(BATCH)], dtype=object)
    batch = tu.get_tensordict(batch_dict)
    tu.assign_non_tensor_data(batch, "global_steps", 1)

    async def kv_put(**_kw):
        return None

    monkeypatch.setattr(agent_loop_tq.tq, "async_kv_put", kv_put)
    sessions: Counter = Counter()

    cls = agent_loop_tq.AgentLoopWorkerTQ.__ray_metadata__.modified_class  # the class behind @ray.remote
    worker = cls.__new__(cls)
    worker.background_tasks = set()
    worker.config = OmegaConf.create({"actor_rollout_ref": {"rollout": {
        "n": N, "temperature": 1.0, "top_p": 1.0, "top_k": -1, "calculate_log_probs": False,
        "val_kwargs": {"n": 1, "top_p": 1.0, "top_k": -1, "temperature": 0.0},
        "agent": {"default_agent_loop": "ddai_search_agent"}}}})

    async def fake_agent_loop(sampling_params, trajectory, trace, session_id, **prompt):
        assert "__rollout_n__" not in prompt, "verl pops the budget before the agent loop sees the row"
        sessions[prompt["uid"]] += 1

    worker._run_agent_loop = fake_agent_loop

    async def run() -> None:
        await worker.generate_sequences(batch)
        while worker.background_tasks:
            await asyncio.gather(*list(worker.background_tasks))

    asyncio.run(run())
    assert [sessions[f"u{i}"] for i in range(BATCH)] == expected[:BATCH]
    assert sum(sessions.values()) == BATCH * N, "the batch's total equals train_batch_size x rollout.n"

    # verl's GRPO advantage groups by uid: each group, whatever its size, is normalised on its own.
    index = np.array([u for u in sorted(sessions) for _ in range(sessions[u])], dtype=object)
    rng = np.random.default_rng(0)
    scores = torch.tensor(rng.integers(0, 2, len(index)).astype(np.float32))
    rewards = torch.zeros(len(index), 3)
    rewards[:, -1] = scores
    adv, _ = core_algos.compute_grpo_outcome_advantage(rewards, torch.ones_like(rewards), index)
    for u in set(index):
        rows = index == u
        s = scores[torch.tensor(rows)]
        want = (s - s.mean()) / (s.std() + 1e-6)
        assert torch.allclose(adv[torch.tensor(rows), 0], want, atol=1e-5)
    json.dumps(sessions)  # keep the evidence printable
