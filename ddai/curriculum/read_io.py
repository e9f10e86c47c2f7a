"""Opening a log file: plain, gzip or zstd, hashed and counted as its bytes go by.

WHY one opener: every reader needs the same three things from a file -- its decompressed bytes,
the SHA-256 of the bytes *on disk* (what the manifest records and what a user can check with
``sha256sum``), and progress in on-disk bytes (the only size known up front for a compressed
file). Compression is recognised by content (magic bytes), not by the name, so a renamed file
still reads. Decompression is streaming: a compressed log is never held whole in memory.

zstd needs the ``zstandard`` package (a base dependency); without it a zstd log is refused with
a message that says what to install.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from ddai.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
COMPRESSED_SUFFIXES = (".gz", ".zst", ".zstd")


def compression_of(head: bytes) -> str | None:
    """``"gzip"``, ``"zstd"`` or None (plain) from a file's first bytes."""
    if head[:2] == GZIP_MAGIC:
        return "gzip"
    if head[:4] == ZSTD_MAGIC:
        return "zstd"
    return None


def inner_suffix(path: str | Path) -> str:
    """The suffix that names the log's shape: ``a.jsonl.gz`` -> ``.jsonl``; ``a.json`` -> ``.json``."""
    p = Path(path)
    if p.suffix.lower() in COMPRESSED_SUFFIXES:
        p = p.with_suffix("")
    return p.suffix.lower()


def check_regular(path: Path) -> None:
    """InputError naming ``path`` unless it is a regular file this process can read.

    FIFOs and devices are refused before anything opens them (opening a FIFO blocks until a
    writer appears; reading a device such as /dev/zero never ends).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError("log file not found", where=path,
                         expected="a Phase 1 log (.json, .jsonl, .parquet, optionally .gz/.zst) "
                                  "or a directory of them") from None
    except OSError as exc:
        raise InputError(f"cannot access the log ({exc.strerror or exc})", where=path,
                         expected="a readable file") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError("a directory where a log file was expected", where=path, expected="a log file")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else
                "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else
                "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise InputError(f"the log is {kind}, not a regular file", where=path,
                         expected="a regular log file (copy the data to a file first)")
    if not os.access(path, os.R_OK):
        raise InputError("the log file is not readable (permission denied)", where=path,
                         expected="a file this user can read")


def open_raw(path: Path) -> BinaryIO:
    """``open(path, "rb")`` with OS errors turned into one-line InputErrors naming the path."""
    check_regular(path)
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot open the log ({exc.strerror or exc})", where=path,
                         expected="a readable file") from None


class _Counted(io.RawIOBase):
    """A raw file whose bytes are hashed and counted (progress) as they are read."""

    def __init__(self, raw: BinaryIO, hasher: Any, advance: Callable[[int], None]):
        super().__init__()
        self._raw = raw
        self._hasher = hasher
        self._advance = advance

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._raw.readinto(b)
        if n:
            view = memoryview(b)[:n]
            if self._hasher is not None:
                self._hasher.update(view)
            self._advance(n)
        return n or 0

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def open_log(path: Path, hasher: Any = None, advance: Callable[[int], None] = lambda n: None) -> BinaryIO:
    """The log's (decompressed) bytes as a binary stream; the on-disk bytes go through
    ``hasher.update`` and ``advance`` as they are read."""
    raw = open_raw(path)
    head = raw.read(4)
    raw.seek(0)
    counted = _Counted(raw, hasher, advance)
    kind = compression_of(head)
    if kind is None:
        return io.BufferedReader(counted, buffer_size=1 << 20)
    if kind == "gzip":
        import gzip

        inner = gzip.GzipFile(fileobj=io.BufferedReader(counted, buffer_size=1 << 20), mode="rb")
        return io.BufferedReader(_Decompressed(inner, path), buffer_size=1 << 20)
    try:
        import zstandard
    except ImportError:  # pragma: no cover - zstandard is a base dependency
        counted.close()
        raise InputError("the log is zstd-compressed but the 'zstandard' package is not installed", where=path,
                         expected="pip install zstandard, or a decompressed log") from None
    inner = zstandard.ZstdDecompressor().stream_reader(counted, read_size=1 << 20)
    return io.BufferedReader(_Decompressed(inner, path), buffer_size=1 << 20)


class _Decompressed(io.RawIOBase):
    """A decompressing stream whose corrupt-data errors become InputErrors naming the file."""

    def __init__(self, inner: Any, path: Path):
        super().__init__()
        self._inner = inner
        self._path = path

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        try:
            return self._inner.read(n)
        except (OSError, EOFError, ValueError) as exc:
            raise InputError(f"the compressed log is corrupt or truncated ({exc})", where=self._path,
                             expected="a complete gzip or zstd file") from None
        except Exception as exc:  # zstandard.ZstdError
            if type(exc).__name__ == "ZstdError":
                raise InputError(f"the compressed log is corrupt or truncated ({exc})", where=self._path,
                                 expected="a complete zstd file") from None
            raise

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


def read_head(path: Path, n: int) -> bytes:
    """The first ``n`` decompressed bytes of a log (for format detection)."""
    with open_log(path) as fh:
        return fh.read(n)
