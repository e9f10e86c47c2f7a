"""The default reward is the users' production judge (rm_phase2.py): request and score handling.

Through ddai's verl hook and the REAL google-genai client against the FAKE Gemini server:
the same inputs (question, reference answer, the text between the last answer tags), the
same rubric meaning, structured output {score}, the SDK's default temperature and thinking,
the score clipped to [0, 1], final = 0.8 * judge + 0.2 * NDCG.
"""

from __future__ import annotations

import asyncio
import json
import math

import pytest
from fake_servers import gemini_images, gemini_prompt_text

from ddai.reward.judge_log import log_files
from ddai.reward.verl_reward import compute_score

RESPONSE = ("<think>find it</think><search>payment page 7</search>user\n[image]\nassistant\n"
            "<think>found</think><search_complete>true</search_complete><answer> credit cards </answer>")
EXTRA = {"question": "Which payment method is used more?", "answer": "Credit Cards", "file_name": "2.pdf",
         "reference_page": [7], "index": 0, "split": "train"}


def _score(kwargs, extra=None, response=RESPONSE):
    extra_info = {**EXTRA, "ddai": {"dataset_id": "train_2", "uid": "g", "sample_idx": 0,
                                    "retrieved_basenames": ["2_3", "2_7"], "format_ok": True, **(extra or {})}}
    return asyncio.run(compute_score(data_source="slidevqa_train", solution_str=response,
                                     ground_truth="Credit Cards", extra_info=extra_info, **kwargs))


def _log(kwargs):
    return [json.loads(l) for f in log_files(kwargs["log_path"]) for l in f.read_text().splitlines()]


def test_request_matches_the_production_judge(fake_gemini, reward_kwargs):
    out = _score(reward_kwargs)
    (req,) = fake_gemini.requests
    assert req["path"] == "/v1beta/models/gemini-3-flash-preview:generateContent"
    body = req["body"]
    # settings: structured output {score}, nothing else -> the SDK's / model's defaults
    gen = body["generationConfig"]
    assert set(gen) == {"responseMimeType", "responseSchema"}
    assert gen["responseMimeType"] == "application/json"
    schema = gen["responseSchema"]
    assert schema["type"] == "OBJECT" and schema["required"] == ["score"]
    assert list(schema["properties"]) == ["score"] and schema["properties"]["score"]["type"] == "NUMBER"
    assert "systemInstruction" not in body and "tools" not in body
    # inputs: text only; the question, the reference answer, the answer exactly as between the tags
    assert gemini_images(body) == [] and len(body["contents"]) == 1 and len(body["contents"][0]["parts"]) == 1
    text = gemini_prompt_text(body)
    assert "## Question\nWhich payment method is used more?\n" in text
    assert "## Reference answer\nCredit Cards\n" in text
    assert "## Assistant's answer\n credit cards \n" in text
    assert "<think>" not in text and "search_complete" not in text  # the trajectory is not judged
    # rubric meaning: semantic equivalence, lenient formatting, the three bands of the scale
    for phrase in ("means the same", "not the exact string", "lenient about formatting", "1.0: the same meaning",
                   "0.5 to 0.9: partly correct", "0.0: wrong or unrelated"):
        assert phrase in text
    # score handling: case-insensitive match in the fake -> 1.0; final = 0.8*judge + 0.2*ndcg
    ndcg = 1 / math.log2(3)
    assert out["judge_score"] == 1.0 and out["score"] == pytest.approx(0.8 + 0.2 * ndcg)
    (line,) = _log(reward_kwargs)
    assert (line["judge_mode"], line["prompt_version"]) == ("production_text", "p1")


@pytest.mark.parametrize("reply, judge", [
    ('{"score": 0.75}', 0.75),
    ('{"score": 1.7}', 1.0),  # clipped, as the reference clips
    ('{"score": -0.3}', 0.0),
    ('{"score": "0.6"}', 0.6),  # the reference converts with float()
])
def test_score_parsing_and_clipping(fake_gemini, reward_kwargs, reply, judge):
    fake_gemini.script.append(("text", reply))
    out = _score(reward_kwargs)
    assert out["judge_score"] == pytest.approx(judge)
    assert out["score"] == pytest.approx(0.8 * judge + 0.2 / math.log2(3))


def test_an_unusable_reply_is_not_a_score(fake_gemini, reward_kwargs):
    """The reference scored an unparseable reply 0.0 as if judged; ddai retries, then drops it."""
    fake_gemini.script.append(("text", "not json"))
    out = _score(reward_kwargs)
    assert out["judge_score"] == 1.0 and fake_gemini.calls == 2  # retried, then judged
    fake_gemini.decide = lambda n, body: ("text", '{"verdict": "yes"}')
    from ddai.reward.verl_reward import JudgmentUnavailable

    with pytest.raises(JudgmentUnavailable, match="unusable judge reply"):
        _score({**reward_kwargs, "retry": {**reward_kwargs["retry"], "max_attempts": 2}},
               response=RESPONSE.replace("credit cards", "cash"))


def test_the_answer_falls_back_to_the_text_and_coefficients_are_settings(fake_gemini, reward_kwargs):
    out = _score({**reward_kwargs, "w_judge": 1.0, "w_ndcg": 0.0}, extra={"generated_answer": None})
    assert out["score"] == 1.0  # RM_JUDGE_COEF=1.0, RM_NDCG_COEF=0.0 (their focused rounds)
    assert "## Assistant's answer\n credit cards \n" in gemini_prompt_text(fake_gemini.requests[-1]["body"])
