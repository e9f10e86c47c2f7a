"""Every user error of ``python -m ddai.launch`` is one ``ddai: error:`` line with exit 2.

Each case runs the real command in a fresh directory and also checks that nothing was
written there (the errors are caught before Hydra creates a job or sweep directory).
"""

from __future__ import annotations

import pytest

CASES = {
    "unknown key with +": (["+curriculum.thet1=0.1"], ["curriculum.thet1", "curriculum.theta1"]),
    "unknown key shown by --cfg": (["--cfg", "job", "+curriculum.thet1=0.1"], ["curriculum.thet1", "theta1"]),
    "unknown key without +": (["curriculum.thet1=0.1"], ["curriculum.thet1", "curriculum.theta1"]),
    "unknown phase2 key with +": (["task=phase2", "+phase2.lrr=1"], ["phase2.lrr", "phase2.lr"]),
    "unknown nested key": (["+phase2.slurm.partitoin=gpu"], ["phase2.slurm.partitoin", "phase2.slurm.partition"]),
    "unknown sweep key": (["+sweep.judge.price_per_cal=1"], ["sweep.judge.price_per_cal", "price_per_call"]),
    "unknown group": (["+curriculm.theta1=0.1"], ["curriculm", "curriculum"]),
    "wrong type": (["curriculum.theta1=abc"], ["curriculum.theta1", "Float"]),
    "unquoted comma": (["curriculum.theta1=0.05,0.9"], ["curriculum.theta1=0.05,0.9", "-m"]),
    "interpolation loop": (["curriculum.out_dir=${curriculum.out_dir}"], ["interpolation loop"]),
    "unknown task": (["task=curriculm"], ["task", "curriculum"]),
    "unwritable run dir": (["hydra.run.dir=/proc/ddai-no/run"], ["/proc/ddai-no", "hydra.run.dir"]),
    "300-character output name": ([f"curriculum.out_dir=/tmp/{'x' * 300}"], ["File name too long", "x" * 300]),
    "output path is a file": (["curriculum.out_dir=/etc/hostname"], ["/etc/hostname", "not a directory"]),
    "300-character summary name": (["-m", f"sweep.summary_name={'s' * 300}"], ["sweep.summary_name"]),
    "bad sweep combination": (["-m", "curriculum.theta1=0.05,0.9"], ["#1 curriculum.theta1=0.9", "theta_easy"]),
    "unwritable sweep dir": (["-m", "hydra.sweep.dir=/proc/ddai-no/sweep", "curriculum.theta1=0.1,0.2"],
                             ["/proc/ddai-no"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_user_error_is_one_line_exit_2_and_writes_nothing(ddai, tmp_path, case):
    args, needles = CASES[case]
    proc = ddai.launch(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    if case == "bad sweep combination":    # a summary line, then one line per bad combination
        assert len(lines) == 2 and "nothing was submitted" in lines[0]
    else:
        assert len(lines) == 1, proc.stderr
    assert all(line.startswith("ddai: error: ") for line in lines)
    for needle in needles:
        assert needle in proc.stderr
    assert proc.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == []     # no outputs/ or multirun/ left behind


def test_unknown_key_names_the_closest_valid_one(ddai, tmp_path):
    proc = ddai.launch("task=phase2", "+phase2.lrr=1", cwd=tmp_path)
    assert proc.stderr.strip() == ("ddai: error: phase2.lrr: unknown key "
                                   "(expected a key of phase2; did you mean phase2.lr?)")


def test_free_form_dicts_still_take_new_keys(ddai, tmp_path):
    """reward.kwargs and agent.settings are dicts by design: + adds to them without complaint."""
    proc = ddai.launch("--cfg", "job", "+phase2.reward.kwargs.w_judge=0.8",
                       "+phase2.agent.settings.search_url=http://x:1/search", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "w_judge: 0.8" in proc.stdout


def test_help_explains_tasks_and_keys(ddai, tmp_path):
    proc = ddai.launch("--help", cwd=tmp_path)
    assert proc.returncode == 0
    out = proc.stdout
    assert "powered by Hydra" not in out and "__main__" not in out
    for needle in ("task=", "phase2", "curriculum", "pipeline", "curriculum.theta1", "hydra/launcher=submitit_slurm",
                   "phase2.dry_run"):
        assert needle in out
    assert len(out.splitlines()) < 60


def test_cfg_resolve_shows_a_real_output_dir(ddai, tmp_path):
    proc = ddai.launch("--cfg", "job", "--resolve", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "None/" not in proc.stdout
    assert f"out_dir: {tmp_path}/outputs/" in proc.stdout
    assert f"run_dir: {tmp_path}/outputs/" in proc.stdout       # phase2 runs: under the job dir


def test_phase2_runs_root_from_the_environment(ddai, tmp_path):
    proc = ddai.launch("--cfg", "job", "--resolve", "--package", "phase2", cwd=tmp_path,
                       env={"DDAI_RUNS_ROOT": str(tmp_path / "shared")})
    assert proc.returncode == 0, proc.stderr
    assert f"run_dir: {tmp_path}/shared/gspo_phase2_gemini_flash" in proc.stdout


def test_no_plugin_warning_on_any_command(ddai, tmp_path):
    for args in (["--help"], ["--cfg", "job"], ["+curriculum.thet1=1"]):
        proc = ddai.launch(*args, cwd=tmp_path)
        assert "Plugin is incompatible" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr
