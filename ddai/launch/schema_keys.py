"""Unknown keys under schema-backed groups: fail, naming the key and the closest valid one.

WHY: Hydra refuses ``curriculum.thet1=0.1`` but accepts ``+curriculum.thet1=0.1`` (an
append opens the struct flag), storing the misspelt key while the default is used; its
message for the first case even suggests adding the ``+``. Every group of ``conf/`` is
backed by a dataclass, so the schema knows the valid keys: this module walks the composed
config against it and names the closest valid key.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import typing
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ddai.errors import ConfigError

TOP_LEVEL = ("task", "curriculum", "phase2", "sweep", "campaign", "hydra")


def schemas() -> dict[str, type]:
    """Group name -> the dataclass behind it."""
    from ddai.campaign.config import CampaignConfig
    from ddai.curriculum.config import CurriculumConfig
    from ddai.launch.sweep_config import SweepConfig
    from ddai.phase2.config import Phase2Config

    return {"curriculum": CurriculumConfig, "phase2": Phase2Config, "sweep": SweepConfig,
            "campaign": CampaignConfig}


def _is_structured(node: Any) -> bool:
    return isinstance(node, DictConfig) and dataclasses.is_dataclass(OmegaConf.get_type(node))


def closest(name: str, candidates: list[str]) -> str | None:
    found = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    return found[0] if found else None


def unknown_key_error(full_key: str) -> ConfigError:
    """The error for ``full_key`` (dotted) that the schema does not have."""
    parts = full_key.split(".")
    node: Any = None
    candidates: list[str] = list(TOP_LEVEL)
    if parts[0] in schemas():
        node = OmegaConf.structured(schemas()[parts[0]])
        candidates = [str(k) for k in node.keys()]
        for part in parts[1:-1]:
            child = node.get(part) if isinstance(node, DictConfig) else None
            if not _is_structured(child):
                break
            node = child
            candidates = [str(k) for k in node.keys()]
    parent = ".".join(parts[:-1])
    best = closest(parts[-1], candidates)
    hint = f"did you mean {(parent + '.') if parent else ''}{best}?" if best else f"one of {', '.join(candidates[:12])}"
    return ConfigError("unknown key", where=full_key,
                       expected=f"a key of {parent or 'the top level'}; {hint}")


@functools.lru_cache(maxsize=None)
def schema_tree(cls: type) -> dict[str, Any]:
    """The keys of dataclass ``cls`` as OmegaConf structures it: key -> subtree (a nested
    dataclass) or None (a value).

    WHY not ``OmegaConf.structured(cls).keys()``: building the config objects of the four
    schemas cost ~0.04 s of every start for what the dataclasses state directly (one key per
    field; a field is a nested config when its type, or its default, is a dataclass).
    ``tests/launch/test_schema_keys.py`` checks this against OmegaConf for every schema.
    """
    hints = typing.get_type_hints(cls)
    tree: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        child = _nested_dataclass(hints.get(f.name, f.type), f)
        tree[f.name] = schema_tree(child) if child is not None else None
    return tree


def _nested_dataclass(hint: Any, f: dataclasses.Field) -> type | None:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is typing.Union and len(args) == 1:   # Optional[X]
        hint = args[0]
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return hint
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if dataclasses.is_dataclass(default) and not isinstance(default, type):
        return type(default)
    return None


def _walk(node: DictConfig, schema: dict[str, Any], prefix: str) -> str | None:
    for key in node.keys():
        k = str(key)
        if k not in schema:
            return f"{prefix}.{k}"
        s_child = schema[k]
        if s_child is not None:
            n_child = node._get_node(k)
            if isinstance(n_child, DictConfig) and not n_child._is_none() and not n_child._is_missing():
                bad = _walk(n_child, s_child, f"{prefix}.{k}")
                if bad:
                    return bad
    return None


def check_known_keys(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` for the first key no schema knows (top level and every group)."""
    for key in cfg.keys():
        if str(key) not in TOP_LEVEL:
            raise unknown_key_error(str(key))
    for group, cls in schemas().items():
        node = cfg._get_node(group)
        if isinstance(node, DictConfig) and not node._is_none():
            bad = _walk(node, schema_tree(cls), group)
            if bad:
                raise unknown_key_error(bad)
