"""The documented commands from a WHEEL installed into a fresh virtual environment.

Clusters install ddai as a wheel into a shared environment, with no checkout beside it.
The wheel is built from this tree (``pip wheel --no-deps``) and installed ``--no-deps``
into a venv made with ``--system-site-packages`` (dependencies come from the test
interpreter: fast and offline). Every command then runs from an empty directory with
PYTHONPATH unset, and each test first proves that the venv's ``ddai`` is the wheel's.

Covered: the curriculum run, a submitit_local sweep, the Phase 2 dry run, and the Phase 2
sbatch script it submits, run to completion on the local Slurm cluster with the fake trainer
(``DDAI_PHASE2_TRAINER=fake``) -- the script, its config and its helpers all found through
the installed package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from phase2_inputs import phase2_inputs

REPO = Path(__file__).resolve().parents[2]
KEYS = {"GEMINI_API_KEY": "test-gemini-key-0000", "OPENAI_API_KEY": "test-openai-key-0000"}


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    wheel_dir = root / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheel_dir), str(REPO)], check=True, capture_output=True, cwd=root)
    env_dir = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(env_dir)], check=True)
    wheel = next(wheel_dir.glob("ddai-*.whl"))
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", str(wheel)], check=True,
                   capture_output=True, cwd=root)
    return env_dir


def run(venv: Path, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 600):
    full = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",) and not k.endswith("_API_KEY")}
    full.update({"PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}, **(env or {}))
    return subprocess.run([str(venv / "bin" / "python"), *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=timeout)


def test_venv_runs_the_wheel_not_the_checkout(venv, tmp_path):
    proc = run(venv, "-c", "import ddai, hydra_plugins.ddai_launcher as h, ddai.phase2.submit as s, "
                           "ddai.phase2.prepare as p, ddai.launch.__main__ as m; print(ddai.__file__); "
                           "print(h.__file__); print(s.script_path()); print(p.CONF_DIR); print(m.CONF_DIR)",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    site = str(venv / "lib")
    assert all(line.startswith(site) for line in proc.stdout.splitlines()), proc.stdout
    assert proc.stdout.splitlines()[2].endswith("ddai/slurm/phase2.slurm")
    assert all((Path(line) / "config.yaml").is_file() for line in proc.stdout.splitlines()[3:])
    where = run(venv, "-m", "ddai.slurm_scripts", cwd=tmp_path)       # what the README's sbatch line uses
    assert where.returncode == 0 and where.stdout.strip() == proc.stdout.splitlines()[2]


def test_curriculum_run_and_help_print_no_plugin_warning(venv, tmp_path):
    proc = run(venv, "-m", "ddai.launch", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Plugin is incompatible" not in proc.stderr and "Warning" not in proc.stderr
    out = json.loads(proc.stdout)
    assert Path(out["manifest"]).is_file() and out["out_dir"].startswith(str(tmp_path))
    assert run(venv, "-m", "ddai.launch", "--help", cwd=tmp_path).returncode == 0


def test_submitit_local_sweep(venv, tmp_path):
    proc = run(venv, "-m", "ddai.launch", "-m", "hydra/launcher=submitit_local", "curriculum.theta1=0.05,0.2",
               "curriculum.train_batch_size=16", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Plugin is incompatible" not in proc.stderr
    summary = json.loads(next(tmp_path.glob("multirun/*/*/sweep_summary.json")).read_text())
    assert summary["runs_total"] == 2 and summary["runs_failed"] == 0
    assert all(r["executor"] == "local" for r in json.loads(next(tmp_path.glob("multirun/*/*/sweep_jobs.json"))
                                                                 .read_text())["jobs"])


def _curriculum(venv: Path, where: Path) -> Path:
    proc = run(venv, "-m", "ddai.launch", f"curriculum.out_dir={where}", "curriculum.train_batch_size=8",
               "curriculum.remainder=trim", cwd=where.parent)
    assert proc.returncode == 0, proc.stderr
    return where / "manifest.json"


PHASE2 = ["task=phase2", "+phase2.agent.settings.search_url=http://search.example:5002/search",
          "phase2.train_batch_size=8", "phase2.ppo_mini_batch_size=8", "phase2.logger=[console]"]



@pytest.mark.verl
def test_phase2_dry_run_uses_the_installed_script(venv, tmp_path):
    manifest = _curriculum(venv, tmp_path / "cur")
    proc = run(venv, "-m", "ddai.launch", *PHASE2, *phase2_inputs(tmp_path / "in"), f"phase2.manifest={manifest}",
               "phase2.dry_run=true",
               cwd=tmp_path, env={**KEYS, "DDAI_RUNS_ROOT": str(tmp_path / "runs")})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    text = json.dumps(out)
    assert str(venv / "lib") in text and "ddai/slurm/phase2.slurm" in text
    assert str(tmp_path / "runs" / "gspo_phase2_gemini_flash") in text
    assert str(REPO) not in text


@pytest.mark.slurm
@pytest.mark.verl
def test_phase2_sbatch_script_runs_from_the_wheel(venv, tmp_path, slurm_cluster):
    from slurm_support import jobs_named, wait_for

    manifest = _curriculum(venv, tmp_path / "cur")
    name = f"ddai-wheel-{os.getpid()}"
    run_dir = tmp_path / "run"
    env = {**KEYS, "DDAI_PHASE2_TRAINER": "fake", "DDAI_PYTHON": str(venv / "bin" / "python"),
           "DDAI_FAKE_STEP_SECONDS": "0.2"}
    try:
        proc = run(venv, "-m", "ddai.launch", *PHASE2, *phase2_inputs(tmp_path / "in"), f"phase2.manifest={manifest}",
                   f"phase2.run_dir={run_dir}",
                   f"phase2.slurm.job_name={name}", "phase2.slurm.cpus_per_task=1",
                   "phase2.slurm.startup_minutes=0.05", "phase2.slurm.step_minutes=0.025", cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stderr
        wait_for(lambda: (run_dir / "DONE").exists() or (run_dir / "FAILED").exists(), "the chain to end", 300)
        log = (run_dir / "phase2.log").read_text()
        assert (run_dir / "DONE").exists(), log[-3000:]
        assert json.loads(proc.stdout)["submitted"]
        submit_line = next(line for line in log.splitlines() if "submitted first job" in line)
        assert f"{venv / 'lib'}" in submit_line and f"{venv / 'lib'}/python3.{sys.version_info[1]}/site-packages/ddai/slurm/phase2.slurm {run_dir}" in submit_line  # the wheel's
        assert str(REPO) not in (run_dir / "plan.json").read_text()
    finally:
        subprocess.run(["scancel", "-n", name], capture_output=True)
    wait_for(lambda: not jobs_named(name), "leftover successors to go", 60)
