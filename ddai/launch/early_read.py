"""Start reading the Phase 1 log before Hydra has composed the configuration.

WHY: ``python -m ddai.launch`` spends its first second on one core, importing Hydra and
composing and checking the configuration; on a big log, reading is most of what follows, and
the machine's other cores sit idle meanwhile. When the command line names the log
(``curriculum.phase1_log=PATH``), the read's worker processes start right away
(:func:`ddai.curriculum.read_parallel.start_early`).

This is a guess and is treated as one: the reader takes the early workers over only when the
composed configuration names the very same file under the same name, unchanged since
(:func:`ddai.curriculum.read_parallel.claim_early`); otherwise they are stopped. A guess that
cannot be made (a sweep, an interpolated or quoted value, another task or primary config, a
small, compressed or missing file) starts nothing, and nothing here can fail a run.
"""

from __future__ import annotations

from pathlib import Path

LOG_KEY = "curriculum.phase1_log"
# A value with any of these is not a plain path on the command line (quotes, interpolations,
# sweeps, lists, globs): no guess is made.
_NOT_PLAIN = frozenset("$'\"\\[](){},*?=~ \t\n")


def log_override(argv: list[str]) -> str | None:
    """The Phase 1 log a ``python -m ddai.launch`` command line names, when it names one plainly
    and the run is one curriculum job; else None."""
    found: str | None = None
    for arg in argv:
        if arg.startswith("-"):            # -m (a sweep), --config-name, --help, --cfg, ...
            return None
        key, eq, value = arg.partition("=")
        if not eq:
            return None
        key = key.lstrip("+")
        if key == "task" and value != "curriculum":
            return None
        if key in ("hydra.mode", "hydra.job.chdir") or key.startswith("hydra/"):
            return None
        if key == LOG_KEY:
            if not value or _NOT_PLAIN.intersection(value):
                return None
            found = value
    return found


def start(argv: list[str]) -> bool:
    """Start the early read for the log ``argv`` names (see the module's WHY); True when started."""
    value = log_override(argv)
    if value is None:
        return False
    try:
        from ddai.curriculum import read_parallel

        return read_parallel.start_early(Path(value))
    except Exception:  # noqa: BLE001 - a guess never fails the run; the read later reports what is wrong
        return False
