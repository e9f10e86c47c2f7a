"""numpy's BLAS starts on one thread in ddai's command-line processes, and the environment stays the user's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, os, sys
from ddai import blas_threads
installed = blas_threads.install()
import numpy
numpy.ones((64, 64)) @ numpy.ones((64, 64))      # a BLAS call: the threads would be busy now
print(json.dumps({"installed": installed, "threads": len(os.listdir("/proc/self/task")),
                  "env": os.environ.get("OPENBLAS_NUM_THREADS"), "hooks": [type(f).__name__ for f in sys.meta_path]}))
"""


def _probe(env_extra: dict[str, str], code: str = PROBE) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "GOTO_NUM_THREADS")}
    env.update(env_extra)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_numpy_starts_one_blas_thread_and_the_variable_is_gone_afterwards() -> None:
    got = _probe({})
    assert got["installed"] is True
    assert got["threads"] == 1                 # no OpenBLAS worker threads beside the main one
    assert got["env"] is None                  # children started later inherit the user's environment
    assert "_OneThreadImport" not in got["hooks"]   # the hook removed itself after numpy's import


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS starts no worker threads on one core")
def test_without_it_numpy_starts_worker_threads() -> None:
    """The premise: on this machine (2 cores in CI) a plain numpy import starts OpenBLAS threads."""
    got = _probe({}, PROBE.replace("installed = blas_threads.install()", "installed = None"))
    assert got["threads"] > 1


@pytest.mark.parametrize("var", ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"])
def test_a_users_thread_count_is_kept(var: str) -> None:
    got = _probe({var: "2"})
    assert got["installed"] is False
    assert got["env"] == ("2" if var == "OPENBLAS_NUM_THREADS" else None)


def test_a_process_that_has_numpy_already_is_left_alone() -> None:
    got = _probe({}, "import numpy\n" + PROBE)
    assert got["installed"] is False and got["env"] is None
