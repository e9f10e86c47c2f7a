"""ddai reproduces the users' reference script exactly (match=deck, duplicates=latest).

The oracle below is written independently of ddai, the way the reference script
(scripts/generate_curriculum_data.py of DDAI-46) worked: load the whole step-keyed JSON,
key a dict by the deck id of the first reference document (later records overwrite earlier
ones), take the plain mean of the agents' ``ndcg_value``, inner-join on ``train_<deck>``,
filter by the thresholds and sort by the mean, descending.

Subtlety: the reference read a missing score as 0 (``.get("ndcg_value", 0)``); ddai
excludes it by default and reproduces the reference with ``curriculum.missing_score=zero``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from engine_helpers import make_cfg  # noqa: E402

from ddai.curriculum import pipeline
from ddai.examples.generate import write_example_set

DATASET = "slidevqa_train_example.parquet"
LOG = "gspo_phase1.json"


def reference(log: Path, dataset: Path, theta1: float = 0.1, theta_easy: float = 0.7):
    """The reference script's behaviour (independent oracle)."""
    with open(log, encoding="utf-8") as fh:
        data = json.load(fh)
    by_deck: dict[str, float] = {}
    for _step, groups in data.items():
        for _uid, group in groups.items():
            agents = group["agents"]
            deck = agents[0]["scores"]["ndcg_details"]["reference_documents"][0].split("_")[0]
            vals = []
            for agent in agents:
                v = agent["scores"].get("ndcg_value", 0)
                vals.append(0.0 if v is None else float(v))
            by_deck[deck] = float(np.mean(vals))
    df = pd.read_parquet(dataset)
    scores = pd.DataFrame({"id": [f"train_{d}" for d in by_deck], "phase1_ndcg": list(by_deck.values())})
    merged = df.merge(scores, on="id", how="inner")
    a = merged[(merged.phase1_ndcg >= theta1) & (merged.phase1_ndcg <= theta_easy)]
    a = a.sort_values("phase1_ndcg", ascending=False, kind="stable")
    b = merged[merged.phase1_ndcg > theta_easy]
    zero = merged[merged.phase1_ndcg < theta1]
    return {"A": a, "B": b, "0": zero, "unmatched": len(df) - len(merged)}


def bucket_values(out: Path, fname: str) -> dict[str, float]:
    rows = pq.read_table(out / fname, columns=["id", "extra_info"]).to_pylist()
    return {r["id"]: r["extra_info"]["phase1_ndcg"] for r in rows}


def run_ddai(d: Path, out: Path, **kw) -> dict:
    kw.setdefault("match", "deck")
    c = make_cfg(dataset=str(d / DATASET), phase1_log=str(d / LOG), out_dir=str(out),
                 duplicates="latest", allow_empty_train=True, **kw)
    pipeline.run(c)
    return json.loads((out / "manifest.json").read_text())


@pytest.mark.parametrize("seed, n", [(1, 400), (7, 257)])
def test_reference_reproduced_exactly_on_clean_logs(tmp_path, seed, n):
    d = tmp_path / "data"
    write_example_set(d, n, seed=seed, shapes=("steps_json",), response_bytes=300, bad_score_fraction=0.0,
                      repeat_fraction=0.2, write_truth=False)
    ref = reference(d / LOG, d / DATASET)
    man = run_ddai(d, tmp_path / "out")
    assert man["buckets"]["A"] == len(ref["A"])
    assert man["buckets"]["B"] == len(ref["B"])
    assert man["buckets"]["0"] == len(ref["0"])
    assert man["buckets"]["unmatched"] == ref["unmatched"]
    assert man["duplicates"]["rows_with_several_groups"] > 0        # the overwrite case is exercised
    for bucket, fname in (("A", "curriculum_bucket_a.parquet"), ("B", "curriculum_bucket_b.parquet"),
                          ("0", "curriculum_bucket_0.parquet")):
        mine = bucket_values(tmp_path / "out", fname)
        theirs = dict(zip(ref[bucket]["id"], ref[bucket]["phase1_ndcg"]))
        assert mine == theirs                                        # same ids, bit-identical means
    a = pq.read_table(tmp_path / "out" / "curriculum_bucket_a.parquet", columns=["id", "extra_info"]).to_pylist()
    assert [r["extra_info"]["phase1_ndcg"] for r in a] == list(ref["A"]["phase1_ndcg"])   # same order of values


def test_missing_scores_as_zero_reproduce_the_reference(tmp_path):
    """With absent/null scores, ``missing_score=zero`` is the reference; the default is not."""
    d = tmp_path / "data"
    truth = write_example_set(d, 400, seed=5, shapes=("steps_json",), response_bytes=100,
                              bad_score_fraction=0.08, repeat_fraction=0.1)
    ref = reference_tolerant(d / LOG, d / DATASET)
    zero = tmp_path / "zero"
    run_ddai(d, zero, missing_score="zero")
    run_ddai(d, tmp_path / "exclude")
    latest = {}
    for g in truth.groups:
        if g.dataset_id:
            latest[g.dataset_id] = g
    only_absent = {i for i, g in latest.items()
                   if all(v is None or (isinstance(v, float) and 0 <= v <= 1) for v in g.ndcg)}
    touched = {i for i in only_absent if any(v is None for v in latest[i].ndcg)}
    assert touched, "the generated log must contain absent/null scores"
    files = ("curriculum_bucket_a.parquet", "curriculum_bucket_b.parquet", "curriculum_bucket_0.parquet")
    mine_zero = {k: v for f in files for k, v in bucket_values(zero, f).items()}
    mine_excl = {k: v for f in files for k, v in bucket_values(tmp_path / "exclude", f).items()}
    for i in only_absent:
        assert mine_zero[i] == ref[i]
    for i in touched:
        usable = [v for v in latest[i].ndcg if v is not None]
        if usable:
            assert mine_excl[i] == pytest.approx(sum(usable) / len(usable), abs=1e-12)
            assert mine_excl[i] != ref[i] or all(v == 0 for v in usable) or sum(usable) == 0


def reference_tolerant(log: Path, dataset: Path) -> dict[str, float]:
    """The reference means, where its arithmetic is defined (absent/null → 0; others as read)."""
    with open(log, encoding="utf-8") as fh:
        data = json.load(fh)
    by_deck: dict[str, float] = {}
    for groups in data.values():
        for group in groups.values():
            agents = group["agents"]
            deck = agents[0]["scores"]["ndcg_details"]["reference_documents"][0].split("_")[0]
            vals = []
            for agent in agents:
                v = agent["scores"].get("ndcg_value", 0)
                vals.append(0.0 if v is None else (v if isinstance(v, (int, float)) else float("nan")))
            by_deck[deck] = float(np.mean(vals))
    ids = set(pd.read_parquet(dataset, columns=["id"])["id"])
    return {f"train_{k}": v for k, v in by_deck.items() if f"train_{k}" in ids}


def _reshape_prompts(log: Path, shape: str) -> None:
    """Rewrite every prompt of a step-keyed log into one of the shapes the users' logs have.

    ``stripped``: the chat template decoded with special tokens skipped (their Phase 1 logs):
    ``"system\\n...\\nuser\\nQuestion: q\\nassistant\\n"``; ``stripped_no_system``: the same without
    a system turn; ``stripped_no_prefix``: without ``Question:``; ``tokens_no_prefix``: template
    tokens kept, no ``Question:``.
    """
    data = json.loads(log.read_bytes())
    for groups in data.values():
        for g in groups.values():
            p = g["prompt"]
            if shape.endswith("no_prefix"):
                p = p.replace("Question: ", "")
            if shape.startswith("stripped"):
                p = p.replace("<|im_start|>", "").replace("<|im_end|>", "")
                if shape == "stripped_no_system":
                    p = p[p.index("user\n"):]
            g["prompt"] = p
    log.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize("shape", ["stripped", "stripped_no_system", "stripped_no_prefix", "tokens_no_prefix"])
def test_default_match_reproduces_the_reference_on_the_users_prompt_shapes(tmp_path, shape):
    """match=auto (the default) on prompts as the users' Phase 1 logs carry them: the reference's
    buckets exactly -- counts, ids, bit-identical phase1_ndcg, order (issue 11, item 1)."""
    d = tmp_path / "data"
    write_example_set(d, 300, seed=3, shapes=("steps_json",), response_bytes=200, bad_score_fraction=0.0,
                      repeat_fraction=0.2, write_truth=False)
    _reshape_prompts(d / LOG, shape)
    first = json.loads((d / LOG).read_bytes())
    prompt = next(iter(next(iter(first.values())).values()))["prompt"]
    assert ("<|im_start|>" in prompt) == (shape == "tokens_no_prefix")
    assert ("Question:" in prompt) == (not shape.endswith("no_prefix"))
    ref = reference(d / LOG, d / DATASET)
    c = make_cfg(dataset=str(d / DATASET), phase1_log=str(d / LOG), out_dir=str(tmp_path / "out"),
                 duplicates="latest", allow_empty_train=True)       # match: the default
    pipeline.run(c)
    man = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert man["match"]["strategy"] == "auto"
    assert man["match"]["ambiguous_groups"] == 0
    assert (man["buckets"]["A"], man["buckets"]["B"], man["buckets"]["0"], man["buckets"]["unmatched"]) == \
           (len(ref["A"]), len(ref["B"]), len(ref["0"]), ref["unmatched"])
    for bucket, fname in (("A", "curriculum_bucket_a.parquet"), ("B", "curriculum_bucket_b.parquet"),
                          ("0", "curriculum_bucket_0.parquet")):
        assert bucket_values(tmp_path / "out", fname) == dict(zip(ref[bucket]["id"], ref[bucket]["phase1_ndcg"]))
    a = pq.read_table(tmp_path / "out" / "curriculum_bucket_a.parquet", columns=["id", "extra_info"]).to_pylist()
    assert [r["id"] for r in a] == list(ref["A"]["id"])
    assert [r["extra_info"]["phase1_ndcg"] for r in a] == list(ref["A"]["phase1_ndcg"])
