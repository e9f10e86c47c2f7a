"""``--html FILE``: one self-contained page (tables + figures inlined as base64 PNG).

WHY self-contained: the page is mailed around or opened from a cluster's home directory;
it must not reference files next to it. The tables are the same ones the terminal shows,
exported by rich as HTML with inline styles, so the two can never disagree.
"""

from __future__ import annotations

import base64
import html as _html
import io
from pathlib import Path

from rich.console import Console

from ddai.atomic import atomic_write_text
from ddai.report.model import Report
from ddai.report.plots import Figure
from ddai.report.render_terminal import render


def page(rep: Report, figures: list[Figure]) -> str:
    con = Console(file=io.StringIO(), record=True, width=120, color_system="truecolor", force_terminal=True)
    render(rep, con)
    tables = con.export_html(inline_styles=True, code_format="<pre style=\"font-family:monospace\">{code}</pre>")
    found = "".join(f"<li><code>{_html.escape(f.path)}</code>: {_html.escape(f.describe())}</li>"
                    for f in rep.inputs)
    imgs = "".join(
        f'<figure><img alt="{_html.escape(f.title)}" src="data:image/png;base64,'
        f'{base64.b64encode(f.png).decode()}"><figcaption>{_html.escape(f.title)}</figcaption></figure>'
        for f in figures)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ddai report</title>
<style>body{{font-family:sans-serif;margin:1.5em;max-width:1300px}} figure{{margin:1em 0}}
img{{max-width:100%;border:1px solid #ddd}} figcaption{{color:#555;font-size:90%}}</style></head>
<body><h1>ddai report</h1><h2>Inputs</h2><ul>{found}</ul>
<h2>Tables</h2>{tables}<h2>Figures</h2>{imgs}</body></html>
"""


def write_html(rep: Report, figures: list[Figure], path: Path) -> None:
    atomic_write_text(path, page(rep, figures))
