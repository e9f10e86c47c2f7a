"""The collector rests while ddai.launch starts and runs again once the config is checked."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from ddai.launch import startup_gc

REPO = Path(__file__).resolve().parents[2]


def test_pause_and_resume_leave_a_caller_disabled_collector_alone():
    was = gc.isenabled()
    try:
        gc.disable()
        startup_gc.pause()
        startup_gc.resume()
        assert not gc.isenabled()          # it was off before pause: resume does not turn it on
        gc.enable()
        startup_gc.pause()
        assert not gc.isenabled()
        startup_gc.resume()
        assert gc.isenabled()
        startup_gc.resume()                # twice: nothing more happens
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        (gc.enable if was else gc.disable)()


def test_a_launch_runs_its_task_with_the_collector_on(tmp_path):
    """``python -m ddai.launch``: paused during start-up, on again (and start-up frozen) when the
    task starts; the task here is the curriculum run on the bundled example."""
    probe = textwrap.dedent(f"""
        import gc, json, runpy, sys
        sys.argv = ["ddai.launch", "hydra.run.dir={tmp_path}/run", "curriculum.progress=off"]
        import ddai.launch.tasks.curriculum as task
        seen = {{}}
        collections = []
        gc.callbacks.append(lambda phase, info: collections.append(info) if phase == "start" else None)
        import ddai.launch.startup_gc as sg
        real_pause, real_resume = sg.pause, sg.resume
        def pause():
            seen.setdefault("at_pause", len(collections))
            real_pause()
        def resume():
            seen.setdefault("at_resume", len(collections))
            real_resume()
        sg.pause, sg.resume = pause, resume
        real = task.run
        def run(cfg):
            seen.update(enabled=gc.isenabled(), frozen=gc.get_freeze_count())
            return real(cfg)
        task.run = run
        import ddai.launch.quick_exit as qe
        def ex(code):
            print(json.dumps(seen), file=sys.stderr, flush=True)
            qe.os._exit(code)
        qe.exit_without_teardown = ex
        runpy.run_module("ddai.launch", run_name="__main__", alter_sys=True)
    """)
    res = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    seen = json.loads(res.stderr.strip().splitlines()[-1])
    assert seen["at_resume"] == seen["at_pause"]    # none while Hydra imported and composed, up to the guard
    assert seen["enabled"] is True and seen["frozen"] > 0
