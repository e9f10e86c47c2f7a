"""Figures of the report as PNG bytes (matplotlib, Agg backend — no display needed).

WHY bytes first: the same figures go to ``--plots DIR`` (files), ``--html`` (inlined as
base64) and ``--wandb`` (images), so they are drawn once into memory. Drawn from the bounded
aggregates only (histograms, the 50×50 judge/NDCG grid, per-step and per-group tables), never
from raw rollouts. PNGs carry no timestamp, so re-runs write identical files.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ddai.atomic import atomic_write_bytes
from ddai.report.model import Report
from ddai.report.summarize import LogReport
from ddai.report.views import bucket_order, curve_prompts, curves_of, swept_labels

COLORS = {"judge": "#1f77b4", "ndcg": "#2ca02c", "final": "#9467bd"}


@dataclass
class Figure:
    name: str        # file name, e.g. "gspo_gemini_output.judge_vs_ndcg.png"
    title: str
    png: bytes


def _plt():
    try:
        import matplotlib
    except ImportError:
        from ddai.errors import ConfigError

        raise ConfigError("--plots / --html / --wandb figures need matplotlib", where="command line",
                          expected="pip install 'ddai[report]'") from None

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    _plt().close(fig)
    return buf.getvalue()


def _slug(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).stem) or "log"


def make_figures(rep: Report) -> list[Figure]:
    figs: list[Figure] = []
    bucket_th = rep.join_with.thresholds() if rep.join_with else {}
    stems: dict[str, int] = {}
    for lr in rep.logs:
        stem = _slug(lr.path)
        stems[stem] = stems.get(stem, 0) + 1
        if stems[stem] > 1:
            stem = f"{stem}_{stems[stem]}"
        figs.append(Figure(f"{stem}.score_histograms.png", f"{lr.path}: score histograms",
                           score_histograms(lr, bucket_th, rep.options.thresholds)))
        figs.append(Figure(f"{stem}.judge_vs_ndcg.png", f"{lr.path}: judge vs NDCG", judge_vs_ndcg(lr)))
        if lr.summary["per_step"]:
            figs.append(Figure(f"{stem}.per_step.png", f"{lr.path}: per step", per_step(lr)))
        picks = curve_prompts(lr, rep.options.prompts)
        if picks and len(lr.curves) and (lr.curves["step"] >= 0).any():
            figs.append(Figure(f"{stem}.prompt_curves.png", f"{lr.path}: per-prompt learning curves",
                               prompt_curves(lr, picks)))
        cj = lr.summary.get("curriculum_join")
        if cj and cj["by_decile"]:
            figs.append(Figure(f"{stem}.by_decile.png", f"{lr.path}: by Phase 1 decile",
                               by_decile(cj, rep.options.deciles)))
    for c in rep.curricula:
        s = c.summary()
        order = bucket_order(list(s["buckets"]), s.get("train_bucket"))
        figs.append(Figure(f"buckets.{_slug(str(c.dir))}.png", f"buckets: {c.manifest_path}",
                           buckets_bars({b: s["buckets"][b] for b in order}, s.get("train_bucket"),
                                        f"Buckets — {c.dir.name}")))
    for i, sw in enumerate(rep.sweeps):
        s = sw.summary()
        if s["jobs"]:
            figs.append(Figure(f"sweep{i or ''}.buckets.png", f"sweep: {s['path']}", sweep_bars(s)))
    return figs


def _integer_x(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _integer_y(ax: Any) -> None:
    """Counts are whole numbers: no 0.5-rollout ticks on small logs."""
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def write_pngs(figs: list[Figure], out_dir: Path) -> list[Path]:
    out = []
    for f in figs:
        p = out_dir / f.name
        atomic_write_bytes(p, f.png)
        out.append(p)
    return out


def score_histograms(lr: LogReport, bucket_th: dict[str, float], th: Any) -> bytes:
    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), constrained_layout=True)
    for k, name in enumerate(("judge", "ndcg", "final")):
        counts, edges = lr.part.sk[name].histogram(40)
        ax = axes[0, k]
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=COLORS[name], alpha=0.8)
        ax.set_title(f"{name} per rollout (n={lr.part.sk[name].n:,})")
        ax.set_xlim(0, 1)
        col = {"judge": "judge_mean", "ndcg": "ndcg_mean", "final": "final_mean"}[name]
        vals = lr.prompts[col].to_numpy(dtype=float) if len(lr.prompts) else np.zeros(0)
        vals = vals[np.isfinite(vals)]
        ax2 = axes[1, k]
        ax2.hist(np.clip(vals, 0, 1), bins=40, range=(0, 1), color=COLORS[name], alpha=0.6)
        ax2.set_title(f"{name}: mean per prompt (n={vals.size:,})")
        ax2.set_xlim(0, 1)
        for a in (ax, ax2):
            _integer_y(a)
            if name == "ndcg":
                # staggered so that close thresholds (θ1=0.3, θ2=0.35) do not print over each other
                for i, (label, v) in enumerate(sorted(bucket_th.items(), key=lambda kv: kv[1])):
                    a.axvline(v, color="crimson", ls="--", lw=1)
                    a.text(v, 0.97 - 0.09 * (i % 4), f" {label}={v:g}", color="crimson", fontsize=8, va="top",
                           transform=a.get_xaxis_transform(),
                           bbox={"facecolor": "white", "alpha": 0.7, "pad": 1, "edgecolor": "none"})
            quad = th.judge_high if name == "judge" else th.ndcg_high if name == "ndcg" else None
            if quad is not None:
                a.axvline(quad, color="black", ls=":", lw=1)
    axes[1, 0].set_ylabel("prompts")
    axes[0, 0].set_ylabel("rollouts")
    fig.suptitle(f"{Path(lr.path).name}: score distributions (dashed: bucket thresholds, dotted: quadrant)")
    return _png(fig)


def judge_vs_ndcg(lr: LogReport) -> bytes:
    plt = _plt()
    from matplotlib.colors import LogNorm

    fig, ax = plt.subplots(figsize=(6.5, 5.5), constrained_layout=True)
    grid = lr.part.density.astype(float)
    shown = np.where(grid > 0, grid, np.nan)
    im = ax.imshow(shown, origin="lower", extent=(0, 1, 0, 1), aspect="auto", cmap="viridis",
                   norm=LogNorm(vmin=1, vmax=max(grid.max(), 1)))
    fig.colorbar(im, ax=ax, label="rollouts")
    q = lr.summary["quadrants"]
    th = q["thresholds"]
    ax.axvline(th["ndcg_high"], color="0.25", ls="--", lw=1.2)
    ax.axhline(th["judge_high"], color="0.25", ls="--", lw=1.2)
    ax.set_xlabel("NDCG")
    ax.set_ylabel("judge score")
    places = {"solved": (0.98, 0.98, "right", "top"), "guessing": (0.02, 0.98, "left", "top"),
              "reasoning_failure": (0.98, 0.02, "right", "bottom"), "failure": (0.02, 0.02, "left", "bottom")}
    for name, (x, y, ha, va) in places.items():
        frac = q["rollouts"][name]["fraction"]
        label = name.replace("_", " ") + (f"\n{100 * frac:.1f}%" if frac is not None else "")
        ax.text(x, y, label, transform=ax.transAxes, ha=ha, va=va, color="white", fontsize=9,
                bbox={"facecolor": "black", "alpha": 0.75, "pad": 2, "edgecolor": "none"})
    ax.set_title(f"{Path(lr.path).name}: judge vs NDCG per rollout")
    return _png(fig)




def per_step(lr: LogReport) -> bytes:
    """Mean scores per step above, error rate in its own panel below.

    WHY a panel of its own: on a shared twin axis a 0–2 % error rate lies on the x axis and
    disappears; with its own scale (never flatter than 0–5 %) and markers it stays visible,
    and a run without errors says so in words.
    """
    plt = _plt()
    rows = lr.summary["per_step"]
    steps = np.array([r["step"] for r in rows])
    few = len(steps) < 60
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(10, 5.6), sharex=True, constrained_layout=True,
                                  gridspec_kw={"height_ratios": [3, 1]})
    for name in ("judge", "ndcg", "final"):
        ys = np.array([np.nan if r[f"{name}_mean"] is None else r[f"{name}_mean"] for r in rows], dtype=float)
        ax.plot(steps, ys, marker="o" if few else None, ms=4, label=f"{name} mean", color=COLORS[name])
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("mean score")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    err = np.array([0.0 if r["error_rate"] is None else r["error_rate"] for r in rows], dtype=float)
    top = max(0.05, float(err.max()) * 1.25)
    ax2.plot(steps, 100 * err, color="crimson", marker="o" if few else None, ms=3, lw=1.2, label="error rate")
    ax2.set_ylim(-0.04 * 100 * top, 100 * top)
    ax2.set_ylabel("errors %")
    ax2.grid(alpha=0.3)
    if not err.any():
        ax2.text(0.5, 0.5, "no errors at any step", transform=ax2.transAxes, ha="center", va="center",
                 color="crimson", fontsize=9)
    ax2.set_xlabel("training step")
    _integer_x(ax2)
    if len(steps) == 1:
        ax2.set_xlim(steps[0] - 1, steps[0] + 1)
    ax.set_title(f"{Path(lr.path).name}: per-step trends")
    return _png(fig)


def prompt_curves(lr: LogReport, picks: list[tuple[str, str]]) -> bytes:
    """One small panel per prompt: judge (solid) and NDCG (dashed) over the training steps.

    WHY small multiples: overlaid, six prompts × two scores are twelve tangled lines; one panel
    each stays readable at 500 steps (lines, no markers) and at 1 step (markers, the x axis
    spanning the step ± 1 with integer ticks, and the title saying that there is only one step).
    """
    plt = _plt()
    curves = curves_of(lr, [p for p, _ in picks])
    picks = [(p, why) for p, why in picks if p in curves]
    n = max(1, len(picks))
    cols = 2 if n > 1 else 1
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 2.4 * rows + 0.6), squeeze=False, sharey=True,
                             constrained_layout=True)
    all_steps = sorted({int(s) for g in curves.values() for s in g["step"]})
    for k, ax in enumerate(axes.flat):
        if k >= len(picks):
            ax.set_visible(False)
            continue
        pid, why = picks[k]
        g = curves[pid]
        marker = len(g) <= 40
        ax.plot(g["step"], g["judge_mean"], color=COLORS["judge"], marker="o" if marker else None, ms=4,
                lw=1.5, label="judge")
        ax.plot(g["step"], g["ndcg_mean"], color=COLORS["ndcg"], ls="--", marker="s" if marker else None, ms=3,
                lw=1.5, label="NDCG")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        ax.set_title(f"{pid}  ({why}, {int(g['n'].sum())} rollouts)", fontsize=9, loc="left")
        _integer_x(ax)
        if all_steps:
            lo, hi = all_steps[0], all_steps[-1]
            pad = max(1, round((hi - lo) * 0.02))
            ax.set_xlim(lo - pad, hi + pad)
    for ax in axes[-1]:
        ax.set_xlabel("training step")
    for ax in axes[:, 0]:
        ax.set_ylabel("mean score")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper right", ncol=2, fontsize=8, frameon=False)
    one = " — only one step logged so far" if len(all_steps) == 1 else ""
    fig.suptitle(f"{Path(lr.path).name}: judge (solid) and NDCG (dashed) per prompt over steps{one}",
                 fontsize=10, x=0.02, ha="left")
    return _png(fig)


def by_decile(cj: dict[str, Any], deciles: int) -> bytes:
    """Phase 1 mean, judge at first and last appearance and NDCG per difficulty group.

    WHY every group is named with its size and Phase 1 range: on a small join (a few
    prompts) there are fewer groups than asked for; the axis says so instead of drawing one
    lonely bar labelled "1".
    """
    plt = _plt()
    rows = cj["by_decile"]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rows) + 3), 4.6), constrained_layout=True)
    series = (("phase1_mean", "Phase 1 mean", "0.55"), ("judge_first", "judge, first seen", "#9ecae1"),
              ("judge_last", "judge, last seen", COLORS["judge"]), ("ndcg_mean", "NDCG (Phase 2)", COLORS["ndcg"]))
    w = 0.8 / len(series)
    for k, (key, label, color) in enumerate(series):
        vals = [np.nan if r[key] is None else r[key] for r in rows]
        ax.bar(x + (k - (len(series) - 1) / 2) * w, vals, w, label=label, color=color)

    def tick(r: dict[str, Any]) -> str:
        n = f"{r['prompts']:,} prompt{'s' if r['prompts'] != 1 else ''}"
        p1 = f"\nPhase 1 {r['phase1_min']:.2f}–{r['phase1_max']:.2f}" if r.get("phase1_min") is not None else ""
        return f"{r['decile']}\n{n}{p1}"

    ax.set_xticks(x, [tick(r) for r in rows], fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("mean score")
    ax.grid(axis="y", alpha=0.3)
    k = cj.get("deciles", len(rows))
    note = (f"; only {cj.get('matched_prompts', '?')} prompts joined, so {k} groups instead of {deciles}"
            if k < deciles else "")
    ax.set_xlabel(f"Phase 1 difficulty group ({k} groups of equal size, 1 = hardest{note})")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.set_title("Did the curriculum's hard prompts get better?")
    return _png(fig)


def buckets_bars(counts: dict[str, int], train: str | None, title: str) -> bytes:
    """Horizontal bars, one per bucket: names of any length never collide."""
    plt = _plt()
    names = list(counts)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.4), constrained_layout=True)
    y = np.arange(len(names))[::-1]
    colors = ["#1f77b4" if b == train else "#9ecae1" for b in names]
    vals = [counts[b] for b in names]
    ax.barh(y, vals, color=colors)
    ax.set_yticks(y, [f"{b} (train)" if b == train else b for b in names])
    top = max(vals) if vals else 1
    for yy, v in zip(y, vals):
        ax.text(v + top * 0.01, yy, f"{v:,}", va="center", fontsize=8)
    ax.set_xlim(0, top * 1.15 or 1)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("prompts")
    ax.set_title(title)
    return _png(fig)


def sweep_bars(s: dict[str, Any]) -> bytes:
    """Stacked bars per sweep job, labelled by the swept values, training bucket at the bottom."""
    plt = _plt()
    jobs = s["jobs"]
    train = next((j.get("train_bucket") for j in jobs if j.get("train_bucket")), None)
    names = bucket_order(list(s["bucket_names"]), train)
    labels = swept_labels(jobs)
    xl = [labels[str(j["job"])] for j in jobs]
    long = max((len(t) for t in xl), default=0) > 14 or len(jobs) > 8
    fig, ax = plt.subplots(figsize=(max(6, 0.75 * len(jobs) + 3.5), 4.8 + (1.2 if long else 0)),
                           constrained_layout=True)
    x = np.arange(len(jobs))
    bottom = np.zeros(len(jobs))
    cmap = plt.get_cmap("tab10")
    for k, b in enumerate(names):
        vals = np.array([j["buckets"].get(b, 0) or 0 for j in jobs], dtype=float)
        color = "#1f77b4" if b == train else ("0.75" if b == "unmatched" else cmap((k + 1) % 10))
        ax.bar(x, vals, bottom=bottom, label=f"{b} (train)" if b == train else b, color=color,
               edgecolor="white", lw=0.5)
        bottom += vals
    ax.set_xticks(x, xl, rotation=30 if long else 0, ha="right" if long else "center", fontsize=8)
    _integer_y(ax)
    ax.set_ylabel("prompts")
    # legend outside the bars, in stacking order (bottom bucket listed last, as drawn)
    h, lab = ax.get_legend_handles_labels()
    ax.legend(h[::-1], lab[::-1], loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False,
              title="bucket")
    ax.set_title(f"Sweep — {Path(s['path']).name}: bucket sizes per run")
    return _png(fig)
