"""Phase 2 reward: NDCG, the Gemini judge, the frozen generator client and the verl hook.

Import submodules directly; this package imports nothing heavy on purpose.
"""
