"""Seeded generator of realistic ddai inputs whose true difficulty is known.

Why: tests, the bundled default run and the benchmark all need data that looks like what the
users have on disk (the DDAI/VRAG training parquet written by HF datasets; Phase 1 logs in the
step-keyed, JSON Lines and event shapes, with emoji keys, long responses full of escapes, NaN
scores, orphans and repeats) *and* whose answer is known, so a test can check that ddai found
it. Every prompt gets a latent hit probability ``p``; each agent views 1-4 pages and hits a
reference page with probability ``p``; NDCG follows DESIGN.md exactly from the viewed pages.

Everything is driven by one ``random.Random(seed)``: same arguments, same bytes.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ddai.atomic import atomic_path, atomic_write_text

SHAPES = ("steps_json", "jsonl", "events", "phase2_jsonl", "parquet_log")
DEFAULT_SHAPES = ("steps_json", "jsonl", "events")

SYSTEM_PROMPT = (
    "You are a search agent.\n\nYou must always begin with <think>...</think> showing your reasoning "
    "about the question.\n\nAfter reasoning, output exactly one action tag among <search>...</search> or "
    "<bbox>[x1, y1, x2, y2]</bbox> or <search_complete>true</search_complete>.\n\nDo not write anything "
    "before <think>. Keep actions on a new line after </think>.\n\nWhen using <search>, vary or refine the "
    "query using evidence from previous steps, and do not repeat the same query twice."
)
FINAL_KEY = "\u2b50\ufe0ffinal_score\u2b50\ufe0f"        # "⭐️final_score⭐️" as the users' logs spell it
ANSWER_KEY = "\U0001f4e3generated_answer\U0001f4e3"       # "📣generated_answer📣"

# --- vocabulary for questions and responses -------------------------------------------------
_TOPICS = ["mobile payments", "cloud adoption", "e-commerce sales", "smartphone shipments", "solar capacity",
           "broadband subscribers", "retail footfall", "social media usage", "venture funding", "data breaches",
           "online advertising", "electric vehicles", "tourism revenue", "app downloads", "employee turnover",
           "customer churn", "wind power", "coffee exports", "video streaming", "digital literacy"]
_PLACES = ["India", "Brazil", "Germany", "Korea", "the US", "Japan", "Kenya", "Indonesia", "France", "Mexico",
           "Nigeria", "Canada", "Vietnam", "Spain", "Australia", "Turkey", "Chile", "Poland", "Egypt", "Sweden"]
_FORMS = [
    "Which was larger in {place} in {year}, {topic} or {topic2}?",
    "What percentage of {topic} in {place} came from mobile devices in {year}?",
    "By how many points did {topic} grow in {place} between {year} and {year2}?",
    "What does the slide titled \"{Topic} in {place}\" list as the top driver?",
    "How many companies are shown in the {topic} chart for {place} ({year})?",
    "Which company ranks second for {topic} in {place} according to the {year} survey?",
    "What is the ratio of {topic} to {topic2} in {place} in {year}?",
    "In {year}, what share of {place}'s {topic} was attributed to SMEs?",
]
_ANSWERS = ["Credit Cards", "42%", "3.5 million", "Samsung", "2013", "1:4", "Debit Cards", "17", "Asia-Pacific",
            "up 12 points", "Retail", "Twitter", "58.3%", "Google", "8", "USD 2.1 billion"]
_FILLER = [
    "The chart on this slide compares the two series by quarter.",
    "I need to verify the exact figure before answering.",
    "The legend says \"values in %\" and the source is a 2013 survey.",
    "Path seen in the viewer: C:\\slides\\deck\\page.png (ignored).",
    "표의 두 번째 열이 질문과 관련이 있어 보입니다.",
    "The bar for the second category is clearly taller \U0001f4ca.",
    "Tab-separated values:\tQ1\tQ2\tQ3",
    "A JSON-looking fragment {\"scores\": {\"ndcg_value\": 1.0}} appears in the footnote.",
    "Backslash-quote sequence \\\" should not confuse a parser.",
    "The title reads 'Mobile Payments' and the footer cites the central bank.",
]

_BASE_TIME = _dt.datetime(2025, 11, 3, 9, 0, 0, tzinfo=_dt.timezone.utc)


@dataclass
class RowTruth:
    """One dataset row and the latent truth behind it."""

    id: str
    deck: str
    question: str
    answer: str
    reference_page: list[int]
    p_hit: float            # latent probability that one page view hits a reference page
    logged: bool            # whether any Phase 1 group was generated for this row


@dataclass
class GroupTruth:
    """One logged group (prompt at one step) with exactly the scores written to the logs."""

    uid: str
    step: int
    dataset_id: str | None  # None: the deck is not in the dataset (orphan group)
    deck: str
    question: str
    ndcg: list[Any]         # as written: float, None (null or missing key), NaN, out of range, str
    judge: list[float]
    final: list[Any]
    missing_ndcg: list[bool] = field(default_factory=list)  # True where the key was left out

    def usable_ndcg(self) -> list[float]:
        """The NDCG values a correct reader/statistics must use (finite numbers in [0, 1])."""
        return [float(v) for v in self.ndcg if _usable(v)]


@dataclass
class GroundTruth:
    """What was generated: rows, groups, and the settings used."""

    seed: int
    settings: dict[str, Any]
    rows: list[RowTruth]
    groups: list[GroupTruth]
    files: dict[str, str] = field(default_factory=dict)  # shape -> file name

    def groups_by_dataset_id(self) -> dict[str, list[GroupTruth]]:
        out: dict[str, list[GroupTruth]] = {}
        for g in self.groups:
            if g.dataset_id is not None:
                out.setdefault(g.dataset_id, []).append(g)
        return out

    def pooled_mean_ndcg(self) -> dict[str, float | None]:
        """Mean of all usable NDCG values per dataset id, pooled over steps (None: no usable value)."""
        out: dict[str, float | None] = {}
        for did, groups in self.groups_by_dataset_id().items():
            vals = [v for g in groups for v in g.usable_ndcg()]
            out[did] = sum(vals) / len(vals) if vals else None
        return out

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"), default=str)


def _usable(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0.0 <= v <= 1.0


def ndcg(retrieved: Sequence[str], reference: Sequence[str]) -> float:
    """NDCG exactly as DESIGN.md defines it (binary relevance, viewing order, no cutoff)."""
    if not reference:
        return 0.0
    gold = set(reference)
    dcg = sum(1.0 / math.log2(i + 2) for i, doc in enumerate(retrieved) if doc in gold)
    n_ideal = len(reference)
    idcg = sum(1.0 / math.log2(i + 2) for i in range(n_ideal))
    return dcg / idcg if idcg > 0 else 0.0


# --- dataset ----------------------------------------------------------------------------------

def _sample_p(rng: random.Random) -> float:
    """Latent difficulty mixture: many easy prompts, a middle band, a hard tail (as in Phase 1)."""
    u = rng.random()
    if u < 0.45:
        return rng.betavariate(9, 1.5)
    if u < 0.80:
        return rng.betavariate(2, 2.5)
    return rng.betavariate(1, 9)


def _question(rng: random.Random, used: set[str]) -> str:
    while True:
        t1, t2 = rng.sample(_TOPICS, 2)
        year = rng.randint(2008, 2016)
        q = rng.choice(_FORMS).format(topic=t1, topic2=t2, Topic=t1.title(), place=rng.choice(_PLACES),
                                      year=year, year2=year + rng.randint(1, 4))
        if q not in used:
            used.add(q)
            return q


def generate_dataset(n: int, seed: int = 0) -> list[RowTruth]:
    """``n`` dataset rows (deck ids unique, questions unique) with latent difficulties."""
    rng = random.Random(f"ddai-dataset-{seed}")
    decks = sorted(rng.sample(range(1, max(20 * n, 100)), n))
    used: set[str] = set()
    rows = []
    for deck in decks:
        n_ref = 1 if rng.random() < 0.8 else 2
        pages = sorted(rng.sample(range(1, 21), n_ref))
        rows.append(RowTruth(id=f"train_{deck}", deck=str(deck), question=_question(rng, used),
                             answer=rng.choice(_ANSWERS), reference_page=pages, p_hit=round(_sample_p(rng), 4),
                             logged=False))
    return rows


def _hf_metadata() -> bytes:
    """The ``huggingface`` schema metadata HF datasets (2.x/3.x, as the users' files) writes."""
    v = lambda dt: {"dtype": dt, "_type": "Value"}
    seq = lambda f: {"feature": f, "_type": "Sequence"}
    features = {
        "id": v("string"), "file_name": v("string"), "reference_page": seq(v("int64")),
        "data_source": v("string"),
        "prompt": [{"content": v("string"), "role": v("string")}],
        "reward_model": {"ground_truth": v("string"), "style": v("string")},
        "extra_info": {"answer": v("string"), "file_name": v("string"), "index": v("int64"),
                       "question": v("string"), "reference_page": seq(v("int64")), "split": v("string")},
    }
    return json.dumps({"info": {"features": features}}).encode()


def _list(t: pa.DataType) -> pa.DataType:
    """A list type whose item field is named "element", as parquet stores it (and reads it back)."""
    return pa.list_(pa.field("element", t))


DATASET_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("file_name", pa.string()),
        ("reference_page", _list(pa.int64())),
        ("data_source", pa.string()),
        ("prompt", _list(pa.struct([("content", pa.string()), ("role", pa.string())]))),
        ("reward_model", pa.struct([("ground_truth", pa.string()), ("style", pa.string())])),
        ("extra_info", pa.struct([("answer", pa.string()), ("file_name", pa.string()), ("index", pa.int64()),
                                  ("question", pa.string()), ("reference_page", _list(pa.int64())),
                                  ("split", pa.string())])),
    ],
    metadata={b"huggingface": _hf_metadata()},
)


def dataset_table(rows: Sequence[RowTruth]) -> pa.Table:
    """The training parquet's table, exactly in the users' nested schema."""
    records = []
    for i, r in enumerate(rows):
        records.append({
            "id": r.id, "file_name": f"{r.deck}.pdf", "reference_page": list(r.reference_page),
            "data_source": "slidevqa_train",
            "prompt": [{"content": SYSTEM_PROMPT, "role": "system"},
                       {"content": f"Question: {r.question}", "role": "user"}],
            "reward_model": {"ground_truth": r.answer, "style": "rule"},
            "extra_info": {"answer": r.answer, "file_name": f"{r.deck}.pdf", "index": i, "question": r.question,
                           "reference_page": list(r.reference_page), "split": "test"},
        })
    return pa.Table.from_pylist(records, schema=DATASET_SCHEMA)


def write_dataset(path: str | Path, rows: Sequence[RowTruth]) -> None:
    """Write the training parquet (snappy, one row group, HF metadata) atomically."""
    with atomic_path(path) as tmp:
        pq.write_table(dataset_table(rows), tmp, compression="snappy", row_group_size=max(len(rows), 1))


# --- logs -------------------------------------------------------------------------------------

def decoded_prompt(question: str) -> str:
    """The prompt as the users' logs hold it: the chat template decoded to text."""
    return (f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n"
            f"Question: {question}<|im_end|>\n<|im_start|>assistant\n")


def _response(rng: random.Random, question: str, viewed: list[str], answer: str, size: int) -> str:
    parts = []
    for doc in viewed:
        parts.append(f"<think>Find the slide.</think>\n<search>{question[:40]}</search>\n"
                     f" [Image Paths: {doc}.jpg] <|vision_start|><|image_pad|><|vision_end|>\n")
    body = "".join(parts)
    while len(body.encode()) < size - 80:
        body += "<think>" + " ".join(rng.choice(_FILLER) for _ in range(3)) + "</think>\n"
    return body + f"<search_complete>true</search_complete>\n<answer>{answer}</answer>"


@dataclass
class _Agent:
    agent_id: int
    retrieved: list[str]
    reference: list[str]
    ndcg_written: Any
    ndcg_missing: bool
    judge: float
    final: Any
    response: str
    answer: str
    latency: float
    error: str | None


def _simulate_agent(rng: random.Random, row: RowTruth, p: float, agent_id: int, response_bytes: int,
                    bad_fraction: float, deck_pages: int, nan_scores: bool = True) -> _Agent:
    reference = [f"{row.deck}_{pg}" for pg in row.reference_page]
    n_views = rng.randint(1, 4)
    pool_other = [f"{row.deck}_{pg}" for pg in range(1, deck_pages + 1) if pg not in row.reference_page]
    rng.shuffle(pool_other)
    remaining_ref = list(reference)
    viewed: list[str] = []
    for _ in range(n_views):
        if remaining_ref and rng.random() < p:
            viewed.append(remaining_ref.pop(0))
        elif pool_other:
            viewed.append(pool_other.pop())
    value = ndcg(viewed, reference)
    judge = min(1.0, max(0.0, round(rng.gauss(0.25 + 0.65 * value, 0.2), 1)))
    answer = row.answer if judge >= 0.5 else rng.choice(_ANSWERS)
    written: Any = value
    missing = False
    error = None
    if rng.random() < bad_fraction:
        kind = rng.choice(["missing", "null", "nan", "neg", "over", "str"])
        written = {"missing": None, "null": None, "nan": float("nan") if nan_scores else None, "neg": -0.25,
                   "over": 1.7, "str": "n/a"}[kind]
        missing = kind == "missing"
        error = "judge timeout after 3 attempts" if kind in ("null", "missing") else None
    final = 0.8 * judge + 0.2 * value
    resp_size = max(64, int(response_bytes * rng.uniform(0.5, 1.5))) if response_bytes > 0 else 0
    response = _response(rng, row.question, viewed, answer, resp_size) if resp_size else ""
    return _Agent(agent_id, viewed, reference, written, missing, judge, final, response, answer,
                  round(rng.uniform(0.8, 9.5), 3), error)


def _plan_groups(rng: random.Random, rows: list[RowTruth], n_orphans: int, coverage: float,
                 repeat_fraction: float, groups_per_step: int, seed: int) -> list[tuple[int, RowTruth, bool]]:
    """Which rows are logged at which steps: (step, row, is_orphan), in log order."""
    logged = [r for r in rows if rng.random() < coverage]
    for r in logged:
        r.logged = True
    orphan_rows = []
    existing = {r.deck for r in rows}
    orng = random.Random(f"ddai-orphans-{seed}")
    used: set[str] = {r.question for r in rows}
    while len(orphan_rows) < n_orphans:
        deck = str(orng.randint(1, 40 * max(len(rows), 10)))
        if deck in existing:
            continue
        existing.add(deck)
        orphan_rows.append(RowTruth(id=f"train_{deck}", deck=deck, question=_question(orng, used),
                                    answer=orng.choice(_ANSWERS), reference_page=[orng.randint(1, 20)],
                                    p_hit=round(_sample_p(orng), 4), logged=True))
    entries = [(r, False) for r in logged] + [(r, True) for r in orphan_rows]
    rng.shuffle(entries)
    n_steps = max(1, math.ceil(len(entries) / groups_per_step))
    plan = []
    for i, (r, orphan) in enumerate(entries):
        plan.append((i // groups_per_step + 1, r, orphan))
    # Repeats: the same prompt again at a later step (another epoch or a resampled batch).
    repeats = [e for e in entries if rng.random() < repeat_fraction]
    for r, orphan in repeats:
        first = next(s for s, rr, _ in plan if rr is r)
        later = rng.randint(first + 1, n_steps + 2) if first < n_steps + 2 else first + 1
        plan.append((later, r, orphan))
    plan.sort(key=lambda e: e[0])  # stable: order within a step kept
    return plan


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _scores_obj(a: _Agent) -> dict[str, Any]:
    scores: dict[str, Any] = {"raw_score": 1.0, "model_eval_score": a.judge}
    if not a.ndcg_missing:
        scores["ndcg_value"] = a.ndcg_written
    scores[FINAL_KEY] = a.final
    scores["fail_reason"] = a.error
    scores["ndcg_details"] = {"retrieved_documents": a.retrieved, "reference_documents": a.reference}
    return scores


def _jsonl_record(a: _Agent, uid: str, row: RowTruth, step: int, idx: int, ts: str) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "uid": uid, "sample_idx": idx, "step": step, "query": row.question, "generated_answer": a.answer,
        "reference_answer": row.answer, "retrieved_basenames": a.retrieved, "reference_basenames": a.reference,
        "judge_score": a.judge,
    }
    if not a.ndcg_missing:
        rec["ndcg"] = a.ndcg_written
    rec.update({"final_score": a.final, "latency_s": a.latency, "error": a.error, "timestamp": ts, "pid": 4242})
    return rec


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


class _Writers:
    """Open writers for the requested shapes; the step document is streamed, never held whole."""

    def __init__(self, out_dir: Path, shapes: Sequence[str], names: dict[str, str], indent: int | None):
        self.out_dir = out_dir
        self.shapes = set(shapes)
        self.names = names
        self.indent = indent
        self._ctx: dict[str, Any] = {}
        self.fh: dict[str, Any] = {}
        self.parquet_rows: list[dict[str, Any]] = []
        self._step_open: int | None = None
        self._first_group = True
        for shape in ("steps_json", "jsonl", "events", "phase2_jsonl"):
            if shape in self.shapes:
                ctx = atomic_path(out_dir / names[shape])
                tmp = ctx.__enter__()
                self._ctx[shape] = ctx
                self.fh[shape] = open(tmp, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 - closed in close()
        if "steps_json" in self.fh:
            self.fh["steps_json"].write("{")

    def group(self, step: int, uid: str, prompt: str, agents: list[dict[str, Any]]) -> None:
        fh = self.fh.get("steps_json")
        if fh is None:
            return
        ind = self.indent
        nl = "\n" if ind else ""
        pad = " " * (ind or 0)
        if self._step_open != step:
            if self._step_open is not None:
                fh.write(f"{nl}{pad}}},")
            fh.write(f"{nl}{pad}{_dumps(f'step_{step}')}: {{")
            self._step_open = step
            self._first_group = True
        if not self._first_group:
            fh.write(",")
        self._first_group = False
        body = json.dumps({"prompt": prompt, "agents": agents}, ensure_ascii=False, indent=ind)
        if ind:
            body = body.replace("\n", "\n" + pad * 2)
        fh.write(f"{nl}{pad * 2}{_dumps(uid)}: {body}")

    def line(self, shape: str, rec: dict[str, Any]) -> None:
        fh = self.fh.get(shape)
        if fh is not None:
            fh.write(_dumps(rec) + "\n")

    def close(self, ok: bool) -> None:
        if "steps_json" in self.fh:
            fh = self.fh["steps_json"]
            nl = "\n" if self.indent else ""
            pad = " " * (self.indent or 0)
            if self._step_open is not None:
                fh.write(f"{nl}{pad}}}")
            fh.write(f"{nl}}}\n")
        for fh in self.fh.values():
            fh.close()
        for ctx in self._ctx.values():
            if ok:
                ctx.__exit__(None, None, None)
            else:
                ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)
        if ok and "parquet_log" in self.shapes:
            table = pa.Table.from_pylist(self.parquet_rows)
            with atomic_path(self.out_dir / self.names["parquet_log"]) as tmp:
                pq.write_table(table, tmp, compression="snappy")


DEFAULT_NAMES = {
    "dataset": "slidevqa_train_example.parquet",
    "steps_json": "gspo_phase1.json",
    "jsonl": "gspo_phase1.jsonl",
    "events": "unified_events.jsonl",
    "phase2_jsonl": "gspo_gemini_output.jsonl",
    "parquet_log": "gspo_phase1_log.parquet",
    "truth": "ground_truth.json",
}


def write_example_set(
    out_dir: str | Path,
    n_prompts: int = 400,
    seed: int = 0,
    *,
    shapes: Iterable[str] = DEFAULT_SHAPES,
    response_bytes: int = 2000,
    n_agents: int = 5,
    coverage: float = 0.75,
    orphan_fraction: float = 0.05,
    repeat_fraction: float = 0.08,
    bad_score_fraction: float = 0.01,
    groups_per_step: int = 32,
    indent: int | None = None,
    write_truth: bool = True,
    names: dict[str, str] | None = None,
    nan_scores: bool = True,
    rows: Sequence[RowTruth] | None = None,
) -> GroundTruth:
    """Write a dataset parquet plus Phase 1 logs in ``shapes`` to ``out_dir``; return the truth.

    ``coverage``: share of dataset rows that get log records (the rest are "unmatched");
    ``orphan_fraction``: extra log groups (relative to ``n_prompts``) whose deck is not in the
    dataset; ``repeat_fraction``: share of logged prompts seen again at a later step;
    ``bad_score_fraction``: share of rollouts whose NDCG is missing, null, NaN, out of [0, 1]
    or a string (``nan_scores=False``: no NaN literals, which strict JSON parsers such as orjson
    reject); ``response_bytes``: mean response length (uniform 0.5x-1.5x).
    ``rows``: log these dataset rows (copies; ``n_prompts`` is then ignored) instead of newly
    generated ones — so a later round's log (Phase 2) joins to an existing dataset.
    """
    shapes = tuple(shapes)
    unknown = set(shapes) - set(SHAPES)
    if unknown:
        raise ValueError(f"unknown shapes {sorted(unknown)}; known: {', '.join(SHAPES)}")
    names = {**DEFAULT_NAMES, **(names or {})}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = generate_dataset(n_prompts, seed) if rows is None else [replace(r, logged=False) for r in rows]
    rng = random.Random(f"ddai-logs-{seed}")
    plan = _plan_groups(rng, rows, round(orphan_fraction * n_prompts), coverage, repeat_fraction,
                        groups_per_step, seed)
    write_dataset(out / names["dataset"], rows)
    writers = _Writers(out, shapes, names, indent)
    groups: list[GroupTruth] = []
    ok = False
    try:
        run_id = _uuid(rng)
        writers.line("events", {"ts": _BASE_TIME.isoformat(), "host": "gpu-node-01", "pid": 4242, "run_id": run_id,
                                "event_type": "run.start", "config": {"n_agent": n_agents}})
        seen_step = None
        for k, (step, row, orphan) in enumerate(plan):
            uid = _uuid(rng)
            ts = (_BASE_TIME + _dt.timedelta(seconds=7 * k)).isoformat()
            static = {"ts": ts, "host": "gpu-node-01", "pid": 4242, "run_id": run_id, "project_name": "ddai",
                      "experiment_name": "gspo_phase1", "n_agent": n_agents, "epoch": 0, "global_step": step}
            if step != seen_step:
                writers.line("events", {**static, "event_type": "train.step.start", "ids": []})
                seen_step = step
            agents = [_simulate_agent(rng, row, row.p_hit, i + 1, response_bytes, bad_score_fraction,
                                      deck_pages=24, nan_scores=nan_scores) for i in range(n_agents)]
            writers.group(step, uid, decoded_prompt(row.question),
                          [{"agent_id": a.agent_id, "response": a.response, ANSWER_KEY: a.answer,
                            "scores": _scores_obj(a)} for a in agents])
            for i, a in enumerate(agents):
                rec = _jsonl_record(a, uid, row, step, i, ts)
                writers.line("jsonl", rec)
                writers.line("events", {**static, "event_type": "tool.search.request", "uid": uid,
                                        "sample_idx": i, "query": row.question[:60], "search_id": k * 10 + i})
                writers.line("events", {**static, "event_type": "rm.flash.detail",
                                        **{kk: vv for kk, vv in rec.items() if kk != "step"}})
                if "phase2_jsonl" in writers.shapes:
                    writers.line("phase2_jsonl", _phase2_record(rng, a, uid, row, step, i, ts))
                if "parquet_log" in writers.shapes:
                    writers.parquet_rows.append({**rec, "ndcg": _as_float(rec.get("ndcg")),
                                                 "judge_score": float(a.judge), "final_score": float(a.final)})
            groups.append(GroupTruth(uid=uid, step=step, dataset_id=None if orphan else row.id, deck=row.deck,
                                     question=row.question, ndcg=[a.ndcg_written for a in agents],
                                     judge=[a.judge for a in agents], final=[a.final for a in agents],
                                     missing_ndcg=[a.ndcg_missing for a in agents]))
        ok = True
    finally:
        writers.close(ok)
    settings = {"n_prompts": n_prompts, "shapes": list(shapes), "response_bytes": response_bytes,
                "n_agents": n_agents, "coverage": coverage, "orphan_fraction": orphan_fraction,
                "repeat_fraction": repeat_fraction, "bad_score_fraction": bad_score_fraction,
                "groups_per_step": groups_per_step, "indent": indent, "nan_scores": nan_scores}
    truth = GroundTruth(seed=seed, settings=settings, rows=rows, groups=groups,
                        files={"dataset": names["dataset"], **{s: names[s] for s in shapes}})
    if write_truth:
        atomic_write_text(out / names["truth"], truth.to_json() + "\n")
    return truth


def _as_float(v: Any) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return None


def _phase2_record(rng: random.Random, a: _Agent, uid: str, row: RowTruth, step: int, idx: int,
                   ts: str) -> dict[str, Any]:
    """A Phase 2 judge-log line (what ddai.reward writes): the JSONL fields plus cost accounting."""
    failed = a.error is not None
    sub = {"answer_accuracy": a.judge, "visual_grounding": round(min(1.0, a.judge * rng.uniform(0.7, 1.1)), 2),
           "reasoning_consistency": round(min(1.0, a.judge * rng.uniform(0.8, 1.2)), 2)}
    tin, tout, think = rng.randint(900, 4000), rng.randint(20, 120), rng.randint(0, 600)
    rec = _jsonl_record(a, uid, row, step, idx, ts)
    rec.update({"dataset_id": row.id, "judge_subscores": None if failed else sub,
                "tokens": {"input": tin, "output": tout, "thinking": think, "total": tin + tout + think},
                "cost_usd": round((tin * 0.3 + (tout + think) * 2.5) / 1e6, 8), "cache_hit": rng.random() < 0.1,
                "judge_failed": failed})
    return rec


def write_big_steps_log(path: str | Path, target_bytes: int, seed: int = 0, *, response_bytes: int = 2000,
                        n_agents: int = 5, dataset_path: str | Path | None = None,
                        nan_scores: bool = False, groups_per_step: int = 128) -> GroundTruth:
    """A step-keyed log of at least ``target_bytes`` (for benchmarks), and its dataset.

    The dataset goes to ``dataset_path`` (default: beside the log). No NaN literals by default so
    that strict parsers (orjson) can parse the file for comparison.
    """
    path = Path(path)
    dataset_path = Path(dataset_path) if dataset_path else path.with_name(path.stem + "_dataset.parquet")
    if dataset_path.parent != path.parent:
        raise ValueError("dataset_path must be in the log's directory")
    per_prompt = 0.83 * (n_agents * (response_bytes + 600) + 900)  # coverage x repeats ~ 0.83 groups/prompt
    n = max(10, int(target_bytes / per_prompt))
    while True:
        truth = write_example_set(path.parent, n_prompts=n, seed=seed, shapes=("steps_json",),
                                  response_bytes=response_bytes, n_agents=n_agents, write_truth=False,
                                  groups_per_step=groups_per_step, nan_scores=nan_scores,
                                  names={"steps_json": path.name, "dataset": dataset_path.name})
        size = path.stat().st_size
        if size >= target_bytes:
            return truth
        n = int(n * target_bytes / size * 1.02) + 1


# --- the bundled default set ------------------------------------------------------------------

BUNDLED_SETTINGS: dict[str, Any] = {"n_prompts": 320, "seed": 2025, "response_bytes": 200}
# The Phase 2 judge log trains on the bundled curriculum's A band: its prompts are rows of the
# bundled dataset (so ``ddai-report`` joins every one of them to the curriculum), logged over a
# few steps with some prompts seen again (learning curves), none of them orphans.
BUNDLED_PHASE2_SETTINGS: dict[str, Any] = {"n_prompts": 40, "seed": 2026, "response_bytes": 0, "band": (0.1, 0.7),
                                           "groups_per_step": 16, "repeat_fraction": 0.3}


def phase2_rows(truth: GroundTruth, n: int, band: tuple[float, float]) -> list[RowTruth]:
    """The first ``n`` dataset rows (dataset order) whose Phase 1 pooled mean NDCG is in ``band``
    (inclusive): the prompts the default curriculum puts in its training bucket A."""
    means = truth.pooled_mean_ndcg()
    lo, hi = band
    picked = [r for r in truth.rows if means.get(r.id) is not None and lo <= means[r.id] <= hi]
    return picked[:n]


def write_bundled(data_dir: str | Path) -> GroundTruth:
    """(Re)generate the files shipped in ``ddai/examples/data`` (byte-identical on re-run).

    The default ``python -m ddai.launch`` run buckets ``gspo_phase1.json`` against
    ``slidevqa_train_example.parquet``; ``gspo_gemini_output.jsonl`` is a small Phase 2 judge log
    of prompts from that curriculum's training band, for ``ddai-report`` (it joins to the
    curriculum) and the next-round presets; ``ground_truth.json`` says what was generated.
    """
    data_dir = Path(data_dir)
    s = BUNDLED_SETTINGS
    truth = write_example_set(data_dir, s["n_prompts"], s["seed"], shapes=("steps_json",),
                              response_bytes=s["response_bytes"])
    p2 = BUNDLED_PHASE2_SETTINGS
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        write_example_set(tmp, p2["n_prompts"], p2["seed"], shapes=("phase2_jsonl",),
                          response_bytes=p2["response_bytes"], write_truth=False,
                          rows=phase2_rows(truth, p2["n_prompts"], p2["band"]), coverage=1.0, orphan_fraction=0.0,
                          groups_per_step=p2["groups_per_step"], repeat_fraction=p2["repeat_fraction"])
        data = (Path(tmp) / DEFAULT_NAMES["phase2_jsonl"]).read_bytes()
    with atomic_path(data_dir / DEFAULT_NAMES["phase2_jsonl"]) as tmp_path:
        tmp_path.write_bytes(data)
    return truth
