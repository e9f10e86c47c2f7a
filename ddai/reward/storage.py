"""Where the reward writes (judge cache, judge log) and how its failures are reported.

Reward workers run on every node of a job and share one filesystem (often NFS). Appends from
several hosts to one file are not atomic there and SQLite's locking does not work across
hosts, so every writer process owns its files: the name carries the host, the job and the
process id, and readers take the union of all files. A file with one writer never has an
interleaved line; a crash can leave at most a partial LAST line, which readers skip.

Host name: ``DDAI_HOSTNAME`` if set (tests use it to play several hosts on one machine), else
``socket.gethostname()``. Job: ``SLURM_JOB_ID`` if set, else ``nojob``.
"""

from __future__ import annotations

import errno
import os
import re
import socket

from ddai.clients.secrets import mask, safe_text
from ddai.errors import DdaiError

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class RewardStorageError(DdaiError):
    """The judge cache or the judge log cannot be read or written: names the file and the cause.

    Not a judgment failure: training must not go on without the record of what it paid for.
    """


def host_name() -> str:
    return _UNSAFE.sub("_", os.environ.get("DDAI_HOSTNAME") or socket.gethostname() or "host")


def job_id() -> str:
    return _UNSAFE.sub("_", os.environ.get("SLURM_JOB_ID") or "nojob")


def writer_id(pid: int | None = None) -> str:
    """``<host>.<job>.<pid>``: unique among the processes writing to one shared directory."""
    return f"{host_name()}.{job_id()}.{os.getpid() if pid is None else pid}"


def cause(exc: OSError) -> str:
    """'ENOSPC (No space left on device)' — the errno name users can search for, and its text."""
    name = errno.errorcode.get(exc.errno or 0, "")
    text = exc.strerror or str(exc)
    return f"{name} ({text})" if name else text


def storage_error(kind: str, path: object, action: str, exc: OSError) -> RewardStorageError:
    hint = {
        errno.ENOSPC: "free space on that filesystem",
        errno.EDQUOT: "free quota on that filesystem",
        errno.EACCES: "write permission on that path",
        errno.EPERM: "write permission on that path",
        errno.EROFS: "a writable filesystem",
    }.get(exc.errno or 0, "a readable and writable path")
    return RewardStorageError(safe_text(f"{kind}: cannot {action}: {cause(exc)}"), where=mask(str(path)), expected=hint)
