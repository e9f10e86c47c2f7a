"""The step reader's caches and zero-copy views agree with the plain helpers they stand for.

``read_steps`` caches questions and deck ids per prompt / per reference list, and parses steps
from views of the text with their trailing separators cut off. The statistics, matching and
manifests must not change by a byte, so these properties compare both on generated text full
of markers, whitespace and newlines, and on the shapes real prompts and page names have.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ddai.curriculum.fields import deck_ids, question_from_prompt
from ddai.curriculum.read_steps import _Incomplete, _object_view, deck_ids_cached, loads_general, question_cached


def _deck_ids(ref):
    return deck_ids_cached(ref)


def _question(prompt):
    return question_cached(prompt)


def _parse_step(text, last):
    view = _object_view(text, last)
    if view is None:
        return None
    try:
        return loads_general(view)
    except _Incomplete:
        return None

PIECES = ["Question:", "Question: ", "<|im_end|>", "<|eot_id|>", "</s>", "<end_of_turn>", "<", "|", ">",
          "\n", " ", "\t", "\u3000", "\x0b", "\x1c", "\u2028", "<|im_start|>user\n", "Which deck?", "\ud55c"]
prompts = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=6)), max_size=14).map("".join)
names = st.lists(st.one_of(st.sampled_from(["_", "/", ".jpg", ".JPEG", ".png", ".webp", "12", "7", "deck", "a_b"]),
                           st.text(alphabet="0123456789_/.abcJPG", max_size=5)), max_size=6).map("".join)


@settings(max_examples=1500, deadline=None)
@given(prompts)
def test_question_equals_question_from_prompt(prompt):
    assert _question(prompt) == question_from_prompt(prompt)


def test_question_on_real_prompt_shapes():
    chat = ("<|im_start|>system\nYou are a search agent.<|im_end|>\n<|im_start|>user\n"
            "Question: Which was larger in 2015?  <|im_end|>\n<|im_start|>assistant\n")
    for prompt in (chat, "Question: plain", "Question: ends with newline\n", "Question:\n\n", "no question",
                   "Question: a</s><|im_end|>", "Question: x<end_of_turn>Question: last one<|eot_id|>"):
        assert _question(prompt) == question_from_prompt(prompt)
    assert _question(chat) == "Which was larger in 2015?"


@settings(max_examples=1500, deadline=None)
@given(st.lists(names, max_size=5))
def test_deck_ids_equal_with_and_without_cache(docs):
    ref = tuple(docs)
    assert _deck_ids(ref) == deck_ids(ref)
    assert _deck_ids(ref) == deck_ids(ref)  # second time from the per-document cache


@given(st.sampled_from([b'{"a": 1},', b'{"a": 1} ,\n ', b'{"a": 1}}', b'{"a": 1} }\n', b'{"a": NaN},',
                        b'{"a": 1}', b'', b',', b'}}', b'{"a": 1},,', b'{"a": 1}{"b": 2},', b'[1]},',
                        b'{"a": "\xff"},']), st.booleans())
def test_parse_step_views_agree_with_copies(text, last):
    """Parsing a zero-copy view gives what parsing the stripped copy gave (or None alike)."""
    stripped = text.rstrip()
    if last:
        body = stripped[:-1].rstrip() if stripped.endswith(b"}") else None
    else:
        body = stripped[:-1] if stripped.endswith(b",") else None
    expected = None
    if body is not None and body.endswith(b"}"):
        import json
        try:
            expected = json.loads(body.replace(b"NaN", b'"NaN"'))
        except ValueError:
            expected = None
    assert _parse_step(text, last) == expected
