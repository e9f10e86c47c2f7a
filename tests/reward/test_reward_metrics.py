"""Per-step judge metrics from the judge log (all hosts): failures, cache hits, tokens, cost."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from ddai.reward.metrics import publish_wandb, read_records, step_metrics
from ddai.reward.verl_reward import JudgmentUnavailable, compute_score


def _score(kwargs, i, step, host, monkeypatch):
    monkeypatch.setenv("DDAI_HOSTNAME", host)
    extra = {"question": f"q{i}", "answer": "Credit Cards", "file_name": "2.pdf", "reference_page": [7],
             "ddai": {"dataset_id": f"train_{i}", "uid": "g", "sample_idx": i, "retrieved_basenames": ["2_7"],
                      "generated_answer": "Credit Cards", "format_ok": True, "step": step}}
    return asyncio.run(compute_score(data_source="s", solution_str="x", ground_truth="Credit Cards",
                                     extra_info=extra, **kwargs))


def test_step_metrics_over_every_host_file(fake_gemini, reward_kwargs, monkeypatch):
    from ddai.reward import verl_reward

    for i in range(3):
        _score(reward_kwargs, i, 1, "hostA", monkeypatch)
    verl_reward._runtimes.clear()  # another process (host B)
    _score(reward_kwargs, 0, 2, "hostB", monkeypatch)  # cache hit across hosts
    fake_gemini.decide = lambda n, body: ("status", 503)
    with pytest.raises(JudgmentUnavailable):
        _score({**reward_kwargs, "retry": {**reward_kwargs["retry"], "max_attempts": 2}}, 7, 2, "hostB", monkeypatch)

    metrics = step_metrics(read_records(reward_kwargs["log_path"]))
    assert sorted(metrics) == [1, 2]
    one, two = metrics[1], metrics[2]
    assert (one["judge/rollouts"], one["judge/failures"], one["judge/cache_hits"], one["judge/paid_judgments"]) == (3, 0, 0, 3)
    assert one["judge/tokens_total"] == 3 * 1140 and one["judge/cost_usd"] == pytest.approx(3 * (1000 * 0.5 + 140 * 3) / 1e6)
    assert (two["judge/rollouts"], two["judge/failures"], two["judge/dropped"], two["judge/cache_hits"]) == (2, 1, 1, 1)
    assert two["judge/failure_rate"] == 0.5 and two["judge/cost_usd"] == 0.0

    out = subprocess.run([sys.executable, "-m", "ddai.reward.metrics", reward_kwargs["log_path"]], capture_output=True,
                         text=True, check=True, env={**os.environ})
    assert [json.loads(l)["step"] for l in out.stdout.splitlines()] == [1, 2]


def test_publish_to_a_wandb_run_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    n = publish_wandb({1: {"judge/failures": 0.0}, 2: {"judge/failures": 1.0}}, run_id="ddaitest", project="ddai")
    assert n == 2
    assert list(tmp_path.rglob("*ddaitest*"))  # the offline run was written
