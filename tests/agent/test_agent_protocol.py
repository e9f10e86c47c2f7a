"""Tag protocol: one action per turn, validated; the corrective messages; answer extraction."""

import pytest

from ddai.clients.protocol import (
    INVALID_ACTION_MESSAGE,
    extract_answer,
    parse_action,
    response_format_ok,
    turn_format_ok,
)


@pytest.mark.parametrize(
    "text, kind, extra",
    [
        ("<think>a</think>\n<search> slide about cards </search>", "search", {"query": "slide about cards"}),
        ("<think>a</think><bbox>[10, 20.5, 200, 180]</bbox>", "bbox", {"bbox": (10.0, 20.5, 200.0, 180.0)}),
        ("<think>a</think><search_complete>TRUE</search_complete>", "search_complete", {}),
        ("<think>a</think><search_complete>false</search_complete>", "invalid", {}),
        ("<think>a</think><search></search>", "invalid", {}),
        ("<think>just thinking</think>", "invalid", {}),
        ("<think>a</think><answer>x</answer>", "invalid", {}),  # the searcher does not answer
        ("<think>a</think><bbox>[[0.1,0.2,0.8,0.9]]</bbox>", "invalid_bbox", {}),
        ("<think>a</think><bbox>[1, 2, 3]</bbox>", "invalid_bbox", {}),
        ("<think>a</think><bbox>[-1, 2, 3, 4]</bbox>", "invalid_bbox", {}),
        ("<think>a</think><bbox>[1, 2, true, 4]</bbox>", "invalid_bbox", {}),
        ("<think>a</think><search>first</search><bbox>[1,2,3,4]</bbox>", "search", {"query": "first"}),
    ],
)
def test_parse_action(text, kind, extra):
    action = parse_action(text)
    assert action.kind == kind
    for key, value in extra.items():
        assert getattr(action, key) == value


def test_invalid_action_message_uses_correct_closing_tag():
    assert "<search_complete>true</search_complete>" in INVALID_ACTION_MESSAGE
    assert "compelte" not in INVALID_ACTION_MESSAGE
    assert INVALID_ACTION_MESSAGE.startswith("Your previous action is invalid.")


def test_turn_format():
    assert turn_format_ok("<think>x</think>\n<search>q</search>")
    assert not turn_format_ok("hello <think>x</think><search>q</search>")
    assert not turn_format_ok("<think>x</think><think>y</think><search>q</search>")
    assert not turn_format_ok("<think>x</think><search>q</search><search>r</search>")


def test_extract_answer_takes_the_last_one():
    assert extract_answer("<answer>a</answer> more <answer> b </answer>") == "b"
    assert extract_answer("no answer") is None


def test_response_format():
    assert response_format_ok("<think>a</think><search>q</search><think>b</think><search_complete>true</search_complete>")
    assert not response_format_ok("<think>a</think><search>q</search>")
