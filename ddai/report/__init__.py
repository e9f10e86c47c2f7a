"""ddai-report: judge logs, curriculum manifests and sweeps, summarized (terminal, JSON, plots).

Pure data code: never imports the training stack; matplotlib and wandb only when asked for.
"""
