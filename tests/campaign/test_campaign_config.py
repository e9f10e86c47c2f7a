"""The campaign's launcher and record without a cluster: bad settings fail with exit 2 naming the
key, a dry run lists every stage, campaign.json reads back into the same dataclasses, and a
directory holding another campaign is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ddai.campaign import record as cr

BASE = ["task=campaign", "+phase2.agent.settings.search_url=http://search.example:5002/search",
        "phase2.logger=[console]", "phase2.train_batch_size=8",
        "phase2.ppo_mini_batch_size=8", "curriculum.train_batch_size=8", "phase2.experiment_name=cfgtest"]


def launch(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GEMINI_API_KEY": "k", "OPENAI_API_KEY": "k"}
    from phase2_inputs import phase2_inputs

    return subprocess.run([sys.executable, "-m", "ddai.launch", *BASE, *phase2_inputs(tmp_path / "in"),
                           f"campaign.dir={tmp_path / 'c'}",
                           f"hydra.run.dir={tmp_path / 'h'}", *extra], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)


def test_bad_rule_and_rounds_fail_naming_the_key(tmp_path: Path) -> None:
    res = launch(tmp_path, "campaign.rule=focus")
    assert res.returncode == 2 and "campaign.rule" in res.stderr and "rebucket or nextround" in res.stderr
    res = launch(tmp_path, "campaign.rounds=0")
    assert res.returncode == 2 and "campaign.rounds" in res.stderr
    assert not (tmp_path / "c").exists(), "nothing written on a bad setting"


def test_dry_run_lists_stages_and_other_campaign_is_refused(tmp_path: Path) -> None:
    res = launch(tmp_path, "campaign.rounds=3", "campaign.dry_run=true")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert [s["stage"] for s in out["stages"]] == ["round1-curriculum", "round1-phase2", "round2-set", "round2-phase2",
                                                   "round3-set", "round3-phase2", "close"]
    assert "--dependency=afterok:<previous stage>" in out["stages"][1]["sbatch"]
    assert not (tmp_path / "c" / "campaign.json").exists(), "a dry run writes nothing"

    rec = cr.CampaignRecord(name="cfgtest", dir=str(tmp_path / "c"), rounds=2, rule="nextround", settings={"rule": "x"},
                            round_records=[cr.RoundRecord(1, "s", "m", "r", "j")])
    (tmp_path / "c").mkdir()
    cr.dump(rec)
    assert cr.load(tmp_path / "c") == rec, "campaign.json reads back into the same dataclasses"
    res = launch(tmp_path, "campaign.dry_run=true")
    assert res.returncode == 2 and "holds a different campaign" in res.stderr and "campaign.json" in res.stderr
