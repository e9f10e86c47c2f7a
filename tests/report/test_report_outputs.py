"""--plots (PNG), --html (one self-contained page) and --wandb (offline run)."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from PIL import Image

from ddai.report.cli import main


def _png_ok(data: bytes) -> Image.Image:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.width > 300 and img.height > 200
    px = np.asarray(img.convert("L"))
    assert px.std() > 5            # not a blank canvas
    return img


def test_plots_and_html(hand_log, curriculum_dir, sweep_dir, tmp_path, capsys):
    plots, page = tmp_path / "plots", tmp_path / "report.html"
    argv = [str(hand_log), str(curriculum_dir), str(sweep_dir), "--plots", str(plots), "--html", str(page),
            "--deciles", "3", "--prompt", "train_2", "--prompt", "train_1"]
    assert main(argv) == 0
    names = sorted(p.name for p in plots.iterdir())
    assert names == sorted([
        "gspo_gemini_output.score_histograms.png", "gspo_gemini_output.judge_vs_ndcg.png",
        "gspo_gemini_output.per_step.png", "gspo_gemini_output.prompt_curves.png",
        "gspo_gemini_output.by_decile.png", "buckets.curriculum.png", "sweep.buckets.png"])
    for p in plots.iterdir():
        _png_ok(p.read_bytes())
    html = page.read_text()
    imgs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(imgs) == len(names)
    for b64 in imgs:
        _png_ok(base64.b64decode(b64))
    assert "Phase 3 quadrants" in html and "train_2" in html and "By Phase 1 bucket" in html
    assert not re.search(r'(src|href)="(?!data:)', html)     # nothing outside the page
    # re-run: identical figures
    before = {p.name: p.read_bytes() for p in plots.iterdir()}
    assert main(argv) == 0
    assert {p.name: p.read_bytes() for p in plots.iterdir()} == before
    capsys.readouterr()


def test_histogram_draws_bucket_thresholds(hand_log, curriculum_dir, tmp_path):
    """The NDCG panels carry the manifest's θ lines: compare against a figure without them."""
    with_th, without = tmp_path / "a", tmp_path / "b"
    assert main([str(hand_log), str(curriculum_dir), "--plots", str(with_th)]) == 0
    assert main([str(hand_log), "--plots", str(without)]) == 0
    a = (with_th / "gspo_gemini_output.score_histograms.png").read_bytes()
    b = (without / "gspo_gemini_output.score_histograms.png").read_bytes()
    assert a != b
    ia, ib = (np.asarray(Image.open(io.BytesIO(x)).convert("RGB")).astype(int) for x in (a, b))
    if ia.shape == ib.shape:
        diff = np.abs(ia - ib).sum(axis=2) > 0
        red = (ia[..., 0] > 150) & (ia[..., 1] < 80) & (ia[..., 2] < 80)
        assert (diff & red).sum() > 50      # crimson threshold lines appear only with the manifest


def test_wandb_offline_run(hand_log, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert main([str(hand_log), "--wandb", "--wandb-project", "ddai-test"]) == 0
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    # the binary transaction log; wandb's service process may still be flushing it to disk
    import time

    wlog = next(runs[0].glob("run-*.wandb"))
    deadline = time.monotonic() + 60
    while b"log/quadrants/guessing" not in wlog.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.2)
    log = wlog.read_bytes()
    assert b"log/rollouts" in log and b"log/quadrants/guessing" in log
    media = runs[0] / "files" / "media"
    images = sorted(p.name.split("_1_")[0] for p in (media / "images" / "plots").glob("*.png"))
    assert images == ["gspo_gemini_output.judge_vs_ndcg", "gspo_gemini_output.per_step",
                      "gspo_gemini_output.prompt_curves", "gspo_gemini_output.score_histograms"]
    import json

    table = json.loads(next((media / "table" / "log").glob("per_step_*.table.json")).read_text())
    assert [row[0] for row in table["data"]] == [1, 2] and "judge_mean" in table["columns"]
    assert "logged to W&B" in capsys.readouterr().err
