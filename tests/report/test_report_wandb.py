"""``--wandb`` offline: history rows go into the run id the job chain recorded (plan.json),
under ``ddai/`` with their own step axis; a separate run only when no training run is known.

The offline run's transaction log (``run-<id>.wandb``) is read record by record: W&B writes it
in LevelDB's log format (32 KiB blocks, 7-byte record headers) after a 7-byte file header, each
record one ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from ddai.report.cli import main

BLOCK = 32 * 1024


def wandb_records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    out, pos, buf = [], 7, b""
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        if left < 7:                       # block trailer
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:      # zero padding
            pos += left
            continue
        payload = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 1:
            chunks = payload
        elif kind == 2:
            buf = payload
            continue
        elif kind == 3:
            buf += payload
            continue
        else:
            chunks = buf + payload
        rec = pb.Record()
        rec.ParseFromString(chunks)
        out.append(rec)
    return out


def history(records) -> list[dict]:
    rows = []
    for r in records:
        if r.WhichOneof("record_type") == "history":
            rows.append({(it.key or "/".join(it.nested_key)): json.loads(it.value_json) for it in r.history.item})
    return rows


def summary(records) -> dict:
    out: dict = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            for it in r.summary.update:
                out[it.key or "/".join(it.nested_key)] = json.loads(it.value_json)
    return out


@pytest.fixture
def offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_RUN_ID", raising=False)
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    import wandb

    wandb.teardown()          # wandb reads its environment once per process: start afresh
    yield tmp_path / "wandb"
    wandb.teardown()


def _records_of(run_dir: Path) -> list:
    # run.finish() returns once wandb-core has written and closed the transaction log
    return wandb_records(next(run_dir.glob("run-*.wandb")))


def test_history_goes_into_the_chains_run(offline, phase2_run, capsys):
    assert main([str(phase2_run), "--wandb"]) == 0
    runs = list(offline.glob("offline-run-*"))
    assert [r.name.rsplit("-", 1)[1] for r in runs] == ["0123abcdstable42"]   # plan.json's wandb_run_id
    recs = _records_of(runs[0])
    run_rec = next(r.run for r in recs if r.WhichOneof("record_type") == "run")
    assert run_rec.run_id == "0123abcdstable42" and run_rec.project == "ddai-test"
    rows = [h for h in history(recs) if "ddai/judge_mean" in h]
    assert [h["ddai/step"] for h in rows] == [1, 2]
    assert rows[0]["ddai/judge_mean"] == pytest.approx(2.0 / 5, abs=1e-6)    # step 1: 1, .8, 0, .2, 0
    assert rows[1]["ddai/judge_mean"] == pytest.approx(2.6 / 4, abs=1e-6)
    assert rows[0]["ddai/rollouts"] == 6 and rows[0]["ddai/error_rate"] == pytest.approx(1 / 6, abs=1e-6)
    # ddai/* is plotted against ddai/step (the training step), so it overlays the trainer's curves
    metrics = {r.metric.glob_name or r.metric.name: r.metric.step_metric for r in recs
               if r.WhichOneof("record_type") == "metric"}
    assert metrics.get("ddai/*") == "ddai/step"
    s = summary(recs)
    assert s["ddai/rollouts"] == 10 and s["ddai/last_step_logged"] == 2
    assert s["ddai/tables/per_step"]["_type"] == "table-file"
    assert s["ddai/tables/most_discordant"]["_type"] == "table-file"
    assert "logged to W&B: run 0123abcdstable42" in capsys.readouterr().err


def test_separate_run_only_without_a_training_run(offline, hand_log, capsys):
    assert main([str(hand_log), "--wandb", "--wandb-project", "ddai-test"]) == 0
    runs = list(offline.glob("offline-run-*"))
    assert len(runs) == 1 and not runs[0].name.endswith("0123abcdstable42")
    recs = _records_of(runs[0])
    run_rec = next(r.run for r in recs if r.WhichOneof("record_type") == "run")
    assert run_rec.job_type == "report" and run_rec.display_name == "ddai-report-gspo_gemini_output"
    assert [h["ddai/step"] for h in history(recs) if "ddai/judge_mean" in h] == [1, 2]
    media = runs[0] / "files" / "media" / "images" / "ddai" / "plots"
    assert sorted(p.name.split("_", 1)[0] for p in media.glob("*.png"))   # the PNGs, as images
    capsys.readouterr()


def test_explicit_run_id_wins(offline, hand_log, capsys):
    assert main([str(hand_log), "--wandb", "--wandb-run-id", "explicit123", "--wandb-project", "p"]) == 0
    assert [r.name.rsplit("-", 1)[1] for r in offline.glob("offline-run-*")] == ["explicit123"]
    capsys.readouterr()
