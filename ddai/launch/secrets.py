"""Keep API keys off disk: refuse overrides that carry one, mask any that would be printed.

WHY before Hydra writes anything: Hydra saves ``.hydra/{overrides,config,hydra}.yaml`` into
the job directory before the task runs (``hydra.core.utils.run_job``), and a multirun saves
``multirun.yaml`` and pickles the config for each job before any task sees it. A key pasted
into an override (``+phase2.reward.kwargs.judge_base_url='https://...?key=AIza...'``) would
sit in those files, in W&B's config and in shared run directories. The check therefore runs
in a Hydra callback's ``on_run_start``/``on_multirun_start`` (:mod:`ddai.launch.guard`),
which Hydra calls after composing and before creating any directory.

A value counts as a secret when it equals (or contains) the value of an environment
variable whose NAME says it is one (``*_KEY``, ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``),
or when it has the shape of a well-known key (Google ``AIza…``, OpenAI ``sk-…``, Hugging
Face ``hf_…``, W&B's 40 hex digits after ``key=``). Messages name the override and the
variable, never the value.
"""

from __future__ import annotations

import os
import re
from typing import Iterable

SECRET_NAME = re.compile(r"(^|_)(API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)(_|$)", re.IGNORECASE)
MIN_LEN = 8   # shorter values (e.g. "1", "true") would match everywhere and are not keys anyway

KEY_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a Google API key", re.compile(r"AIza[0-9A-Za-z_\-]{30,}")),
    ("an OpenAI API key", re.compile(r"\bsk-(proj-)?[A-Za-z0-9_\-]{20,}")),
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
    ("a key in a URL", re.compile(r"[?&](key|api_key|apikey|token|access_token)=[A-Za-z0-9_\-]{16,}", re.IGNORECASE)),
    ("a bearer token", re.compile(r"\bBearer\s+[A-Za-z0-9_\-.=]{16,}")),
)


def secret_env(environ: "os._Environ[str] | dict[str, str] | None" = None) -> dict[str, str]:
    """Environment variables that hold secrets, by the convention of their names."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if SECRET_NAME.search(k) and v and len(v) >= MIN_LEN}


def find_secret(text: str, environ: "dict[str, str] | None" = None) -> str | None:
    """What secret ``text`` carries (a description naming no value), or None."""
    for name, value in sorted(secret_env(environ).items()):
        if value in text:
            return f"the value of ${name}"
    for what, pattern in KEY_SHAPES:
        if pattern.search(text):
            return what
    return None


def check_overrides(overrides: Iterable[str], environ: "dict[str, str] | None" = None) -> tuple[str, str] | None:
    """The first override carrying a secret as (its key, what it carries), or None."""
    for o in overrides:
        what = find_secret(str(o), environ)
        if what is not None:
            key = str(o).split("=", 1)[0].lstrip("+~")
            return key, what
    return None


def redact(text: str, environ: "dict[str, str] | None" = None) -> str:
    """``text`` with every secret from the environment and every key-shaped string masked."""
    for name, value in secret_env(environ).items():
        text = text.replace(value, f"<${name}>")
    for what, pattern in KEY_SHAPES:
        text = pattern.sub("<redacted>", text)
    return text
