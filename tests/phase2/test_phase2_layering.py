"""phase2 sits below launch/campaign: none of its modules imports them (prepare.py used to)."""

from __future__ import annotations

import ast
from pathlib import Path

PHASE2 = Path(__file__).resolve().parents[2] / "ddai" / "phase2"


def test_phase2_imports_nothing_above_it() -> None:
    bad = []
    for path in sorted(PHASE2.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad += [f"{path.name}: {n}" for n in names if n.startswith(("ddai.launch", "ddai.campaign", "ddai.report"))]
    assert not bad, bad


def test_prepare_composes_without_the_launcher(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from ddai.phase2.prepare import compose_ddai; cfg = compose_ddai(['phase2.save_freq=5']); "
            "assert cfg.phase2.save_freq == 5; assert 'ddai.launch.registry' not in sys.modules")
    # (Hydra's own plugin scan may import ddai's hydra_plugins launchers; phase2 itself does not.)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
