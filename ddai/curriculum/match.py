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
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ddai.curriculum.stats import Evidence, Group, GroupTable

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


class DatasetIndex:
    """Lookups over the dataset's ids and questions (row positions in file order).

    The questions are normalized on first use: an ``id`` or ``deck`` match never needs them
    (thousands of regex passes saved per run).
    """

    def __init__(self, ids: Sequence[str], raw_questions: Sequence[str | None]):
        self.ids = list(ids)
        self.by_id = {i: n for n, i in enumerate(self.ids)}
        self._raw_questions = list(raw_questions)

    @classmethod
    def build(cls, ids: Sequence[str], raw_questions: Sequence[str | None]) -> DatasetIndex:
        return cls(ids, raw_questions)

    @functools.cached_property
    def questions(self) -> list[str | None]:
        """Each row's normalized question (None: the row has none)."""
        return [normalize_question(q) if q else None for q in self._raw_questions]

    @functools.cached_property
    def by_question(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for n, q in enumerate(self.questions):
            if q:
                out.setdefault(q, []).append(n)
        return out


@dataclass
class AmbiguousGroup:
    group: Group
    reason: str
    candidates: list[int]


@dataclass(eq=False)
class MatchResult:
    """Outcome of matching, per group of ``table``; row positions refer to the dataset's file order.

    ``rows`` are the matched rows in the order of the first group claiming each; ``group_row``
    gives every group's matched row (-1: none, or ambiguous). ``row_groups``, ``no_row`` and
    ``ambiguous`` give the same as plain objects (tests, examples).
    """

    strategy: str
    table: GroupTable
    rows: np.ndarray                          # matched rows, by their first group
    group_row: np.ndarray                     # per group: its row, -1 when it has none
    no_row_idx: np.ndarray                    # groups that point at no row, in order
    ambiguous_idx: np.ndarray                 # ambiguous groups, in order ...
    ambiguous_reasons: list[str]              # ... why each is ...
    ambiguous_candidates: list[list[int]]     # ... and the rows it could be
    ambiguous_rows: dict[int, str]            # row -> reason
    n_groups: int

    @classmethod
    def empty(cls, strategy: str, n_groups: int = 0) -> MatchResult:
        none = np.zeros(0, dtype=np.int64)
        return cls(strategy, GroupTable.from_groups([]), none, none, none, none, [], [], {}, n_groups)

    @property
    def row_groups(self) -> dict[int, list[Group]]:
        out: dict[int, list[Group]] = {int(r): [] for r in self.rows}
        for g in np.nonzero(self.group_row >= 0)[0].tolist():
            out[int(self.group_row[g])].append(self.table[g])
        return out

    @property
    def no_row(self) -> list[Group]:
        return [self.table[g] for g in self.no_row_idx.tolist()]

    @property
    def ambiguous(self) -> list[AmbiguousGroup]:
        return [AmbiguousGroup(self.table[g], why, cands)
                for g, why, cands in zip(self.ambiguous_idx.tolist(), self.ambiguous_reasons, self.ambiguous_candidates)]

    def unmatched_rows(self, n_rows: int) -> list[int]:
        matched = np.zeros(n_rows, dtype=bool)
        matched[self.rows] = True
        return [r for r in np.nonzero(~matched)[0].tolist() if r not in self.ambiguous_rows]

    def report(self, index: DatasetIndex) -> dict:
        """The manifest's ``match`` section: counts plus named examples of every failure."""
        unmatched = self.unmatched_rows(len(index.ids))
        reasons: dict[str, int] = {}
        for why in self.ambiguous_reasons:
            kind = why.split(":", 1)[0]
            reasons[kind] = reasons.get(kind, 0) + 1
        t = self.table
        return {
            "strategy": self.strategy,
            "groups": self.n_groups,
            "matched_groups": int((self.group_row >= 0).sum()),
            "matched_rows": len(self.rows),
            "unmatched_rows": len(unmatched),
            "groups_without_row": len(self.no_row_idx),
            "ambiguous_groups": len(self.ambiguous_idx),
            "ambiguous_rows": len(self.ambiguous_rows),
            "ambiguous_reasons": dict(sorted(reasons.items())),
            "examples": {
                "unmatched_rows": [index.ids[r] for r in unmatched[:EXAMPLES]],
                "groups_without_row": [_describe(t[g]) for g in self.no_row_idx[:EXAMPLES].tolist()],
                "ambiguous_groups": [
                    {**_describe(t[g]), "reason": why, "candidates": [index.ids[c] for c in cands[:EXAMPLES]]}
                    for g, why, cands in zip(self.ambiguous_idx[:EXAMPLES].tolist(), self.ambiguous_reasons,
                                             self.ambiguous_candidates)],
                "ambiguous_rows": [{"id": index.ids[r], "reason": why}
                                   for r, why in sorted(self.ambiguous_rows.items())[:EXAMPLES]],
            },
        }


def _describe(g: Group) -> dict:
    return {"group": g.group, "step": g.step, "source": g.sources[0] if g.sources else None,
            "dataset_ids": sorted(g.dataset_ids), "deck_ids": sorted(g.deck_ids),
            "question": g.raw_questions[0] if g.raw_questions else None}


def _candidates(g: Evidence, kind: str, index: DatasetIndex) -> tuple[bool, set[int]]:
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


def _match_one(g: Evidence, kinds: Sequence[str], index: DatasetIndex) -> tuple[str, set[int], str]:
    """Classify one evidence: ("ok", {row}, "") | ("none", ∅, why) | ("ambiguous", rows, why)."""
    if len(kinds) == 1:   # id, deck or question alone: what _match_all gives for one kind, sooner
        has, rows = _candidates(g, kinds[0], index)
        if not rows:
            return "none", set(), "evidence points at no row" if has else "no evidence"
        if len(rows) > 1:
            return "ambiguous", rows, f"several rows: {kinds[0]} evidence fits {len(rows)} rows"
        return "ok", rows, ""
    return _match_all(g, kinds, index)


def _match_all(g: Evidence, kinds: Sequence[str], index: DatasetIndex) -> tuple[str, set[int], str]:
    """:func:`_match_one`'s rule for any number of kinds: every kind present must agree."""
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


def _values(e: Evidence, kind: str) -> frozenset[str]:
    return {"id": e.dataset_ids, "deck": e.deck_ids, "question": e.questions}[kind]


def _signature(e: Evidence, kinds: Sequence[str]) -> tuple:
    """The part of ``e`` matching looks at: evidences equal in it are classified once."""
    return tuple(_values(e, k) for k in ("id", "deck", "question") if k in kinds)


_OK, _NONE, _AMBIGUOUS = 0, 1, 2


def _distinct(a: np.ndarray) -> np.ndarray:
    """The distinct values of an integer array, sorted: ``np.unique(a)`` without its import of
    numpy.ma (numpy 2 imports it for a plain ``np.unique``: ~10 ms of a run's start)."""
    s = np.sort(a)
    if len(s) < 2:
        return s
    keep = np.empty(len(s), dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def match_groups(groups: GroupTable | Sequence[Group], index: DatasetIndex, strategy: str) -> MatchResult:
    """Link every group to at most one row; never merge conflicting claims.

    Groups of one prompt carry the same evidence (a prompt recurs at many steps): each distinct
    evidence is classified once, and a row's conflict check looks at the distinct evidence of
    its claims -- tens of thousands of groups, a few thousand distinct evidences; the per-group
    work is numpy's.
    """
    table = groups if isinstance(groups, GroupTable) else GroupTable.from_groups(groups)
    kinds = KINDS_BY_STRATEGY[strategy]
    conflict_kinds = CONFLICT_KINDS[strategy]
    sig_kinds = tuple(kinds) + tuple(conflict_kinds)
    n_groups = len(table)
    n_ev = len(table.evidence)
    codes = {"ok": _OK, "none": _NONE, "ambiguous": _AMBIGUOUS}
    seen: dict[tuple, tuple[int, int, str, set[int]]] = {}    # signature -> (status, row, why, rows)
    per_ev = []
    for evidence in table.evidence:
        sig = _signature(evidence, sig_kinds)
        hit = seen.get(sig)
        if hit is None:
            status, rows, why = _match_one(evidence, kinds, index)
            hit = seen[sig] = (codes[status], next(iter(rows)) if status == "ok" else -1, why, rows)
        per_ev.append(hit)
    ev_status = np.fromiter((h[0] for h in per_ev), dtype=np.int8, count=n_ev)
    ev_row = np.fromiter((h[1] for h in per_ev), dtype=np.int64, count=n_ev)
    ev_why = [h[2] for h in per_ev]
    ev_rows = [h[3] for h in per_ev]

    g_ev = table.ev
    g_status = ev_status[g_ev] if n_groups else np.zeros(0, dtype=np.int8)
    group_row = np.where(g_status == _OK, ev_row[g_ev], -1) if n_groups else np.zeros(0, dtype=np.int64)
    group_row = group_row.astype(np.int64, copy=False)
    uniq_ev, first_of_ev = np.unique(g_ev, return_index=True)   # each evidence's first group

    # rows claimed only by ambiguous groups: the first such group (in order) names the reason
    claimed_by: dict[int, int] = {}
    for e, g in zip(uniq_ev.tolist(), first_of_ev.tolist()):
        if ev_status[e] == _AMBIGUOUS:
            for r in ev_rows[e]:
                if g < claimed_by.get(r, n_groups):
                    claimed_by[r] = g

    # a row claimed by several groups whose evidence differs (in a conflict kind) is ambiguous
    ok = np.nonzero(group_row >= 0)[0]
    ok_rows = group_row[ok]
    conflict_why: dict[int, str] = {}
    if len(ok):
        claims = np.bincount(ok_rows)
        several = claims[ok_rows] > 1
        pairs = _distinct(ok_rows[several] * max(n_ev, 1) + g_ev[ok][several])   # distinct (row, evidence)
        pr, pe = np.divmod(pairs, max(n_ev, 1))
        # only a row with several evidences, or one evidence with several values of a kind, can conflict
        multi = np.fromiter((any(len(_values(x, k)) > 1 for k in conflict_kinds) for x in table.evidence),
                            dtype=bool, count=n_ev)
        doubt = (np.bincount(pr)[pr] > 1) | multi[pe] if len(pr) else np.zeros(0, dtype=bool)
        by_row: dict[int, list[int]] = {}
        for r, e in zip(pr[doubt].tolist(), pe[doubt].tolist()):
            by_row.setdefault(r, []).append(e)
        for r in sorted(by_row):
            evs = [table.evidence[e] for e in by_row[r]]
            for kind in conflict_kinds:
                if len(frozenset().union(*(_values(x, kind) for x in evs))) > 1:
                    conflict_why[r] = f"conflict: {int(claims[r])} groups claim it with different {kind} evidence"
                    break
    amb_why: dict[int, tuple[str, list[int]]] = {}      # group -> (reason, candidates)
    for g in np.nonzero(g_status == _AMBIGUOUS)[0].tolist():
        e = int(g_ev[g])
        amb_why[g] = (ev_why[e], sorted(ev_rows[e]))
    if conflict_why:
        in_conflict = np.isin(ok_rows, np.fromiter(conflict_why, dtype=np.int64, count=len(conflict_why)))
        for g, r in zip(ok[in_conflict].tolist(), ok_rows[in_conflict].tolist()):
            amb_why[g] = (conflict_why[r], [r])
        group_row[ok[in_conflict]] = -1
    matched = np.nonzero(group_row >= 0)[0]
    m_rows, m_first = np.unique(group_row[matched], return_index=True)
    rows = m_rows[np.argsort(m_first, kind="stable")]
    ambiguous_rows = dict(conflict_why)
    kept = set(rows.tolist())
    for r, g in sorted(claimed_by.items(), key=lambda t: t[1]):
        if r not in kept and r not in ambiguous_rows:
            ambiguous_rows[r] = f"only claimed by ambiguous {table.label(g)}"
    amb = sorted(amb_why)
    return MatchResult(strategy, table, rows.astype(np.int64), group_row,
                       np.nonzero(g_status == _NONE)[0].astype(np.int64), np.asarray(amb, dtype=np.int64),
                       [amb_why[g][0] for g in amb], [amb_why[g][1] for g in amb], ambiguous_rows, n_groups)
