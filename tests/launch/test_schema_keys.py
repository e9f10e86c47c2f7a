"""The guard's key lists, read from the dataclasses, equal what OmegaConf builds from them."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from omegaconf import DictConfig, OmegaConf

from ddai.launch import schema_keys


def _omegaconf_tree(node: DictConfig) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key in node.keys():
        child = node._get_node(key)
        structured = isinstance(child, DictConfig) and dataclasses.is_dataclass(OmegaConf.get_type(child))
        tree[str(key)] = _omegaconf_tree(child) if structured else None
    return tree


@pytest.mark.parametrize("group", sorted(schema_keys.schemas()))
def test_schema_tree_matches_omegaconf(group):
    cls = schema_keys.schemas()[group]
    tree = schema_keys.schema_tree(cls)
    assert tree == _omegaconf_tree(OmegaConf.structured(cls))


def test_nested_groups_are_walked():
    tree = schema_keys.schema_tree(schema_keys.schemas()["curriculum"])
    assert isinstance(tree["pass_rate"], dict) and "tau" in tree["pass_rate"] and tree["theta1"] is None


def test_unknown_nested_key_is_named():
    cfg = OmegaConf.create({"task": "curriculum", "curriculum": {"pass_rate": {"tau": 0.5, "tua": 1}}})
    with pytest.raises(Exception) as err:
        schema_keys.check_known_keys(cfg)
    assert "curriculum.pass_rate.tua" in str(err.value) and "tau" in str(err.value)
