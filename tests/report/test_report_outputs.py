"""--plots (PNG), --html (one self-contained page) and --wandb (offline run)."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser

import numpy as np
from PIL import Image

from ddai.report.cli import main


class Tags(HTMLParser):
    """src/href attributes of the page's markup (script bodies are not markup)."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for k, v in attrs:
            if k in ("src", "href") and v is not None:
                self.refs.append((tag, v))


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
    tags = Tags()
    tags.feed(html)
    imgs = [src for tag, src in tags.refs if tag == "img"]
    assert len(imgs) == len(names)
    for src in imgs:
        _png_ok(base64.b64decode(src.split(",", 1)[1]))
    assert "Phase 3 quadrants" in html and "train_2" in html and "By Phase 1 bucket" in html
    # nothing outside the page: every src/href of the markup is inline data or an anchor
    assert tags.refs and all(ref.startswith(("data:", "#")) for _, ref in tags.refs)
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


def test_zero_error_rate_stays_visible(tmp_path, write_jsonl):
    """A run without errors still shows its error series (own panel, above the axis) and says so."""
    recs = [{"dataset_id": f"p{i % 3}", "step": s, "judge_score": 0.5, "ndcg": 0.5, "final_score": 0.5,
             "latency_s": 1.0, "error": None} for s in range(1, 6) for i in range(6)]
    log = write_jsonl(tmp_path / "noerr.jsonl", recs)
    out = tmp_path / "p"
    assert main([str(log), "--plots", str(out)]) == 0
    img = np.asarray(Image.open(out / "noerr.per_step.png").convert("RGB")).astype(int)
    crimson = (img[..., 0] > 180) & (img[..., 1] < 80) & (img[..., 2] > 30) & (img[..., 2] < 110)
    rows = np.flatnonzero(crimson.any(axis=1))
    # the zero line plus its markers and the "no errors at any step" note, in the lower panel
    assert crimson.sum() > 200 and rows.min() > img.shape[0] * 0.6


def test_one_step_and_many_steps_curves(tmp_path, write_jsonl):
    """Learning curves are drawn for a log of one step and of 300 steps (markers vs lines)."""
    one = write_jsonl(tmp_path / "one.jsonl", [{"dataset_id": "p1", "step": 7, "judge_score": 1.0, "ndcg": 0.2}])
    many = write_jsonl(tmp_path / "many.jsonl", [{"dataset_id": f"p{i}", "step": s, "judge_score": (s % 7) / 7,
                                                   "ndcg": (s % 5) / 5} for s in range(1, 301) for i in range(3)])
    for log in (one, many):
        out = tmp_path / log.stem
        assert main([str(log), "--plots", str(out), "--prompt", "p1"]) == 0
        _png_ok((out / f"{log.stem}.prompt_curves.png").read_bytes())
