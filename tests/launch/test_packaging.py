"""Packaging decisions that the install commands rely on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[2]


def test_base_install_carries_the_sweep_launchers_and_no_unused_dependency():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = [d.split(">")[0].split("=")[0].split("<")[0].strip() for d in project["dependencies"]]
    assert "submitit" in names and "hydra-submitit-launcher" in names
    assert "ijson" not in names


def test_package_links_point_at_the_shipped_trees():
    for link, target in (("ddai/conf", "conf"), ("ddai/slurm", "slurm")):
        p = REPO / link
        assert p.is_symlink() and p.resolve() == (REPO / target).resolve()


def test_status_help_is_plain_text_with_every_argument_explained():
    proc = subprocess.run([sys.executable, "-m", "ddai.phase2.status", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "``" not in proc.stdout and "RUN_DIR" in proc.stdout and "plan.json" in proc.stdout
    assert "--json" in proc.stdout
