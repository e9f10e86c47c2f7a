"""``task=curriculum`` (the default): bucket Phase 1 logs into a verl-ready curriculum.

``python -m ddai.launch`` with no arguments runs it on the bundled example data. Prints a
table on stderr and one JSON line (the run's summary) on stdout; writes the parquets and
``manifest.json`` into ``curriculum.out_dir`` (default: ``<hydra job dir>/curriculum``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from omegaconf import DictConfig

from ddai.curriculum.config import register, validate_settings
from ddai.errors import ConfigError


def _node(cfg: Any) -> Any:
    """Accept the whole config (``cfg.curriculum``) or the curriculum node itself."""
    if isinstance(cfg, DictConfig) and "curriculum" in cfg:
        return cfg.curriculum
    return cfg


def _readable(path: str, key: str, *, allow_dir: bool) -> None:
    p = Path(path)
    if allow_dir and not p.exists():
        from ddai.curriculum.read import log_parts

        if log_parts(p):   # a log written in per-writer parts, named by its plain path
            return
    if not p.exists():
        raise ConfigError(f"{p} does not exist", where=f"curriculum.{key}",
                          expected="an existing file" + (" or directory" if allow_dir else ""))
    if p.is_dir() and not allow_dir:
        raise ConfigError(f"{p} is a directory", where=f"curriculum.{key}", expected="a file")
    if not os.access(p, os.R_OK | (os.X_OK if p.is_dir() else 0)):
        raise ConfigError(f"{p} is not readable", where=f"curriculum.{key}", expected="a readable path")


def validate(cfg: Any) -> None:
    """Check settings and that the inputs exist and are readable; reads no data.

    Also used by the sweep validator on every combination before anything is submitted.
    ``out_dir`` is checked only when it can be resolved (outside a Hydra run the default
    ``${hydra:runtime.output_dir}`` cannot be, and is then left to the run).
    """
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("ddai_example"):   # not registered again: re-storing the schema costs ~10 ms
        register()  # the ${ddai_example:...} resolver, for callers that composed the config themselves
    c = _node(cfg)
    validate_settings(c)
    _readable(str(c.phase1_log), "phase1_log", allow_dir=True)
    _readable(str(c.dataset), "dataset", allow_dir=False)
    try:
        out_dir = Path(str(c.out_dir))
    except Exception:  # noqa: BLE001 - an unresolvable interpolation: nothing to check yet
        return
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir} exists and is not a directory", where="curriculum.out_dir",
                          expected="a directory or a path that can be created")


def _progress(c: Any) -> bool:
    if c.progress == "on":
        return True
    if c.progress == "off":
        return False
    return sys.stderr.isatty()


def render_summary(summary: dict[str, Any], file: TextIO | None = None) -> None:
    """The human view on stderr: bucket sizes, matching, and what verl will drop.

    WHY two renderings: on a terminal, a rich table; in a log (a Slurm job's output, a file, a
    pipe) the same lines as plain text, which greps cleanly and spares every batch run rich's
    import (~0.1 s, a twentieth of a whole run on a big log).
    """
    file = file if file is not None else sys.stderr
    isatty = getattr(file, "isatty", None)
    lines = _summary_lines(summary)
    if not (isatty is not None and isatty()):
        rows = [("bucket", "rows", "file")] + lines["rows"]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        out = [f"curriculum → {summary['out_dir']}"]
        for name, n, fname in rows:
            out.append(f"  {name:<{widths[0]}}  {n:>{widths[1]}}  {fname}".rstrip())
        out += lines["notes"]
        if lines["warning"]:
            out.append("warning: " + lines["warning"])
        file.write("\n".join(out) + "\n")
        file.flush()
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=file)
    table = Table(title=f"curriculum → {escape(str(summary['out_dir']))}")
    table.add_column("bucket")
    table.add_column("rows", justify="right")
    table.add_column("file")
    for row in lines["rows"]:
        table.add_row(*(escape(v) for v in row))
    console.print(table)
    for note in lines["notes"]:
        console.print(escape(note))
    if lines["warning"]:
        console.print("[yellow]warning:[/] " + escape(lines["warning"]))


def _summary_lines(summary: dict[str, Any]) -> dict[str, Any]:
    files = summary.get("files", {})
    rows = [(f"{name}{' (train)' if name == summary['train_bucket'] else ''}", str(n), files.get(name, ""))
            for name, n in summary["buckets"].items()]
    m, r = summary["match"], summary["read"]
    notes = [f"matched rows {m['matched_rows']} · unmatched rows {m['unmatched_rows']} · "
             f"log groups without row {m['groups_without_row']} · ambiguous groups {m['ambiguous_groups']} "
             f"(rows {m['ambiguous_rows']}) · rows with several groups {summary['duplicates']}",
             f"read {r['records']} records, {r['malformed']} malformed skipped · "
             f"{summary['steps_per_epoch']} steps/epoch"]
    warning = (f"verl will drop the last {summary['dropped']} prompts of the training file (partial batch); "
               "see manifest batch.dropped_ids or set curriculum.remainder=trim|pad") if summary["dropped"] else ""
    return {"rows": rows, "notes": notes, "warning": warning}


def run(cfg: Any) -> dict[str, Any]:
    from ddai.curriculum import pipeline

    c = _node(cfg)
    summary = pipeline.run(c, progress=_progress(c))
    render_summary(summary)
    print(json.dumps(summary, ensure_ascii=False), flush=True)
    return summary
