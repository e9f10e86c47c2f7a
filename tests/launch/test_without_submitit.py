"""Without submitit installed (e.g. ``pip install --no-deps``) Hydra's plugin scan stays quiet.

Hydra imports every module under ``hydra_plugins`` on every run and warns "Plugin is
incompatible ... Recommended to uninstall" for any that fails to import. A sitecustomize
hides submitit and the submitit launcher plugin from the child process.
"""

from __future__ import annotations

import os
import textwrap

BLOCK = textwrap.dedent("""
    import sys
    class _Hide:
        def find_spec(self, name, path=None, target=None):
            if name == "submitit" or name.startswith("submitit.") or name.startswith("hydra_plugins.hydra_submitit"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, _Hide())
""")


def test_no_warning_and_a_one_line_error_for_the_submitit_launcher(ddai, tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(BLOCK)
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))}
    work = tmp_path / "work"
    work.mkdir()
    ok = ddai.launch("--help", cwd=work, env=env)
    assert ok.returncode == 0 and "incompatible" not in ok.stderr and ok.stderr == "", ok.stderr
    run = ddai.launch(cwd=work, env=env)
    assert run.returncode == 0 and "incompatible" not in run.stderr, run.stderr
    bad = ddai.launch("-m", "hydra/launcher=submitit_local", "curriculum.theta1=0.05,0.1", cwd=work, env=env)
    assert bad.returncode == 2, bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ddai: error: hydra/launcher:") and "pip install" in lines[0]
