"""Masking before cutting: a key placed across every truncation boundary never reaches disk or output."""

from __future__ import annotations

import asyncio
import json

import pytest

from ddai.clients.secrets import ERROR_TEXT_LIMIT, safe_text
from ddai.reward.judge_log import log_files
from ddai.reward.verl_reward import JudgmentUnavailable, compute_score

KEY = "AIzaSyTESTsecretKEY0123456789abcdefGHIJ"  # 38 characters, looks like a Gemini key


def _fragments(text: str, key: str, n: int = 8) -> list[str]:
    return [key[i : i + n] for i in range(len(key) - n + 1) if key[i : i + n] in text]


@pytest.mark.parametrize("limit", [ERROR_TEXT_LIMIT, 120, 60])
def test_safe_text_with_the_key_at_every_cut_point(monkeypatch, limit):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    for start in range(max(0, limit - len(KEY) - 1), limit + 2):
        text = "e" * start + KEY + " tail " * 40
        out = safe_text(text, limit)
        assert len(out) <= limit
        assert KEY not in out and not _fragments(out, KEY), (start, out[-60:])


def test_fragments_cut_by_someone_else_are_masked(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert safe_text("url ?key=" + KEY[:12]) == "url ?key=***"
    assert safe_text(KEY[-10:] + " was the end") == "*** was the end"


def _run(kwargs, i, message_pad, capsys):
    extra = {"question": "q", "answer": "Credit Cards", "file_name": "2.pdf", "reference_page": [7],
             "ddai": {"dataset_id": f"train_{i}", "uid": f"g{i}", "sample_idx": 0, "retrieved_basenames": ["2_7"],
                      "generated_answer": f"answer {i}", "format_ok": True}}
    with pytest.raises(JudgmentUnavailable) as err:
        asyncio.run(compute_score(data_source="s", solution_str="x", ground_truth="Credit Cards", extra_info=extra,
                                  **kwargs))
    return str(err.value)


def test_no_key_on_disk_or_output_with_the_key_across_the_cut(fake_gemini, reward_kwargs, tmp_path, monkeypatch,
                                                            capfd):
    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    kwargs = {**reward_kwargs, "retry": {**reward_kwargs["retry"], "max_attempts": 1}}
    # where does the server's message start inside the stored error text?
    fake_gemini.decide = lambda n, body: ("status", 503, "PROBE" + "p" * 600)
    probe = _run(kwargs, 0, 0, capfd)
    (line,) = [json.loads(l) for f in log_files(kwargs["log_path"]) for l in f.read_text().splitlines()]
    offset = line["error"].index("PROBE")
    assert len(line["error"]) <= ERROR_TEXT_LIMIT and "PROBE" in probe

    messages = []
    masked = 0
    for start in range(ERROR_TEXT_LIMIT - len(KEY) - 1, ERROR_TEXT_LIMIT + 2):
        pad = start - offset
        fake_gemini.decide = lambda n, body, pad=pad: ("status", 503, "m" * pad + KEY + "z" * 600)
        messages.append(_run(kwargs, start, pad, capfd))
    # the generator's error text passes through the hook too
    extra = {"question": "q", "answer": "A", "ddai": {"dataset_id": "train_g", "generator_failed": True,
                                                     "generator_error": "e" * 470 + KEY + "f" * 100}}
    with pytest.raises(JudgmentUnavailable) as err:
        asyncio.run(compute_score(data_source="s", solution_str="x", ground_truth="A", extra_info=extra, **kwargs))
    messages.append(str(err.value))

    lines = [json.loads(l) for f in log_files(kwargs["log_path"]) for l in f.read_text().splitlines()]
    masked = sum("***" in l["error"] for l in lines)
    starts = range(ERROR_TEXT_LIMIT - len(KEY) - 1, ERROR_TEXT_LIMIT + 2)
    reaching = sum(1 for s in starts if ERROR_TEXT_LIMIT - 1 - s >= 4) + 1  # >= 4 key characters before the cut
    assert masked >= reaching  # the key (or its piece before the cut) was masked, not merely cut away
    out, errout = capfd.readouterr()
    for name, text in [("stdout", out), ("stderr", errout), *((f"exception {i}", m) for i, m in enumerate(messages))]:
        assert KEY not in text and not _fragments(text, KEY), name
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written
    for path in written:
        data = path.read_bytes().decode("utf-8", "replace")
        assert KEY not in data and not _fragments(data, KEY), path
