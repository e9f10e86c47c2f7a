"""Secrets never leave the process: mask every key from the environment BEFORE any text is cut.

Error texts are shortened before they are stored (judge log, exceptions, stderr). Cutting
first and masking second lets a key that straddles the cut survive as a fragment that no
longer matches the whole key, so masking always comes first; afterwards a fragment at either
end that is a piece of a key (text cut by someone upstream) is masked too.
"""

from __future__ import annotations

import os
import re

MASK = "***"
ERROR_TEXT_LIMIT = 500  # characters of an error text kept in logs and messages
_MIN_SECRET = 8  # shorter values are not treated as secrets (they would mask ordinary words)
_MIN_FRAGMENT = 4
_SECRET_NAME = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
KNOWN_SECRET_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY", "WANDB_API_KEY")


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """Values of environment variables that hold secrets (by name), longest first."""
    env = os.environ if environ is None else environ
    values = {
        value
        for name, value in env.items()
        if value and len(value) >= _MIN_SECRET and (name in KNOWN_SECRET_VARS or _SECRET_NAME.search(name))
    }
    return sorted(values, key=len, reverse=True)


def mask(text: str, secrets: list[str] | None = None) -> str:
    """Replace every whole occurrence of a secret, then any secret fragment left at either end."""
    secrets = secret_values() if secrets is None else secrets
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for secret in secrets:
        # a fragment at the END that is the start of a key, or at the START that is its end
        for n in range(min(len(secret) - 1, len(text)), _MIN_FRAGMENT - 1, -1):
            if text.endswith(secret[:n]):
                text = text[: len(text) - n] + MASK
                break
        for n in range(min(len(secret) - 1, len(text)), _MIN_FRAGMENT - 1, -1):
            if text.startswith(secret[-n:]):
                text = MASK + text[n:]
                break
    return text


def safe_text(text: object, limit: int = ERROR_TEXT_LIMIT) -> str:
    """One line, secrets masked, THEN cut to ``limit`` characters (the order is the point)."""
    one_line = " ".join(str(text).split())
    masked = mask(one_line)
    if len(masked) <= limit:
        return masked
    return mask(masked[: max(0, limit - 1)]) + "…"
