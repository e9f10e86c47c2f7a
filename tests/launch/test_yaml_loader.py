"""ddai's Hydra app parses config files with libyaml: the results must be OmegaConf's, exactly."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import hydra
import pytest
import yaml
from omegaconf import OmegaConf, _utils, basecontainer

from ddai.launch import yaml_loader

REPO = Path(__file__).resolve().parents[2]
CONFIG_FILES = sorted((REPO / "conf").rglob("*.yaml")) + sorted((Path(hydra.__file__).parent / "conf").rglob("*.yaml"))

CORNERS = [
    "a: 1e3\nb: 1.5e-3\nc: 1_000.5\nd: .5\ne: -2.\nf: 6.8523015e+5\ng: 190:20:30.15\n",   # YAML 1.2 floats
    "inf: .inf\nninf: -.Inf\nnan: .NaN\n",
    "when: 2024-01-02\nstamp: 2001-12-14t21:59:43.10-05:00\n",      # timestamps stay strings
    "i: 0x1F\no: 0o17\nn: -42\nbig: 123456789012345678901234567890\nsep: 1_000\n",
    "t: true\ny: yes\nno_: no\non: on\noff_: Off\nnull_: null\ntilde: ~\nempty:\n",
    "q: 'single ''quoted'''\nd: \"double \\u00e9 \\t tab\"\nu: ünï cödé ✓\n",
    "block: |\n  line one\n  line two\nfolded: >\n  folded\n  text\n",
    "base: &b {x: 1, y: [1, 2]}\nderived:\n  <<: *b\n  y: 3\nalias: *b\n",
    "interp: ${a.b}\nenv: ${oc.env:HOME,/tmp}\nnested: {a: [1, {b: [c, d]}], e: []}\n",
    "defaults:\n  - curriculum: default\n  - override hydra/help: ddai\n  - _self_\n",
    "p: !!python/object/apply:pathlib.Path\n  - a\n  - b\n",
    "",
    "# only a comment\n",
    "- 1\n- two\n- 3.0\n",
    "? complex key\n: value\n1: int key\n2.5: float key\n",
]


def _same(a, b) -> bool:
    """Equal values of the same types all the way down (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


@pytest.fixture
def fast():
    loader = yaml_loader.libyaml_loader()
    if loader is None:  # pragma: no cover - PyYAML built without libyaml
        pytest.fail("PyYAML has no libyaml binding here; install the binary wheel (the CI image has it)")
    return loader


def test_the_config_files_parse_the_same(fast) -> None:
    assert len(CONFIG_FILES) > 15
    for path in CONFIG_FILES:
        text = path.read_text()
        assert _same(yaml.load(text, Loader=fast), yaml.load(text, Loader=_utils.get_yaml_loader())), path


@pytest.mark.parametrize("text", CORNERS)
def test_yaml_corner_cases_parse_the_same(fast, text: str) -> None:
    assert _same(yaml.load(text, Loader=fast), yaml.load(text, Loader=_utils.get_yaml_loader()))


def test_the_float_rule_is_omegaconfs_not_yaml_1_1(fast) -> None:
    got = yaml.load("a: 1e3\nb: 2024-01-02\n", Loader=fast)
    assert got == {"a": 1000.0, "b": "2024-01-02"} and type(got["a"]) is float


def test_duplicate_keys_are_refused_with_omegaconfs_message(fast) -> None:
    text = "a: 1\nb: 2\na: 3\n"
    with pytest.raises(yaml.constructor.ConstructorError) as ours:
        yaml.load(text, Loader=fast)
    with pytest.raises(yaml.constructor.ConstructorError) as theirs:
        yaml.load(text, Loader=_utils.get_yaml_loader())
    assert ours.value.problem == theirs.value.problem == "found duplicate key a"
    assert ours.value.problem_mark.line == theirs.value.problem_mark.line == 2


def test_install_routes_omegaconf_and_keeps_its_results(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(_utils, "get_yaml_loader", _utils.get_yaml_loader)
    monkeypatch.setattr(basecontainer, "get_yaml_loader", basecontainer.get_yaml_loader)
    monkeypatch.setattr(yaml_loader, "_INSTALLED", False)
    f = tmp_path / "c.yaml"
    f.write_text((REPO / "conf" / "phase2" / "default.yaml").read_text())
    before = OmegaConf.to_container(OmegaConf.load(f))
    assert yaml_loader.install() is True
    assert _utils.get_yaml_loader() is yaml_loader.libyaml_loader()
    assert basecontainer.get_yaml_loader() is yaml_loader.libyaml_loader()
    assert OmegaConf.to_container(OmegaConf.load(f)) == before
    assert OmegaConf.create("x: 1e-2").x == 0.01


def test_the_app_composes_the_same_config_either_way(ddai, tmp_path: Path) -> None:
    """``--cfg all`` of the real app (libyaml) against a composition with OmegaConf's own loader."""
    proc = ddai.launch("--cfg", "all", "curriculum.theta1=0.2", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    script = tmp_path / "plain.py"
    script.write_text(
        "import runpy, sys\n"
        "import ddai.launch.yaml_loader as y\n"
        "y.install = lambda: False   # OmegaConf's own pure-Python loader\n"
        "sys.argv = ['ddai.launch'] + sys.argv[1:]\n"
        "runpy.run_module('ddai.launch', run_name='__main__', alter_sys=True)\n")
    plain = subprocess.run([sys.executable, str(script), "--cfg", "all", "curriculum.theta1=0.2",
                            f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=600)
    assert plain.returncode == 0, plain.stderr
    assert proc.stdout == plain.stdout and "theta1: 0.2" in proc.stdout
