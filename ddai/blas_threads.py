"""numpy's BLAS on one thread in ddai's own command-line processes, and only there.

WHY: importing numpy loads OpenBLAS, which starts one worker thread per core at once; those
threads busy-wait for work before they sleep. ddai's commands do no linear algebra worth a
second thread, so on a 2-core machine that spinning only takes CPU from the reading worker and
the main process: ``perf record`` of a curriculum run on the 400 MB benchmark log put 1.4-2.9 %
of all samples in OpenBLAS's ``blas_thread_server``, and a process that imports numpy and then
works alone for 0.5 s used 0.92 CPU s with the threads against 0.80 s without.

OpenBLAS reads ``OPENBLAS_NUM_THREADS`` once, when the library loads, i.e. while numpy is first
imported. :func:`install` sets the variable for the duration of that import only and removes it
right after, so processes started later (a Slurm submission, Phase 2's training, a user's
script) inherit exactly the environment the user gave. A user who set the variable (or
``OMP_NUM_THREADS``/``GOTO_NUM_THREADS``) keeps their choice; a process that imported numpy
already is left alone. Called by the command-line entry points, never on import of a library
module: importing ``ddai`` from a user's own program changes nothing in it.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

_VARIABLE = "OPENBLAS_NUM_THREADS"
_USER_CHOICES = (_VARIABLE, "OMP_NUM_THREADS", "GOTO_NUM_THREADS")


class _OneThreadImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of the top-level ``numpy`` package that the other
    finders return, so that its execution (which loads OpenBLAS) runs with one BLAS thread."""

    def find_spec(self, name: str, path: Any = None, target: ModuleType | None = None) -> Any:
        if name != "numpy":
            return None
        _remove(self)            # one numpy import per process: the hook's work is done
        spec = importlib.util.find_spec(name)   # whichever finder provides numpy (this one is gone)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        run_module = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            os.environ[_VARIABLE] = "1"
            try:
                run_module(module)
            finally:
                os.environ.pop(_VARIABLE, None)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _remove(finder: _OneThreadImport) -> None:
    try:
        sys.meta_path.remove(finder)
    except ValueError:
        pass


def install() -> bool:
    """Arrange for numpy, when this process first imports it, to start its BLAS on one thread.

    Returns False (and does nothing) when numpy is imported already, the user chose a thread
    count in the environment, or the hook is in place already."""
    if "numpy" in sys.modules or any(os.environ.get(v) for v in _USER_CHOICES):
        return False
    if any(isinstance(f, _OneThreadImport) for f in sys.meta_path):
        return False
    sys.meta_path.insert(0, _OneThreadImport())
    return True
