"""Hydra's config files parsed by libyaml, with OmegaConf's own YAML rules, in ddai's Hydra app.

WHY: every ``python -m ddai.launch`` parses ~11 YAML files while it composes its configuration
(ddai's groups, Hydra's output, logging and help configs). OmegaConf parses them with PyYAML's
pure-Python ``SafeLoader``; the same files through PyYAML's libyaml binding (``CSafeLoader``)
took 0.036-0.050 CPU s instead of 0.068-0.081 s here, on the path every run waits for.

WHY it stays OmegaConf's YAML: the loader is built from OmegaConf's own (its implicit resolvers --
YAML 1.2 floats such as ``1e3``, no timestamps -- and its constructors are taken over as they are),
and it refuses duplicate keys the way OmegaConf's loader does, with the same message. Only the
scanner and parser run in C; tags are resolved and values constructed by the same Python code.
``tests/launch/test_yaml_loader.py`` holds both loaders to the same results on every config file
ddai and Hydra ship and on YAML's corner cases. Without libyaml, nothing changes.
"""

from __future__ import annotations

from functools import cache
from typing import Any

_INSTALLED = False


@cache
def libyaml_loader() -> Any:
    """OmegaConf's YAML loader rebuilt on libyaml (None when PyYAML has no libyaml binding)."""
    import yaml
    from omegaconf import _utils

    if not getattr(yaml, "__with_libyaml__", False):
        return None
    reference = _utils.get_yaml_loader()
    scalar = yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG

    class LibyamlOmegaConfLoader(yaml.CSafeLoader):  # type: ignore[misc, name-defined]
        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _value in node.value:
                if key_node.tag != scalar:
                    continue
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"found duplicate key {key_node.value}", key_node.start_mark)
                seen.add(key_node.value)
            return yaml.constructor.SafeConstructor.construct_mapping(self, node, deep=deep)

    LibyamlOmegaConfLoader.yaml_implicit_resolvers = {
        first: list(pairs) for first, pairs in reference.yaml_implicit_resolvers.items()}
    LibyamlOmegaConfLoader.yaml_constructors = dict(reference.yaml_constructors)
    LibyamlOmegaConfLoader.yaml_multi_constructors = dict(reference.yaml_multi_constructors)
    return LibyamlOmegaConfLoader


def install() -> bool:
    """Make OmegaConf (and so Hydra) parse YAML with :func:`libyaml_loader`; False without libyaml."""
    global _INSTALLED
    if _INSTALLED:
        return True
    loader = libyaml_loader()
    if loader is None:
        return False
    from omegaconf import _utils, basecontainer

    def get_yaml_loader() -> Any:
        return loader

    _utils.get_yaml_loader = get_yaml_loader          # OmegaConf.load / create import it from here per call
    basecontainer.get_yaml_loader = get_yaml_loader   # bound at import there
    _INSTALLED = True
    return True
