"""``python -m ddai.launch`` ends without heap teardown, and without importing what it does not use.

The quick exit (:mod:`ddai.launch.quick_exit`) must keep everything a normal exit does that
anyone can see: atexit callbacks (the job log is flushed there), complete stdout, the exit
status; and must step aside when a thread, profiler or debugger still needs the interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# Registered by a sitecustomize in the child: an atexit callback must run, the finalizer of a
# module-level object runs only when the interpreter tears its heap down.
HOOK = textwrap.dedent("""
    import atexit, sys
    atexit.register(lambda: sys.stderr.write("ATEXIT-RAN\\n"))
    class _Teardown:
        def __del__(self):
            sys.__stderr__.write("TEARDOWN-RAN\\n")
    _marker = _Teardown()
""")


def _hooked_env(tmp_path):
    import os

    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))}


def test_run_exits_after_atexit_callbacks_without_teardown(ddai, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    proc = ddai.launch("curriculum.progress=off", cwd=work, env=_hooked_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["buckets"]           # stdout complete through a pipe
    assert "ATEXIT-RAN" in proc.stderr and "TEARDOWN-RAN" not in proc.stderr
    log = next(work.glob("outputs/*/*/ddai.log")).read_text()
    assert "finished:" in log                                            # the job log was flushed


def test_errors_keep_their_exit_status(ddai, tmp_path):
    proc = ddai.launch("curriculum.theta1=0.9", "curriculum.theta_easy=0.5", cwd=tmp_path, env=_hooked_env(tmp_path))
    assert proc.returncode == 2 and "ddai: error:" in proc.stderr and "ATEXIT-RAN" in proc.stderr


def test_sweep_exits_quickly_too(ddai, tmp_path):
    proc = ddai.launch("-m", "curriculum.theta1=0.05,0.2", "curriculum.train_batch_size=16", cwd=tmp_path,
                       env=_hooked_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 2 and "TEARDOWN-RAN" not in proc.stderr


def test_curriculum_job_imports_neither_pandas_nor_submitit(ddai, tmp_path):
    """pyarrow's ``pa.array`` imports pandas (~0.26 s); a local run has no use for submitit."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "ddai.launch", "curriculum.progress=off"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    modules = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "pyarrow" in modules and "ddai.curriculum.pipeline" in modules     # the listing is complete
    assert not {m for m in modules if m.split(".")[0] in ("pandas", "submitit")}


def _child(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_quick_exit_steps_aside_for_a_running_thread():
    proc = _child("""
        import threading, time
        from ddai.launch.quick_exit import exit_without_teardown
        done = threading.Event()
        t = threading.Thread(target=lambda: (done.wait(), print("thread finished", flush=True)))
        t.start()
        exit_without_teardown(0)
        print("returned", flush=True)
        done.set()
    """)
    assert proc.returncode == 0 and proc.stdout.split() == ["returned", "thread", "finished"], proc


def test_quick_exit_steps_aside_for_a_tracer_and_exits_with_the_code_otherwise():
    traced = _child("""
        import sys
        from ddai.launch.quick_exit import exit_without_teardown
        sys.settrace(lambda *a: None)
        exit_without_teardown(0)
        sys.settrace(None)
        print("returned")
    """)
    assert traced.returncode == 0 and traced.stdout.strip() == "returned"
    plain = _child("""
        import atexit
        from ddai.launch.quick_exit import exit_without_teardown
        atexit.register(print, "atexit")
        print("before", end=" ")          # buffered: must still be flushed
        exit_without_teardown(3)
        print("returned")
    """)
    assert plain.returncode == 3 and plain.stdout.split() == ["before", "atexit"]


def test_retain_parks_only_after_until_exit():
    proc = _child("""
        import weakref
        from ddai.curriculum import retain
        class Thing: pass
        a, b = Thing(), Thing()
        ra, rb = weakref.ref(a), weakref.ref(b)
        retain.drop(a); del a
        retain.until_exit()
        retain.drop(b); del b
        print(ra() is None, rb() is not None)
    """)
    assert proc.stdout.split() == ["True", "True"], proc
