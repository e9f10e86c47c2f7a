"""Rendering and validation of the Phase 2 run, without GPUs and without Slurm."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ddai.errors import ConfigError
from ddai.phase2 import render, validate
from ddai.phase2.plan import build_plan
from ddai.phase2.prepare import compose_ddai


def phase2(helpers, tmp_path: Path, *extra: str, manifest: Path | None = None):
    manifest = manifest or helpers.write_bucket(tmp_path / "cur", rows=48, batch=8)
    cfg = compose_ddai(["+phase2.agent.settings.search_url=http://search.example:5002/search", *helpers.inputs(), f"phase2.manifest={manifest}",
                        "phase2.train_batch_size=8", "phase2.ppo_mini_batch_size=8",
                        f"phase2.run_dir={tmp_path / 'run'}", *extra])
    return cfg.phase2


def ov(plan) -> dict[str, str]:
    return dict(o.lstrip("+").split("=", 1) for o in plan.overrides)


@pytest.mark.verl
def test_reference_gspo_settings_reach_verl_keys(helpers, tmp_path: Path) -> None:
    plan = build_plan(phase2(helpers, tmp_path, "+phase2.reward.kwargs.w_judge=0.8"))
    o = ov(plan)
    expected = {
        "algorithm.adv_estimator": "grpo", "actor_rollout_ref.actor.policy_loss.loss_mode": "gspo",
        "actor_rollout_ref.actor.loss_agg_mode": "seq-mean-token-mean",
        "actor_rollout_ref.actor.clip_ratio_low": "0.0003", "actor_rollout_ref.actor.clip_ratio_high": "0.0004",
        "actor_rollout_ref.actor.optim.lr": "1e-06", "actor_rollout_ref.actor.use_kl_loss": "False",
        "algorithm.kl_ctrl.kl_coef": "0.0", "actor_rollout_ref.rollout.n": "8",
        "actor_rollout_ref.rollout.multi_turn.max_assistant_turns": "7", "data.shuffle": "False",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": "4", "trainer.n_gpus_per_node": "4",
        "actor_rollout_ref.rollout.name": "vllm", "actor_rollout_ref.rollout.gpu_memory_utilization": "0.5",
        "trainer.resume_mode": "auto", "reward.custom_reward_function.name": "compute_score",
        "actor_rollout_ref.rollout.agent.default_agent_loop": "ddai_search_agent",
        "reward.custom_reward_function.reward_kwargs.w_judge": "0.8",
        "actor_rollout_ref.rollout.custom.ddai_agent.search_url": "http://search.example:5002/search",
        "trainer.default_local_dir": str(tmp_path / "run" / "checkpoints"),
    }
    for key, value in expected.items():
        assert o[key] == value, key
    assert Path(o["reward.custom_reward_function.path"]).is_file()
    assert Path(o["actor_rollout_ref.rollout.agent.agent_loop_config_path"]).is_file()
    assert plan.total_steps == 6 and plan.train_rows == 48
    assert "--signal=B:USR1@300" in plan.sbatch_args and "--gpus-per-node=4" in plan.sbatch_args
    assert plan.command[:2] == ["-m", "ddai.phase2.trainer"]
    # No legacy top-level reward keys anywhere.
    assert not any(k.startswith(("custom_reward_function", "reward_model.")) for k in o)


@pytest.mark.parametrize("extra, message", [
    (["phase2.ppo_mini_batch_size=3"], "not a multiple of ppo_mini_batch_size"),
    (["phase2.ppo_micro_batch_size_per_gpu=5"], "per GPU"),
    (["phase2.rollout.n=3", "phase2.slurm.gpus_per_node=5"], "does not split over 5 GPUs"),
    (["phase2.save_freq=500"], "save_freq=500 but one job reaches only"),
    (["phase2.slurm.time_min=10", "phase2.slurm.startup_minutes=5"], "cannot finish a single"),
    (["phase2.save_freq=-1"], "never writes a checkpoint"),
    (["phase2.loss_agg_mode=token-mean"], "seq-mean-token-mean"),
    (["phase2.resume_mode=disable"], "would not resume"),
    (["phase2.model_path=null"], "no model to train"),
    (["phase2.train_file=/x.parquet"], "exactly one of"),
])
def test_settings_that_would_waste_a_run_fail(helpers, tmp_path: Path, extra: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate.check_settings(phase2(helpers, tmp_path, *extra))


def test_missing_search_server_fails_before_submission(helpers, tmp_path: Path) -> None:
    manifest = helpers.write_bucket(tmp_path / "cur", rows=48, batch=8)
    cfg = compose_ddai([*helpers.inputs(), f"phase2.manifest={manifest}",
                        "phase2.train_batch_size=8", "phase2.ppo_mini_batch_size=8", f"phase2.run_dir={tmp_path / 'run'}"])
    with pytest.raises(ConfigError, match="search_url is not set"):
        build_plan(cfg.phase2, compose=False)


def test_remainder_dropped_by_verl_fails_with_count(helpers, tmp_path: Path) -> None:
    manifest = helpers.write_bucket(tmp_path / "c2", rows=48, batch=8, extra_rows=5)
    with pytest.raises(ConfigError, match="drops the last 5"):
        build_plan(phase2(helpers, tmp_path, manifest=manifest), compose=False)
    plan = build_plan(phase2(helpers, tmp_path, "phase2.allow_remainder=true", manifest=manifest), compose=False)
    assert plan.steps_per_epoch == 6


def test_unknown_schema_key_fails_at_composition(helpers, tmp_path: Path) -> None:
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        phase2(helpers, tmp_path, "phase2.sav_freq=3")


@pytest.mark.verl
@pytest.mark.parametrize("override, message", [
    ("trainer.save_frequency=3", "verl rejects the overrides"),
    ("+reward_model.gemini_model=gemini-3-flash-preview", "adds a key verl 0.9 does not read"),
    ("custom_reward_function.path=/x/reward.py", "ignores the old top-level reward keys"),
    ("reward_model.reward_manager=rm", "ignores the old top-level reward keys"),
    ("+max_turns=7", "adds a key verl 0.9 does not read"),
])
def test_verl_rejects_unknown_and_ignored_keys(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate.compose_verl(["actor_rollout_ref.rollout.name=vllm", override])


@pytest.mark.verl
def test_verl_accepts_dataclass_only_keys_and_runs_its_own_check() -> None:
    cfg = validate.compose_verl(["actor_rollout_ref.rollout.name=vllm", "actor_rollout_ref.model.path=/m",
                                 "+reward.custom_reward_function.reward_kwargs.judge_model=g",
                                 "data.train_batch_size=64", "actor_rollout_ref.rollout.n=8",
                                 "actor_rollout_ref.actor.ppo_mini_batch_size=16", "trainer.n_gpus_per_node=4",
                                 "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8",
                                 "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
                                 "algorithm.adv_estimator=grpo"])
    assert cfg.reward.custom_reward_function.reward_kwargs.judge_model == "g"
    validate.verl_semantic_check(cfg)
    cfg.actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu = None
    with pytest.raises(ConfigError, match="validate_config"):
        validate.verl_semantic_check(cfg)


def test_plugin_settings_are_checked_by_the_plugins_schemas(helpers, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key 'judge_modle'"):
        validate.check_settings(phase2(helpers, tmp_path, "+phase2.reward.kwargs.judge_modle=x"))
    with pytest.raises(ConfigError, match="unknown key 'serch_url'"):
        validate.check_settings(phase2(helpers, tmp_path, "+phase2.agent.settings.serch_url=http://x"))


def test_either_judge_key_will_do(helpers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = render.required_env(phase2(helpers, tmp_path, "phase2.logger=[console]"))
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "o-key-123456789")
    with pytest.raises(ConfigError, match=r"GEMINI_API_KEY \(or GOOGLE_API_KEY\)"):
        validate.check_env(names)
    monkeypatch.setenv("GOOGLE_API_KEY", "g-key-123456789")
    validate.check_env(names)


def test_missing_keys_named_never_printed(helpers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "sk-very-secret-value")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    with pytest.raises(ConfigError) as err:
        validate.check_env(render.required_env(phase2(helpers, tmp_path)))
    assert "OPENAI_API_KEY" in str(err.value) and "WANDB_API_KEY" in str(err.value)
    assert "GEMINI_API_KEY" not in str(err.value) and "sk-very-secret" not in str(err.value)
    # A key pasted into the config is refused.
    with pytest.raises(ConfigError, match="GEMINI_API_KEY appears"):
        build_plan(phase2(helpers, tmp_path, "+phase2.reward.kwargs.judge_base_url=http://x/sk-very-secret-value"),
                   compose=False)


def test_fmt_value_roundtrips_through_hydra() -> None:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for value in ["plain", "/a b/c.parquet", "it's", "a=b,c", 3, 1e-6, True, None, ["console", "wandb"]]:
        parsed = parser.parse_override(f"k={render.fmt_value(value)}").value()
        assert parsed == value, value


@pytest.mark.verl
def test_dry_run_prints_command_and_submits_nothing(helpers, tmp_path: Path) -> None:
    manifest = helpers.write_bucket(tmp_path / "cur", rows=48, batch=8)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["GEMINI_API_KEY"] = "g-secret-1234567"
    res = helpers.launch(["task=phase2", "phase2.dry_run=true", "+phase2.agent.settings.search_url=http://search.example:5002/search", *helpers.inputs(),
                          f"phase2.manifest={manifest}", "phase2.train_batch_size=8", "phase2.ppo_mini_batch_size=8",
                          f"phase2.run_dir={tmp_path / 'run'}", f"hydra.run.dir={tmp_path / 'h'}"], env=env)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["trainer_command"].startswith("python -m ddai.phase2.trainer ")
    assert "data.shuffle=False" in out["trainer_command"]
    assert out["sbatch_command"].startswith("sbatch ") and "--signal=B:USR1@300" in out["sbatch_command"]
    assert out["missing_env"] == ["OPENAI_API_KEY", "WANDB_API_KEY"]
    assert "g-secret-1234567" not in res.stdout + res.stderr
    assert not (tmp_path / "run" / "plan.json").exists()


def test_missing_key_refuses_submission(helpers, tmp_path: Path) -> None:
    manifest = helpers.write_bucket(tmp_path / "cur", rows=48, batch=8)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    res = helpers.launch(["task=phase2", "+phase2.agent.settings.search_url=http://search.example:5002/search", *helpers.inputs(), f"phase2.manifest={manifest}",
                          f"phase2.run_dir={tmp_path / 'run'}", f"hydra.run.dir={tmp_path / 'h'}",
                          "phase2.train_batch_size=8", "phase2.ppo_mini_batch_size=8"], env=env)
    assert res.returncode == 2
    assert "GEMINI_API_KEY" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "run").exists()


def _dry_run(helpers, tmp_path: Path, *extra: str, inputs: list[str] | None = None):
    manifest = helpers.write_bucket(tmp_path / "cur", rows=48, batch=8)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    args = ["task=phase2", "phase2.dry_run=true", "+phase2.agent.settings.search_url=http://search.example:5002/search",
            *(helpers.inputs() if inputs is None else inputs), f"phase2.manifest={manifest}",
            "phase2.train_batch_size=8", "phase2.ppo_mini_batch_size=8", f"phase2.run_dir={tmp_path / 'run'}",
            f"hydra.run.dir={tmp_path / 'h'}", *extra]
    return helpers.launch(args, env=env, cwd=tmp_path)


def _model(helpers) -> str:
    return next(i for i in helpers.inputs() if i.startswith("phase2.model_path="))


@pytest.mark.parametrize("root, message", [
    (None, "no image root"),
    ("''", "no image root"),
    ("img", "is relative"),
    ("./corpus/img", "is relative"),
    ("/nonexistent/ddai/img", "does not exist"),
])
def test_dry_run_without_a_usable_image_root_fails_naming_it(helpers, tmp_path: Path, root, message) -> None:
    (tmp_path / "img").mkdir()
    inputs = [_model(helpers)] + ([] if root is None else [f"phase2.image_root={root}"])
    res = _dry_run(helpers, tmp_path, inputs=inputs)
    assert res.returncode == 2, res.stderr
    assert "phase2.image_root" in res.stderr and message in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_image_root_without_page_images_fails(helpers, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    res = _dry_run(helpers, tmp_path, inputs=[_model(helpers), f"phase2.image_root={tmp_path / 'empty'}"])
    assert res.returncode == 2 and "holds no page image" in res.stderr


def test_model_dir_without_processor_files_fails(helpers, tmp_path: Path) -> None:
    from ddai.phase2.smoke import write_model_stub

    model = write_model_stub(tmp_path / "m")
    (model / "preprocessor_config.json").unlink()
    image_root = next(i for i in helpers.inputs() if i.startswith("phase2.image_root="))
    res = _dry_run(helpers, tmp_path, inputs=[f"phase2.model_path={model}", image_root])
    assert res.returncode == 2 and "phase2.model_path" in res.stderr and "preprocessor_config.json" in res.stderr


@pytest.mark.parametrize("url", ["http://", "http://host:99999/search", "htp://host/search", "http://ho st/search"])
def test_malformed_search_url_fails(helpers, tmp_path: Path, url: str) -> None:
    res = _dry_run(helpers, tmp_path, f"++phase2.agent.settings.search_url={url}")
    assert res.returncode == 2 and "search_url" in res.stderr, res.stderr


@pytest.mark.verl
def test_valid_dry_run_sets_max_model_len_and_one_absolute_root(helpers, tmp_path: Path) -> None:
    res = _dry_run(helpers, tmp_path)
    assert res.returncode == 0, res.stderr
    cmd = json.loads(res.stdout)["trainer_command"]
    root = next(i for i in helpers.inputs() if i.startswith("phase2.image_root=")).split("=", 1)[1]
    assert Path(root).is_absolute()
    assert f"+actor_rollout_ref.rollout.custom.ddai_agent.image_root={root}" in cmd
    assert f"+reward.custom_reward_function.reward_kwargs.image_root={root}" in cmd
    # 7 turns x (320 text + 514 image tokens) + 256 answer = 6094 -> 6144; + 4096 prompt.
    assert "data.max_response_length=6144" in cmd
    assert "actor_rollout_ref.rollout.max_model_len=10240" in cmd
    assert "actor_rollout_ref.rollout.enable_chunked_prefill=True" in cmd
    assert "actor_rollout_ref.rollout.max_num_batched_tokens=8192" in cmd


def test_response_budget_too_small_for_the_turns_fails(helpers, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        build_plan(phase2(helpers, tmp_path, "phase2.max_response_length=2048"), compose=False)
    assert err.value.where == "phase2.max_response_length" and "7 turns" in str(err.value)
    p = phase2(helpers, tmp_path, "phase2.max_response_length=2048", "phase2.agent.max_turns=2")
    assert "data.max_response_length=2048" in build_plan(p, compose=False).overrides


def test_chunked_prefill_off_needs_a_batch_that_holds_the_context(helpers, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        build_plan(phase2(helpers, tmp_path, "phase2.rollout.enable_chunked_prefill=false"), compose=False)
    assert err.value.where == "phase2.rollout.max_num_batched_tokens"


def test_two_different_image_roots_are_refused(helpers, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        build_plan(phase2(helpers, tmp_path, "+phase2.agent.settings.image_root=/elsewhere"), compose=False)
    assert "differs from phase2.image_root" in str(err.value)


def test_default_memory_plan_fits_four_80gb_gpus(helpers, tmp_path: Path) -> None:
    from ddai.phase2.lengths import memory_plan

    m = memory_plan(phase2(helpers, tmp_path, "phase2.train_batch_size=64", "phase2.ppo_mini_batch_size=16"))
    assert m.fits(), m
    assert m.kv_tokens >= 10240 * 8  # at least 8 full-length trajectories in each GPU's KV cache
    assert round(m.train_states_gb, 1) == 33.2 and round(m.rollout_peak_gb, 1) == 73.2
