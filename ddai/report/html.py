"""``--html FILE``: one self-contained page a researcher opens instead of a dashboard.

WHY this shape: the page is mailed around or opened from a cluster's file browser, so
everything it needs — styles, plotly.js, the table script, the PNGs — is inlined and it
makes no request at all. It opens on a headline (the figures people ask first), then one
section per question with a navigation bar. Tables are real ``<table>`` elements (copy
into a spreadsheet, sort by a click on a header, filter by typing, download as CSV);
charts are interactive (Plotly: hover, zoom, legend toggles); the matplotlib PNGs used by
``--plots`` close the page for papers. All numbers come from the same summary the
terminal and ``--json`` show. Element ids are fixed, so a re-run writes identical bytes.
"""

from __future__ import annotations

import base64
import html as _html
import math
from pathlib import Path
from typing import Any

from ddai.atomic import atomic_write_text
from ddai.errors import InputError
from ddai.report import charts
from ddai.report.model import Report
from ddai.report.plots import Figure
from ddai.report.render_json import _clean, document
from ddai.report.views import headline, swept_labels, trend_text

SECTIONS = (("headline", "Headline"), ("buckets", "Buckets"), ("steps", "Per step"),
            ("progress", "Progress"), ("quadrants", "Quadrants"), ("curves", "Learning curves"),
            ("next-round", "Next round"), ("config", "Configuration"), ("figures", "Static figures"))

CSS = """
:root{--fg:#1d2433;--muted:#5c6677;--line:#d9dee7;--bg:#f6f8fb;--accent:#1f5fbf}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
margin:0;background:#fff}header{padding:14px 24px 6px;border-bottom:1px solid var(--line)}
h1{font-size:20px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px;padding-top:8px;border-top:1px solid var(--line)}
h3{font-size:15px;margin:18px 0 6px}.muted{color:var(--muted)}code{font-size:12px}
nav{position:sticky;top:0;z-index:10;background:#fff;border-bottom:1px solid var(--line);padding:6px 24px}
nav a{margin-right:14px;color:var(--accent);text-decoration:none;font-weight:500}nav a:hover{text-decoration:underline}
main{padding:0 24px 40px;max-width:1400px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px;margin:10px 0}
.card{background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:8px 12px}
.card .k{color:var(--muted);font-size:12px}.card .v{font-size:22px;font-weight:600;overflow-wrap:anywhere}
.card .v.long{font-size:14px;padding-top:6px}.card .t{font-size:12px}.grid2>div{min-width:0}
.up{color:#1a7f37}.down{color:#cf222e}.flat{color:var(--muted)}
.qbar{display:flex;height:22px;border-radius:4px;overflow:hidden;margin:6px 0 2px;max-width:700px}
.qbar span{display:block;height:100%}.legend span{margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
.tbl{margin:8px 0 18px;overflow-x:auto}.tools{display:flex;gap:8px;align-items:center;margin-bottom:4px}
.tools input{padding:3px 6px;border:1px solid var(--line);border-radius:4px;min-width:220px}
.tools button{padding:3px 8px;border:1px solid var(--line);border-radius:4px;background:#fff;cursor:pointer}
.tools .count{color:var(--muted);font-size:12px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:right;white-space:nowrap}
th:first-child,td:first-child,td.s,th.s{text-align:left}
thead th{background:var(--bg);cursor:pointer;user-select:none;position:sticky;top:0}
th[aria-sort=ascending]::after{content:" ▲"}th[aria-sort=descending]::after{content:" ▼"}
tbody tr:hover{background:#eef3fb}.chart{width:100%;min-width:300px}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}
figure{margin:12px 0}figure img{max-width:100%;border:1px solid var(--line)}figcaption{color:var(--muted);font-size:12px}
details summary{cursor:pointer;color:var(--accent)}
.state{font-weight:600}.state.running{color:#1a7f37}.state.failed{color:#cf222e}.state.done{color:#1f5fbf}
"""

JS = r"""
(function(){
function val(td){var v=td.getAttribute('data-v');return v===null?td.textContent.trim():v;}
function sortBy(t,i,th){
  var tb=t.tBodies[0],rows=Array.prototype.slice.call(tb.rows);
  var asc=th.getAttribute('aria-sort')!=='ascending',num=th.getAttribute('data-type')==='num';
  Array.prototype.forEach.call(t.tHead.rows[0].cells,function(h){h.removeAttribute('aria-sort');});
  th.setAttribute('aria-sort',asc?'ascending':'descending');
  rows.sort(function(a,b){
    var x=val(a.cells[i]),y=val(b.cells[i]);
    if(num){x=x===''?NaN:+x;y=y===''?NaN:+y;
      if(isNaN(x)&&isNaN(y))return 0;if(isNaN(x))return 1;if(isNaN(y))return -1;return asc?x-y:y-x;}
    return asc?x.localeCompare(y,undefined,{numeric:true}):y.localeCompare(x,undefined,{numeric:true});});
  rows.forEach(function(r){tb.appendChild(r);});
}
function csv(t){
  var out=[];Array.prototype.forEach.call(t.rows,function(r){
    if(r.style.display==='none')return;
    out.push(Array.prototype.map.call(r.cells,function(c){
      var s=(c.getAttribute('data-v')||c.textContent).trim().replace(/[▲▼]/g,'').trim();
      return /[",\n]/.test(s)?'"'+s.replace(/"/g,'""')+'"':s;}).join(','));});
  return out.join('\n')+'\n';
}
document.querySelectorAll('table.sortable').forEach(function(t){
  Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,i){
    th.tabIndex=0;th.title='sort';
    th.addEventListener('click',function(){sortBy(t,i,th);});
    th.addEventListener('keydown',function(e){if(e.key==='Enter')sortBy(t,i,th);});});
  var box=document.querySelector('input[data-filter="'+t.id+'"]'),cnt=document.getElementById(t.id+'-count');
  var total=t.tBodies[0].rows.length;
  if(box)box.addEventListener('input',function(){
    var q=box.value.toLowerCase(),shown=0;
    Array.prototype.forEach.call(t.tBodies[0].rows,function(r){
      var ok=r.textContent.toLowerCase().indexOf(q)>=0;r.style.display=ok?'':'none';if(ok)shown++;});
    if(cnt)cnt.textContent=shown+' of '+total+' rows';});
  var btn=document.querySelector('button[data-csv="'+t.id+'"]');
  if(btn)btn.addEventListener('click',function(){
    var a=document.createElement('a');a.href='data:text/csv;charset=utf-8,'+encodeURIComponent(csv(t));
    a.download=t.id+'.csv';document.body.appendChild(a);a.click();a.remove();});
});
})();
"""

QCOLORS = {"solved": "#2ca02c", "guessing": "#ff7f0e", "reasoning_failure": "#9467bd", "failure": "#d62728"}


def esc(x: Any) -> str:
    return _html.escape(str(x), quote=True)


def fmt(x: Any, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return str(x)


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


class Page:
    """Collects sections; numbers ids of tables and charts in order, so they are stable."""

    def __init__(self) -> None:
        self.n = 0

    def _id(self, kind: str) -> str:
        self.n += 1
        return f"{kind}{self.n}"

    def table(self, cols: list[str], rows: list[list[Any]], *, caption: str = "", nums: set[int] | None = None,
              name: str = "") -> str:
        """A sortable, filterable table; ``rows`` hold raw values (numbers sort as numbers)."""
        tid = self._id(f"t-{name}-" if name else "t")
        if nums is None:
            nums = {i for i in range(len(cols)) if rows and all(
                isinstance(r[i], (int, float)) or r[i] is None or isinstance(r[i], tuple) for r in rows)}
        num_attr = ' data-type="num"'
        text_attr = ' class="s"'
        head = "".join(f'<th scope="col"{num_attr if i in nums else text_attr}>{esc(c)}</th>'
                       for i, c in enumerate(cols))
        body = []
        for r in rows:
            cells = []
            for i, v in enumerate(r):
                shown = v
                raw = v
                if isinstance(v, tuple):        # (raw value, text shown)
                    raw, shown = v
                if i in nums:
                    rv = "" if raw is None or (isinstance(raw, float) and not math.isfinite(raw)) else repr(raw)
                    text = shown if isinstance(v, tuple) else fmt(raw)
                    cells.append(f'<td data-v="{esc(rv)}">{esc(text)}</td>')
                else:
                    cells.append(f'<td class="s">{esc(fmt(shown))}</td>')
            body.append("<tr>" + "".join(cells) + "</tr>")
        cap = f'<div class="muted">{esc(caption)}</div>' if caption else ""
        return (f'<div class="tbl"><div class="tools"><input type="search" placeholder="filter rows…" '
                f'data-filter="{tid}" aria-label="filter"><button type="button" data-csv="{tid}">CSV</button>'
                f'<span class="count" id="{tid}-count">{len(rows)} rows</span></div>'
                f'<table class="sortable" id="{tid}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}'
                f"</tbody></table>{cap}</div>")

    def chart(self, fig: Any, height: int = 420) -> str:
        return charts.div(fig, self._id("c"), height) if fig is not None else ""


def _trend(v: float | None, unit: str = "") -> str:
    if v is None:
        return '<span class="t flat">trend: needs 2 steps</span>'
    cls = "up" if v >= 0.0005 else "down" if v <= -0.0005 else "flat"
    arrow = "↑" if cls == "up" else "↓" if cls == "down" else "→"
    shown = trend_text(v)
    return f'<span class="t {cls}">{arrow} {shown}{unit} per 100 steps</span>'


def _card(k: str, v: str, extra: str = "") -> str:
    cls = "v long" if len(v) > 12 else "v"
    return f'<div class="card"><div class="k">{esc(k)}</div><div class="{cls}">{esc(v)}</div>{extra}</div>'


def headline_html(s: dict[str, Any]) -> str:
    h = headline(s)
    steps = f"{h['steps']:,}" if h["steps"] else "—"
    span = f'<span class="t muted">{h["first_step"]}…{h["last_step"]}</span>' if h["steps"] else ""
    cards = [_card("rollouts", fmt(h["rollouts"])), _card("prompts", fmt(h["prompts"])), _card("steps", steps, span)]
    for k, label in (("judge", "mean judge"), ("ndcg", "mean NDCG"), ("final", "mean final")):
        cards.append(_card(label, fmt(h[f"{k}_mean"]), _trend(h[f"{k}_trend"])))
    cards += [_card("error rate", pct(h["error_rate"])), _card("cache hits", pct(h["cache_hit_rate"])),
              _card("cost so far", "—" if h["cost_usd"] is None else f"${h['cost_usd']:,.2f}"),
              _card("cost per step", "—" if h["cost_per_step"] is None else f"${h['cost_per_step']:,.4f}")]
    q = h["quadrants"]
    bar = "".join(f'<span style="width:{100 * (q[k] or 0):.3f}%;background:{QCOLORS[k]}" '
                  f'title="{esc(k.replace("_", " "))} {pct(q[k])}"></span>' for k in QCOLORS)
    leg = "".join(f'<span><i style="background:{QCOLORS[k]}"></i>{esc(k.replace("_", " "))} {pct(q[k])}</span>'
                  for k in QCOLORS)
    return (f'<div class="cards">{"".join(cards)}</div><div class="k muted">Phase 3 quadrants (share of scored '
            f'rollouts)</div><div class="qbar" role="img" aria-label="quadrant shares">{bar}</div>'
            f'<div class="legend">{leg}</div>')


def run_state_html(run: dict[str, Any], page: Page) -> str:
    """The Phase 2 chain (jobs, restarts, checkpoints, time to finish) from :mod:`ddai.report.live`."""
    eta = run.get("eta_s")
    cards = [_card("status", str(run.get("status"))),
             _card("step", f"{run.get('step')} / {run.get('total_steps')}"),
             _card("jobs", fmt(len(run.get("jobs") or []))),
             _card("restarts", f"{run.get('restarts')} / {run.get('max_restarts')}"),
             _card("checkpoints", fmt(len(run.get("checkpoints") or []))),
             _card("time to finish", "—" if eta is None else _dur(eta)),
             _card("W&B run id", run.get("wandb_run_id") or "—")]
    rows = [[j.get("job_id"), j.get("started"), j.get("ended"), j.get("ckpt_at_start"), j.get("ckpt_at_end"),
             j.get("rc"), j.get("end_reason") or ""] for j in run.get("jobs") or []]
    rows = [[r[0], (r[1], _ts(r[1])), (r[2], _ts(r[2])), r[3], r[4], r[5], r[6]] for r in rows]
    return (f'<p class="muted">{esc(run.get("message") or "")}</p><div class="cards">{"".join(cards)}</div>'
            + page.table(["job", "started (UTC)", "ended (UTC)", "ckpt at start", "ckpt at end", "rc", "reason"],
                         rows, nums={1, 2, 3, 4, 5}, name="jobs"))


def _ts(t: Any) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) if isinstance(t, (int, float)) else "—"


def _dur(sec: float) -> str:
    sec = int(sec)
    d, rem = divmod(sec, 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    return f"{d}d {h}h" if d else f"{h}h {m}m" if h else f"{m}m"


def _kv_table(page: Page, d: dict[str, Any], name: str) -> str:
    rows = []
    for k, v in d.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        elif isinstance(v, list):
            v = ", ".join(str(x) for x in v)
        rows.append([str(k), "—" if v is None else str(v)])
    return page.table(["key", "value"], rows, nums=set(), name=name)


def _group_rows(groups: list[tuple[str, dict[str, Any]]]) -> list[list[Any]]:
    return [[label, g["prompts"], g["rollouts"], g["phase1_mean"], g["judge_mean"], g["ndcg_mean"],
             g["judge_first"], g["judge_last"], g["judge_change"]] for label, g in groups]


GROUP_COLS = ["prompts", "rollouts", "Phase 1 mean", "judge", "NDCG", "judge first", "judge last", "change"]


def page(rep: Report, figures: list[Figure], run: dict[str, Any] | None = None) -> str:
    doc = _clean(document(rep))
    pg = Page()
    parts: dict[str, list[str]] = {k: [] for k, _ in SECTIONS}
    single = len(rep.logs) == 1

    # headline ------------------------------------------------------------------------
    if run:
        parts["headline"].append(f"<h3>Phase 2 run — {esc(run.get('run_dir'))}</h3>" + run_state_html(run, pg))
    for lr in rep.logs:
        s = _clean(lr.summary)
        parts["headline"].append(("" if single and not run else f"<h3>{esc(s['path'])}</h3>") + headline_html(s))
    if not rep.logs:
        parts["headline"].append('<p class="muted">No judge log among the inputs: buckets and sweeps only.</p>')

    # buckets + sweep -----------------------------------------------------------------
    for c in doc["curricula"]:
        total = sum(c["buckets"].values()) or 1
        rows = [[f"{b} (train)" if b == c.get("train_bucket") else b, n, (n / total, pct(n / total))]
                for b, n in c["buckets"].items()]
        parts["buckets"].append(f"<h3>{esc(c['path'])}</h3><div class='grid2'><div>"
                                + pg.table(["bucket", "prompts", "share"], rows, name="buckets",
                                           caption=f"rule {c.get('rule')} · score {c.get('score')} · sort "
                                                   f"{c.get('sort')} · steps/epoch {c.get('steps_per_epoch')}")
                                + "</div><div>" + pg.chart(charts.buckets(c), 300) + "</div></div>")
    for sw in doc["sweeps"]:
        labels = swept_labels(sw["jobs"]) if sw["jobs"] else {}
        names = sw["bucket_names"]
        rows = [[str(j["job"]), labels.get(str(j["job"]), ""), *[j["buckets"].get(b) for b in names],
                 j.get("steps_per_epoch"), j.get("est_price_total")] for j in sw["jobs"]]
        parts["buckets"].append(f"<h3>Sweep — {esc(sw['path'])}</h3>"
                                + pg.table(["job", "swept values", *names, "steps/epoch", "est. cost"], rows,
                                           nums=set(range(2, len(names) + 4)), name="sweep")
                                + pg.chart(charts.sweep(sw), 420))
        if sw.get("failed_jobs"):
            parts["buckets"].append(pg.table(["job", "status", "error", "log"],
                                             [[f["job"], f["status"], f.get("error"), f.get("log")]
                                              for f in sw["failed_jobs"]], nums=set(), name="failed"))
    if not parts["buckets"]:
        parts["buckets"].append('<p class="muted">No curriculum or sweep among the inputs.</p>')

    for lr in rep.logs:
        s = _clean(lr.summary)
        title = "" if single else f"<h3>{esc(s['path'])}</h3>"
        # per step ---------------------------------------------------------------------
        rows = [[r["step"], r["rollouts"], r["prompts"], r["judge_mean"], r["ndcg_mean"], r["final_mean"],
                 (r["error_rate"], pct(r["error_rate"])), r["latency_mean"]] for r in s["per_step"]]
        sc = [[name, b["n"], b["missing"], b["mean"], b["std"], b["p05"], b["p25"], b["p50"], b["p75"], b["p95"]]
              for name, b in s["scores"].items()]
        parts["steps"].append(title + pg.chart(charts.per_step(s), 460)
                              + pg.table(["step", "rollouts", "prompts", "judge", "NDCG", "final", "errors",
                                          "latency s"], rows, name="steps")
                              + "<h3>Scores per rollout</h3>"
                              + pg.table(["score", "n", "missing", "mean", "std", "p05", "p25", "p50", "p75", "p95"],
                                         sc, name="scores"))
        # progress ---------------------------------------------------------------------
        cj = s.get("curriculum_join")
        if cj:
            parts["progress"].append(
                title + f'<p class="muted">{cj["matched_prompts"]:,} prompts of the log joined to the curriculum; '
                f'{cj["log_prompts_not_in_curriculum"]:,} not in it.</p><h3>By Phase 1 bucket</h3>'
                + pg.table(["bucket", *GROUP_COLS], _group_rows(list(cj["by_bucket"].items())), name="bybucket")
                + "<h3>By Phase 1 difficulty group (1 = hardest)</h3>"
                + pg.table(["group", *GROUP_COLS], _group_rows([(str(g["decile"]), g) for g in cj["by_decile"]]),
                           nums=set(range(9)), name="bydecile")
                + pg.chart(charts.by_decile(cj), 400))
        # quadrants --------------------------------------------------------------------
        q = s.get("quadrants")
        if q:
            th = q["thresholds"]
            qrows = [[name.replace("_", " "), q["rollouts"][name]["n"],
                      (q["rollouts"][name]["fraction"], pct(q["rollouts"][name]["fraction"])),
                      q["prompts"][name]["n"], (q["prompts"][name]["fraction"], pct(q["prompts"][name]["fraction"]))]
                     for name in QCOLORS]
            disc = [[d["prompt"], d["kind"], (d.get("quadrant") or "—").replace("_", " "), d["rollouts"],
                     d["judge_mean"], d["ndcg_mean"], d["gap"]] for d in q["most_discordant"]]
            parts["quadrants"].append(
                title + f'<p class="muted">judge ≥ {th["judge_high"]} and NDCG ≥ {th["ndcg_high"]} count as high; '
                f'unscored: {q["rollouts"]["unscored"]:,} rollouts, {q["prompts"]["unscored"]:,} prompts.</p>'
                + '<div class="grid2"><div>'
                + pg.table(["quadrant", "rollouts", "share", "prompts", "share of prompts"], qrows, name="quadrants")
                + pg.chart(charts.quadrant_shares(s), 260) + "</div><div>" + pg.chart(charts.judge_vs_ndcg(lr), 460)
                + "</div></div><h3>Most discordant prompts</h3>"
                + pg.table(["prompt", "direction", "quadrant", "rollouts", "judge", "NDCG", "gap (judge − NDCG)"],
                           disc, nums={3, 4, 5, 6}, name="discordant",
                           caption="ranked by |judge − NDCG|; direction says which score is ahead"))
        # learning curves --------------------------------------------------------------
        fig = charts.prompt_curves(lr, rep.options.prompts)
        if fig is not None:
            npanels = sum(1 for a in fig.layout.annotations if a.text and "rollouts)" in a.text)
            parts["curves"].append(title + pg.chart(fig, charts.curves_height(npanels))
                                   + '<p class="muted">Chosen with <code>--prompt ID</code>, otherwise the most '
                                     'discordant, most improved and most regressed prompts (judge at the last vs '
                                     'the first step seen). Click "judge" or "NDCG" in the legend to hide a score; '
                                     'the table below sorts every prompt by its change.</p>')
            parts["curves"].append("<h3>All prompts</h3>" + _prompt_table(pg, lr))
        # next round -------------------------------------------------------------------
        nr = s.get("next_round")
        if nr:
            t = nr.get("thresholds", {})
            parts["next-round"].append(
                title + f'<p class="muted">mean judge at the last step seen: fail &lt; {t.get("fail_below")}, '
                f'success ≥ {t.get("success_from")}; unscored prompts: {nr.get("unscored_prompts", 0)}</p>'
                + pg.table(["set", "prompts"], [[k, v] for k, v in (nr.get("counts") or {}).items()], name="nrsplit"))
    if doc.get("next_round"):
        nr = doc["next_round"]
        rows = [[k, v, (nr.get("files") or {}).get(k, "")] for k, v in (nr.get("rows") or {}).items()]
        parts["next-round"].append(f"<h3>Exported to {esc(nr.get('dir'))}</h3>"
                                   + pg.table(["set", "rows", "file"], rows, nums={1}, name="nrexport"))
    for key, label in (("steps", "per-step figures"), ("progress", ("curriculum join (give the curriculum as a PATH "
                       "or --curriculum)")), ("quadrants", "quadrants"), ("curves", "learning curves"),
                       ("next-round", "next-round sets")):
        if not parts[key]:
            parts[key].append(f'<p class="muted">No {esc(label)} for these inputs.</p>')

    # configuration --------------------------------------------------------------------
    cfg = ["<h3>Inputs</h3>" + pg.table(["path", "kind", "description"],
                                        [[i["path"], i["kind"], i["description"]] for i in doc["inputs"]],
                                        nums=set(), name="inputs"),
           "<h3>Report options</h3>" + _kv_table(pg, doc["options"], "options")]
    for c in doc["curricula"]:
        cfg.append(f"<h3>Curriculum {esc(c['path'])}</h3>"
                   + _kv_table(pg, {k: v for k, v in c.items() if k not in ("buckets", "path")}, "curriculum"))
    for lr in rep.logs:
        s = _clean(lr.summary)
        read = dict(s["read"])
        problems = read.pop("problems", [])
        extra = {**read, **{f"label {k}": v for k, v in (s.get("labels") or {}).items()},
                 "latency s (p50/p95/p99)": f"{fmt(s['latency_s']['p50'], 2)} / {fmt(s['latency_s']['p95'], 2)} / "
                                            f"{fmt(s['latency_s']['p99'], 2)}",
                 "judge subscores": s.get("judge_subscores") or None,
                 "tokens (sum)": {k: v.get("sum") for k, v in (s.get("tokens") or {}).items()} or None,
                 "errors by kind": s["rates"].get("errors_by_kind") or None,
                 "first problems": "; ".join(f"line {p['line']}: {p['reason']}" for p in problems[:3]) or None}
        cfg.append(f"<h3>Log {esc(s['path'])}</h3>" + _kv_table(pg, extra, "log"))
    if run and run.get("plan"):
        cfg.append("<h3>Phase 2 plan</h3>" + _kv_table(pg, run["plan"], "plan"))
    parts["config"] = cfg

    # static figures -------------------------------------------------------------------
    parts["figures"].append("<details><summary>The PNGs of <code>--plots</code> (matplotlib), for papers"
                            "</summary>" + "".join(
        f'<figure><img alt="{esc(f.title)}" src="data:image/png;base64,{base64.b64encode(f.png).decode()}">'
        f"<figcaption>{esc(f.name)} — {esc(f.title)}</figcaption></figure>" for f in figures) + "</details>")

    nav = "".join(f'<a href="#{k}">{esc(v)}</a>' for k, v in SECTIONS)
    body = "".join(f'<section id="{k}"><h2>{esc(v)}</h2>{"".join(parts[k])}</section>' for k, v in SECTIONS)
    found = ", ".join(f"<code>{esc(i['path'])}</code>" for i in doc["inputs"])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>ddai report — {esc(_title(rep))}</title><style>{CSS}</style>"
            f"<script>{charts.plotly_js()}</script></head><body>"
            f'<header><h1>ddai report — {esc(_title(rep))}</h1><div class="muted">ddai {esc(doc["ddai_version"])} · '
            f"{found}</div></header><nav>{nav}</nav><main>{body}</main><script>{JS}</script></body></html>\n")


MAX_PROMPT_ROWS = 5000


def _prompt_table(pg: Page, lr: Any) -> str:
    """Every prompt (up to 5,000, the most-seen first: the page stays small enough to mail)."""
    df = lr.prompts
    cut = len(df) > MAX_PROMPT_ROWS
    if cut:
        df = df.sort_values(["n", "prompt"], ascending=[False, True], kind="mergesort").head(MAX_PROMPT_ROWS)
    rows = []
    for r in df.itertuples():
        rows.append([r.prompt, int(r.n), r.judge_mean, r.ndcg_mean, r.final_mean, r.judge_first, r.judge_last,
                     (r.judge_last - r.judge_first) if r.steps_seen >= 2 else None, int(r.first_step),
                     int(r.last_step), int(r.steps_seen), getattr(r, "quadrant", None) or "—"])
    return pg.table(["prompt", "rollouts", "judge", "NDCG", "final", "judge first", "judge last", "change",
                     "first step", "last step", "steps", "quadrant"], rows, nums=set(range(1, 11)), name="prompts",
                    caption=f"{MAX_PROMPT_ROWS:,} of {len(lr.prompts):,} prompts (most rollouts first); all in --json"
                    if cut else "")


def _title(rep: Report) -> str:
    if rep.logs:
        return Path(rep.logs[0].path).name + (f" +{len(rep.logs) - 1}" if len(rep.logs) > 1 else "")
    return Path(rep.inputs[0].path).name if rep.inputs else "inputs"


def write_html(rep: Report, figures: list[Figure], path: Path, run: dict[str, Any] | None = None) -> None:
    """Write the page atomically; a directory or unwritable place is named as the user gave it."""
    if path.is_dir():
        raise InputError("is a directory", where=str(path), expected="a file name for the page, e.g. "
                         f"{path / 'report.html'}")
    text = page(rep, figures, run)
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise InputError(f"cannot write the page: {exc.strerror or exc}", where=str(path),
                         expected="a writable file path") from None
