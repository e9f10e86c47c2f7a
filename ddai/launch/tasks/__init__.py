"""Tasks of the Hydra app, one module each, selected by ``task=<name>``.

Each module exposes ``validate(cfg) -> None`` (raise ConfigError, read no data, submit
nothing) and ``run(cfg) -> dict`` (the machine-readable result, also used by the sweep
summary).
"""
