"""Reward workers on several hosts sharing one directory: logged once, paid once, no torn line.

Two "hosts" (``DDAI_HOSTNAME``) x three processes each score the same rollouts through the
verl hook (judge, cache, log) on one shared directory. Synchronised on events: the fake
Gemini holds every answer until every process has, for every judgment, either claimed it or
started waiting for the claimant — so every judgment is contended by all six processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from fake_servers import wait_for_files

from ddai.reward.cache import PREFIX
from ddai.reward.judge_log import log_files

ROLLOUTS = 5
PAD = 70_000  # each log line is far beyond PIPE_BUF

_CHILD = r"""
import asyncio, json, os, sys
from ddai.reward import verl_reward

kwargs, events, tag = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
rt = verl_reward.runtime_for(kwargs)

def on_claim(key, paying):
    open(os.path.join(events, f"{os.getpid()}.{key[:16]}.{'pay' if paying else 'wait'}"), "w").close()

rt.judge.on_claim = on_claim

async def main():
    outs = await asyncio.gather(*(verl_reward.compute_score(
        data_source="slidevqa_train",
        solution_str=f"<think>t</think><search_complete>true</search_complete><answer>Credit Cards</answer>",
        ground_truth="Credit Cards",
        extra_info={"question": f"{i}" + "q" * PAD_, "file_name": f"{i}.pdf", "reference_page": [1],
                    "ddai": {"dataset_id": f"train_{i}", "uid": tag, "sample_idx": i, "retrieved_basenames": [f"{i}_1"],
                             "generated_answer": "Credit Cards", "format_ok": True, "step": 1}},
        **kwargs) for i in range(N_)))
    await rt.judge.aclose()
    print(json.dumps([o["cache_hit"] for o in outs]))

asyncio.run(main())
""".replace("PAD_", str(PAD)).replace("N_", str(ROLLOUTS))


def _spawn(kwargs, events, host, tag):
    env = {**os.environ, "GEMINI_API_KEY": "test-gemini-key-000", "DDAI_HOSTNAME": host, "SLURM_JOB_ID": "777"}
    return subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(kwargs), str(events), tag], env=env,
                            stdout=subprocess.PIPE, text=True)


def test_two_hosts_three_processes_each(fake_gemini, reward_kwargs, tmp_path):
    events = tmp_path / "events"
    events.mkdir()
    fake_gemini.gate = threading.Event()
    hosts = {"hostA": 3, "hostB": 3}
    procs, tags = [], []
    for host, n in hosts.items():
        for k in range(n):
            tags.append(f"{host}-{k}")
            procs.append(_spawn(reward_kwargs, events, host, tags[-1]))
    try:
        wait_for_files(events, len(procs) * ROLLOUTS, procs, "every process claiming or waiting for every judgment")
        kinds = [p.name.rsplit(".", 1)[1] for p in events.iterdir()]
        assert kinds.count("pay") == ROLLOUTS and kinds.count("wait") == (len(procs) - 1) * ROLLOUTS
    finally:
        fake_gemini.gate.set()
    results = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)

    # paid once: one billable call per judgment, across both hosts
    assert fake_gemini.calls == ROLLOUTS and fake_gemini.paid_calls == ROLLOUTS
    assert max(fake_gemini.paid_by_prompt.values()) == 1
    assert sum(not hit for r in results for hit in r) == ROLLOUTS

    # logged once, no torn line: one file per writer; every line whole; every rollout exactly once
    files = log_files(reward_kwargs["log_path"])
    assert len(files) == len(procs)
    assert {f.name.split(".")[1] for f in files} == set(hosts)
    seen = []
    for f in files:
        raw = f.read_bytes()
        assert raw.endswith(b"\n")
        for line in raw.split(b"\n")[:-1]:
            rec = json.loads(line)
            assert len(rec["query"]) == PAD + 1 and rec["host"] == f.name.split(".")[1]
            seen.append((rec["uid"], rec["sample_idx"]))
    assert sorted(seen) == sorted((t, i) for t in tags for i in range(ROLLOUTS))

    # a later process on either host finds every judgment in the other hosts' cache files
    cache_files = [p.name for p in Path(reward_kwargs["cache_path"]).iterdir() if p.name.startswith(PREFIX)]
    assert 1 <= len(cache_files) <= ROLLOUTS
    again = _spawn(reward_kwargs, events, "hostC", "hostC-0")
    assert json.loads(again.communicate(timeout=300)[0]) == [True] * ROLLOUTS
    assert fake_gemini.calls == ROLLOUTS
