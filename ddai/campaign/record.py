"""``<campaign dir>/campaign.json``: dumped from and loaded into dataclasses, never parsed by hand.

WHY a lock and atomic writes: the launcher, every between-rounds job and the closing job
update the same file; each update happens under an exclusive ``flock`` and replaces the file
atomically, so a reader never sees half a record and two writers never lose each other's
fields.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddai.atomic import atomic_write_text
from ddai.errors import InputError

RECORD_NAME = "campaign.json"
VERSION = 1


@dataclass
class RoundRecord:
    """One round: where its set and run live, where it started, what decided its set, what it cost."""

    round: int
    set_dir: str
    manifest: str
    run_dir: str
    judge_log: str
    train_file: str | None = None
    start_checkpoint: str | None = None   # the previous round's final actor checkpoint (None: phase2.model_path)
    decision: dict[str, Any] = field(default_factory=dict)   # rule, parameters, source log
    counts: dict[str, Any] = field(default_factory=dict)     # rows per bucket/set, trained rows, steps
    status: str = "planned"               # planned | ready | done | failed
    final_checkpoint: str | None = None
    steps: int | None = None
    judged_rollouts: int | None = None
    cost_usd: float | None = None
    cost_so_far_usd: float | None = None
    message: str = ""


@dataclass
class Submission:
    """One launcher run: which stage got which job, which were complete and skipped."""

    at: float
    jobs: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


@dataclass
class CampaignRecord:
    name: str
    dir: str
    rounds: int
    rule: str
    settings: dict[str, Any]              # the campaign block as configured (a re-run must match)
    version: int = VERSION
    status: str = "planned"               # planned | running | done | failed
    message: str = ""
    round_records: list[RoundRecord] = field(default_factory=list)
    submissions: list[Submission] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    schedule: dict[str, Any] = field(default_factory=dict)   # ddai.campaign.schedule.ScheduleState

    def round(self, k: int) -> RoundRecord:
        return self.round_records[k - 1]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any], where: str = RECORD_NAME) -> CampaignRecord:
        if d.get("version") != VERSION:
            raise InputError(f"campaign record version {d.get('version')!r}", where=where, expected=f"version {VERSION}")
        try:
            rounds = [RoundRecord(**r) for r in d.get("round_records", [])]
            subs = [Submission(**s) for s in d.get("submissions", [])]
            rest = {k: v for k, v in d.items() if k not in ("round_records", "submissions")}
            return cls(**rest, round_records=rounds, submissions=subs)
        except TypeError as exc:
            raise InputError(f"campaign record does not fit its schema ({exc})", where=where,
                             expected="campaign.json written by ddai") from None


def path(campaign_dir: str | Path) -> Path:
    return Path(campaign_dir) / RECORD_NAME


def load(campaign_dir: str | Path) -> CampaignRecord | None:
    p = path(campaign_dir)
    if not p.exists():
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg})", where=f"{p}:{exc.lineno}",
                         expected="campaign.json written by ddai") from None
    return CampaignRecord.from_json(data, str(p))


def dump(rec: CampaignRecord) -> None:
    atomic_write_text(path(rec.dir), json.dumps(rec.to_json(), indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def locked(campaign_dir: str | Path) -> Iterator[CampaignRecord]:
    """Yield the record under an exclusive lock and write it back (atomically) on success."""
    d = Path(campaign_dir)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".campaign.lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            rec = load(d)
            if rec is None:
                raise InputError("no campaign.json", where=d, expected="a campaign started by task=campaign")
            yield rec
            dump(rec)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def event(rec: CampaignRecord, kind: str, **fields: Any) -> None:
    """Append an event (stage advance, rollback, round failure, ...) with its time."""
    rec.events.append({"event": kind, "at": round(time.time(), 3), **fields})
