"""A killed ddai-report leaves nothing behind (issue 10).

``ddai-report`` is run the way scripts run it — ``subprocess.run(capture_output=True)`` or
``| tee`` — on a log of ≥ 64 MB (step-keyed, where the curriculum reader may scan in a helper
process, and JSON Lines, where the report reads ahead in a thread). The main process is
killed (SIGTERM, SIGKILL) while it reads. Then: no process of its session may be left, and
its stdout and stderr pipes must reach end-of-file (nothing else holds them), else the
caller would wait forever.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from proc_support import children, pids_where, pipes_after_exit, process_state

ROOT = Path(__file__).resolve().parents[2]
MIN_BYTES = 64 << 20


def _session_members(sid: int) -> list[int]:
    return pids_where(lambda pid: os.getsid(pid) == sid)


@pytest.fixture(scope="module")
def big_logs(tmp_path_factory) -> dict[str, Path]:
    """A ≥ 64 MB step-keyed document and a ≥ 64 MB JSON Lines log of short rollouts."""
    d = tmp_path_factory.mktemp("big")
    steps = d / "steps.json"
    agent = {"agent_id": 1, "response": "<think>" + "t" * 700 + "</think><answer>a</answer>",
             "scores": {"ndcg_value": 0.5, "model_eval_score": 0.7,
                        "ndcg_details": {"retrieved_documents": ["12_3"], "reference_documents": ["12_3"]}}}
    group = {"prompt": "system\nYou search.\nuser\nQuestion: what is it?\nassistant\n", "agents": [agent] * 5}
    with open(steps, "w") as fh:
        fh.write("{")
        step, size = 0, 0
        while size < MIN_BYTES:
            step += 1
            body = json.dumps({f"{step:04d}-{g:04d}": group for g in range(64)})
            fh.write(("," if step > 1 else "") + f'"step_{step}": ' + body)
            size += len(body)
        fh.write("}")
    jsonl = d / "judge.jsonl"
    rec = {"uid": "u", "dataset_id": "train_1", "step": 1, "judge_score": 0.5, "ndcg": 1.0,
           "final_score": 0.6, "generated_answer": "a" * 800}
    line = (json.dumps(rec) + "\n").encode()
    with open(jsonl, "wb") as fh:
        fh.write(line * (MIN_BYTES // len(line) + 1))
    return {"steps": steps, "jsonl": jsonl}




@pytest.mark.parametrize("shape", ["steps", "jsonl"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_report_leaves_nothing(big_logs, shape, sig):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "ddai.report.cli", str(big_logs[shape]), "--json",
                             "--progress", "off"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, env=env, cwd=ROOT)
    try:
        # synchronise on the event "the log is being read": the report prints what it found,
        # then reads (in this process: the readers use threads, never a forked helper)
        first = proc.stderr.readline()
        assert b"found" in first, first
        assert proc.poll() is None, "the report finished before it could be killed"
        os.kill(proc.pid, sig)
        out, _ = pipes_after_exit(proc)     # end of file: nothing holds the report's stdout/stderr
        left = _session_members(proc.pid)
        assert left == [], f"processes outlived the killed report: {left}"
        assert out == b"", "a killed report printed a (partial) JSON document"
    finally:
        for pid in _session_members(proc.pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killed_report_leaves_no_reading_worker(big_logs, sig):
    """A big plain log is read by forked workers (ddai.report.fanout): killing the report while
    they run must take them along and leave its pipes to end-of-file."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "DDAI_REPORT_WORKERS": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "ddai.report.cli", str(big_logs["jsonl"]), "--json",
                             "--progress", "off"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, env=env, cwd=ROOT)
    try:
        first = proc.stderr.readline()
        assert b"found" in first, first
        # synchronise on the event "the workers exist" (they are the report's children)
        workers: list[int] = []
        while proc.poll() is None and len(workers) < 2:
            workers = children(proc.pid)
        assert len(workers) == 2, "the report finished before its workers could be seen"
        os.kill(proc.pid, sig)
        out, _ = pipes_after_exit(proc)     # end of file: nothing holds the report's stdout/stderr
        for pid in workers:      # the kernel kills them (PR_SET_PDEATHSIG); wait for it to be done
            while os.path.exists(f"/proc/{pid}") and process_state(pid) not in ("Z", "X", None):
                pass
        left = [p for p in _session_members(proc.pid) if process_state(p) not in ("Z", "X", None)]
        assert left == [], f"processes outlived the killed report: {left}"
        assert out == b"", "a killed report printed a (partial) JSON document"
    finally:
        for pid in _session_members(proc.pid):
            os.kill(pid, signal.SIGKILL)
