"""Cache and log failures name the file and the cause; a paid judgment is cached before the log can fail."""

from __future__ import annotations

import asyncio
import errno
import json
import os
from pathlib import Path

import pytest

from ddai.reward.cache import JudgeCache
from ddai.reward.judge_log import JudgeLog, writer_path
from ddai.reward.storage import RewardStorageError
from ddai.reward.verl_reward import compute_score

EXTRA = {"question": "q", "answer": "Credit Cards", "file_name": "2.pdf", "reference_page": [7],
         "ddai": {"dataset_id": "train_2", "uid": "g", "sample_idx": 0, "retrieved_basenames": ["2_7"],
                  "generated_answer": "Credit Cards", "format_ok": True}}


def _score(kwargs, **extra):
    info = {**EXTRA, "ddai": {**EXTRA["ddai"], **extra}}
    return asyncio.run(compute_score(data_source="s", solution_str="x", ground_truth="Credit Cards", extra_info=info,
                                     **kwargs))


def test_a_full_disk_under_the_log_stops_after_the_judgment_was_cached(fake_gemini, reward_kwargs):
    log_file = writer_path(reward_kwargs["log_path"])
    log_file.parent.mkdir(parents=True)
    os.symlink("/dev/full", log_file)  # every write there fails with ENOSPC
    with pytest.raises(RewardStorageError) as err:
        _score(reward_kwargs)
    message = str(err.value)
    assert str(log_file) in message and "ENOSPC" in message and "\n" not in message
    assert fake_gemini.calls == 1
    cached = JudgeCache(reward_kwargs["cache_path"], writer="reader")
    assert len(cached) == 1  # paid for, so stored before the log was written
    # the process refuses every later rollout with the same message, without paying
    with pytest.raises(RewardStorageError, match="ENOSPC"):
        _score(reward_kwargs, dataset_id="train_3")
    assert fake_gemini.calls == 1


def test_a_cache_that_cannot_be_written_names_the_file(fake_gemini, reward_kwargs, monkeypatch):
    real_open = os.open

    def deny(path, flags, *args):
        if "judge_cache." in str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(RewardStorageError) as err:
        _score(reward_kwargs)
    assert "judge_cache." in str(err.value) and "EACCES" in str(err.value)
    assert "write permission" in str(err.value)


def test_a_corrupt_cache_file_is_named(tmp_path):
    directory = tmp_path / "cache"
    JudgeCache(directory, writer="a").put("k1", {"score": 1.0})
    bad = directory / "judge_cache.b.1.2.jsonl"
    bad.write_bytes(b'{"key": "k2", "value": {}}\n\x00\x17garbage\n')
    with pytest.raises(RewardStorageError) as err:
        JudgeCache(directory, writer="c")
    assert str(bad) in str(err.value) and "corrupt" in str(err.value) and "byte 27" in str(err.value)


def test_a_cache_path_that_is_a_file_is_named(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("not a directory")
    with pytest.raises(RewardStorageError) as err:
        JudgeCache(blocker / "inner")
    assert str(blocker / "inner") in str(err.value) and "ENOTDIR" in str(err.value)


def test_a_partial_last_line_from_a_crash_is_skipped_then_cut(tmp_path):
    directory = tmp_path / "cache"
    own = JudgeCache(directory, writer="w")
    own.put("k1", {"score": 0.5})
    own.close()
    with open(directory / "judge_cache.w.jsonl", "ab") as fh:
        fh.write(b'{"key": "k2", "val')  # the writer died mid-line
    reader = JudgeCache(directory, writer="r")
    assert reader.get("k1") == {"score": 0.5} and reader.get("k2") is None
    again = JudgeCache(directory, writer="w")  # same writer id after a requeue
    again.put("k3", {"score": 1.0})
    lines = (directory / "judge_cache.w.jsonl").read_bytes().split(b"\n")
    assert [json.loads(line)["key"] for line in lines[:-1]] == ["k1", "k3"]  # the torn line is gone
    assert JudgeCache(directory, writer="x").get("k3") == {"score": 1.0}


def test_log_open_failure_names_the_file(tmp_path, monkeypatch):
    target = tmp_path / "logs" / "gspo_gemini_output.jsonl"
    real_open = os.open

    def full(path, flags, *args):
        if str(path).startswith(str(tmp_path / "logs")):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", full)
    with pytest.raises(RewardStorageError) as err:
        JudgeLog(target)
    assert "gspo_gemini_output." in str(err.value) and "EROFS" in str(err.value)
    assert Path(str(err.value).split(":")[0]).name.startswith("gspo_gemini_output.")
