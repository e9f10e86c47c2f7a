"""Short labels that tell the runs of a sweep apart: the swept values only.

WHY: a sweep's override lists repeat what every run shares (``curriculum.phase1_log=/long/
path``) and spell keys in full (``curriculum.theta1=0.05``); in a table of 100 columns the
one column that distinguishes runs was cut to ``cur…``. A label keeps only the overrides
whose value differs between runs, each key shortened to its last component (more
components only where two swept keys would otherwise look alike): ``theta1=0.05
sort=frontier``. Used by the end-of-sweep table (ddai.launch) and by ``ddai-report SWEEP_DIR``.
"""

from __future__ import annotations

from typing import Sequence


def _split(override: str) -> tuple[str, str]:
    key, _, value = str(override).partition("=")
    return key.lstrip("+~"), value


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """Each dotted key -> its shortest distinguishing suffix (``curriculum.theta1`` -> ``theta1``)."""
    out: dict[str, str] = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            cand = ".".join(parts[-n:])
            clash = [k for k in keys if k != key and (k == cand or k.endswith("." + cand))]
            if not clash:
                out[key] = cand
                break
        else:
            out[key] = key
    return out


def swept_labels(runs: Sequence[Sequence[str]]) -> tuple[list[str], list[str]]:
    """(one label per run, the overrides every run shares).

    A key is swept when its value differs between runs or some run lacks it. A sweep of a
    single run has nothing swept: its label is its overrides, shortened.
    """
    parsed = [dict(_split(o) for o in (r or [])) for r in runs]
    keys: list[str] = []
    for d in parsed:
        keys += [k for k in d if k not in keys]
    if len(parsed) > 1:
        swept = [k for k in keys if len({d.get(k) for d in parsed}) > 1 or any(k not in d for d in parsed)]
    else:
        swept = keys
    common = [f"{k}={parsed[0][k]}" for k in keys if k not in swept] if parsed else []
    names = short_keys(swept)
    labels = [" ".join(f"{names[k]}={d[k]}" for k in swept if k in d) or "(defaults)" for d in parsed]
    return labels, common


def table_width(is_terminal: bool, default: int = 100) -> int | None:
    """Width for a table: the terminal's own (None) or ``COLUMNS`` (else ``default``) off a terminal."""
    import os

    if is_terminal:
        return None
    try:
        return int(os.environ.get("COLUMNS", "") or default)
    except ValueError:
        return default
