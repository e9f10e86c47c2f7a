"""``ddai-report CAMPAIGN_DIR`` shows a campaign's rounds side by side (table on stderr, JSON on stdout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ddai.campaign import record as cr


def test_report_on_a_campaign_dir_lists_its_rounds(tmp_path: Path) -> None:
    d = tmp_path / "camp"
    d.mkdir()
    rounds = [cr.RoundRecord(round=k, set_dir=str(d / f"r{k}"), manifest=str(d / f"r{k}/manifest.json"),
                             run_dir=str(d / f"r{k}/run"), judge_log=str(d / f"r{k}/logs"), status=s,
                             steps=st, judged_rollouts=n, cost_so_far_usd=c,
                             decision={"rule": "focus"} if k > 1 else {})
              for k, s, st, n, c in ((1, "done", 10, 320, 0.5), (2, "failed", 4, 128, 0.7))]
    cr.dump(cr.CampaignRecord(name="camp", dir=str(d), rounds=2, rule="nextround", settings={"train_batch_size": 8},
                              status="failed", message="round 2 failed", round_records=rounds))
    res = subprocess.run([sys.executable, "-m", "ddai.report.cli", str(d)], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["status"] == "failed" and [r["round"] for r in out["rounds"]] == [1, 2]
    assert [r["judged_rollouts"] for r in out["rounds"]] == [320, 128]
    assert "round 2 failed" in res.stderr and "focus" in res.stderr and "$0.7000" in res.stderr
