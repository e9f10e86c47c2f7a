"""Retrieval NDCG of one rollout, exactly as DESIGN.md and the reference reward managers define it.

Binary relevance in viewing order, no cutoff, the ideal list holds every reference page.
Kept separate so the curriculum, the report and the reward compute the same number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ddai.clients.pages import basename  # noqa: F401  (re-exported: NDCG compares basenames)


def ndcg(retrieved: Sequence[str], reference: Sequence[str]) -> float:
    """NDCG of ``retrieved`` basenames (viewing order) against ``reference`` basenames.

    rel_i = 1 if retrieved[i] is a reference page; DCG = sum (2^rel - 1) / log2(i + 1) for
    1-based i; IDCG = DCG of len(reference) ones followed by zeros for the rest of the
    retrieved list; 0.0 when there are no reference pages. Duplicates are not removed here
    (de-duplication happens when pages are collected).
    """
    if not reference:
        return 0.0
    golden = set(reference)
    rels = [1 if name in golden else 0 for name in retrieved]
    dcg = _dcg(rels)
    ideal = [1] * len(reference) + [0] * max(0, len(retrieved) - len(reference))
    idcg = _dcg(ideal)
    return dcg / idcg if idcg > 0 else 0.0


def _dcg(rels: Iterable[int]) -> float:
    return sum((2**rel - 1) / math.log2(i + 1) for i, rel in enumerate(rels, start=1))


def reference_basenames(file_name: str, reference_pages: Iterable[int]) -> list[str]:
    """('2.pdf', [7, 9]) -> ['2_7', '2_9'] (pages are 1-based, stem of the deck file)."""
    stem = str(file_name).split(".pdf")[0]
    return [f"{stem}_{int(p)}" for p in reference_pages]
