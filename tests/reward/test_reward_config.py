"""RewardConfig: built from verl's reward_kwargs, loud on mistakes, importable without heavy deps."""

import subprocess
import sys

import pytest

from ddai.errors import ConfigError
from ddai.reward.config import RewardConfig


def test_defaults_are_the_users_production_reward():
    cfg = RewardConfig.from_kwargs({})
    assert (cfg.w_judge, cfg.w_ndcg, cfg.w_format) == (0.8, 0.2, 0.0)
    assert cfg.log_path == "logs/gspo_gemini_output.jsonl"
    assert cfg.judge_mode == "production_text" and cfg.version == "p1"
    assert cfg.prompt.temperature is None and cfg.prompt.thinking_level is None  # SDK defaults
    assert cfg.judge_failure_policy == "drop"
    assert cfg.image_root is None  # the text judge reads no images


def test_modes_and_aliases():
    assert RewardConfig.from_kwargs({"judge_mode": "trajectory", "image_root": "/data/img"}).judge_mode == "trajectory_vlm"
    ans = RewardConfig.from_kwargs({"judge_mode": "answer"})
    assert (ans.version, ans.prompt.temperature, ans.prompt.thinking_level) == ("v1", 0.0, "low")


def test_nested_kwargs_and_partial_prices():
    cfg = RewardConfig.from_kwargs(
        {"judge_mode": "answer", "retry": {"max_attempts": 2}, "prices": {"input_per_mtok": 1.5},
         "generator": {"api": "chat", "retry": {"timeout_s": 5}}}
    )
    assert cfg.retry.max_attempts == 2 and cfg.retry.timeout_s == 60.0
    assert cfg.prices.input_per_mtok == 1.5 and cfg.prices.output_per_mtok == 3.0
    assert cfg.generator.api == "chat" and cfg.generator.retry.timeout_s == 5


def test_omegaconf_containers_are_accepted():
    from omegaconf import OmegaConf

    cfg = RewardConfig.from_kwargs(OmegaConf.create({"retry": {"max_attempts": 3}, "w_judge": 1.0, "w_ndcg": 0.0}))
    assert cfg.retry.max_attempts == 3 and cfg.w_judge == 1.0


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"judge_modes": "answer"}, "unknown key 'judge_modes'"),
        ({"judge_mode": "vlm"}, "judge_mode='vlm'"),
        ({"retry": {"attempts": 3}}, "reward_kwargs.retry: unknown key 'attempts'"),
        ({"retry": {"max_attempts": 0}}, "max_attempts=0"),
        ({"judge_failure_policy": "zero"}, "judge_failure_policy"),
        ({"generator": {"api": "completions"}}, "api='completions'"),
        ({"image_base_path": "/x"}, "'image_base_path' (renamed)"),
        ({"judge_mode": "trajectory_vlm"}, "image_root is not set"),
        ({"judge_mode": "trajectory_vlm", "image_root": "rel/img"}, "image_root='rel/img'"),
        ({"prompt_version": "v9"}, "prompt_version='v9'"),
        ({"w_format": -1}, "w_format=-1"),
    ],
)
def test_bad_settings_name_key_and_expectation(kwargs, needle):
    with pytest.raises(ConfigError) as err:
        RewardConfig.from_kwargs(kwargs)
    assert needle in str(err.value)
    assert "expected" in str(err.value)


def test_config_modules_import_without_heavy_dependencies():
    code = (
        "import sys, ddai.reward.config, ddai.agent.config, ddai.reward.ndcg;"
        "heavy=[m for m in ('torch','verl','google.genai','openai','ray','PIL') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
