"""Bytes of a JSON Lines log, plain or compressed, as chunks that end at line boundaries.

WHY its own module: the report reads logs that live on cluster filesystems, often gzip'ed
(``.jsonl.gz``) and sometimes zstd'ed, and sometimes split into one file per host and job.
One streaming reader hides all of that from the parser: it decompresses on the fly (never
the whole file in memory), drops a UTF-8 byte-order mark at the start, and cuts the stream
into chunks of about ``CHUNK`` bytes that end just after a newline. A line longer than a
chunk is collected piece by piece, and each new piece is searched for a newline once only,
so a single 200 MB line costs linear time, not quadratic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO

CHUNK = 16 * 1024 * 1024
BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def compression(path: str) -> str | None:
    """``"gzip"``, ``"zstd"`` or None, from the file's first bytes (never from its name)."""
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic.startswith(GZIP_MAGIC):
        return "gzip"
    if magic == ZSTD_MAGIC:
        return "zstd"
    return None


def open_stream(path: str, raw: IO[bytes] | None = None) -> IO[bytes]:
    """A binary stream of the file's decompressed bytes (over ``raw`` when given)."""
    kind = compression(path)
    if raw is None:
        raw = open(path, "rb")  # noqa: SIM115 - closed with the returned stream
    if kind == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "zstd":
        try:
            import zstandard
        except ImportError:
            raw.close()
            from ddai.errors import InputError

            raise InputError("is zstd-compressed but the 'zstandard' package is not installed", where=path,
                             expected="pip install zstandard (ddai[report]), or decompress the file") from None
        return zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
    return raw


def head(path: str, n: int) -> bytes:
    """The first ``n`` decompressed bytes (BOM removed); a corrupt compressed file raises OSError."""
    with open(path, "rb") as raw, open_stream(path, raw) as fh:
        data = _read_upto(fh, n)
    return data.removeprefix(BOM)


def _read_upto(fh: IO[bytes], n: int) -> bytes:
    parts = []
    left = n
    while left > 0:
        b = fh.read(left)
        if not b:
            break
        parts.append(b)
        left -= len(b)
    return b"".join(parts)


def chunks(path: str, chunk: int = CHUNK,
           on_raw: Callable[[int], None] | None = None) -> Iterator[tuple[int, bytes, bool]]:
    """Yield ``(offset, data, last)``: ``data`` holds whole lines (the last chunk may end
    without a newline), ``offset`` is where it starts in the decompressed stream (BOM
    included, so byte offsets agree with ``zcat FILE``). ``on_raw(n)`` is told how many bytes
    of the file on disk were consumed since the last call (progress for compressed files)."""
    with open(path, "rb") as raw, open_stream(path, raw) as fh:
        seen = 0
        for item in split_lines(fh, chunk):
            if on_raw is not None:
                pos = raw.tell()
                on_raw(pos - seen)
                seen = pos
            yield item


def split_lines(fh: IO[bytes], chunk: int = CHUNK) -> Iterator[tuple[int, bytes, bool]]:
    """The chunking of :func:`chunks` over any binary stream."""
    offset = 0
    carry: list[bytes] = []      # pieces of an unfinished line, searched already
    carry_len = 0
    first = True
    while True:
        block = fh.read(chunk)
        if first and block:
            first = False
            if block.startswith(BOM):
                block = block[len(BOM):]
                offset = len(BOM)
        if not block:
            if carry:
                yield offset, b"".join(carry), True
            else:
                yield offset, b"", True
            return
        cut = block.rfind(b"\n")
        if cut < 0:
            carry.append(block)   # no line ends here: keep it, never search it again
            carry_len += len(block)
            continue
        data = b"".join([*carry, block[: cut + 1]]) if carry else block[: cut + 1]
        yield offset, data, False
        offset += len(data)
        rest = block[cut + 1:]
        carry = [rest] if rest else []
        carry_len = len(rest)
