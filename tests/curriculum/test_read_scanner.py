"""Property tests: the skeleton scanner agrees with json.loads on documents full of nasty strings.

The step-keyed reader never parses response texts; it cuts them out with a regular expression
and splits the rest at step keys. These tests generate documents whose responses (and prompts,
answers, keys) contain quotes, backslash runs, fake keys such as ``"response": "`` and
``"step_9": {``, control characters and non-ASCII text, write them with json.dumps in several
layouts, and check that what the reader yields equals what json.loads sees.
"""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddai.curriculum.read import iter_rollouts
from ddai.curriculum.read_steps import iter_steps, skeleton

NASTY = ['"', "\\", '\\"', '"response": "', '"step_9": {', "step_1", "}", "{", "]", ",", ":", "\n", "\t",
         "\u2b50\ufe0f", "\ud55c\uad6d", "\x00", "\x1f", "Question: ", "\\\\\\\\\\\\\\\\\"", "NaN", "\u2028"]

texts = st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=8)), max_size=12).map("".join)
scores = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3), st.none(),
                   st.sampled_from(["n/a", "0.5", ""]))
docs = st.lists(st.text(alphabet="0123456789_", min_size=1, max_size=6), max_size=4)

agent = st.fixed_dictionaries({
    "agent_id": st.integers(0, 9),
    "response": texts,
    "\U0001f4e3generated_answer\U0001f4e3": texts,
    "scores": st.fixed_dictionaries({
        "ndcg_value": scores, "model_eval_score": scores, "\u2b50\ufe0ffinal_score\u2b50\ufe0f": scores,
        "fail_reason": st.one_of(st.none(), texts),
        "ndcg_details": st.fixed_dictionaries({"retrieved_documents": docs, "reference_documents": docs}),
    }),
})
group = st.fixed_dictionaries({"prompt": texts, "agents": st.lists(agent, max_size=3)})
document = st.dictionaries(
    st.integers(0, 999).map(lambda n: f"step_{n}"),
    st.dictionaries(st.one_of(st.uuids().map(str), st.sampled_from(["step_1", "step_22"]), texts.filter(lambda t: t)),
                    group, max_size=3),
    max_size=3,
)
layout = st.sampled_from([{}, {"indent": 2}, {"ensure_ascii": False}, {"indent": 1, "ensure_ascii": False},
                          {"separators": (",", ":")}])


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _blank_responses(doc):
    return {s: {u: {**g, "agents": [{**a, "response": ""} for a in g["agents"]]} for u, g in groups.items()}
            for s, groups in doc.items()}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=document, fmt=layout)
def test_skeleton_equals_json_loads_without_responses(doc, fmt):
    raw = json.dumps(doc, **fmt).encode("utf-8")
    original = json.loads(raw)
    got = json.loads(skeleton(raw))
    # a response is dropped, or (after a run of 8+ backslashes before a quote) kept whole
    for s, groups in got.items():
        for u, g in groups.items():
            for a, b in zip(g["agents"], original[s][u]["agents"]):
                assert a["response"] in ("", b["response"])
    assert json.dumps(_blank_responses(got), sort_keys=True) == json.dumps(_blank_responses(original), sort_keys=True)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=document, fmt=layout, chunk=st.sampled_from([7, 64, 333, 4096]))
def test_reader_equals_json_loads(tmp_path_factory, doc, fmt, chunk):
    path = tmp_path_factory.mktemp("prop") / "log.json"
    path.write_text(json.dumps(doc, **fmt), encoding="utf-8")
    want = json.loads(path.read_bytes())
    got = list(iter_steps(path, lambda n: None, {}, chunk_size=chunk, parallel=False))
    assert [k for k, _, _ in got] == list(want)
    for key, number, groups in got:
        assert number == int(key[5:])
        assert list(groups) == list(want[key])
        for uid, g in groups.items():
            w = want[key][uid]
            assert g["prompt"] == w["prompt"]
            assert len(g["agents"]) == len(w["agents"])
            for a, b in zip(g["agents"], w["agents"]):
                assert a["response"] in ("", b["response"])  # dropped, or kept when >7 backslashes
                for k, v in b["scores"].items():
                    have = a["scores"][k]
                    assert _same(have, v) or (have in ("NaN", "Infinity", "-Infinity") and
                                              _same(float(have), v))
    # and the Rollout view: one per agent, docs and deck ids from the reference documents
    rollouts = list(iter_rollouts(path, fmt="steps_json"))
    assert len(rollouts) == sum(len(g["agents"]) for groups in want.values() for g in groups.values())
    i = 0
    for key, groups in want.items():
        for uid, g in groups.items():
            for a in g["agents"]:
                r = rollouts[i]
                i += 1
                assert (r.group, r.step) == (uid, int(key[5:]))
                assert r.reference_docs == tuple(a["scores"]["ndcg_details"]["reference_documents"])
                assert r.retrieved_docs == tuple(a["scores"]["ndcg_details"]["retrieved_documents"])
