"""Every user error of ``python -m ddai.launch`` as one line: ``ddai: error: WHERE: WHAT (expected ...)``, exit 2.

WHY replace Hydra's reporter: Hydra prints its own errors (unknown key, wrong type, an
unquoted comma, an interpolation loop, a working directory it cannot write) as three to six
lines with exit 1, while ddai's own errors are one line with exit 2; a script or a user
cannot tell a typo from a crash. Hydra routes every failure of composing or running through
``hydra._internal.utils.run_and_report``; :func:`install` swaps in :func:`report`, which
turns known error types into ddai's one-line format (secrets masked) and keeps Hydra's
behaviour for the rest (``HYDRA_FULL_ERROR=1`` still gives the full traceback).

Unexpected exceptions (bugs) still print their traceback, with exit 1: hiding them would
make them impossible to report.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any, Callable, NoReturn

from ddai.errors import DdaiError
from ddai.launch.secrets import redact

EXIT_USAGE = 2


def _omegaconf_text(exc: BaseException) -> tuple[str | None, str]:
    """(full_key, first message line) of an OmegaConf error."""
    key = getattr(exc, "full_key", None) or None
    msg = getattr(exc, "msg", None) or str(exc)
    first = str(msg).strip().splitlines()[0] if str(msg).strip() else type(exc).__name__
    return (str(key) if key else None), first


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def describe(exc: BaseException) -> tuple[str, int] | None:
    """The one-line message and exit code for a user error, or None for an unexpected exception."""
    from hydra.errors import HydraException, OverrideParseException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    from ddai.launch.schema_keys import unknown_key_error

    inner: BaseException | None = exc
    for _ in range(5):   # Hydra wraps errors raised while instantiating (launcher, callbacks): unwrap ours
        if isinstance(inner, DdaiError):
            return _one_line(str(inner)), EXIT_USAGE
        inner = inner.__cause__ if inner is not None else None
        if inner is None:
            break
    if isinstance(exc, OverrideParseException):
        return f"command line: {_one_line(str(exc))} (expected key=value overrides)", EXIT_USAGE
    cause = exc.__cause__ if isinstance(exc, HydraException) else exc
    if (isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and getattr(cause, "full_key", None)
            and " not in " in str(getattr(cause, "msg", ""))):
        return str(unknown_key_error(str(cause.full_key))), EXIT_USAGE
    if isinstance(cause, OmegaConfBaseException):
        key, first = _omegaconf_text(cause)
        if "recursive" in first.lower() or isinstance(cause, RecursionError):
            first = f"interpolation loop ({first})"
        return f"{key + ': ' if key else ''}{first}", EXIT_USAGE
    if isinstance(exc, RecursionError):
        return "interpolation loop (a value refers back to itself)", EXIT_USAGE
    if isinstance(exc, HydraException):
        text = _one_line(str(exc))
        if "Ambiguous value for argument" in text:
            text += " (a sweep needs -m; a list needs [a,b]; a string with commas needs quotes)"
        return text, EXIT_USAGE
    if isinstance(exc, OSError):
        where = exc.filename or "file system"
        what = exc.strerror or str(exc)
        return (f"{where}: {what} (expected a path ddai can create and write; for Hydra's own run "
                f"directory run from a writable directory or set hydra.run.dir / hydra.sweep.dir)"), EXIT_USAGE
    return None


def fail(exc: BaseException) -> NoReturn:
    """Print ``exc`` the ddai way and exit."""
    described = describe(exc)
    if described is None:
        print(redact(f"ddai: internal error: {type(exc).__name__}: {_one_line(str(exc))}"), file=sys.stderr)
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        sys.exit(1)
    text, code = described
    print(redact(f"ddai: error: {text}"), file=sys.stderr)
    sys.exit(code)


def report(func: Callable[[], Any]) -> Any:
    """Drop-in for Hydra's ``run_and_report``: run ``func``; report a failure on one line."""
    try:
        return func()
    except Exception as exc:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        fail(exc)


def install() -> None:
    """Route Hydra's error reporting through :func:`report` (Hydra 1.3, pinned in pyproject).

    ``--cfg`` runs no callbacks, so the guard's checks (unknown keys, secrets) are added to
    Hydra's ``show_cfg`` here: a misspelt key fails the same way whether the config is shown
    or run.
    """
    import hydra._internal.utils as hydra_utils
    from hydra._internal.hydra import Hydra

    hydra_utils.run_and_report = report
    if getattr(Hydra.show_cfg, "_ddai_checked", False):
        return
    original = Hydra.show_cfg

    def show_cfg(self: Any, config_name: Any, overrides: Any, cfg_type: str, package: Any,
                 resolve: bool = False) -> None:
        from hydra.types import RunMode

        from ddai.launch.guard import check

        cfg = self.compose_config(config_name=config_name, overrides=list(overrides), run_mode=RunMode.RUN,
                                  with_log_configuration=False)
        check(cfg)
        return original(self, config_name=config_name, overrides=overrides, cfg_type=cfg_type, package=package,
                        resolve=resolve)

    show_cfg._ddai_checked = True  # type: ignore[attr-defined]
    Hydra.show_cfg = show_cfg  # type: ignore[method-assign]
