"""Report figures against a small log whose every figure was computed by hand.

The ten rollouts (tests/report/conftest.py HAND_ROWS), judge / NDCG:
  step 1: train_1 (1.0, 1.0) (0.8, 0.0) · train_2 (0.0, 1.0) (0.2, 0.631)
          train_3 (0.0, 0.0) (judge missing + error, 0.5)
  step 2: train_1 (1.0, 1.0) (1.0, 0.5) · train_2 (0.6, 1.0) (0.0, 1.0)
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ddai.report import logstats
from ddai.report.cli import main
from ddai.report.logstats import Thresholds, scan_bytes, scan_jsonl
from ddai.report.quadrants import add_quadrants
from ddai.report.summarize import summarize

JUDGE = [1.0, 0.8, 0.0, 0.2, 0.0, 1.0, 1.0, 0.6, 0.0]
NDCG = [1.0, 0.0, 1.0, 0.631, 0.0, 0.5, 1.0, 0.5, 1.0, 1.0]
LAT = [float(i) for i in range(1, 11)]


def _report(path, th=None):
    th = th or Thresholds()
    part = scan_jsonl(str(path), th)
    rep = summarize(str(path), "jsonl", path.stat().st_size, part)
    add_quadrants(rep, th, top=10)
    return rep


def test_counts_scores_and_rates(hand_log):
    s = _report(hand_log).summary
    assert s["rollouts"] == 10 and s["prompts"] == 3
    assert s["steps"] == {"count": 2, "first": 1, "last": 2}
    j = s["scores"]["judge"]
    assert j["n"] == 9 and j["missing"] == 1
    assert j["mean"] == pytest.approx(4.6 / 9, abs=1e-6)
    assert j["min"] == 0.0 and j["max"] == 1.0
    for q, key in ((0.05, "p05"), (0.25, "p25"), (0.5, "p50"), (0.75, "p75"), (0.95, "p95")):
        assert j[key] == pytest.approx(float(np.quantile(JUDGE, q)), abs=1e-6)
    n = s["scores"]["ndcg"]
    assert n["n"] == 10 and n["mean"] == pytest.approx(6.631 / 10, abs=1e-6)
    assert s["scores"]["final"]["n"] == 9
    assert s["rates"]["error_rate"] == pytest.approx(0.1)
    assert s["rates"]["judge_failed_rate"] == pytest.approx(0.1)
    assert s["rates"]["cache_hit_rate"] == pytest.approx(0.5) and s["rates"]["cache_known"] == 2
    lat = s["latency_s"]
    assert lat["p50"] == pytest.approx(5.5) and lat["quantiles_exact"]
    assert lat["p95"] == pytest.approx(float(np.quantile(LAT, 0.95)))
    assert lat["p99"] == pytest.approx(float(np.quantile(LAT, 0.99)))
    assert s["tokens"]["total"] == {"sum": 335.0, "mean": 167.5, "n": 2}
    assert s["cost_usd"]["sum"] == pytest.approx(0.75) and s["cost_usd"]["n"] == 2
    assert s["cost_usd"]["generator_sum"] == pytest.approx(0.125)
    assert s["judge_subscores"]["visual_grounding"] == pytest.approx(0.5)
    assert s["judge_subscores"]["answer_accuracy"] == pytest.approx(4.6 / 9, abs=1e-6)
    assert s["labels"]["judge_model"] == {"gemini-3-flash-preview": 10}
    assert s["rates"]["errors_by_kind"] == {"judge timeout after 3 attempts": 1}


def test_per_step_trends(hand_log):
    steps = _report(hand_log).summary["per_step"]
    assert [r["step"] for r in steps] == [1, 2]
    one, two = steps
    assert (one["rollouts"], one["prompts"], two["rollouts"], two["prompts"]) == (6, 3, 4, 2)
    assert one["judge_mean"] == pytest.approx(2.0 / 5)
    assert two["judge_mean"] == pytest.approx(2.6 / 4)
    assert one["ndcg_mean"] == pytest.approx(3.131 / 6, abs=1e-6)
    assert one["error_rate"] == pytest.approx(1 / 6, abs=1e-6) and two["error_rate"] == 0
    assert two["latency_mean"] == pytest.approx(8.5)


def test_quadrants_per_rollout_and_prompt(hand_log):
    q = _report(hand_log).summary["quadrants"]
    r = q["rollouts"]
    assert (r["solved"]["n"], r["guessing"]["n"], r["reasoning_failure"]["n"], r["failure"]["n"]) == (4, 1, 3, 1)
    assert r["unscored"] == 1 and r["solved"]["fraction"] == pytest.approx(4 / 9, abs=1e-6)
    p = q["prompts"]
    # train_1: judge .95 / ndcg .625 -> solved; train_2: .2 / .90775 -> reasoning failure;
    # train_3: judge 0.0 (one valid) / ndcg .25 -> failure
    assert (p["solved"]["n"], p["guessing"]["n"], p["reasoning_failure"]["n"], p["failure"]["n"]) == (1, 0, 1, 1)
    disc = q["most_discordant"]
    assert [d["prompt"] for d in disc] == ["train_2", "train_1", "train_3"]
    assert disc[0]["gap"] == pytest.approx(0.2 - 3.631 / 4, abs=1e-6)
    assert disc[0]["kind"] == "NDCG>judge" and disc[1]["kind"] == "judge>NDCG"
    assert disc[1]["quadrant"] == "solved"     # judge .95 / NDCG .625: both high, ranked by direction


def test_thresholds_are_options(hand_log):
    q = _report(hand_log, Thresholds(judge_high=0.9, ndcg_high=0.9)).summary["quadrants"]["rollouts"]
    # judge >= .9 and ndcg >= .9: (1,1) (1,1) solved; (1,.5) guessing; (0,1) (.2? no .631<.9) ...
    assert q["solved"]["n"] == 2
    assert q["guessing"]["n"] == 1
    assert q["reasoning_failure"]["n"] == 3   # (0,1) (.6,1) (0,1)
    assert q["failure"]["n"] == 3             # (.8,0) (.2,.631) (0,0)


def test_next_round_split_uses_last_appearance(hand_log):
    s = _report(hand_log)
    from ddai.report.nextround import split_sets

    sets = split_sets(s.prompts, 0.3, 0.7)
    assert sets["success"]["prompt"].tolist() == ["train_1"]
    # train_2: mean judge 0.2 < 0.3 but 0.3 at its last step -> not "stays below" -> potential
    assert sets["potential"]["prompt"].tolist() == ["train_2"]
    assert sets["fail"]["prompt"].tolist() == ["train_3"]


def test_arrow_and_line_paths_agree(hand_log, tmp_path, records, write_jsonl):
    """The columnar fast path and the line-by-line fallback give the same aggregate."""
    data = hand_log.read_bytes()
    a = logstats.scan_arrow(data, Thresholds())
    b = scan_bytes(data, Thresholds(), base_offset=0, at_eof=True)
    for x in (a, b):
        x.flush()
    assert a.rollouts == b.rollouts == 10
    assert a.keys == b.keys
    np.testing.assert_allclose(a.per_prompt, b.per_prompt)
    np.testing.assert_allclose(a.groups(), b.groups())
    assert a.cache == b.cache and a.tokens == b.tokens and a.cost == b.cost
    assert {k: pytest.approx(v) for k, v in a.subscores.items()} == b.subscores
    assert a.labels == b.labels and a.generator_cost == b.generator_cost


def test_many_chunks_give_the_same_answer(hand_log, tmp_path, records, write_jsonl, monkeypatch):
    many = write_jsonl(tmp_path / "many.jsonl", records * 50)
    whole = scan_jsonl(str(many), Thresholds())
    monkeypatch.setattr(logstats, "CHUNK_BYTES", 700)   # about one line per chunk
    chunked = scan_jsonl(str(many), Thresholds())
    assert chunked.rollouts == whole.rollouts == 500 and chunked.lines == 500
    np.testing.assert_allclose(chunked.per_prompt, whole.per_prompt)
    np.testing.assert_allclose(chunked.groups(), whole.groups())
    assert chunked.sk["judge"].quantiles([0.5]) == whole.sk["judge"].quantiles([0.5])


def test_malformed_and_truncated_lines_are_counted(tmp_path, records, write_jsonl, capsys):
    bad = write_jsonl(tmp_path / "bad.jsonl", [records[0], b"{not json", records[1], b"[1, 2]", b"", records[2],
                                               b"null"],
                      tail=b'{"dataset_id": "train_9", "judge_sc')
    assert main([str(bad), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["logs"][0]
    r = s["read"]
    assert s["rollouts"] == 3
    assert r["malformed_lines"] == 3 and r["truncated_last_line"] == 1 and r["blank_lines"] == 1
    assert r["lines"] == 8
    assert [p["line"] for p in r["problems"]] == [2, 4, 7, 8]
    assert "truncated" in r["problems"][3]["reason"] and "not an object" in r["problems"][2]["reason"]


def test_strict_makes_them_fatal_with_file_and_line(tmp_path, records, write_jsonl, capsys):
    bad = write_jsonl(tmp_path / "bad.jsonl", [records[0], records[1], b"{not json", records[2]])
    assert main([str(bad), "--strict"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 2  # "found ..." and the one error line
    trunc = write_jsonl(tmp_path / "trunc.jsonl", records[:3], tail=b'{"uid": "x", "ndcg": 0.')
    assert main([str(trunc), "--strict", "--json"]) == 2
    assert f"{trunc}:4" in capsys.readouterr().err


def test_event_log_reads_reward_events_only(tmp_path, records, write_jsonl):
    events = [{"event_type": "run.start", "config": {"n_agent": 2}, "global_step": 0}]
    for rec in records:
        step = rec.pop("step")
        events.append({"event_type": "tool.search.request", "uid": rec["uid"], "query": "q", "global_step": step})
        events.append({"event_type": "rm.flash.detail", "global_step": step, **rec})
    path = write_jsonl(tmp_path / "events.jsonl", events)
    rep = _report(path)
    s = rep.summary
    assert s["rollouts"] == 10 and s["read"]["skipped_records"] == 11
    assert s["steps"] == {"count": 2, "first": 1, "last": 2}
    assert s["scores"]["judge"]["mean"] == pytest.approx(4.6 / 9, abs=1e-6)


def test_aliases_nan_and_odd_values(tmp_path, write_jsonl):
    lines = [
        {"uid": "g1", "model_eval_score": 1.0, "ndcg_value": 0.5, "global_step": 3},
        b'{"uid": "g1", "judge_score": NaN, "ndcg": 1.0, "step": 3}',
        {"uid": "g2", "judge_score": "high", "ndcg": 0.25, "step": 4},
        {"uid": "g2", "judge_score": True, "ndcg": None, "step": 4},
    ]
    rep = _report(write_jsonl(tmp_path / "odd.jsonl", lines))
    s = rep.summary
    assert s["rollouts"] == 4 and s["prompts"] == 2
    j = s["scores"]["judge"]
    assert j["n"] == 1 and j["mean"] == 1.0 and j["nonfinite"] == 1 and j["invalid"] == 2
    assert s["scores"]["ndcg"]["n"] == 3 and s["scores"]["ndcg"]["missing"] == 1
    assert [r["step"] for r in s["per_step"]] == [3, 4]


def test_three_log_shapes_give_the_same_summary(tmp_path, capsys):
    """The generator's step-keyed document, JSON Lines and event log of one simulated run."""
    from ddai.examples.generate import write_example_set

    shapes = ("steps_json", "jsonl", "events", "parquet_log")
    truth = write_example_set(tmp_path, n_prompts=30, seed=5, shapes=shapes, response_bytes=50)
    paths = [tmp_path / truth.files[s] for s in shapes]
    assert main([*map(str, paths), "--json"]) == 0
    logs = json.loads(capsys.readouterr().out)["logs"]
    assert [lg["format"] for lg in logs] == ["steps_json", "jsonl", "events", "parquet"]
    n_rollouts = sum(len(g.ndcg) for g in truth.groups)
    for lg in logs:
        assert lg["rollouts"] == n_rollouts
        assert lg["prompts"] == len({g.uid for g in truth.groups})
        assert lg["steps"]["count"] == len({g.step for g in truth.groups})
    judge = [j for g in truth.groups for j in g.judge]
    for name in ("judge", "ndcg", "final"):
        means = {lg["scores"][name]["mean"] for lg in logs}
        assert len(means) == 1, (name, means)
    assert logs[1]["scores"]["judge"]["mean"] == pytest.approx(sum(judge) / len(judge), abs=1e-6)
    assert logs[2]["read"]["skipped_records"] > 0
