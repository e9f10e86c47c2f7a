"""The small inputs of corpus.sh, cut from the benchmark's tiny log (python make_corpus.py TINY_LOG OUTDIR)."""

import gzip
import sys
from pathlib import Path

import orjson

src = Path(sys.argv[1]).read_bytes().splitlines()
out_dir = Path(sys.argv[2])
out_dir.mkdir(parents=True, exist_ok=True)
out = []      # valid, with blank / whitespace-only / CRLF lines: the typed path
for i, line in enumerate(src):
    out.append(line + (b"\r" if i % 7 == 0 else b""))
    if i % 50 == 0:
        out.append(b"")
    if i % 77 == 0:
        out.append(b"   \t")
(out_dir / "blanks.jsonl").write_bytes(b"\n".join(out) + b"\n")
out = []      # problems of every kind: the tolerant path
for i, line in enumerate(src[:2000]):
    d = orjson.loads(line)
    if i % 100 == 1:
        out.append(line[:50])
        continue
    if i % 100 == 2:
        d["judge_score"] = "0.5"
    if i % 100 == 3:
        d.pop("dataset_id")
        d.pop("uid")
    if i % 100 == 4:
        d = {"event_type": "tool.call", "x": 1}
    if i % 100 == 5:
        d["ndcg"] = 1.7
    if i % 100 == 6:
        d["step"] = "step_12"
    out.append(orjson.dumps(d))
(out_dir / "mixed.jsonl").write_bytes(b"\n".join(out) + b"\n" + src[5][:40])
(out_dir / "tiny.jsonl.gz").write_bytes(gzip.compress(b"\n".join(src) + b"\n"))
out = []      # a unified event log
for i, line in enumerate(src[:3000]):
    d = orjson.loads(line)
    d["event_type"] = "rm.flash.detail"
    d["global_step"] = d.pop("step")
    out.append(orjson.dumps(d))
    if i % 10 == 0:
        out.append(orjson.dumps({"event_type": "rm.ndcg.debug", "ndcg": 0.3, "global_step": 1}))
(out_dir / "events.jsonl").write_bytes(b"\n".join(out) + b"\n")
out = []      # no ids: keyed by question
for line in src[:3000]:
    d = orjson.loads(line)
    d.pop("uid")
    d.pop("dataset_id")
    out.append(orjson.dumps(d))
(out_dir / "noid.jsonl").write_bytes(b"\n".join(out) + b"\n")
