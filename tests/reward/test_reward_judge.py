"""The Gemini judge through the REAL google-genai client against the FAKE Gemini server."""

import asyncio
import json

import pytest
from fake_servers import gemini_images, wait_for_files
from PIL import Image

from ddai.reward.cache import JudgeCache
from ddai.reward.config import RewardConfig
from ddai.reward.judge import GeminiJudge, JudgeRequest

TRAJ = "<think>look</think><search>payment methods page 7</search>\n<think>ok</think><search_complete>true</search_complete>"


def _req(answer="Credit Cards", images=(), refs=(), prompt_id="train_2", response=TRAJ):
    return JudgeRequest(prompt_id=prompt_id, query="Which is used more?", response=response, generated_answer=answer,
                        reference_answer="Credit Cards", retrieved_images=list(images), reference_images=list(refs))


def _judge(kwargs, **over):
    return GeminiJudge(RewardConfig.from_kwargs({**kwargs, **over}))


def _run(judge, *reqs):
    async def main():
        try:
            return await asyncio.gather(*(judge.judge(r) for r in reqs))
        finally:
            await judge.aclose()

    return asyncio.run(main())


def _pages(tmp_path, n):
    paths = []
    for i in range(n):
        p = tmp_path / f"2_{i + 1}.jpg"
        Image.new("RGB", (40, 30), (i * 40, 0, 0)).save(p)
        paths.append(str(p))
    return paths


def test_trajectory_judgment_wire_format_usage_and_cost(fake_gemini, reward_kwargs, tmp_path):
    pages = _pages(tmp_path, 3)
    (j,) = _run(_judge(reward_kwargs, judge_mode="trajectory_vlm"),
                _req(images=pages[:2], refs=pages[2:], response=TRAJ + "<answer>Credit Cards</answer>"))
    assert not j.failed and j.score == 1.0 and j.attempts == 1
    assert set(j.subscores) == {"answer_accuracy", "visual_grounding", "reasoning_consistency"}
    req = fake_gemini.requests[-1]
    assert req["path"] == "/v1beta/models/gemini-3-flash-preview:generateContent"
    assert req["headers"].get("x-goog-api-key") == "test-gemini-key-000"
    body = req["body"]
    assert len(gemini_images(body)) == 3
    assert Image.open(pages[0]).tobytes() == Image.open(__import__("io").BytesIO(gemini_images(body)[0])).tobytes()
    gen = body["generationConfig"]
    assert gen["responseMimeType"] == "application/json"
    assert set(gen["responseSchema"]["required"]) == {"answer_accuracy", "visual_grounding", "reasoning_consistency", "final_score"}
    assert "temperature" not in gen and "thinkingConfig" not in gen  # the reference's SDK defaults
    assert "Images: [Retrieved: 2, Reference: 1]" in json.dumps(body)
    parts = body["contents"][0]["parts"]
    assert [("inlineData" in p) for p in parts] == [True, True, True, False]  # images first, then the text
    # usage from usageMetadata: 1000 + 3*258 prompt, 40 output, 100 thinking (billed as output)
    assert (j.usage.input, j.usage.output, j.usage.thinking) == (1774, 40, 100)
    assert j.cost_usd == pytest.approx((1774 * 0.50 + 140 * 3.00) / 1e6)


def test_answer_mode_is_text_only(fake_gemini, reward_kwargs, tmp_path):
    (j,) = _run(_judge(reward_kwargs, judge_mode="answer"), _req(answer="debit cards", images=_pages(tmp_path, 1)))
    assert j.score == pytest.approx(0.2)
    body = fake_gemini.requests[-1]["body"]
    assert gemini_images(body) == [] and "score" in body["generationConfig"]["responseSchema"]["properties"]
    gen = body["generationConfig"]
    assert gen["temperature"] == 0.0 and gen["thinkingConfig"]["thinking_level"] == "LOW"
    assert j.subscores["visual_grounding"] is None


def test_an_unreadable_page_image_fails_the_judgment_unpaid(fake_gemini, reward_kwargs, tmp_path):
    pages = _pages(tmp_path, 1)
    missing = str(tmp_path / "2_9.jpg")
    (j,) = _run(_judge(reward_kwargs, judge_mode="trajectory_vlm"), _req(images=pages, refs=[missing]))
    assert j.failed and j.image_errors == 1 and fake_gemini.calls == 0
    assert missing in j.error and "ENOENT" in j.error


def test_429_and_503_are_retried_then_succeed(fake_gemini, reward_kwargs):
    fake_gemini.script.extend([("status", 429), ("status", 503)])
    (j,) = _run(_judge(reward_kwargs), _req())
    assert not j.failed and j.attempts == 3
    assert fake_gemini.status_counts == {429: 1, 503: 1, 200: 1}


def test_timeout_is_retried(fake_gemini, reward_kwargs):
    import threading

    never = threading.Event()  # the first answer is held until the test ends: it can only time out
    fake_gemini.script.append(("hold", never))
    try:
        (j,) = _run(_judge(reward_kwargs, retry={**reward_kwargs["retry"], "timeout_s": 3.0}), _req())
    finally:
        never.set()
    assert not j.failed and j.attempts >= 2 and fake_gemini.calls == j.attempts


def test_persistent_failure_is_flagged_bounded_and_not_cached(fake_gemini, reward_kwargs):
    fake_gemini.decide = lambda n, body: ("status", 503)
    judge = _judge(reward_kwargs, retry={**reward_kwargs["retry"], "max_attempts": 3})
    (j,) = _run(judge, _req())
    assert j.failed and j.score is None and j.attempts == 3
    assert "503" in j.error and fake_gemini.calls == 3
    assert "test-gemini-key-000" not in j.error
    assert len(JudgeCache(reward_kwargs["cache_path"])) == 0
    # the outage ends: the same rollout is judged (paid) now, not replayed as a failure
    fake_gemini.decide = None
    (j2,) = _run(_judge(reward_kwargs), _req())
    assert not j2.failed and not j2.cache_hit and fake_gemini.calls == 4


def test_client_errors_are_not_retried(fake_gemini, reward_kwargs):
    fake_gemini.script.append(("status", 400))
    (j,) = _run(_judge(reward_kwargs), _req())
    assert j.failed and j.attempts == 1 and fake_gemini.calls == 1


def test_unusable_reply_is_retried(fake_gemini, reward_kwargs):
    fake_gemini.script.append(("text", "not json"))
    (j,) = _run(_judge(reward_kwargs), _req())
    assert not j.failed and j.attempts == 2


def test_cache_across_judges_and_processes_pays_once(fake_gemini, reward_kwargs):
    reqs = [_req(prompt_id=f"train_{i}") for i in range(5)]
    first = _run(_judge(reward_kwargs), *reqs)
    assert all(not j.cache_hit for j in first) and fake_gemini.calls == 5
    # a resumed job: new judge object, same cache file
    second = _run(_judge(reward_kwargs), *reqs)
    assert all(j.cache_hit and j.cost_usd == 0 for j in second) and fake_gemini.calls == 5
    assert [j.score for j in first] == [j.score for j in second]
    # the text judge grades the answer: another trajectory with the same answer is the same judgment,
    # a different answer is a different one; the trajectory judge grades the whole response
    same = _run(_judge(reward_kwargs), _req(prompt_id="train_0", response=TRAJ + " "))
    assert same[0].cache_hit and fake_gemini.calls == 5
    changed = _run(_judge(reward_kwargs), _req(prompt_id="train_0", answer="credit cards"))
    assert not changed[0].cache_hit and fake_gemini.calls == 6
    traj = {**reward_kwargs, "judge_mode": "trajectory_vlm"}
    _run(_judge(traj), _req(prompt_id="train_0"))
    again = _run(_judge(traj), _req(prompt_id="train_0", response=TRAJ + " "))
    assert not again[0].cache_hit and fake_gemini.calls == 8


def test_identical_concurrent_requests_pay_once(fake_gemini, reward_kwargs):
    results = _run(_judge(reward_kwargs, cache_path=None), *[_req() for _ in range(4)])
    assert fake_gemini.calls == 1
    assert sum(not j.cache_hit for j in results) == 1


def test_missing_key_is_a_clear_error(monkeypatch, reward_kwargs):
    from ddai.errors import ConfigError

    monkeypatch.delenv("GEMINI_API_KEY")
    with pytest.raises(ConfigError, match="GEMINI_API_KEY"):
        _run(_judge(reward_kwargs), _req())


_CHILD = """
import asyncio, json, os, sys
from ddai.reward.config import RewardConfig
from ddai.reward.judge import GeminiJudge, JudgeRequest

events = sys.argv[3]

def on_claim(key, paying):
    # an EVENT the parent waits on: this process has claimed, or is waiting for another's claim
    with open(os.path.join(events, f"{os.getpid()}.{'pay' if paying else 'wait'}"), "w"):
        pass

async def main():
    judge = GeminiJudge(RewardConfig.from_kwargs(json.loads(sys.argv[1])))
    judge.on_claim = on_claim
    req = JudgeRequest(prompt_id="train_2", query="Which is used more?", response=sys.argv[2],
                       generated_answer="Credit Cards", reference_answer="Credit Cards")
    try:
        j = await judge.judge(req)
    finally:
        await judge.aclose()
    print(json.dumps([j.score, j.cache_hit, j.failed]))

asyncio.run(main())
"""


def test_two_processes_judging_the_same_rollout_pay_once(fake_gemini, reward_kwargs, tmp_path):
    """Identical rollouts of one group often reach different reward workers at the same moment.

    Synchronised on events, not on time: the fake holds the one paid answer until all three
    processes have either claimed the judgment or started waiting for the claimant.
    """
    import os
    import subprocess
    import sys
    import threading

    events = tmp_path / "events"
    events.mkdir()
    fake_gemini.gate = threading.Event()
    env = {**os.environ, "GEMINI_API_KEY": "test-gemini-key-000"}
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(reward_kwargs), TRAJ, str(events)], env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(3)]
    try:
        wait_for_files(events, 3, procs, "all three claims")
        assert sorted(p.name.split(".")[1] for p in events.iterdir()) == ["pay", "wait", "wait"]
    finally:
        fake_gemini.gate.set()
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert fake_gemini.calls == 1
    assert sorted(r[1] for r in results) == [False, True, True] and all(r[0] == 1.0 for r in results)
