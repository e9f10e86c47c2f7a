"""The one JSON document ``ddai-report --json`` prints on stdout (stable keys, for scripts).

Top-level keys, always present: ``report_version``, ``ddai_version``, ``inputs``,
``options``, ``logs``, ``curricula``, ``sweeps``, ``next_round`` (null unless exported).
Keys are sorted and floats rounded to 6 places, so re-runs on the same inputs print
byte-identical documents.
"""

from __future__ import annotations

import json
import math
from typing import Any

import ddai
from ddai.report.model import Report

REPORT_VERSION = 1


def document(rep: Report) -> dict[str, Any]:
    o = rep.options
    return {
        "report_version": REPORT_VERSION,
        "ddai_version": ddai.__version__,
        "inputs": [{"path": f.path, "kind": f.kind, "format": f.fmt, "manifest": f.manifest,
                    "description": f.describe()} for f in rep.inputs],
        "options": {
            "judge_high": o.thresholds.judge_high, "ndcg_high": o.thresholds.ndcg_high,
            "top": o.top, "deciles": o.deciles, "prompts": list(o.prompts),
            "fail_below": o.fail_below, "success_from": o.success_from, "strict": o.strict,
            "joined_curriculum": str(rep.join_with.manifest_path) if rep.join_with else None,
        },
        "logs": [lr.summary for lr in rep.logs],
        "curricula": [c.summary() for c in rep.curricula],
        "sweeps": [s.summary() for s in rep.sweeps],
        "next_round": rep.next_round,
    }


def _clean(x: Any) -> Any:
    """Non-finite floats become null (JSON has no NaN); numpy scalars become Python ones."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "item") and callable(x.item):
        return _clean(x.item())
    return x


def dumps(rep: Report) -> str:
    return json.dumps(_clean(document(rep)), sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
