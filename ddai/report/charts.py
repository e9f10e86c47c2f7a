"""Interactive charts of the HTML page (Plotly), built from the same summary as every renderer.

WHY Plotly: it is maintained, its Python package carries the whole plotly.js bundle (no
CDN, no network at view time), one copy of the script serves every chart of the page, and a
chart gives hover values, zoom/pan, a legend that toggles series and a PNG download without
any code of ours. Bokeh and Altair/Vega need the same inlining but split their runtime over
several bundles (Vega needs three); matplotlib's PNGs stay for papers and ``--plots``.

Each function returns a ``plotly.graph_objects.Figure`` or ``None`` when there is nothing
to draw; :func:`div` turns one into an HTML fragment with a fixed element id, so re-runs of
the report write identical bytes.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from ddai.report.views import bucket_order, curve_prompts, curves_of, swept_labels

COLORS = {"judge": "#1f77b4", "ndcg": "#2ca02c", "final": "#9467bd", "error": "#d62728"}
LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "hovermode": "x unified",
          "legend": {"orientation": "v", "yanchor": "top", "y": 1, "x": 1.02}}


def _go():
    try:
        import plotly.graph_objects as go
    except ImportError:
        from ddai.errors import ConfigError

        raise ConfigError("--html needs plotly for its charts", where="--html",
                          expected="pip install 'ddai[report]'") from None
    return go


def plotly_js() -> str:
    """The whole plotly.js bundle, inlined once per page."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def div(fig: Any, div_id: str, height: int = 420) -> str:
    """One chart as ``<div>`` + ``<script>`` (plotly.js must already be on the page)."""
    fig.update_layout(height=height)
    payload = fig.to_plotly_json()
    data = json.dumps(payload.get("data", []), cls=_Enc, sort_keys=True)
    layout = json.dumps(payload.get("layout", {}), cls=_Enc, sort_keys=True)
    # a prompt id or path holding "</script>" must not end the script element early
    data, layout = data.replace("</", "<\\/"), layout.replace("</", "<\\/")
    config = json.dumps({"displaylogo": False, "responsive": True,
                         "toImageButtonOptions": {"filename": div_id}}, sort_keys=True)
    # drawn once the whole page is parsed: a chart inside a grid sized before the grid is
    # complete would take the full page width and spill over its neighbour
    return (f'<div id="{div_id}" class="chart" style="height:{height}px"></div>'
            f'<script>document.addEventListener("DOMContentLoaded",function(){{'
            f'Plotly.newPlot("{div_id}",{data},{layout},{config});}});</script>')


class _Enc(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, np.ndarray):
            return [None if isinstance(v, float) and not np.isfinite(v) else v for v in o.tolist()]
        if isinstance(o, np.generic):
            v = o.item()
            return None if isinstance(v, float) and not np.isfinite(v) else v
        return super().default(o)

    def iterencode(self, o: Any, _one_shot: bool = False):  # NaN → null (plotly.js reads null as a gap)
        return super().iterencode(_nan_to_none(o), _one_shot)


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, float):
        return x if np.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_nan_to_none(v) for v in x]
    if isinstance(x, np.ndarray):
        return _nan_to_none(x.tolist())
    return x


def _vals(rows: list[dict[str, Any]], key: str) -> list[float | None]:
    return [r.get(key) for r in rows]


def per_step(s: dict[str, Any]) -> Any:
    """Mean judge / NDCG / final per step, and the error rate on its own axis (toggle in legend)."""
    rows = s.get("per_step") or []
    if not rows:
        return None
    go = _go()
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.06)
    steps = _vals(rows, "step")
    mode = "lines+markers" if len(rows) < 60 else "lines"
    for name in ("judge", "ndcg", "final"):
        fig.add_trace(go.Scatter(x=steps, y=_vals(rows, f"{name}_mean"), name=f"{name} mean", mode=mode,
                                 line={"color": COLORS[name]}), row=1, col=1)
    err = [None if v is None else 100 * v for v in _vals(rows, "error_rate")]
    fig.add_trace(go.Scatter(x=steps, y=err, name="errors %", mode=mode, line={"color": COLORS["error"]}),
                  row=2, col=1)
    fig.add_trace(go.Bar(x=steps, y=_vals(rows, "rollouts"), name="rollouts", marker_color="#bbb", opacity=0.5,
                         visible="legendonly"), row=2, col=1)
    top = max([5.0] + [v * 1.25 for v in err if v is not None])
    fig.update_yaxes(range=[-0.02, 1.02], title_text="mean score", row=1, col=1)
    fig.update_yaxes(range=[-0.04 * top, top], title_text="errors %", row=2, col=1)
    fig.update_xaxes(title_text="training step", tickformat="d", row=2, col=1)
    fig.update_layout(**LAYOUT, title="Per-step trends")
    return fig


def prompt_curves(lr: Any, chosen: list[str], limit: int = 8) -> Any:
    """One small panel per prompt, judge (solid) and NDCG (dashed) over steps.

    WHY panels: overlaid, eight prompts × two scores are sixteen crossing lines; a panel each
    reads at 500 steps, and at one step (markers, x axis spanning the step ± 1).
    """
    picks = curve_prompts(lr, chosen, limit)
    curves = curves_of(lr, [p for p, _ in picks])
    picks = [p for p in picks if p[0] in curves]
    if not picks:
        return None
    go = _go()
    from plotly.subplots import make_subplots

    cols = 2 if len(picks) > 1 else 1
    rows = (len(picks) + cols - 1) // cols
    fig = make_subplots(rows=rows, cols=cols, shared_xaxes="all", shared_yaxes="all",
                        subplot_titles=[f"{html.escape(pid)} ({why}, {int(curves[pid]['n'].sum())} rollouts)"
                                        for pid, why in picks],
                        vertical_spacing=min(0.3, 75 / curves_height(len(picks))), horizontal_spacing=0.06)
    steps = sorted({int(v) for g in curves.values() for v in g["step"]})
    for i, (raw_pid, _why) in enumerate(picks):
        g = curves[raw_pid]
        pid = html.escape(raw_pid)  # plotly draws titles and hover text as (a subset of) HTML
        r, c = i // cols + 1, i % cols + 1
        mode = "lines+markers" if len(g) <= 40 else "lines"
        n = [int(v) for v in g["n"]]
        fig.add_trace(go.Scatter(x=g["step"].tolist(), y=g["judge_mean"].tolist(), mode=mode, name="judge",
                                 legendgroup="judge", showlegend=i == 0, customdata=n, line={"color": COLORS["judge"]},
                                 hovertemplate=f"{pid} step %{{x}}: judge %{{y:.3f}} (n=%{{customdata}})<extra></extra>"),
                      row=r, col=c)
        fig.add_trace(go.Scatter(x=g["step"].tolist(), y=g["ndcg_mean"].tolist(), mode=mode, name="NDCG",
                                 legendgroup="ndcg", showlegend=i == 0, customdata=n,
                                 line={"color": COLORS["ndcg"], "dash": "dash"}, marker={"symbol": "square"},
                                 hovertemplate=f"{pid} step %{{x}}: NDCG %{{y:.3f}} (n=%{{customdata}})<extra></extra>"),
                      row=r, col=c)
    layout = dict(LAYOUT)
    layout["hovermode"] = "closest"
    layout["margin"] = {"l": 60, "r": 20, "t": 80, "b": 50}
    fig.update_layout(**layout, title="Per-prompt learning curves (solid judge, dashed NDCG)"
                      + (" — one step logged so far" if len(steps) == 1 else ""))
    fig.update_annotations(font_size=11)
    fig.update_yaxes(range=[-0.03, 1.03])
    fig.update_xaxes(tickformat="d", showticklabels=True,
                     range=[steps[0] - 1, steps[-1] + 1] if len(steps) < 5 else None)
    fig.update_xaxes(title_text="training step", row=rows)
    return fig


def curves_height(n: int) -> int:
    return 130 + 210 * ((n + 1) // 2)


def judge_vs_ndcg(lr: Any) -> Any:
    """The 50×50 judge/NDCG density of all rollouts with the quadrant thresholds."""
    go = _go()
    grid = lr.part.density.astype(float)
    if not grid.any():
        return None
    centers = (np.arange(50) + 0.5) / 50
    z = np.where(grid > 0, np.log10(np.maximum(grid, 1)), np.nan)
    fig = go.Figure(go.Heatmap(x=centers, y=centers, z=z, customdata=grid, colorscale="Viridis",
                               colorbar={"title": "log10 rollouts"},
                               hovertemplate="NDCG %{x:.2f}, judge %{y:.2f}: %{customdata:.0f} rollouts<extra></extra>"))
    q = lr.summary.get("quadrants") or {}
    th = q.get("thresholds") or {"judge_high": 0.5, "ndcg_high": 0.5}
    fig.add_vline(x=th["ndcg_high"], line_dash="dash", line_color="#444")
    fig.add_hline(y=th["judge_high"], line_dash="dash", line_color="#444")
    for name, (x, y) in {"solved": (0.97, 0.97), "guessing": (0.03, 0.97), "reasoning failure": (0.97, 0.03),
                         "failure": (0.03, 0.03)}.items():
        frac = ((q.get("rollouts") or {}).get(name.replace(" ", "_")) or {}).get("fraction")
        fig.add_annotation(x=x, y=y, xref="x", yref="y", showarrow=False, bgcolor="rgba(0,0,0,0.55)",
                           font={"color": "white", "size": 11},
                           text=name + (f" {100 * frac:.1f}%" if frac is not None else ""),
                           xanchor="right" if x > 0.5 else "left", yanchor="top" if y > 0.5 else "bottom")
    layout = dict(LAYOUT)
    layout["hovermode"] = "closest"
    fig.update_layout(**layout, title="Judge vs NDCG per rollout")
    fig.update_xaxes(title_text="NDCG", range=[0, 1])
    fig.update_yaxes(title_text="judge score", range=[0, 1])
    return fig


def quadrant_shares(s: dict[str, Any]) -> Any:
    q = (s.get("quadrants") or {})
    if not q:
        return None
    go = _go()
    names = ["solved", "guessing", "reasoning_failure", "failure"]
    colors = {"solved": "#2ca02c", "guessing": "#ff7f0e", "reasoning_failure": "#9467bd", "failure": "#d62728"}
    fig = go.Figure()
    for name in names:
        vals = [100 * (q[level][name]["fraction"] or 0) for level in ("rollouts", "prompts")]
        ns = [q[level][name]["n"] for level in ("rollouts", "prompts")]
        fig.add_trace(go.Bar(y=["rollouts", "prompts"], x=vals, name=name.replace("_", " "), orientation="h",
                             marker_color=colors[name], customdata=ns,
                             hovertemplate="%{x:.1f}% (%{customdata})<extra>" + name.replace("_", " ") + "</extra>"))
    layout = dict(LAYOUT)
    layout["hovermode"] = "closest"
    fig.update_layout(**layout, barmode="stack", title="Phase 3 quadrant shares")
    fig.update_xaxes(title_text="%", range=[0, 100])
    return fig


def by_decile(cj: dict[str, Any]) -> Any:
    rows = cj.get("by_decile") or []
    if not rows:
        return None
    go = _go()
    x = [f"{r['decile']} ({r['prompts']})" for r in rows]
    fig = go.Figure()
    for key, label, color in (("phase1_mean", "Phase 1 mean", "#888"), ("judge_first", "judge, first seen", "#9ecae1"),
                              ("judge_last", "judge, last seen", COLORS["judge"]), ("ndcg_mean", "NDCG", COLORS["ndcg"])):
        fig.add_trace(go.Bar(x=x, y=_vals(rows, key), name=label, marker_color=color))
    fig.update_layout(**LAYOUT, barmode="group", title="Did the curriculum's hard prompts get better?")
    fig.update_xaxes(title_text="Phase 1 difficulty group (prompts), 1 = hardest")
    fig.update_yaxes(range=[0, 1.02], title_text="mean score")
    return fig


def buckets(s: dict[str, Any]) -> Any:
    go = _go()
    order = bucket_order(list(s["buckets"]), s.get("train_bucket"))
    train = s.get("train_bucket")
    fig = go.Figure(go.Bar(x=[s["buckets"][b] for b in order][::-1],
                           y=[html.escape(f"{b} (train)" if b == train else b) for b in order][::-1],
                           orientation="h", marker_color=["#1f77b4" if b == train else "#9ecae1" for b in order][::-1],
                           hovertemplate="%{y}: %{x:,} prompts<extra></extra>"))
    layout = dict(LAYOUT)
    layout["hovermode"] = "closest"
    fig.update_layout(**layout, title=html.escape(f"Buckets — {Path(s['path']).parent.name}"))
    fig.update_xaxes(title_text="prompts", tickformat=",d")
    return fig


def sweep(s: dict[str, Any]) -> Any:
    jobs = s.get("jobs") or []
    if not jobs:
        return None
    go = _go()
    train = next((j.get("train_bucket") for j in jobs if j.get("train_bucket")), None)
    names = bucket_order(list(s["bucket_names"]), train)
    labels = swept_labels(jobs)
    x = [html.escape(labels[str(j["job"])]) for j in jobs]
    fig = go.Figure()
    for b in names:  # first trace = bottom of the stack: the training bucket
        fig.add_trace(go.Bar(x=x, y=[j["buckets"].get(b, 0) for j in jobs], name=html.escape(f"{b} (train)" if b == train else b),
                             marker_color="#1f77b4" if b == train else ("#ccc" if b == "unmatched" else None)))
    layout = dict(LAYOUT)
    layout["legend"] = {"orientation": "v", "x": 1.02, "y": 1, "traceorder": "reversed", "title": {"text": "bucket"}}
    fig.update_layout(**layout, barmode="stack", title=html.escape(f"Sweep — {Path(s['path']).name}: bucket sizes per run"))
    fig.update_yaxes(title_text="prompts", tickformat=",d")
    return fig
