"""Property tests: the step reader agrees with json.loads on documents full of nasty strings.

The step-keyed reader splits the text at step keys without parsing it, and decodes each step
with a typed decoder that skips responses (falling back to the general parser for what it was
not built for). These tests generate documents whose responses (and prompts, answers, keys)
contain quotes, backslash runs, fake keys such as ``"response": "`` and ``"step_9": {``,
control characters and non-ASCII text, write them with json.dumps in several layouts, and check
that what the reader yields equals what json.loads sees -- and that the typed fast path gives
exactly the groups the general path gives.
"""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddai.curriculum.match import normalize_question
from ddai.curriculum.read import iter_rollouts, read_groups
from ddai.curriculum.read_steps import iter_steps
from ddai.curriculum.stats import collect_groups

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


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=document, fmt=layout, chunk=st.sampled_from([1, 7, 64, 333, 4096]))
def test_reader_equals_json_loads(tmp_path_factory, doc, fmt, chunk):
    path = tmp_path_factory.mktemp("prop") / "log.json"
    path.write_text(json.dumps(doc, **fmt), encoding="utf-8")
    want = json.loads(path.read_bytes())
    got = list(iter_steps(path, lambda n: None, {}, block=chunk))
    assert [k for k, _, _ in got] == list(want)
    for key, number, groups in got:
        assert number == int(key[5:])
        assert list(groups) == list(want[key])
        for uid, g in groups.items():
            w = want[key][uid]
            assert g["prompt"] == w["prompt"]
            assert len(g["agents"]) == len(w["agents"])
            for a, b in zip(g["agents"], w["agents"]):
                assert a["response"] == b["response"]
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


def _group_view(groups):
    return [(g.group, g.step, g.order, g.sources, sorted(g.dataset_ids), sorted(g.deck_ids), sorted(g.questions),
             g.raw_questions, {k: [("nan" if isinstance(x, float) and math.isnan(x) else x) for x in v]
                               for k, v in g.scores.items()}, g.n_rollouts) for g in groups]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=document, fmt=layout)
def test_typed_groups_equal_general_groups(tmp_path_factory, doc, fmt):
    """The typed fast path (read_groups) gives exactly the groups of the general Rollout path."""
    path = tmp_path_factory.mktemp("typed") / "log.json"
    path.write_text(json.dumps(doc, **fmt), encoding="utf-8")
    general = collect_groups(iter_rollouts(path, fmt="steps_json"), normalize_question)
    typed = read_groups(path, normalize_question, fmt="steps_json")
    assert _group_view(typed) == _group_view(general)
