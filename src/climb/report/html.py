"""The self-contained HTML page: inline CSS, PNG figures embedded as base64, no external URLs."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from typing import Any

import numpy as np

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto;
       max-width: 1200px; color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f2f2f2; }
tr.best td { font-weight: bold; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
.verdict { padding: 0.6em 1em; border-left: 4px solid #888; background: #f7f7f7; }
.verdict.win { border-color: #2ca02c; } .verdict.lose { border-color: #d62728; }
.verdict.tie { border-color: #7f7f7f; }
.note { font-size: 0.85em; color: #555; }
code { background: #f4f4f4; padding: 0 3px; }
"""


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def fmt(x: Any, digits: int = 4) -> str:
    if isinstance(x, int | np.integer) and not isinstance(x, bool):
        return str(int(x))
    if isinstance(x, float | np.floating):
        v = float(x)
        if v != v:  # NaN
            return "–"
        if v == int(v) and abs(v) >= 1e5:
            return f"{v:.4g}"
        return f"{v:.{digits}f}" if abs(v) < 1e4 else f"{v:.4g}"
    return esc(x)


def table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], *, best_row: int | None = None
) -> str:
    out = ["<table>", "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"]
    for k, row in enumerate(rows):
        cls = ' class="best"' if best_row is not None and k == best_row else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{fmt(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def figure(png: bytes, alt: str, caption: str, name: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure id="fig-{esc(name)}"><img alt="{esc(alt)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{esc(caption)} (file: <code>{esc(name)}.png</code>)</figcaption></figure>"
    )


def page(title: str, sections: Sequence[tuple[str, str]], *, subtitle: str = "") -> str:
    body = [f"<h1>{esc(title)}</h1>"]
    if subtitle:
        body.append(f'<p class="note">{esc(subtitle)}</p>')
    for heading, content in sections:
        body.append(f"<h2>{esc(heading)}</h2>\n{content}")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
