"""Benchmark (not a test): judge throughput, retries and replay cost of the reward hook.

N rollouts (default 512) go through ``ddai.reward.verl_reward.compute_score`` (real
google-genai client, cache, judge log) against the FAKE Gemini server of tests/fakes, run in
its own process (a real judge is remote; sharing the GIL would bill the fake's CPU to the
client) and answering after latency L +- jitter. The per-worker concurrency limit is C.

Baseline: the ideal wall time ceil(N / C) * L of a perfect C-wide pipeline;
efficiency = bound / wall (goal >= 0.90). Then 10 % of calls answered 429/503: all N must be
scored and none paid twice (paid calls counted at the fake). Then a replay of the same batch
must make 0 paid calls (cache).

    python benchmarks/bench_judge.py [--n 512] [--latency 0.5] [--jitter 0.05] [--concurrency 64] [--mode production_text]
    python benchmarks/bench_judge.py --tiny      # seconds; correctness goals only (what the test runs)

Progress goes to stderr; one JSON object with the figures goes to stdout; exit 1 if a goal is missed
(in --tiny mode the throughput goal is reported but not enforced: a tiny run measures nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing as mp
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fakes"))
sys.path.insert(0, str(ROOT))

from ddai.reward import verl_reward
from ddai.reward.judge_log import log_files


def _serve_fake(conn) -> None:
    from fake_servers import FakeGemini

    fake = FakeGemini().start()
    conn.send(fake.url)
    conn.recv()  # block until told to stop
    fake.stop()


def _fake(url: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body or {}).encode()
    req = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _rollouts(n: int) -> list[dict]:
    out = []
    for i in range(n):
        answer = "Credit Cards" if i % 3 else "Debit Cards"
        out.append({
            "data_source": "slidevqa_train",
            "solution_str": f"<think>t{i}</think><search>q{i}</search><think>ok</think>"
                            f"<search_complete>true</search_complete><answer>{answer}</answer>",
            "ground_truth": "Credit Cards",
            "extra_info": {"question": f"question {i}?", "file_name": f"{i}.pdf", "reference_page": [1],
                           "ddai": {"dataset_id": f"train_{i}", "uid": f"g{i // 8}", "sample_idx": i % 8,
                                    "retrieved_basenames": [f"{i}_2", f"{i}_1"], "generated_answer": answer,
                                    "format_ok": True, "step": 1}},
        })
    return out


async def _score_all(rollouts: list[dict], kwargs: dict) -> list[dict]:
    """Scores; a dropped rollout (judgment failed after retries) comes back as judge_failed=1."""
    out = await asyncio.gather(*(verl_reward.compute_score(**r, **kwargs) for r in rollouts), return_exceptions=True)
    for r in out:
        if isinstance(r, BaseException) and not isinstance(r, verl_reward.JudgmentUnavailable):
            raise r
    return [{"judge_failed": 1.0, "judge_latency_s": 0.0, "cache_hit": 0.0, "judge_cost_usd": 0.0}
            if isinstance(r, BaseException) else r for r in out]


async def _raw_sdk(url: str, n: int, concurrency: int) -> float:
    """Baseline: the bare google-genai client, same fake, same concurrency, nothing of ddai around it."""
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="bench-key", http_options=types.HttpOptions(base_url=url)).aio
    sem = asyncio.Semaphore(concurrency)
    cfg = types.GenerateContentConfig(response_mime_type="application/json",
                                      response_schema={"type": "OBJECT", "properties": {"score": {"type": "NUMBER"}}})

    async def one(i: int) -> None:
        async with sem:
            await client.models.generate_content(
                model="gemini-3-flash-preview", contents=[f"Reference answer: a\nGenerated answer: raw {i}"], config=cfg)

    await one(-1)  # warm-up
    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    wall = time.perf_counter() - t0
    await client.aclose()
    return wall


def _phase(name: str, url: str, rollouts: list[dict], kwargs: dict, bound: float | None) -> dict:
    before = _fake(url, "/_fake/stats")
    t0 = time.perf_counter()
    results = asyncio.run(_score_all(rollouts, kwargs))
    wall = time.perf_counter() - t0
    after = _fake(url, "/_fake/stats")
    row = {
        "phase": name,
        "rollouts": len(rollouts),
        "scored": sum(1 for r in results if r["judge_failed"] == 0.0),
        "judge_failed": sum(1 for r in results if r["judge_failed"] == 1.0),
        "http_calls": after["calls"] - before["calls"],
        "paid_calls": after["paid_calls"] - before["paid_calls"],
        "max_paid_per_rollout": after["max_paid_per_prompt"],
        "errors_answered": sum(v for k, v in after["status_counts"].items() if k != "200")
        - sum(v for k, v in before["status_counts"].items() if k != "200"),
        "mean_call_latency_s": round(sum(r["judge_latency_s"] for r in results) / len(results), 3),
        "cache_hits": sum(1 for r in results if r["cache_hit"] == 1.0),
        "wall_s": round(wall, 3),
        "cost_usd": round(sum(r["judge_cost_usd"] for r in results), 6),
    }
    if bound is not None:
        row["bound_s"] = round(bound, 3)
        row["efficiency"] = round(bound / wall, 3)
    print(f"[bench] {name}: {json.dumps(row)}", file=sys.stderr)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--latency", type=float, default=0.5, help="fake judge latency L (s)")
    ap.add_argument("--jitter", type=float, default=0.05, help="uniform +- jitter around L (s)")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--error-rate", type=float, default=0.10)
    ap.add_argument("--error-latency", type=float, default=0.05,
                    help="how fast the fake answers an injected 429/503 (rejections come back quickly)")
    ap.add_argument("--mode", default="production_text", help="judge_mode (text modes: no page images needed)")
    ap.add_argument("--tiny", action="store_true", help="24 rollouts, 20 ms latency: a smoke run for the test suite")
    args = ap.parse_args()
    if args.tiny:
        args.n, args.latency, args.jitter, args.concurrency, args.error_latency = 24, 0.02, 0.0, 8, 0.01

    os.environ.setdefault("GEMINI_API_KEY", "bench-key")
    rollouts = _rollouts(args.n)
    bound = math.ceil(args.n / args.concurrency) * args.latency
    figures: dict = {"n": args.n, "latency_s": args.latency, "jitter_s": args.jitter, "concurrency": args.concurrency,
                     "error_rate": args.error_rate, "error_latency_s": args.error_latency}
    parent, child = mp.get_context("fork").Pipe()
    server = mp.get_context("fork").Process(target=_serve_fake, args=(child,), daemon=True)
    server.start()
    url = parent.recv()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            base = {"judge_base_url": url, "judge_mode": args.mode, "concurrency": args.concurrency,
                    "retry": {"max_attempts": 6, "initial_delay_s": 0.05, "max_delay_s": 1.0, "jitter_s": 0.05,
                              "timeout_s": 30.0, "total_budget_s": 120.0}}
            _fake(url, "/_fake/config", {"latency_s": args.latency, "jitter_s": args.jitter})
            raw_wall = asyncio.run(_raw_sdk(url, args.n, args.concurrency))
            figures["raw_sdk_baseline"] = {"wall_s": round(raw_wall, 3), "bound_s": bound,
                                           "efficiency": round(bound / raw_wall, 3)}
            print(f"[bench] raw_sdk_baseline: {json.dumps(figures['raw_sdk_baseline'])}", file=sys.stderr)
            # Warm-up outside the timings: SDK import and client creation happen once per worker process.
            warm = {**base, "cache_path": None, "log_path": None}
            asyncio.run(_score_all(_rollouts(1), warm))
            _fake(url, "/_fake/config", {"latency_s": args.latency, "jitter_s": args.jitter, "reset": True})
            clean = {**base, "cache_path": f"{tmp}/clean_cache", "log_path": f"{tmp}/clean.jsonl"}
            figures["clean"] = _phase("clean", url, rollouts, clean, bound)

            # Fresh rollouts for the error phase so "paid at most once" is measured on its own.
            flaky_rollouts = [{**r, "solution_str": r["solution_str"] + " "} for r in rollouts]
            for r in flaky_rollouts:
                r["extra_info"] = {**r["extra_info"], "ddai": {**r["extra_info"]["ddai"],
                                                               "dataset_id": r["extra_info"]["ddai"]["dataset_id"] + "b"}}
            _fake(url, "/_fake/config", {"latency_s": args.latency, "jitter_s": args.jitter,
                                         "error_rate": args.error_rate, "seed": 7, "reset": True,
                                         "error_latency_s": args.error_latency})
            flaky = {**base, "cache_path": f"{tmp}/flaky_cache", "log_path": f"{tmp}/flaky.jsonl"}
            figures["errors"] = _phase("errors", url, flaky_rollouts, flaky, bound)

            _fake(url, "/_fake/config", {"latency_s": args.latency, "jitter_s": args.jitter})
            figures["replay"] = _phase("replay", url, flaky_rollouts, flaky, None)
            figures["log_lines_errors_plus_replay"] = sum(
                len(p.read_text().splitlines()) for p in log_files(f"{tmp}/flaky.jsonl"))
    finally:
        parent.send("stop")
        server.join(10)

    errors = figures["errors"]
    # With retries the ideal pipeline also has to carry the extra attempts:
    errors["bound_with_retries_s"] = (math.ceil(args.n / args.concurrency) * args.latency
                                      + math.ceil(errors["errors_answered"] / args.concurrency) * args.error_latency)
    errors["efficiency_with_retries"] = round(errors["bound_with_retries_s"] / errors["wall_s"], 3)
    figures["clean"]["relative_to_raw_sdk"] = round(figures["raw_sdk_baseline"]["wall_s"] / figures["clean"]["wall_s"], 3)
    figures["mode"] = args.mode
    figures["tiny"] = args.tiny
    figures["goals"] = {
        "efficiency_clean_ge_0.90": figures["clean"]["efficiency"] >= 0.90 or args.tiny,
        "errors_all_scored": errors["scored"] == args.n,
        "errors_none_paid_twice": errors["max_paid_per_rollout"] == 1 and errors["paid_calls"] == args.n,
        "replay_zero_paid": figures["replay"]["paid_calls"] == 0 and figures["replay"]["http_calls"] == 0,
    }
    sys.stdout.write(json.dumps(figures, sort_keys=True) + "\n")
    return 0 if all(figures["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
