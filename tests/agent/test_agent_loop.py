"""The search agent loop, driven by a SCRIPTED policy (stand-in for the LLM server) over the real
search client (FAKE search server), crop tool, frozen generator (real openai client, FAKE OpenAI)
and reward hook (real google-genai client, FAKE Gemini).

Two levels: ``run_episode`` with a recording TokenIO (what the model is shown: real page and
crop images), and verl's own agent-loop machinery (hydra instantiation from agent_loops.yaml,
the Continuous Token builder with a tiny in-process tokenizer) for token ids and masks.
"""

import asyncio
import math
from pathlib import Path

import pytest
from PIL import ImageStat

from ddai.agent.config import AgentConfig
from ddai.agent.episode import run_episode
from ddai.agent.search_client import SearchClient
from ddai.agent.tools import TrajectoryTools
from ddai.clients.generator import FrozenGenerator
from ddai.clients.protocol import FORCED_COMPLETION, INVALID_ACTION_MESSAGE

YAML = str(Path(__file__).resolve().parents[2] / "ddai" / "agent" / "agent_loops.yaml")
HOOK = str(Path(__file__).resolve().parents[2] / "ddai" / "reward" / "verl_reward.py")

T_SEARCH = "<think>Find the payment slide.</think>\n<search>payment page 7</search>"
T_CROP = "<think>Zoom top left.</think>\n<bbox>[0, 0, 300, 200]</bbox>"
T_DONE = "<think>I have it.</think>\n<search_complete>true</search_complete>"
T_JUNK = "I will just answer: Credit Cards"
T_BADBOX = "<think>zoom</think><bbox>[0.1, 0.2, 0.8]</bbox>"


class RecordingIO:
    """TokenIO that records turns in order: ('policy', text) / ('obs', text, images) / ('masked', text)."""

    def __init__(self, turns):
        self.turns = list(turns)
        self.log = []

    async def generate(self):
        text = self.turns.pop(0)
        self.log.append(("policy", text))
        return text

    async def observe(self, text, images):
        self.log.append(("obs", text, images))

    async def append_masked(self, text):
        self.log.append(("masked", text))

    def full(self):
        return False


def _episode(agent_kwargs, turns, **over):
    cfg = AgentConfig.from_kwargs({**agent_kwargs, **over})
    io = RecordingIO(turns)

    async def main():
        client, gen = SearchClient(cfg), FrozenGenerator(cfg.generator)
        tools = TrajectoryTools(config=cfg, search_client=client, dataset_id="train_2")
        try:
            result = await run_episode(io, tools, gen, "Which is used more?", cfg)
        finally:
            await client.aclose()
            await gen.aclose()
        return result, tools

    result, tools = asyncio.run(main())
    return io, result, tools


def _color(img):
    return tuple(round(c) for c in ImageStat.Stat(img.convert("RGB")).mean)


def test_episode_search_crop_complete_shows_images_and_appends_answer(agent_kwargs, fake_openai, corpus):
    io, result, tools = _episode(agent_kwargs, [T_SEARCH, T_CROP, T_DONE])
    kinds = [entry[0] for entry in io.log]
    assert kinds == ["policy", "obs", "policy", "obs", "policy", "masked"]
    page_img = io.log[1][2][0]
    assert page_img.size[0] * page_img.size[1] <= 512 * 28 * 28  # resized for the model
    crop_img = io.log[3][2][0]
    assert _color(crop_img)[0] > 200 and _color(crop_img)[1] < 60  # top-left of the page is red
    assert io.log[-1] == ("masked", "<answer>Credit Cards</answer>")
    assert tools.retrieved == [str(corpus / "2_7.jpg")] and len(tools.crops) == 1
    ex = result.extra_fields(tools)
    assert ex["retrieved_basenames"] == ["2_7"] and ex["format_ok"] and ex["search_complete"]
    # the generator saw the original page and the crop
    content = fake_openai.requests[-1]["body"]["input"][0]["content"]
    assert [c["type"] for c in content] == ["input_image", "input_image", "input_text"]


def test_episode_invalid_actions_get_the_corrective_messages(agent_kwargs):
    io, result, _ = _episode(agent_kwargs, [T_JUNK, T_BADBOX, T_CROP, T_DONE])
    obs = [entry[1] for entry in io.log if entry[0] == "obs"]
    assert obs[0] == INVALID_ACTION_MESSAGE
    assert obs[1].startswith("Your previous bbox is invalid.") and "expected a list of 4 numbers" in obs[1]
    assert "no image to crop yet" in obs[2]  # a crop before any search
    assert result.invalid_actions == 2 and not result.extra_fields(_tools_stub())["format_ok"]


def _tools_stub():
    class T:
        retrieved, crops, retrieved_basenames, search_errors, image_errors = [], [], [], 0, 0

    return T()


def test_episode_turn_limit_forces_completion(agent_kwargs, fake_openai):
    io, result, tools = _episode(agent_kwargs, [T_SEARCH] * 10, max_turns=3)
    kinds = [entry[0] for entry in io.log]
    assert kinds == ["policy", "obs", "policy", "obs", "masked", "masked"]
    assert io.log[4] == ("masked", FORCED_COMPLETION)
    assert result.forced and result.turns == 2
    assert len(tools.retrieved) == 2  # the second search showed a page not seen before
    assert not result.extra_fields(tools)["format_ok"]
    assert fake_openai.calls == 1


def test_episode_generator_failure_is_reported_not_appended(agent_kwargs, fake_openai):
    fake_openai.decide = lambda n, body: ("status", 500)
    io, result, _ = _episode(agent_kwargs, [T_SEARCH, T_DONE])
    assert io.log[-1][0] == "policy"  # nothing appended
    assert result.generator_failed and "500" in result.generator_error


def test_episode_search_outage_becomes_an_observation(agent_kwargs, fake_search):
    fake_search.decide = lambda n, body: ("status", 503)
    io, _, tools = _episode(agent_kwargs, [T_SEARCH, T_DONE])
    assert io.log[1][0] == "obs" and io.log[1][1].startswith("The search failed")
    assert tools.search_errors == 1 and tools.retrieved == []


# ---------------------------------------------------------------- verl agent loop


class ScriptedPolicy:
    """Stand-in for verl's LLM server client: returns scripted turns as token ids (+ eos)."""

    def __init__(self, tokenizer, turns):
        self.tok = tokenizer
        self.turns = list(turns)
        self.prompts = []
        self.sampling_params = []

    async def generate(self, request_id, *, prompt_ids, sampling_params, image_data=None, **kwargs):
        from verl.workers.rollout.replica import TokenOutput

        self.prompts.append(self.tok.decode(prompt_ids))
        self.sampling_params.append(sampling_params)
        ids = self.tok.encode(self.turns.pop(0), add_special_tokens=False) + [self.tok.eos_token_id]
        return TokenOutput(token_ids=ids, log_probs=[-0.5] * len(ids), extra_fields={"max_global_steps": 4})


ROW = {
    "id": "train_2",
    "uid": "group-uuid-1",
    "index": 0,
    "data_source": "slidevqa_train",
    "raw_prompt": [{"role": "system", "content": "You are a search agent."},
                   {"role": "user", "content": "Question: Which is used more for payment in India in 2013?"}],
    "extra_info": {"answer": "Credit Cards", "file_name": "2.pdf", "index": 0,
                   "question": "Which is used more for payment in India in 2013?", "reference_page": [7],
                   "split": "test"},
    "reward_model": {"ground_truth": "Credit Cards", "style": "rule"},
}


def _verl_loop(agent_kwargs, policy, tok, response_length=8192):
    import hydra
    from omegaconf import OmegaConf
    from verl.experimental.agent_loop.agent_loop import (
        DictConfigWrap,
        ToolListWrap,
        _agent_loop_registry,
    )
    from verl.utils.dataset.rl_dataset import RLHFDataset

    cfg = OmegaConf.create({
        "actor_rollout_ref": {"rollout": {"prompt_length": 1024, "response_length": response_length,
                                          "custom": {"ddai_agent": agent_kwargs}}},
        "data": {},
    })
    for entry in OmegaConf.load(YAML):  # exactly what AgentLoopWorker does with agent_loop_config_path
        _agent_loop_registry[entry.name] = entry
    return hydra.utils.instantiate(
        config=_agent_loop_registry["ddai_search_agent"], trainer_config=DictConfigWrap(cfg), server_manager=policy,
        tokenizer=tok, processor=None, hf_model_type=None, dataset_cls=RLHFDataset,
        data_config=DictConfigWrap(cfg.data), tools=ToolListWrap([]),
    )


def _run_verl(agent_kwargs, turns, response_length=8192):
    from agent_tiny_tokenizer import build_tokenizer

    tok = build_tokenizer()
    policy = ScriptedPolicy(tok, turns)

    async def main():
        loop = _verl_loop(agent_kwargs, policy, tok, response_length)
        assert loop.agent_config.search_url == agent_kwargs["search_url"]  # rollout.custom overrides the YAML
        return await loop.run({"temperature": 1.0}, **ROW)

    return asyncio.run(main()), tok, policy


def _segments(tok, ids, mask):
    """Decode maximal runs of equal mask value: [(mask, text), ...]."""
    out, start = [], 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or mask[i] != mask[start]:
            out.append((mask[start], tok.decode(ids[start:i])))
            start = i
    return out


@pytest.mark.verl
def test_registered_under_the_configured_name():
    from verl.experimental.agent_loop.agent_loop import (
        AgentLoopBase,
        _agent_loop_registry,
    )

    import ddai.agent.agent_loop as module

    assert issubclass(module.DdaiSearchAgentLoop, AgentLoopBase)
    assert _agent_loop_registry["ddai_search_agent"]["_target_"] == "ddai.agent.agent_loop.DdaiSearchAgentLoop"


@pytest.mark.verl
def test_verl_loop_masks_policy_observations_and_answer(agent_kwargs, fake_search, fake_openai):
    out, tok, policy = _run_verl(agent_kwargs, [T_SEARCH, T_JUNK, T_CROP, T_DONE])
    assert len(out.response_ids) == len(out.response_mask) == len(out.response_logprobs)
    segs = _segments(tok, out.response_ids, out.response_mask)
    policy_text = "".join(t for m, t in segs if m == 1)
    masked_text = "".join(t for m, t in segs if m == 0)
    for turn in (T_SEARCH, T_JUNK, T_CROP, T_DONE):
        assert turn in policy_text and turn not in masked_text
    assert INVALID_ACTION_MESSAGE in masked_text and "[image]" in masked_text
    assert "[image]" not in policy_text and "Your previous" not in policy_text
    assert segs[-1] == (0, "<answer>Credit Cards</answer>")  # the frozen answer closes the response, unmasked 0
    # observations were in the context of the following turns
    assert INVALID_ACTION_MESSAGE in policy.prompts[2]
    ddai = out.extra_fields["ddai"]
    assert ddai["retrieved_basenames"] == ["2_7"] and ddai["dataset_id"] == "train_2" and ddai["uid"] == "group-uuid-1"
    assert ddai["generated_answer"] == "Credit Cards" and ddai["invalid_actions"] == 1 and len(ddai["crops"]) == 1
    assert out.extra_fields["max_global_steps"] == 4 and out.num_turns == 4 + 3 + 1
    assert fake_search.batch_sizes == [1] and fake_search.requests[0]["body"][0]["id"] == "2"


@pytest.mark.verl
def test_verl_loop_turn_limit_and_response_budget(agent_kwargs):
    out, tok, policy = _run_verl({**agent_kwargs, "max_turns": 3}, [T_SEARCH] * 10)
    segs = _segments(tok, out.response_ids, out.response_mask)
    assert len(policy.prompts) == 2
    assert segs[-1][0] == 0 and segs[-1][1].endswith("assistant\n" + FORCED_COMPLETION + "<answer>Credit Cards</answer>")
    assert out.extra_fields["ddai"]["forced_complete"] is True
    short, _, _ = _run_verl(agent_kwargs, [T_SEARCH] * 10, response_length=150)
    assert len(short.response_ids) <= 150 and short.extra_fields["ddai"]["truncated"] is True


@pytest.mark.verl
def test_verl_loop_output_scores_through_the_reward_hook(agent_kwargs, fake_gemini, tmp_path):
    """Agent loop -> verl-shaped extra_info -> compute_score -> judge log, all real code."""
    import json

    from ddai.reward.verl_reward import compute_score

    out, tok, _ = _run_verl(agent_kwargs, [T_SEARCH, T_DONE])
    extra_info = {**ROW["extra_info"], **out.extra_fields, "num_turns": out.num_turns}  # as NaiveRewardManager builds it
    log_path = tmp_path / "logs" / "gspo_gemini_output.jsonl"
    kwargs = {"judge_base_url": fake_gemini.url, "cache_path": str(tmp_path / "c.sqlite"), "log_path": str(log_path),
              "image_root": agent_kwargs["image_root"], "judge_mode": "trajectory_vlm"}
    score = asyncio.run(compute_score(data_source="slidevqa_train",
                                      solution_str=tok.decode(out.response_ids, skip_special_tokens=True),
                                      ground_truth="Credit Cards", extra_info=extra_info, **kwargs))
    assert score["ndcg"] == 1.0 and score["judge_score"] == 1.0 and score["score"] == pytest.approx(1.0)
    from ddai.reward.judge_log import log_files

    (part,) = log_files(log_path)  # one writer (this process) -> one part file
    line = json.loads(part.read_text())
    assert line["retrieved_basenames"] == ["2_7"] and line["sample_idx"] >= 0 and line["step"] == 4
    from fake_servers import gemini_images

    assert len(gemini_images(fake_gemini.requests[-1]["body"])) == 2  # viewed page + reference page
    assert not math.isnan(score["judge_visual_grounding"])


@pytest.mark.verl
def test_phase2_keys_compose_with_verls_own_config(agent_kwargs):
    """The keys docs/phase2_plugins.md gives the Phase 2 config compose with verl's packaged
    ppo_trainer config and reach the agent loop's settings."""
    import verl
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from ddai.agent.agent_loop import agent_config_from

    conf_dir = str(Path(verl.__file__).parent / "trainer" / "config")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=conf_dir, version_base=None):
        cfg = compose("ppo_trainer", overrides=[
            "actor_rollout_ref.rollout.agent.default_agent_loop=ddai_search_agent",
            f"actor_rollout_ref.rollout.agent.agent_loop_config_path={YAML}",
            "actor_rollout_ref.rollout.multi_turn.max_assistant_turns=5",
            "+actor_rollout_ref.rollout.custom.ddai_agent.search_url=http://search-host:5002/search",
            "+actor_rollout_ref.rollout.custom.ddai_agent.generator.reasoning_effort=medium",
            f"reward.custom_reward_function.path={HOOK}",
            "reward.custom_reward_function.name=compute_score",
            "+reward.custom_reward_function.reward_kwargs.judge_mode=answer",
        ])
    GlobalHydra.instance().clear()
    from omegaconf import OmegaConf

    yaml_kwargs = OmegaConf.load(YAML)[0].agent_config
    agent = agent_config_from(cfg.actor_rollout_ref.rollout, yaml_kwargs)
    assert agent.search_url == "http://search-host:5002/search" and agent.max_turns == 5
    assert agent.generator.reasoning_effort == "medium" and agent.generator.model == "gpt-5-mini-2025-08-07"
    from ddai.reward.config import RewardConfig

    assert RewardConfig.from_kwargs(cfg.reward.custom_reward_function.reward_kwargs).judge_mode == "answer"


@pytest.mark.verl
def test_verl_loop_refuses_to_run_image_blind(agent_kwargs, tmp_path, monkeypatch):
    """processor=None (what verl makes of a processor that failed to load) is an error, not a fallback."""
    from agent_tiny_tokenizer import build_tokenizer

    from ddai.agent.health import ImageBlindError, count

    events = tmp_path / "agent_errors.jsonl"
    monkeypatch.setenv("DDAI_AGENT_ERRORS_FILE", str(events))
    tok = build_tokenizer()
    kwargs = {k: v for k, v in agent_kwargs.items() if k != "allow_text_only"}
    with pytest.raises(Exception, match="image-blind") as err:  # hydra wraps what the constructor raised
        _verl_loop(kwargs, ScriptedPolicy(tok, []), tok)
    assert isinstance(err.value, ImageBlindError) or isinstance(err.value.__cause__, ImageBlindError)
    assert count(events, "no_processor") == 1


@pytest.mark.verl
def test_page_that_does_not_open_is_logged_and_counted(agent_kwargs, corpus, tmp_path, monkeypatch, caplog):
    import shutil

    from ddai.agent.health import count

    broken = tmp_path / "img"
    shutil.copytree(corpus, broken)
    (broken / "2_7.jpg").write_bytes(b"truncated")
    events = tmp_path / "agent_errors.jsonl"
    monkeypatch.setenv("DDAI_AGENT_ERRORS_FILE", str(events))
    with caplog.at_level("ERROR", logger="ddai.agent"):
        out, _, _ = _run_verl({**agent_kwargs, "image_root": str(broken)}, [T_SEARCH, T_DONE])
    assert out.extra_fields["ddai"]["image_errors"] == 1
    assert count(events, "page_image") == 1 and "2_7.jpg" in events.read_text()
    assert any("2_7.jpg" in r.getMessage() for r in caplog.records)
