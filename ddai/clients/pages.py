"""Page identities: the basename that search results, crops, NDCG and the judge all compare.

Both the agent (which opens pages) and the reward (which scores them) need the same notion of
a page, so it lives below both.
"""

from __future__ import annotations

import os


def basename(path: str) -> str:
    """'./search_engine/corpus/img/2_7.jpg' -> '2_7' (the id NDCG compares)."""
    name = os.path.basename(str(path).rstrip("/"))
    stem, ext = os.path.splitext(name)
    return stem if ext.lower() in (".jpg", ".jpeg", ".png", ".webp") else name
