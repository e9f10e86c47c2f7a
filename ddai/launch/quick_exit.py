"""End ``python -m ddai.launch`` without tearing down its heap, once everything is written.

WHY: after a curriculum run over a large log the interpreter still holds a few hundred
thousand objects (the reader's caches, the dataset, Hydra's and OmegaConf's trees, every
imported module). Python's normal exit frees them one by one, which took ~0.3 s of a
3.5 s run on a 400 MB log and does nothing anyone can observe: the outputs are already
committed (atomic renames, the manifest last) and the process is about to vanish.

What a normal exit does that matters is kept, in the same order: non-daemon threads are
waited for (here: the fast path is not taken while one is alive), ``atexit`` callbacks run
(``logging.shutdown`` flushes and closes the job's ``ddai.log``; multiprocessing and any
helper-reaping hooks run there too), and stdout/stderr are flushed. A flush that fails
(e.g. a closed pipe) falls back to the normal exit so its exit status stays Python's own.
Under a profiler or debugger (``python -m cProfile -m ddai.launch``, coverage's tracer) the
normal exit is kept too: they write their results after the program returns.

Only the ``__main__`` entry uses this; code that calls :func:`ddai.launch.__main__.run`
in-process (tests, embedding) returns normally.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading


def _other_threads_alive() -> bool:
    main = threading.main_thread()
    return any(t is not main and t.is_alive() and not t.daemon for t in threading.enumerate())


def exit_without_teardown(code: int = 0) -> None:
    """Run the exit hooks, flush, and leave with ``code``; return (normal exit) if that is unsafe."""
    if _other_threads_alive() or sys.getprofile() is not None or sys.gettrace() is not None:
        return   # a profiler (python -m cProfile) or debugger writes its results after we return
    atexit._run_exitfuncs()   # logging.shutdown among them; the registry is emptied, so never twice
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except Exception:  # noqa: BLE001 - let the interpreter report it and pick the exit status
        return
    os._exit(code)
