"""Phase 1 logs -> per-prompt difficulty -> buckets -> ordered, verl-ready datasets.

Pure data code: never imports the training stack.
"""
