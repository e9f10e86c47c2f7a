"""Compare recorded ddai-report --json documents of two test runs (per test, as multisets)."""
import json
import re
import sys
from collections import defaultdict
from pathlib import Path


def load(p):
    out = defaultdict(list)
    for line in Path(p).read_text().splitlines():
        r = json.loads(line)
        s = re.sub(r"/tmp/pytest-of-[^/]+/pytest-\d+", "PYTEST", r["out"])
        s = s.replace("/tmp/rf_base", "ROOT").replace("/work/wt/reportfast", "ROOT")
        t = (r["test"] or "?").rsplit(" (", 1)[0]
        out[t].append(s)
    return {k: sorted(v) for k, v in out.items()}

a, b = load(sys.argv[1]), load(sys.argv[2])
bad = 0
for t, docs in a.items():
    if t not in b:
        print("MISSING in new:", t); bad += 1
    elif b[t] != docs:
        print("DIFFERENT:", t, len(docs), len(b[t])); bad += 1
print(f"{len(a)} tests with JSON in base, {sum(map(len, a.values()))} documents; {len(b)} in new; {bad} differ/missing")
sys.exit(1 if bad else 0)
