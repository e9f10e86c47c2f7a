"""Atomic file output: a crash never leaves a half-written file where a good one stood.

Everything ddai writes for users (parquet, manifests, summaries, reports) goes through
here: write to a temporary file in the same directory, fsync, then ``os.replace``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


def _current_umask() -> int:
    # os.umask can only be read by setting it; do it once, at import, before any threads.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates files readable by the owner only; outputs on a shared cluster must get
# the same permissions an ordinary open() would give them.
_current_umask_value = _current_umask()
_FILE_MODE = 0o666 & ~_current_umask_value


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, _FILE_MODE)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------------------------
# A set of files that must change together
# ---------------------------------------------------------------------------------------------
#
# WHY generations: renaming N files into place one by one is N atomic steps, not one; a kill
# between two renames leaves a new file beside old ones (a manifest whose checksums no longer
# match). Instead every set is written into its own directory (a generation) and the fixed
# names users point verl at are symbolic links through ONE link, ``current``:
#
#     out/curriculum_bucket_a.parquet -> .ddai-generations/current/curriculum_bucket_a.parquet
#     out/.ddai-generations/current   -> g-<unique>
#
# Committing a generation is a single ``rename(2)`` of a new ``current`` link over the old one,
# so at every instant each fixed name resolves into one whole generation. The steps around
# the swap only add links that dangle until the swap (names the old set lacked), remove links
# that dangle after it (names the new set lacks), and delete generations nobody points at.
# A kill at any point leaves the whole old set or the whole new set; :func:`recover_generations`
# (run before each new write) tidies what a killed commit left.

GENERATIONS = ".ddai-generations"
CURRENT = "current"
_LINK_PREFIX = f"{GENERATIONS}/{CURRENT}/"


def _link_target(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _replace_with_symlink(target: str, link: Path) -> None:
    """Make ``link`` a symlink to ``target`` in one atomic step (build aside, then rename)."""
    if _link_target(link) == target:
        return
    tmp = link.parent / f".{link.name}.{os.getpid()}.{os.urandom(4).hex()}.lnk"
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def current_generation(out_dir: str | os.PathLike[str]) -> Path | None:
    """The committed generation directory of ``out_dir`` (None before the first commit)."""
    root = Path(out_dir) / GENERATIONS
    target = _link_target(root / CURRENT)
    return None if target is None else root / target


def managed_names(out_dir: str | os.PathLike[str]) -> list[str]:
    """Names in ``out_dir`` that are links into the current generation (the committed set's names)."""
    d = Path(out_dir)
    try:
        entries = list(os.scandir(d))
    except FileNotFoundError:
        return []
    return sorted(e.name for e in entries if e.is_symlink() and (_link_target(Path(e.path)) or "").startswith(_LINK_PREFIX))


def recover_generations(out_dir: str | os.PathLike[str]) -> None:
    """Finish what a killed commit left: drop dangling links, unreferenced generations, temp links.

    Safe at any time no commit is running in ``out_dir``; readers never see a change of content.
    """
    d = Path(out_dir)
    root = d / GENERATIONS
    if not root.is_dir():
        return
    cur = current_generation(d)
    for name in managed_names(d):
        if cur is None or not (cur / name).exists():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(d / name)          # a link the committed set does not have
    for entry in list(os.scandir(root)):
        p = Path(entry.path)
        if entry.name == CURRENT or (cur is not None and p == cur):
            continue
        if entry.is_dir(follow_symlinks=False):
            import shutil

            shutil.rmtree(p, ignore_errors=True)   # an unfinished or superseded generation
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)                    # a temporary ``current`` link
    for entry in list(os.scandir(d)):
        if entry.name.startswith(".") and entry.name.endswith(".lnk") and entry.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def _adopt_plain_files(d: Path, names: list[str]) -> None:
    """Move a set written the old way (plain files, no generation yet) into a generation.

    Each plain file is hard-linked (copied where links are impossible) into a generation that
    becomes ``current``, then replaced, one at a time, by a link to the same bytes: every
    name keeps showing its old content throughout.
    """
    root = d / GENERATIONS
    if current_generation(d) is not None:
        return
    plain = [n for n in names if (d / n).is_file() and not (d / n).is_symlink()]
    if not plain:
        return
    import shutil
    import tempfile as _tf

    gen = Path(_tf.mkdtemp(prefix="g-", dir=root))
    for n in plain:
        try:
            os.link(d / n, gen / n)
        except OSError:
            shutil.copy2(d / n, gen / n)
    _fsync_dir(gen)
    _replace_with_symlink(gen.name, root / CURRENT)
    _fsync_dir(root)
    for n in plain:
        _replace_with_symlink(_LINK_PREFIX + n, d / n)
    _fsync_dir(d)


class Generation:
    """A new set of files for ``out_dir``, staged in a fresh generation; :meth:`commit` swaps it in.

    Write each file to :meth:`path` (any writer; nothing is visible under the fixed names
    until the commit). Used as a context manager, it commits on success and, on an
    exception, removes the staged files and leaves the committed set untouched.
    """

    def __init__(self, out_dir: str | os.PathLike[str], previous: "list[str] | tuple[str, ...]" = ()):
        """``previous``: names an older, generation-less run may have left as plain files here."""
        import tempfile as _tf

        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        recover_generations(self.out_dir)
        root = self.out_dir / GENERATIONS
        root.mkdir(exist_ok=True)
        self.dir = Path(_tf.mkdtemp(prefix="g-", dir=root))
        os.chmod(self.dir, 0o777 & ~_current_umask_value)
        self.names: list[str] = []
        self.previous = [n for n in previous if n and "/" not in n and not n.startswith(".")]
        self.committed = False

    def path(self, name: str) -> Path:
        """Where to write output ``name`` (a plain file name, no directories)."""
        if not name or "/" in name or name in (".", "..", GENERATIONS) or name.startswith("."):
            raise ValueError(f"not a plain output name: {name!r}")
        if name not in self.names:
            self.names.append(name)
        return self.dir / name

    def commit(self) -> None:
        """Make the staged files THE set under their fixed names, in one atomic step."""
        d, root = self.out_dir, self.out_dir / GENERATIONS
        for name in self.names:
            with open(self.dir / name, "rb") as fh:    # durable before anyone can see them
                os.fsync(fh.fileno())
            os.chmod(self.dir / name, _FILE_MODE)
        _fsync_dir(self.dir)
        _adopt_plain_files(d, list(dict.fromkeys([*self.names, *self.previous])))
        old_names = managed_names(d)
        for name in self.names:                        # new names dangle until the swap
            _replace_with_symlink(_LINK_PREFIX + name, d / name)
        _fsync_dir(d)
        _replace_with_symlink(self.dir.name, root / CURRENT)   # THE commit: one rename(2)
        _fsync_dir(root)
        self.committed = True
        for name in old_names:                         # names the new set lacks now dangle
            if name not in self.names:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(d / name)
        recover_generations(d)                         # superseded generations

    def abort(self) -> None:
        import shutil

        if not self.committed:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Generation":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()
