"""One error type for everything a user can fix by changing an input or a setting.

The command-line entry points catch :class:`DdaiError` and print its message alone (no
traceback) with a non-zero exit, so every message must say what went wrong, where (file,
line, key) and what was expected.
"""

from __future__ import annotations

from pathlib import Path


class DdaiError(Exception):
    """A problem with the user's input or configuration, explained in plain words."""

    def __init__(self, what: str, *, where: str | Path | None = None, expected: str | None = None):
        self.what = what
        self.where = str(where) if where is not None else None
        self.expected = expected
        parts = []
        if self.where:
            parts.append(f"{self.where}: ")
        parts.append(what)
        if expected:
            parts.append(f" (expected {expected})")
        super().__init__("".join(parts))


class ConfigError(DdaiError):
    """A setting that cannot work, caught before any input is read or any job submitted."""


class InputError(DdaiError):
    """A file that is missing, truncated, malformed or lacks a required field."""
