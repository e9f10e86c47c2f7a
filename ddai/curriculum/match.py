"""Link log groups to dataset rows, and say plainly which could not be linked and why.

WHY this is careful: the step-keyed Phase 1 log keys groups by random uuids, so a group's
dataset row must be inferred from evidence — a dataset id when the log has one, the deck id
of its reference documents (the reference script's way: deck "6391" → row "train_6391"),
or the question text. Evidence can be missing, point nowhere, or point at several rows.
A wrong link silently gives a prompt another prompt's difficulty, so anything short of a
single consistent answer is reported as *ambiguous* and kept out of the statistics.

Strategies:
- ``id``: the log's dataset id equals the row's ``id``.
- ``deck``: ``train_<deck>`` equals the row's ``id`` (reference behaviour; groups sharing a
  deck are never in conflict, exactly as the reference's deck-keyed dict).
- ``question``: normalized question text equals the row's ``extra_info.question``.
- ``auto``: all evidence the group carries must agree on exactly one row. Id or deck
  evidence that points at no row, or a question that differs from the row's, is a conflict.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Callable, Sequence

from ddai.curriculum.stats import Group

KINDS_BY_STRATEGY = {"id": ("id",), "deck": ("deck",), "question": ("question",),
                     "auto": ("id", "deck", "question")}
# Which evidence kinds must agree between groups claiming the same row. ``deck`` keeps
# the reference's behaviour (later groups of a deck simply add to / replace earlier ones).
CONFLICT_KINDS = {"id": ("id", "deck", "question"), "deck": ("deck",),
                  "question": ("id", "deck", "question"), "auto": ("id", "deck", "question")}
EXAMPLES = 5

_QUESTION_PREFIX = re.compile(r"^\s*question\s*[:：]\s*", re.IGNORECASE)
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


# Cached: a log's questions are mostly the dataset's own texts, so each is normalized once
# for the index and hit again for every group (bounded, so long-lived processes stay small).
@functools.lru_cache(maxsize=1 << 17)
def normalize_question(text: str) -> str:
    """Question text reduced to what identifies it: case, spacing and punctuation ignored."""
    if not text.isascii():   # NFKC leaves ASCII text as it is: skip the call for the usual case
        text = unicodedata.normalize("NFKC", text)
    text = _QUESTION_PREFIX.sub("", text)
    return _NON_WORD.sub(" ", text.casefold()).strip()


def deck_row_id(deck: str) -> str:
    """The reference script's link from a deck id to a dataset id."""
    return f"train_{deck}"


@dataclass
class DatasetIndex:
    """Lookups over the dataset's ids and questions (row positions in file order)."""

    ids: list[str]
    questions: list[str | None]
    by_id: dict[str, int] = field(init=False)
    by_question: dict[str, list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_id = {i: n for n, i in enumerate(self.ids)}
        self.by_question = {}
        for n, q in enumerate(self.questions):
            if q:
                self.by_question.setdefault(q, []).append(n)

    @classmethod
    def build(cls, ids: Sequence[str], raw_questions: Sequence[str | None]) -> "DatasetIndex":
        return cls(list(ids), [normalize_question(q) if q else None for q in raw_questions])


@dataclass
class AmbiguousGroup:
    group: Group
    reason: str
    candidates: list[int]


@dataclass
class MatchResult:
    """Outcome of matching; row positions refer to the dataset's file order."""

    strategy: str
    row_groups: dict[int, list[Group]]
    ambiguous: list[AmbiguousGroup]
    ambiguous_rows: dict[int, str]           # row -> reason
    no_row: list[Group]
    n_groups: int

    def unmatched_rows(self, n_rows: int) -> list[int]:
        return [r for r in range(n_rows) if r not in self.row_groups and r not in self.ambiguous_rows]

    def report(self, index: DatasetIndex) -> dict:
        """The manifest's ``match`` section: counts plus named examples of every failure."""
        unmatched = self.unmatched_rows(len(index.ids))
        reasons: dict[str, int] = {}
        for a in self.ambiguous:
            kind = a.reason.split(":", 1)[0]
            reasons[kind] = reasons.get(kind, 0) + 1
        return {
            "strategy": self.strategy,
            "groups": self.n_groups,
            "matched_groups": sum(len(v) for v in self.row_groups.values()),
            "matched_rows": len(self.row_groups),
            "unmatched_rows": len(unmatched),
            "groups_without_row": len(self.no_row),
            "ambiguous_groups": len(self.ambiguous),
            "ambiguous_rows": len(self.ambiguous_rows),
            "ambiguous_reasons": dict(sorted(reasons.items())),
            "examples": {
                "unmatched_rows": [index.ids[r] for r in unmatched[:EXAMPLES]],
                "groups_without_row": [_describe(g) for g in self.no_row[:EXAMPLES]],
                "ambiguous_groups": [
                    {**_describe(a.group), "reason": a.reason,
                     "candidates": [index.ids[c] for c in a.candidates[:EXAMPLES]]}
                    for a in self.ambiguous[:EXAMPLES]],
                "ambiguous_rows": [{"id": index.ids[r], "reason": why}
                                   for r, why in sorted(self.ambiguous_rows.items())[:EXAMPLES]],
            },
        }


def _describe(g: Group) -> dict:
    return {"group": g.group, "step": g.step, "source": g.sources[0] if g.sources else None,
            "dataset_ids": sorted(g.dataset_ids), "deck_ids": sorted(g.deck_ids),
            "question": g.raw_questions[0] if g.raw_questions else None}


def _candidates(g: Group, kind: str, index: DatasetIndex) -> tuple[bool, set[int]]:
    """(evidence present?, rows it points at) for one evidence kind."""
    if kind == "id":
        return bool(g.dataset_ids), {index.by_id[i] for i in g.dataset_ids if i in index.by_id}
    if kind == "deck":
        rows = {index.by_id[deck_row_id(d)] for d in g.deck_ids if deck_row_id(d) in index.by_id}
        return bool(g.deck_ids), rows
    rows = set()
    for q in g.questions:
        rows.update(index.by_question.get(q, ()))
    return bool(g.questions), rows


def _match_one(g: Group, kinds: Sequence[str], index: DatasetIndex) -> tuple[str, set[int], str]:
    """Classify one group: ("ok", {row}, "") | ("none", ∅, why) | ("ambiguous", rows, why)."""
    present: list[tuple[str, set[int]]] = []
    for kind in kinds:
        has, rows = _candidates(g, kind, index)
        if has:
            present.append((kind, rows))
    pointing = [(k, rows) for k, rows in present if rows]
    if not pointing:
        why = "no evidence" if not present else "evidence points at no row"
        return "none", set(), why
    claimed = set().union(*(rows for _, rows in pointing))
    common = set.intersection(*(rows for _, rows in pointing))
    if len(common) > 1:
        kinds_s = "+".join(k for k, _ in pointing)
        return "ambiguous", common, f"several rows: {kinds_s} evidence fits {len(common)} rows"
    if not common:
        desc = ", ".join(f"{k}→{len(rows)} row(s)" for k, rows in pointing)
        return "ambiguous", claimed, f"conflict: evidence disagrees ({desc})"
    (row,) = common
    for kind, rows in present:
        if rows:
            continue
        if kind == "question" and index.questions[row] is None:
            continue  # the row has no question to compare against: not a conflict
        return "ambiguous", claimed, f"conflict: {kind} evidence does not fit the row the other evidence names"
    return "ok", common, ""


def _values(g: Group, kind: str) -> set[str]:
    return {"id": g.dataset_ids, "deck": g.deck_ids, "question": g.questions}[kind]


_ATTRS = {"id": "dataset_ids", "deck": "deck_ids", "question": "questions"}


def _signature(kinds: Sequence[str]) -> Callable[[Group], tuple]:
    """The key under which groups carry the same evidence of ``kinds`` (only those kinds).

    Built from the sets' iteration order, so two equal sets may give two keys -- that only
    costs a second classification, never a wrong one.
    """
    attrs = [_ATTRS[k] for k in ("id", "deck", "question") if k in kinds]
    if len(attrs) == 1:
        get_one = attrgetter(attrs[0])
        return lambda g: tuple(get_one(g))
    get_all = attrgetter(*attrs)
    return lambda g: tuple(map(tuple, get_all(g)))


def match_groups(groups: Sequence[Group], index: DatasetIndex, strategy: str) -> MatchResult:
    """Link every group to at most one row; never merge conflicting claims.

    Groups of one prompt carry the same evidence (a prompt recurs at many steps): each
    distinct evidence is classified once, and the per-row conflict check looks at the
    distinct evidence of a row's claims, not at every claim (the union of their values is
    the same) -- tens of thousands of groups, a few thousand distinct prompts.
    """
    kinds = KINDS_BY_STRATEGY[strategy]
    conflict_kinds = CONFLICT_KINDS[strategy]
    signature = _signature(tuple(kinds) + tuple(conflict_kinds))
    row_groups: dict[int, list[Group]] = {}
    ambiguous: list[AmbiguousGroup] = []
    no_row: list[Group] = []
    claimed_by_ambiguous: dict[int, str] = {}
    # signature -> (status, rows, why, the row when "ok" else -1, the first group that had it)
    seen: dict[tuple, tuple[str, set[int], str, int, Group]] = {}
    for g in groups:
        sig = signature(g)
        hit = seen.get(sig)
        if hit is None:
            status, rows, why = _match_one(g, kinds, index)
            hit = seen[sig] = (status, rows, why, next(iter(rows)) if status == "ok" else -1, g)
        status = hit[0]
        if status == "ok":
            claims = row_groups.get(hit[3])
            if claims is None:
                row_groups[hit[3]] = [g]
            else:
                claims.append(g)
        elif status == "none":
            no_row.append(g)
        else:
            ambiguous.append(AmbiguousGroup(g, hit[2], sorted(hit[1])))
            for r in hit[1]:
                claimed_by_ambiguous.setdefault(r, f"only claimed by ambiguous {g.label()}")

    evidence: dict[int, list[Group]] = {}   # row -> one group per distinct evidence claiming it
    for status, _, _, row, first in seen.values():
        if status == "ok":
            evidence.setdefault(row, []).append(first)
    ambiguous_rows: dict[int, str] = {}
    for row in sorted(row_groups):
        claims = row_groups[row]
        if len(claims) < 2:
            continue
        for kind in conflict_kinds:
            values = set().union(*(_values(g, kind) for g in evidence[row]))
            if len(values) > 1:
                why = f"conflict: {len(claims)} groups claim it with different {kind} evidence"
                ambiguous_rows[row] = why
                for g in claims:
                    ambiguous.append(AmbiguousGroup(g, why, [row]))
                del row_groups[row]
                break
    for row, why in claimed_by_ambiguous.items():
        if row not in row_groups and row not in ambiguous_rows:
            ambiguous_rows[row] = why
    ambiguous.sort(key=lambda a: a.group.order)
    return MatchResult(strategy, row_groups, ambiguous, ambiguous_rows, no_row, len(groups))
