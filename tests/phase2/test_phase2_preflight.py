"""The GPU-node preflight: on this CPU machine it must fail cleanly; its checks against real clients and fakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_servers import FakeGemini, FakeOpenAI, FakeSearch, make_corpus

from ddai.phase2 import preflight
from ddai.phase2.plan import PLAN_NAME, build_plan, write_plan
from ddai.phase2.prepare import compose_ddai


def rendered_run(helpers, tmp_path: Path, *extra: str) -> Path:
    manifest = helpers.write_bucket(tmp_path / "cur", rows=48, batch=8)
    cfg = compose_ddai(["+phase2.agent.settings.search_url=http://127.0.0.1:9/search", *helpers.inputs(),
                        f"phase2.manifest={manifest}", "phase2.train_batch_size=8", "phase2.ppo_mini_batch_size=8",
                        f"phase2.run_dir={tmp_path / 'run'}", *extra])
    plan = build_plan(cfg.phase2, compose=False)
    write_plan(Path(plan.run_dir) / PLAN_NAME, plan)
    return Path(plan.run_dir)


def test_preflight_on_a_cpu_machine_fails_cleanly_with_a_table(helpers, tmp_path: Path) -> None:
    run_dir = rendered_run(helpers, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    started = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "ddai.phase2.preflight", str(run_dir)], capture_output=True, text=True,
                         env=env, timeout=300)
    print(f"preflight took {time.monotonic() - started:.1f} s")
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    assert "ddai Phase 2 preflight" in res.stderr and "what to fix" in res.stderr
    summary = json.loads(res.stdout)
    by_name = {c["name"]: c for c in summary["checks"]}
    assert summary["ok"] is False
    assert not by_name["gpus"]["ok"] and "no GPU visible" in by_name["gpus"]["detail"]
    assert not by_name["judge key"]["ok"] and not by_name["generator key"]["ok"]
    assert by_name["image root"]["ok"]  # the page exists and opens
    assert not by_name["search server"]["ok"]  # nothing listens on port 9
    assert "preflight FAILED" in res.stderr
    assert "pip install -e '.[gpu]'" in res.stderr  # rich markup must not eat the extra's brackets


def test_preflight_without_a_plan_is_bad_input(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "ddai.phase2.preflight", str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 2 and "no plan.json" in res.stderr and "Traceback" not in res.stderr


def test_key_checks_are_model_lookups_through_the_official_sdks(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeGemini() as gemini, FakeOpenAI() as openai:
        monkeypatch.setenv("GEMINI_API_KEY", "good-gemini-key")
        monkeypatch.setenv("OPENAI_API_KEY", "good-openai-key")
        ok_j = preflight.check_judge_key({"judge_model": "gemini-3-flash-preview", "judge_base_url": gemini.url})
        ok_g = preflight.check_generator_key({"model": "gpt-5-mini-2025-08-07", "base_url": f"{openai.url}/v1"})
        assert ok_j.ok and ok_g.ok, (ok_j, ok_g)
        assert gemini.model_lookups == 1 and openai.model_lookups == 1
        assert gemini.calls == 0 and openai.calls == 0  # nothing billable was sent
        gemini.rejected_keys = frozenset({"revoked"})
        openai.rejected_keys = frozenset({"revoked"})
        monkeypatch.setenv("GEMINI_API_KEY", "revoked")
        monkeypatch.setenv("OPENAI_API_KEY", "revoked")
        bad_j = preflight.check_judge_key({"judge_base_url": gemini.url})
        bad_g = preflight.check_generator_key({"base_url": f"{openai.url}/v1"})
        assert not bad_j.ok and "refused" in bad_j.detail
        assert not bad_g.ok and "refused" in bad_g.detail
        assert "revoked" not in bad_j.detail + bad_g.detail


def test_search_check_needs_result_files_under_the_image_root(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "img", {"7": 3})
    with FakeSearch(corpus, {"7": 3}) as search:
        agent = {"search_url": f"{search.url}/search", "image_root": str(corpus)}
        good = preflight.check_search(agent, str(corpus), "7")
        assert good.ok, good
        empty = tmp_path / "other"
        empty.mkdir()
        bad = preflight.check_search({**agent, "image_root": str(empty)}, str(empty), "7")
        assert not bad.ok and "not under the image root" in bad.detail
        none = preflight.check_search(agent, str(corpus), "no-such-deck")
        assert not none.ok and "no result" in none.detail


def test_image_root_check_opens_a_page(tmp_path: Path) -> None:
    (tmp_path / "1_1.jpg").write_bytes(b"not a jpeg")
    bad = preflight.check_image_root(str(tmp_path))
    assert not bad.ok and "does not open" in bad.detail


def test_wandb_and_ray_checks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert not preflight.check_wandb("[console,wandb]").ok
    assert preflight.check_wandb("[console]").ok
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("DDAI_RAY_TMPDIR", str(tmp_path / "r"))
    assert preflight.check_ray().ok and not (tmp_path / "r").exists()  # probed, then removed
    monkeypatch.setenv("DDAI_RAY_TMPDIR", "/tmp/" + "x" * 80)
    assert not preflight.check_ray().ok


def test_fail_preflight_stops_the_chain_without_using_the_budget(helpers, tmp_path: Path) -> None:
    from ddai.phase2 import chain

    run_dir = rendered_run(helpers, tmp_path)
    assert chain.begin(run_dir, "101", 0, "/dev/null", None, submit=False) == chain.EXIT_RUN
    table = tmp_path / "t.txt"
    table.write_text("gpus  FAIL  no GPU visible\n")
    assert chain.main(["fail-preflight", str(run_dir), "101", str(table)]) == chain.EXIT_STOP_FAILED
    failed = (run_dir / "FAILED").read_text()
    assert "preflight failed" in failed and "no GPU visible" in failed
    state = json.loads((run_dir / "chain_state.json").read_text())
    assert state["status"] == "failed" and state["jobs"][-1]["end_reason"] == "preflight failed"
    assert state["restarts"] == 0
    # The next job of the chain exits at once.
    assert chain.begin(run_dir, "102", 0, "/dev/null", None, submit=False) == chain.EXIT_STOP_FAILED
