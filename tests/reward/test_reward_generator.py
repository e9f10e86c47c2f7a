"""The frozen generator through the REAL openai client against the FAKE OpenAI server."""

import asyncio
import base64

import pytest
from fake_servers import FAST_RETRY
from PIL import Image

from ddai.clients.generator import FrozenGenerator
from ddai.clients.settings import GeneratorConfig, RetryPolicy


def _gen(fake_openai, **over):
    return FrozenGenerator(GeneratorConfig(base_url=fake_openai.url + "/v1", retry=RetryPolicy(**FAST_RETRY), **over))


def _answer(gen, question="Which is used more?", images=()):
    async def main():
        try:
            return await gen.answer(question, list(images))
        finally:
            await gen.aclose()

    return asyncio.run(main())


def _image(tmp_path, name="2_7.jpg"):
    path = tmp_path / name
    Image.new("RGB", (32, 24), (200, 10, 10)).save(path)
    return str(path)


def test_responses_api_request_shape(fake_openai, tmp_path):
    img = _image(tmp_path)
    r = _answer(_gen(fake_openai), images=[img])
    assert not r.failed and r.answer == "Credit Cards" and r.attempts == 1
    req = fake_openai.requests[-1]
    assert req["path"] == "/v1/responses"
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert headers["authorization"] == "Bearer test-openai-key-000"
    body = req["body"]
    assert "temperature" not in body and "max_tokens" not in body
    assert body["max_output_tokens"] == 4096 and body["reasoning"] == {"effort": "minimal"} and body["store"] is False
    content = body["input"][0]["content"]
    assert content[0]["type"] == "input_image"
    assert base64.b64decode(content[0]["image_url"].split(",", 1)[1]) == open(img, "rb").read()
    assert content[-1] == {"type": "input_text", "text": "Question: Which is used more?"}
    # usage: 812 in, 64 out of which 48 reasoning
    assert (r.usage.input, r.usage.output, r.usage.thinking) == (812, 16, 48)
    assert r.cost_usd == pytest.approx((812 * 0.25 + 64 * 2.0) / 1e6)


def test_chat_completions_request_shape(fake_openai):
    r = _answer(_gen(fake_openai, api="chat", reasoning_effort="low"))
    assert r.answer == "Credit Cards"
    req = fake_openai.requests[-1]
    assert req["path"] == "/v1/chat/completions"
    body = req["body"]
    assert body["max_completion_tokens"] == 4096 and body["reasoning_effort"] == "low"
    assert "temperature" not in body and "max_tokens" not in body
    assert body["messages"][0]["role"] == "system"


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_length_cut_answer_is_retried_with_a_larger_budget(fake_openai, api):
    fake_openai.script.extend([("truncated",), ("truncated",)])
    r = _answer(_gen(fake_openai, api=api))
    assert not r.failed and r.answer == "Credit Cards"
    key = "max_output_tokens" if api == "responses" else "max_completion_tokens"
    assert [q["body"][key] for q in fake_openai.requests] == [4096, 8192, 16384]
    assert r.final_budget == 16384 and r.attempts == 3


def test_budget_escalation_is_bounded(fake_openai):
    fake_openai.decide = lambda n, body: ("truncated",)
    r = _answer(_gen(fake_openai, max_budget_rounds=2))
    assert r.failed and r.answer == "" and "max_output_tokens" in r.error
    assert fake_openai.calls == 3  # 4096, 8192, 16384 (cap): bounded


def test_rate_limit_and_server_errors_are_retried(fake_openai):
    fake_openai.script.extend([("status", 429), ("status", 503)])
    r = _answer(_gen(fake_openai))
    assert not r.failed and r.attempts == 3
    assert fake_openai.status_counts == {429: 1, 503: 1, 200: 1}


def test_persistent_outage_fails_after_bounded_attempts(fake_openai):
    fake_openai.decide = lambda n, body: ("status", 500)
    r = _answer(_gen(fake_openai))
    assert r.failed and fake_openai.calls == FAST_RETRY["max_attempts"]
    assert "test-openai-key-000" not in r.error


def test_select_images_originals_then_crops_dedup_and_cap(fake_openai, tmp_path):
    a, b, c = (_image(tmp_path, f"{n}.jpg") for n in "abc")
    gen = _gen(fake_openai, max_images=2)
    assert gen.select_images([a, a, str(tmp_path / "missing.jpg")], [b, c]) == [a, b]
