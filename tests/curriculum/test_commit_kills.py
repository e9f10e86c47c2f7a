"""A kill at any point of writing a curriculum leaves the whole old set or the whole new set.

The old set (threshold rule) and the new set (spread rule) differ in content AND in file
names (the spread rule adds a ``flat`` bucket), so a mix would show either as a checksum
that does not match the manifest beside it or as a file of one set next to the other's
manifest. A child process writes the new set and is SIGKILLed just before its k-th
file-system mutation (write-side syscalls: mkdir, symlink, link, replace, unlink, rmdir,
chmod, fsync): first at every such point in turn, then at 20 points drawn at random
(seeded). After each kill the fixed names must show exactly one complete set whose
manifest checksums match, and a clean re-run must succeed and give the new set's bytes.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from engine_helpers import REPO, make_cfg  # noqa: E402

from ddai.atomic import GENERATIONS
from ddai.curriculum import pipeline
from ddai.examples.generate import write_example_set

CHILD = textwrap.dedent("""
    import os, shutil, signal, sys
    kill_at = int(sys.argv[1])
    count = [0]
    def counted(fn):
        def wrapper(*a, **kw):
            count[0] += 1
            if count[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return fn(*a, **kw)
        return wrapper
    sys.path.insert(0, {helpers!r})
    from engine_helpers import make_cfg
    from ddai.curriculum import pipeline
    c = make_cfg(dataset={dataset!r}, phase1_log={log!r}, out_dir=sys.argv[2], train_batch_size=8, rule="spread",
                 theta1=0.2)
    for name in ("mkdir", "symlink", "link", "replace", "rename", "unlink", "rmdir", "chmod", "fsync"):
        setattr(os, name, counted(getattr(os, name)))
    pipeline.run(c)
    print("OPS", count[0])
""")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("ex")
    write_example_set(d, 120, seed=5, shapes=("steps_json",), response_bytes=40, bad_score_fraction=0.05,
                      write_truth=False)
    dataset, log = str(d / "slidevqa_train_example.parquet"), str(d / "gspo_phase1.json")
    old = tmp_path_factory.mktemp("old") / "out"
    pipeline.run(make_cfg(dataset=dataset, phase1_log=log, out_dir=str(old), train_batch_size=8))
    new = tmp_path_factory.mktemp("new") / "out"
    pipeline.run(make_cfg(dataset=dataset, phase1_log=log, out_dir=str(new), train_batch_size=8, rule="spread",
                          theta1=0.2))
    script = CHILD.format(helpers=str(Path(__file__).parent), dataset=dataset, log=log)
    return dataset, log, old, new, script


def visible(out: Path) -> dict[str, bytes]:
    """Every name a reader can open in ``out`` (dangling links are not openable: left out)."""
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if not p.name.startswith(".") and p.is_file()}


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def check_whole_set(out: Path, old: dict[str, bytes], new: dict[str, bytes]) -> str:
    seen = visible(out)
    man = json.loads(seen["manifest.json"])
    for name, entry in man["outputs"].items():
        assert sha(seen[name]) == entry["sha256"], f"{name}: checksum differs from the manifest beside it"
    if seen == old:
        return "old"
    assert seen == new, f"a mix of sets: {sorted(seen)}"
    return "new"


def run_child(script: str, kill_at: int, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, str(kill_at), str(out)], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def fresh_old(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def test_sets_differ_in_names_and_bytes(setup):
    _, _, old, new, _ = setup
    o, n = visible(old), visible(new)
    assert set(n) - set(o), "the new set should add a file name (flat bucket)"
    assert o["manifest.json"] != n["manifest.json"]


def test_kill_at_every_step_and_at_20_random_points_leaves_one_whole_set(setup, tmp_path):
    dataset, log, old, new, script = setup
    old_files, new_files = visible(old), visible(new)
    probe = run_child(script, 0, fresh_old(old, tmp_path / "probe"))     # 0: never killed; counts the steps
    assert probe.returncode == 0, probe.stderr
    total = int(probe.stdout.split("OPS")[-1])
    assert check_whole_set(tmp_path / "probe", old_files, new_files) == "new"
    rng = random.Random(20261129)
    points = list(range(1, total + 1)) + [rng.randint(1, total) for _ in range(20)]
    outcomes = []
    for i, k in enumerate(points):
        out = fresh_old(old, tmp_path / f"k{i}")
        proc = run_child(script, k, out)
        assert proc.returncode == -9, (k, proc.stderr[-2000:])
        outcomes.append(check_whole_set(out, old_files, new_files))
        if i >= total:   # the random kills: a clean re-run succeeds and gives the new set exactly
            pipeline.run(make_cfg(dataset=dataset, phase1_log=log, out_dir=str(out), train_batch_size=8,
                                  rule="spread", theta1=0.2))
            assert visible(out) == new_files
            assert [p.name for p in (out / GENERATIONS).iterdir() if p.name != "current"].__len__() == 1
    # the kills span the commit: both outcomes occur, old strictly before new
    steps = outcomes[:total]
    assert "old" in steps and "new" in steps
    assert steps == sorted(steps, key=lambda s: s == "new")


ATOMIC_CHILD = textwrap.dedent("""
    import os, signal, sys
    kill_at = int(sys.argv[1])
    count = [0]
    def counted(fn):
        def wrapper(*a, **kw):
            count[0] += 1
            if count[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return fn(*a, **kw)
        return wrapper
    from ddai.atomic import Generation
    for name in ("mkdir", "symlink", "link", "replace", "rename", "unlink", "rmdir", "chmod", "fsync"):
        setattr(os, name, counted(getattr(os, name)))
    with Generation(sys.argv[2], previous=["a.parquet", "b.parquet", "manifest.json"]) as gen:
        for name, text in (("a.parquet", "new a"), ("c.parquet", "new c"), ("manifest.json", "new")):
            gen.path(name).write_text(text)
    print("OPS", count[0])
""")


def test_plain_files_of_an_older_version_are_adopted_without_a_mix(tmp_path):
    """A directory written as plain files (before generations) moves over without a mix.

    Old set: plain files a, b, manifest; new set: a, c, manifest. At every kill point each
    name shows either all-old or all-new content, never one of each.
    """
    template = tmp_path / "template"
    template.mkdir()
    old = {"a.parquet": b"old a", "b.parquet": b"old b", "manifest.json": b"old"}
    new = {"a.parquet": b"new a", "c.parquet": b"new c", "manifest.json": b"new"}
    for name, data in old.items():
        (template / name).write_bytes(data)
    count = subprocess.run([sys.executable, "-c", ATOMIC_CHILD, "0", str(fresh_old(template, tmp_path / "n"))],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert count.returncode == 0, count.stderr
    assert visible(tmp_path / "n") == new
    total = int(count.stdout.split("OPS")[-1])
    outcomes = []
    for k in range(1, total + 1):
        out = fresh_old(template, tmp_path / f"p{k}")
        proc = subprocess.run([sys.executable, "-c", ATOMIC_CHILD, str(k), str(out)], cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == -9, proc.stderr
        seen = visible(out)
        assert seen in (old, new), (k, seen)
        outcomes.append("new" if seen == new else "old")
    assert outcomes == sorted(outcomes, key=lambda s: s == "new") and "old" in outcomes and "new" in outcomes
