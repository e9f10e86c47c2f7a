"""FAKE loopback servers for the paid/remote services ddai talks to (tests and benchmarks only).

- ``FakeGemini``: the Gemini API's ``POST /v1beta/models/{model}:generateContent`` (camelCase
  JSON, ``usageMetadata``, Google error bodies), what google-genai's client sends and expects.
- ``FakeOpenAI``: ``POST /v1/chat/completions`` and ``POST /v1/responses`` with OpenAI's error
  bodies; rejects ``temperature``/``max_tokens`` like the real reasoning models do.
- ``FakeSearch``: the users' search contract, ``POST /search`` with
  ``[{query, id, request_idx}]`` -> ``[{request_idx, results: [{image_file}]}]`` over a corpus
  of tiny generated page images ``{deck}_{page}.jpg``.

Each runs a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 with an ephemeral port in a thread.
Behaviour is scripted per call (``status``, ``sleep`` for timeouts, ``truncated``, ...), and
every server counts calls so tests can prove what was (not) paid for.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# Retry bounds that keep tests fast (tiny positive backoffs). The per-attempt timeout is a
# generous BOUND, never a margin a test depends on: a loaded machine must not turn a slow
# answer into a retry. Tests of timeouts hold a request on an event instead (("hold", event)).
FAST_RETRY = {"max_attempts": 4, "initial_delay_s": 0.01, "max_delay_s": 0.05, "jitter_s": 0.01,
              "total_budget_s": 300.0, "timeout_s": 60.0}
HOLD_LIMIT_S = 120.0  # a held request is answered at the latest after this (a hung test still ends)

# ("ok",), ("status", code[, message]), ("sleep", seconds), ("hold", threading.Event), ("truncated",), ("text", raw)
Action = tuple


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


class FakeServer:
    """Base: start/stop, URL, a per-call script and counters."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.script: collections.deque = collections.deque()
        self.decide: Callable[[int, dict], Action | None] | None = None
        self.calls = 0
        self.status_counts: collections.Counter = collections.Counter()
        self.requests: list[dict] = []
        self.latency_s = 0.0
        self.jitter_s = 0.0
        self.error_latency_s: float | None = None  # None: scripted errors also wait latency_s
        # When set, every request waits until the event is set (tests release it on an event
        # of their own, e.g. "every process has claimed or is waiting"), then is answered.
        self.gate: threading.Event | None = None
        self.arrived = threading.Condition()  # notified on every request (for tests that wait on arrivals)
        self._rng_state = 12345
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"null")
                except json.JSONDecodeError:
                    body = None
                status, payload, headers = outer.handle(self.path, dict(self.headers), body)
                data = json.dumps(payload).encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json; charset=UTF-8")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def next_action(self, call_no: int, body: dict) -> Action:
        with self.lock:
            if self.script:
                return self.script.popleft()
        if self.decide is not None:
            action = self.decide(call_no, body)
            if action is not None:
                return action
        return ("ok",)

    def _jitter(self) -> float:
        """Deterministic uniform jitter in [-jitter_s, +jitter_s] (mean latency stays latency_s)."""
        with self.lock:
            self._rng_state = (1103515245 * self._rng_state + 12345) % (2**31)
            return (2 * self._rng_state / 2**31 - 1) * self.jitter_s

    def stats(self) -> dict:
        return {"calls": self.calls, "status_counts": {str(k): v for k, v in self.status_counts.items()}}

    def configure(self, body: dict) -> None:
        """Set latency_s, jitter_s and error_rate/error_codes/seed (random scripted errors)."""
        import random

        if body.get("reset"):
            with self.lock:
                for name in ("paid_by_prompt", "status_counts"):
                    if hasattr(self, name):
                        getattr(self, name).clear()
        self.latency_s = float(body.get("latency_s", self.latency_s))
        self.jitter_s = float(body.get("jitter_s", self.jitter_s))
        if "error_latency_s" in body:
            self.error_latency_s = body["error_latency_s"]
        rate = float(body.get("error_rate", 0.0))
        codes = list(body.get("error_codes", [429, 503]))
        rng = random.Random(int(body.get("seed", 7)))
        lock = threading.Lock()

        def decide(call_no: int, _body: dict) -> Action | None:
            with lock:
                return ("status", rng.choice(codes)) if rng.random() < rate else None

        self.decide = decide if rate > 0 else None

    def handle(self, path: str, headers: dict, body: Any) -> tuple[int, Any, dict]:
        if path.startswith("/_fake/"):  # control plane for out-of-process use (benchmarks)
            if path == "/_fake/config" and isinstance(body, dict):
                self.configure(body)
            return 200, self.stats(), {}
        with self.lock:
            self.calls += 1
            call_no = self.calls
            self.requests.append({"path": path, "headers": headers, "body": body})
        with self.arrived:
            self.arrived.notify_all()
        action = self.next_action(call_no, body if isinstance(body, dict) else {})
        gate = self.gate
        if gate is not None:
            gate.wait(HOLD_LIMIT_S)
        if action[0] == "hold":
            action[1].wait(HOLD_LIMIT_S)
            action = ("ok",)
        if action[0] == "status" and self.error_latency_s is not None:
            time.sleep(self.error_latency_s)
        elif self.latency_s or self.jitter_s:
            time.sleep(max(0.0, self.latency_s + self._jitter()))
        if action[0] == "sleep":
            time.sleep(action[1])
            action = ("ok",)
        status, payload, extra = self.respond(path, headers, body, action)
        with self.lock:
            self.status_counts[status] += 1
        return status, payload, extra

    def respond(self, path: str, headers: dict, body: Any, action: Action) -> tuple[int, Any, dict]:
        raise NotImplementedError


def wait_for_files(directory: Path, count: int, procs: list, what: str) -> None:
    """Wait until ``count`` marker files exist in ``directory`` (events written by child processes).

    Polls for an EVENT; the deadline only bounds a hung test and nothing depends on it. Fails
    at once if a child exits with an error before the event.
    """
    deadline = time.monotonic() + HOLD_LIMIT_S
    while len(list(directory.iterdir())) < count:
        dead = [p for p in procs if p.poll() is not None and p.returncode != 0]
        assert not dead, f"a child exited with {dead[0].returncode} before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# ----------------------------------------------------------------------------- Gemini

_GEMINI_PATH = re.compile(r"^/(v1beta|v1)/models/([^/:]+):generateContent$")
_GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                  429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def gemini_prompt_text(body: dict) -> str:
    texts = []
    for content in body.get("contents", []):
        for part in content.get("parts", []):
            if "text" in part:
                texts.append(part["text"])
    return "\n".join(texts)


def gemini_images(body: dict) -> list[bytes]:
    out = []
    for content in body.get("contents", []):
        for part in content.get("parts", []):
            blob = part.get("inlineData") or part.get("inline_data")
            if blob:
                data = blob["data"]
                out.append(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    return out


def _field(text: str, label: str) -> str:
    m = re.search(rf"^(?:- )?{re.escape(label)}:[ \t]*(.*)$", text, re.MULTILINE)
    return m.group(1).strip() if m else ""


def _section(text: str, title: str) -> str:
    """Body of a markdown section '## <title>' up to the next heading."""
    m = re.search(rf"^## {re.escape(title)}[ \t]*\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    return m.group(1).strip() if m else ""


def _last_answer(text: str) -> str:
    found = re.findall(r"<answer>(.*?)</answer>", text, re.DOTALL)
    return found[-1].strip() if found else ""


class FakeGemini(FakeServer):
    """FAKE Gemini API. Verdict: 1.0 when the given answer equals the reference (case-folded), else 0.2."""

    usage = {"promptTokenCount": 1000, "candidatesTokenCount": 40, "thoughtsTokenCount": 100}

    def __init__(self) -> None:
        super().__init__()
        self.paid_by_prompt: collections.Counter = collections.Counter()  # successful (billable) per prompt

    @property
    def paid_calls(self) -> int:
        return sum(self.paid_by_prompt.values())

    def stats(self) -> dict:
        with self.lock:
            return {**super().stats(), "paid_calls": self.paid_calls,
                    "max_paid_per_prompt": max(self.paid_by_prompt.values(), default=0),
                    "distinct_paid_prompts": len(self.paid_by_prompt)}

    def respond(self, path: str, headers: dict, body: Any, action: Action) -> tuple[int, Any, dict]:
        m = _GEMINI_PATH.match(path.split("?")[0])
        if not m:
            return self._error(404, f"path {path} not found")
        if not {k.lower() for k in headers} & {"x-goog-api-key"}:
            return self._error(401, "API key not valid")
        if not isinstance(body, dict) or not body.get("contents"):
            return self._error(400, "contents is required")
        if action[0] == "status":
            return self._error(action[1], action[2] if len(action) > 2 else "scripted error")
        text = gemini_prompt_text(body)
        n_images = len(gemini_images(body))
        if action[0] == "text":
            reply = action[1]
        else:
            given = (_field(text, "Final answer given") or _field(text, "Generated answer")
                     or _section(text, "Assistant's answer") or _last_answer(text))
            ref = _field(text, "Reference answer") or _section(text, "Reference answer")
            ok = bool(given) and given.casefold() == ref.casefold()
            schema = (body.get("generationConfig") or {}).get("responseSchema") or {}
            props = schema.get("properties", {})
            if "final_score" in props:
                reply = json.dumps({"answer_accuracy": 1.0 if ok else 0.0, "visual_grounding": 0.5 + 0.1 * min(n_images, 5) / 5,
                                    "reasoning_consistency": 0.8, "final_score": 1.0 if ok else 0.2})
            else:
                reply = json.dumps({"score": 1.0 if ok else 0.2})
        with self.lock:
            self.paid_by_prompt[hashlib.sha256(text.encode()).hexdigest()] += 1
        prompt_tokens = self.usage["promptTokenCount"] + 258 * n_images
        usage = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": self.usage["candidatesTokenCount"],
            "thoughtsTokenCount": self.usage["thoughtsTokenCount"],
            "totalTokenCount": prompt_tokens + self.usage["candidatesTokenCount"] + self.usage["thoughtsTokenCount"],
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": self.usage["promptTokenCount"]},
                                    {"modality": "IMAGE", "tokenCount": 258 * n_images}],
        }
        return 200, {
            "candidates": [{"content": {"role": "model", "parts": [{"text": reply}]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": usage,
            "modelVersion": m.group(2),
            "responseId": f"fake-{self.calls}",
        }, {}

    def _error(self, code: int, message: str) -> tuple[int, Any, dict]:
        return code, {"error": {"code": code, "message": message, "status": _GOOGLE_STATUS.get(code, "UNKNOWN")}}, {}


# ----------------------------------------------------------------------------- OpenAI


class FakeOpenAI(FakeServer):
    """FAKE OpenAI API. Answers with ``answer`` (settable) unless scripted otherwise."""

    def __init__(self, answer: str = "Credit Cards") -> None:
        super().__init__()
        self.answer = answer
        self.paid_calls = 0

    def respond(self, path: str, headers: dict, body: Any, action: Action) -> tuple[int, Any, dict]:
        path = path.split("?")[0]
        if not {k.lower(): v for k, v in headers.items()}.get("authorization", "").startswith("Bearer "):
            return self._error(401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key")
        if path not in ("/v1/chat/completions", "/v1/responses"):
            return self._error(404, f"Invalid URL (POST {path})", "invalid_request_error", None)
        if not isinstance(body, dict):
            return self._error(400, "body must be a JSON object", "invalid_request_error", None)
        if "temperature" in body and body["temperature"] != 1:
            return self._error(400, "Unsupported value: 'temperature' does not support "
                               f"{body['temperature']} with this model. Only the default (1) value is supported.",
                               "invalid_request_error", "unsupported_value", param="temperature")
        if "max_tokens" in body:
            return self._error(400, "Unsupported parameter: 'max_tokens' is not supported with this model. "
                               "Use 'max_completion_tokens' instead.", "invalid_request_error", "unsupported_parameter",
                               param="max_tokens")
        if action[0] == "status":
            code = action[1]
            if code == 429:
                return self._error(429, "Rate limit reached", "requests", "rate_limit_exceeded",
                                   headers={"retry-after-ms": "1"})
            return self._error(code, "The server had an error while processing your request.", "server_error", None)
        truncated = action[0] == "truncated"
        text = "" if truncated else (action[1] if action[0] == "text" else self.answer)
        with self.lock:
            self.paid_calls += 1
        if path == "/v1/chat/completions":
            return 200, {
                "id": f"chatcmpl-fake-{self.calls}", "object": "chat.completion", "created": 1700000000,
                "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text or None, "refusal": None},
                             "finish_reason": "length" if truncated else "stop"}],
                "usage": {"prompt_tokens": 812, "completion_tokens": 64, "total_tokens": 876,
                          "completion_tokens_details": {"reasoning_tokens": 48},
                          "prompt_tokens_details": {"cached_tokens": 0}},
            }, {}
        output = [{"type": "reasoning", "id": "rs_1", "summary": []}]
        if text:
            output.append({"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                           "content": [{"type": "output_text", "text": text, "annotations": []}]})
        return 200, {
            "id": f"resp_fake_{self.calls}", "object": "response", "created_at": 1700000000, "model": body.get("model"),
            "status": "incomplete" if truncated else "completed",
            "incomplete_details": {"reason": "max_output_tokens"} if truncated else None,
            "output": output, "parallel_tool_calls": False, "tool_choice": "auto", "tools": [],
            "usage": {"input_tokens": 812, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 64,
                      "output_tokens_details": {"reasoning_tokens": 48}, "total_tokens": 876},
        }, {}

    def _error(self, code: int, message: str, type_: str, err_code: str | None, *, param: str | None = None,
               headers: dict | None = None) -> tuple[int, Any, dict]:
        return code, {"error": {"message": message, "type": type_, "param": param, "code": err_code}}, headers or {}


# ----------------------------------------------------------------------------- search


def make_corpus(root: Path, decks: dict[str, int], size: tuple[int, int] = (1000, 750)) -> Path:
    """Write tiny page images ``{deck}_{page}.jpg``: each page has 4 coloured quadrants + a label.

    The quadrant colours make crops checkable: the top-left quadrant of every page is red.
    """
    from PIL import Image, ImageDraw

    root.mkdir(parents=True, exist_ok=True)
    w, h = size
    for deck, pages in decks.items():
        for page in range(1, pages + 1):
            img = Image.new("RGB", (w, h), (255, 255, 255))
            draw = ImageDraw.Draw(img)
            draw.rectangle([0, 0, w // 2 - 1, h // 2 - 1], fill=(255, 0, 0))
            draw.rectangle([w // 2, 0, w - 1, h // 2 - 1], fill=(0, 255, 0))
            draw.rectangle([0, h // 2, w // 2 - 1, h - 1], fill=(0, 0, 255))
            draw.rectangle([w // 2, h // 2, w - 1, h - 1], fill=(255, 255, 0))
            draw.text((10, 10), f"{deck}_{page}", fill=(0, 0, 0))
            img.save(root / f"{deck}_{page}.jpg", quality=90)
    return root


class FakeSearch(FakeServer):
    """FAKE search server (users' POST contract). A query naming 'page N' ranks page N first."""

    def __init__(self, corpus: Path, decks: dict[str, int], top_k: int = 3, image_prefix: str = "./search_engine/corpus/img"):
        super().__init__()
        self.corpus = corpus
        self.decks = decks
        self.top_k = top_k
        self.image_prefix = image_prefix
        self.batch_sizes: list[int] = []

    def respond(self, path: str, headers: dict, body: Any, action: Action) -> tuple[int, Any, dict]:
        if path.split("?")[0] != "/search":
            return 404, {"detail": "Not Found"}, {}
        if action[0] == "status":
            return action[1], {"detail": "scripted error"}, {}
        if not isinstance(body, list) or not all(isinstance(r, dict) and {"query", "id", "request_idx"} <= set(r) for r in body):
            return 422, {"detail": "expected a list of {query, id, request_idx}"}, {}
        with self.lock:
            self.batch_sizes.append(len(body))
        out = []
        for req in body:
            deck = str(req["id"])
            n = self.decks.get(deck, 0)
            pages = list(range(1, n + 1))
            m = re.search(r"page (\d+)", str(req["query"]))
            if m and int(m.group(1)) in pages:
                first = int(m.group(1))
                pages.remove(first)
                pages.insert(0, first)
            results = [{"image_file": f"{self.image_prefix}/{deck}_{p}.jpg"} for p in pages[: self.top_k]]
            out.append({"request_idx": req["request_idx"], "results": results})
        return 200, out, {}
