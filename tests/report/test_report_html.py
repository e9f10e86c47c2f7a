"""The HTML page's structure, without a browser: headline, navigation, real tables, charts.

(The browser test, test_report_html_browser.py, checks that the tables sort and the charts
render in Chromium with the network off.)
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from ddai.report.cli import main
from ddai.report.html import SECTIONS


class Page(HTMLParser):
    """Ids, nav links, tables (header + rows of cell text) and chart payloads of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.nav: list[str] = []
        self.tables: dict[str, dict[str, list]] = {}
        self.cards: dict[str, str] = {}
        self._stack: list[str] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_head = False
        self._card: list[str] | None = None
        self._card_part: str | None = None
        self.scripts: list[str] = []
        self._script: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "nav" in self._stack:
            self.nav.append(a.get("href", ""))
        if tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = {"head": [], "rows": []}
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "div" and a.get("class") == "card":
            self._card = ["", ""]
        elif tag == "div" and self._card is not None and a.get("class") in ("k", "v", "v long"):
            self._card_part = a["class"][0]
        elif tag == "script":
            self._script = []
        self._stack.append(tag)

    def handle_endtag(self, tag):
        if self._stack:
            self._stack.pop()
        if tag == "script" and self._script is not None:
            self.scripts.append("".join(self._script))
            self._script = None
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            self.tables[self._table]["head" if self._in_head else "rows"].append(self._row)
            self._row = None
        elif tag == "thead":
            self._in_head = False
        elif tag == "table":
            self._table = None
        elif tag == "div" and self._card_part:
            self._card_part = None
        elif tag == "div" and self._card is not None and self._card_part is None and self._card[0]:
            self.cards[self._card[0]] = self._card[1]
            self._card = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._script is not None:
            self._script.append(data)
        if self._card is not None and self._card_part:
            self._card[0 if self._card_part == "k" else 1] += data.strip()


def parse(path: Path) -> Page:
    p = Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def table(p: Page, name: str) -> dict[str, list]:
    hits = [t for tid, t in p.tables.items() if tid.startswith(f"t-{name}-")]
    assert hits, f"no {name} table among {sorted(p.tables)}"
    return hits[0]


def test_page_has_headline_nav_tables_and_charts(hand_log, curriculum_dir, sweep_dir, tmp_path):
    page = tmp_path / "r.html"
    assert main([str(hand_log), str(curriculum_dir), str(sweep_dir), "--html", str(page), "--deciles", "3"]) == 0
    p = parse(page)
    # navigation: one link per section, each section present
    assert p.nav == [f"#{k}" for k, _ in SECTIONS]
    assert {k for k, _ in SECTIONS} <= p.ids
    # headline figures of the hand log: 10 rollouts, 3 prompts, 2 steps, judge mean 0.511 over 9
    assert p.cards["rollouts"] == "10" and p.cards["prompts"] == "3" and p.cards["steps"] == "2"
    assert p.cards["mean judge"] == f"{4.6 / 9:.3f}"
    assert p.cards["error rate"] == "10.0%"
    assert p.cards["cache hits"] == "50.0%"
    assert p.cards["cost so far"] == "$0.88"          # judge 0.75 + generator 0.125
    assert p.cards["cost per step"] == "$0.4375"
    # real tables with the figures of the summary
    steps = table(p, "steps")
    assert steps["head"][0][:3] == ["step", "rollouts", "prompts"]
    assert [r[0] for r in steps["rows"]] == ["1", "2"] and [r[1] for r in steps["rows"]] == ["6", "4"]
    disc = table(p, "discordant")
    assert disc["head"][0][:3] == ["prompt", "direction", "quadrant"]
    assert disc["rows"][0][:3] == ["train_2", "NDCG>judge", "reasoning failure"]
    assert disc["rows"][1][:3] == ["train_1", "judge>NDCG", "solved"]
    sweep = table(p, "sweep")
    assert [r[1] for r in sweep["rows"]] == ["job 0", "job 1", "job 10"]   # no overrides recorded: job names
    assert table(p, "bybucket")["rows"] and table(p, "bydecile")["rows"]
    assert table(p, "prompts")["rows"][0][0] == "train_1"
    # interactive charts: one Plotly.newPlot per chart div, with data
    charts = [s for s in p.scripts if "Plotly.newPlot(" in s and "DOMContentLoaded" in s]
    assert len(charts) >= 7
    names = set()
    for s in charts:
        data = json.loads(re.search(r'Plotly\.newPlot\("[^"]+",(\[.*?\]),\{', s).group(1))
        assert data, s[:200]
        names |= {tr.get("name") for tr in data}
    assert {"judge mean", "ndcg mean", "errors %", "judge", "NDCG", "A (train)"} <= names


def test_rerun_writes_identical_page(hand_log, tmp_path):
    a, b = tmp_path / "a.html", tmp_path / "b.html"
    assert main([str(hand_log), "--html", str(a)]) == 0
    assert main([str(hand_log), "--html", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()


def test_html_into_a_directory_names_the_directory(hand_log, tmp_path, capsys):
    d = tmp_path / "out"
    d.mkdir()
    capsys.readouterr()
    assert main([str(hand_log), "--html", str(d)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(d) in err[0] and "is a directory" in err[0]
    assert ".tmp" not in err[0] and "report.html" in err[0]     # the fix is suggested, no temp file named
    assert list(d.iterdir()) == []


def test_sweep_labelled_by_swept_values(tmp_path):
    from ddai.report.views import bucket_order, swept_labels

    jobs = [{"job": "0", "overrides": ["curriculum.theta1=0.05", "curriculum.sort=frontier", "seed=1"]},
            {"job": "1", "overrides": ["curriculum.theta1=0.1", "curriculum.sort=frontier", "seed=1"]},
            {"job": "2", "overrides": ["curriculum.theta1=0.1", "curriculum.sort=easy_to_hard", "seed=1"]}]
    assert swept_labels(jobs) == {"0": "sort=frontier theta1=0.05", "1": "sort=frontier theta1=0.1",
                                  "2": "sort=easy_to_hard theta1=0.1"}
    # without overrides: the manifests' differing rule settings
    jobs = [{"job": "0", "thresholds": {"theta1": 0.1}}, {"job": "1", "thresholds": {"theta1": 0.2}}]
    assert swept_labels(jobs) == {"0": "theta1=0.1", "1": "theta1=0.2"}
    assert bucket_order(["0", "A", "B", "unmatched"], "A") == ["A", "0", "B", "unmatched"]


def test_discordant_label_is_the_direction():
    """Issue 13: judge 0.74 / NDCG 0.90 is not a reasoning failure (both are high)."""
    import numpy as np
    import pandas as pd

    from ddai.report.logstats import Thresholds
    from ddai.report.quadrants import classify, discordant

    df = pd.DataFrame({"prompt": ["p54", "p1"], "n": [5, 5], "judge_mean": [0.74, 0.9], "ndcg_mean": [0.90, 0.1]})
    df["quadrant"] = classify(df["judge_mean"].to_numpy(), df["ndcg_mean"].to_numpy(), Thresholds())
    rows = {d["prompt"]: d for d in discordant(df, 10)}
    assert rows["p54"]["kind"] == "NDCG>judge" and rows["p54"]["quadrant"] == "solved"
    assert rows["p1"]["kind"] == "judge>NDCG" and rows["p1"]["quadrant"] == "guessing"
    assert np.isclose(rows["p54"]["gap"], -0.16)


def test_hostile_prompt_ids_stay_text(tmp_path, write_jsonl):
    """A prompt id with markup is shown as text in tables and cannot close a chart's script."""
    evil = "</script><img src=x onerror=alert(1)>"
    log = write_jsonl(tmp_path / "e.jsonl", [{"dataset_id": evil, "step": s, "judge_score": 0.9, "ndcg": 0.1}
                                             for s in (1, 2)])
    page = tmp_path / "e.html"
    assert main([str(log), "--html", str(page)]) == 0
    html = page.read_text()
    assert evil not in html
    p = parse(page)
    assert table(p, "prompts")["rows"][0][0] == evil          # the text, intact
    assert "<img src=x" not in html                            # escaped in tables and in chart texts
