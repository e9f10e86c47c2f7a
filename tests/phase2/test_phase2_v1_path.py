"""ddai's agent loop and reward through verl 0.9.1's V1 path (AgentLoopWorkerTQ), on CPU.

verl's own code here: the config composed from the rendered plan's overrides, the V1 agent
loop worker (``AgentLoopWorkerTQ``: ``_run_prompt`` -> ``_run_agent_loop`` -> ddai's loop ->
``_agent_loop_postprocess`` -> ``_compute_score``), verl's ``RewardLoopWorker`` with the naive
reward manager calling ddai's ``compute_score``, and the TensorDict it puts into the queue.
Stand-ins: the policy (scripted token ids, no GPU), the judge/generator/search (loopback fakes),
and TransferQueue's client calls (recorded in memory: TQ's storage runs as Ray actors, which
this 2-core test machine does not start within a test's time; ``import transfer_queue`` and
verl's V1 imports are real).
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.verl

tq_mod = pytest.importorskip("transfer_queue", reason="TransferQueue (the train extra)")
v1 = pytest.importorskip("verl.trainer.ppo.v1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))

T_SEARCH = "<think>Find the payment slide.</think>\n<search>payment page 2</search>"
T_DONE = "<think>I have it.</think>\n<search_complete>true</search_complete>"


class RecordingTQ:
    """In-memory stand-in for TransferQueue's client functions used by the V1 agent worker."""

    def __init__(self) -> None:
        self.tags: list[tuple[str, dict]] = []
        self.batches: list[dict] = []

    def init(self, *a, **k) -> None:
        return None

    async def async_kv_put(self, key, partition_id, tag=None, **k) -> None:
        self.tags.append((key, dict(tag or {})))

    async def async_kv_batch_put(self, keys, fields, tags, partition_id) -> None:
        self.batches.append({"keys": list(keys), "fields": fields, "tags": list(tags), "partition": partition_id})


class ScriptedPolicy:
    """The LLM server client (the GPU stand-in): search first, complete once a page was observed."""

    def __init__(self, tok):
        self.tok = tok

    async def generate(self, request_id, *, prompt_ids, sampling_params, image_data=None, **kwargs):
        from verl.workers.rollout.replica import TokenOutput

        turn = T_DONE if "[image]" in self.tok.decode(prompt_ids) else T_SEARCH
        ids = self.tok.encode(turn, add_special_tokens=False) + [self.tok.eos_token_id]
        return TokenOutput(token_ids=ids, log_probs=[-0.5] * len(ids), extra_fields={"max_global_steps": 1})


class LocalRewardHandle:
    """A reward-loop worker handle whose ``compute_score.remote`` runs verl's RewardLoopWorker in-process."""

    def __init__(self, worker) -> None:
        self.compute_score = SimpleNamespace(remote=worker.compute_score)


def text_model(path: Path) -> Path:
    """Tokenizer + a tiny Qwen2 config (text-only: verl's hf_processor returns None for it)."""
    from transformers import Qwen2Config

    from ddai.phase2.smoke import build_tokenizer

    tok = build_tokenizer()
    tok.save_pretrained(path)
    Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32768,
                architectures=["Qwen2ForCausalLM"]).save_pretrained(path)
    (path / "preprocessor_config.json").write_text("{}")  # the validator's file check (never loaded here)
    return path


def test_agent_loop_and_reward_through_the_v1_worker(helpers, tmp_path: Path, fake_gemini, fake_openai,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from fake_servers import FAST_RETRY, FakeSearch, make_corpus
    from omegaconf import OmegaConf
    from verl.experimental.agent_loop.agent_loop import get_trajectory_info
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
    from verl.trainer.ppo.v1 import agent_loop_tq

    from ddai.phase2.plan import build_plan
    from ddai.phase2.prepare import compose_ddai
    from ddai.phase2.validate import compose_verl
    from ddai.reward.config import RewardConfig

    monkeypatch.setenv("GEMINI_API_KEY", "test-gemini-key-000")
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-key-000")
    monkeypatch.setenv("DDAI_AGENT_ERRORS_FILE", str(tmp_path / "agent_errors.jsonl"))
    corpus = make_corpus(tmp_path / "img", {"2": 4})
    model = text_model(tmp_path / "model")
    manifest = helpers.write_bucket(tmp_path / "cur", rows=8, batch=8)
    recorder = RecordingTQ()
    monkeypatch.setattr(agent_loop_tq, "tq", recorder)
    # Contract #1: the reward's field is image_root; until the reward side renamed it, hand the
    # same absolute root to its old name so this test exercises today's code.
    root_key = "image_root" if "image_root" in {f.name for f in fields(RewardConfig)} else "image_base_path"
    with FakeSearch(corpus, {"2": 4}) as search:
        p = compose_ddai([f"phase2.model_path={model}", f"phase2.image_root={corpus}", f"phase2.manifest={manifest}",
                          f"+phase2.agent.settings.search_url={search.url}/search",
                          "+phase2.agent.settings.search_retry={" + ",".join(f"{k}:{v}" for k, v in FAST_RETRY.items()) + "}",
                          f"+phase2.agent.settings.generator.base_url={fake_openai.url}/v1",
                          f"+phase2.agent.settings.crops_dir={tmp_path / 'crops'}",
                          "+phase2.agent.settings.allow_text_only=true",
                          f"+phase2.reward.kwargs.judge_base_url={fake_gemini.url}",
                          f"+phase2.reward.kwargs.cache_path={tmp_path / 'c.sqlite'}",
                          f"+phase2.reward.kwargs.log_path={tmp_path / 'judge.jsonl'}",
                          "phase2.train_batch_size=8", "phase2.ppo_mini_batch_size=8", "phase2.rollout.n=2",
                          f"phase2.run_dir={tmp_path / 'run'}"]).phase2
        plan = build_plan(p, compose=False)
        overrides = [o.replace("reward_kwargs.image_root=", f"reward_kwargs.{root_key}=") for o in plan.overrides]
        cfg = compose_verl(overrides)
        OmegaConf.resolve(cfg)
        assert cfg.actor_rollout_ref.rollout.max_model_len == 10240 and cfg.trainer.use_v1 is True

        from agent_tiny_tokenizer import build_tokenizer

        tok = build_tokenizer()
        row = {
            "uid": "group-1", "index": 0, "global_steps": 1, "id": "train_2", "data_source": "slidevqa_train",
            "agent_name": "ddai_search_agent",
            "raw_prompt": [{"role": "user", "content": "Question: Which is used more for payment in India in 2013?"}],
            "extra_info": {"answer": "Credit Cards", "question": "Which is used more for payment in India in 2013?",
                           "reference_page": [2], "file_name": "2.pdf", "index": 0},
            "reward_model": {"ground_truth": "Credit Cards", "style": "rule"},
        }
        processors: list = []

        async def run():  # one event loop for the workers, as inside their Ray actors
            reward_worker = RewardLoopWorker(cfg)
            worker = agent_loop_tq.AgentLoopWorkerTQ.__ray_actor_class__(
                cfg, ScriptedPolicy(tok), None, [LocalRewardHandle(reward_worker)])
            processors.append(worker.processor)
            trajectory = (await get_trajectory_info(1, [0], False))[0]
            await worker._run_prompt(dict(row), {"temperature": 1.0}, trajectory=trajectory)

        asyncio.run(run())
    assert processors == [None]  # a text-only model: only allowed with allow_text_only (tests)
    assert recorder.tags[0] == ("group-1", {"status": "running"})
    assert recorder.tags[-1] == ("group-1", {"status": "finished"}), recorder.tags
    assert len(recorder.batches) == 2  # rollout.n = 2 sessions, one output each
    for batch in recorder.batches:
        tag = batch["tags"][0]
        assert tag["status"] == "success" and tag["response_len"] > 0
        fields_ = batch["fields"]
        score = float(fields_["rm_scores"][0].sum())  # the score sits on the last response token
        extra = fields_["extra_fields"][0]
        assert extra["ddai"]["retrieved_basenames"] == ["2_2"], extra["ddai"]  # the page the search showed
        info = extra["reward_extra_info"]
        assert info["ndcg"] == 1.0 and score == pytest.approx(1.0)
    assert fake_gemini.calls >= 1 and fake_openai.calls >= 2
