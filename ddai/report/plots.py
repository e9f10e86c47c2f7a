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
        names = rep.options.prompts or [d["prompt"] for d in lr.summary["quadrants"]["most_discordant"][:6]]
        if names and (lr.curves["step"] >= 0).any():
            figs.append(Figure(f"{stem}.prompt_curves.png", f"{lr.path}: per-prompt learning curves",
                               prompt_curves(lr, names)))
        cj = lr.summary.get("curriculum_join")
        if cj and cj["by_decile"]:
            figs.append(Figure(f"{stem}.by_decile.png", f"{lr.path}: by Phase 1 decile", by_decile(cj)))
    for c in rep.curricula:
        s = c.summary()
        figs.append(Figure(f"buckets.{_slug(str(c.dir))}.png", f"buckets: {c.manifest_path}",
                           bars({"": s["buckets"]}, f"Buckets — {c.dir.name}")))
    for i, sw in enumerate(rep.sweeps):
        s = sw.summary()
        if s["jobs"]:
            figs.append(Figure(f"sweep{i or ''}.buckets.png", f"sweep: {s['path']}",
                               bars({j["job"]: j["buckets"] for j in s["jobs"]}, f"Sweep — {Path(s['path']).name}")))
    return figs


def _integer_x(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


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
            if name == "ndcg":
                for label, v in sorted(bucket_th.items(), key=lambda kv: kv[1]):
                    a.axvline(v, color="crimson", ls="--", lw=1)
                    a.text(v, a.get_ylim()[1] * 0.95, f" {label}={v:g}", color="crimson", fontsize=8, va="top")
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
                bbox={"facecolor": "black", "alpha": 0.45, "pad": 2, "edgecolor": "none"})
    ax.set_title(f"{Path(lr.path).name}: judge vs NDCG per rollout")
    return _png(fig)


def per_step(lr: LogReport) -> bytes:
    plt = _plt()
    rows = lr.summary["per_step"]
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(10, 4.5), constrained_layout=True)
    for name in ("judge", "ndcg", "final"):
        ys = [np.nan if r[f"{name}_mean"] is None else r[f"{name}_mean"] for r in rows]
        ax.plot(steps, ys, marker="." if len(steps) < 60 else None, label=f"{name} mean", color=COLORS[name])
    ax.set_ylim(0, 1)
    ax.set_xlabel("training step")
    _integer_x(ax)
    ax.set_ylabel("mean score")
    ax2 = ax.twinx()
    ax2.plot(steps, [0 if r["error_rate"] is None else r["error_rate"] for r in rows], color="crimson",
             alpha=0.5, lw=1, label="error rate")
    ax2.set_ylabel("error rate")
    ax2.set_ylim(0, max(0.05, max((r["error_rate"] or 0) for r in rows) * 1.2))
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="lower right", fontsize=8)
    ax.set_title(f"{Path(lr.path).name}: per-step trends")
    return _png(fig)


def prompt_curves(lr: LogReport, names: list[str]) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4.8), constrained_layout=True)
    c = lr.curves[(lr.curves["step"] >= 0) & lr.curves["prompt"].isin(names)]
    cmap = plt.get_cmap("tab10")
    for i, name in enumerate(names):
        g = c[c["prompt"] == name].sort_values("step")
        if g.empty:
            continue
        color = cmap(i % 10)
        ax.plot(g["step"], g["judge_mean"], marker="o", color=color, label=f"{name} judge")
        ax.plot(g["step"], g["ndcg_mean"], marker="x", ls="--", color=color, alpha=0.7, label=f"{name} ndcg")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("training step")
    _integer_x(ax)
    ax.set_ylabel("mean over the prompt's rollouts")
    ax.legend(fontsize=7, ncol=2, loc="best")
    ax.set_title(f"{Path(lr.path).name}: per-prompt learning curves (solid judge, dashed NDCG)")
    return _png(fig)


def by_decile(cj: dict[str, Any]) -> bytes:
    plt = _plt()
    rows = cj["by_decile"]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(10, 4.5), constrained_layout=True)
    w = 0.2
    for k, (key, label) in enumerate((("phase1_mean", "Phase 1 mean"), ("judge_first", "judge, first seen"),
                                      ("judge_last", "judge, last seen"), ("ndcg_mean", "NDCG (Phase 2)"))):
        ax.bar(x + (k - 1.5) * w, [np.nan if r[key] is None else r[key] for r in rows], w, label=label)
    ax.set_xticks(x, [str(r["decile"]) for r in rows])
    ax.set_xlabel("Phase 1 difficulty decile (1 = hardest)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("Did the curriculum's hard prompts get better?")
    return _png(fig)


def bars(table: dict[str, dict[str, int]], title: str) -> bytes:
    plt = _plt()
    names = sorted({b for row in table.values() for b in row})
    fig, ax = plt.subplots(figsize=(max(5, 1.0 + 0.7 * len(table) * max(1, len(names)) / 2), 4),
                           constrained_layout=True)
    rows = list(table)
    if len(rows) == 1:
        only = table[rows[0]]
        ax.bar(list(only), list(only.values()), color="#1f77b4")
        for i, v in enumerate(only.values()):
            ax.text(i, v, f"{v:,}", ha="center", va="bottom", fontsize=8)
        ax.set_ylabel("prompts")
        ax.set_title(title)
        return _png(fig)
    bottom = np.zeros(len(rows))
    for b in names:
        vals = np.array([table[r].get(b, 0) for r in rows], dtype=float)
        ax.bar([r or "buckets" for r in rows], vals, bottom=bottom, label=b)
        bottom += vals
    ax.set_ylabel("prompts")
    ax.legend(fontsize=8)
    ax.set_title(title)
    return _png(fig)
