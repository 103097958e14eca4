"""A self-contained HTML report: sections with tables and inline PNG figures (no external assets)."""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medlens.io import atomic_write_text

__all__ = ["Section", "render_report", "table_html", "figure_html", "write_report"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;color:#222;
line-height:1.45;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}th,td{border:1px solid #ddd;padding:.3em .6em;
text-align:right}th{background:#f5f5f5}td:first-child,th:first-child{text-align:left}
.note{color:#555;font-size:.9em}.warn{color:#a40}.fig{margin:1em 0}figcaption{font-size:.85em;color:#555}
code{background:#f3f3f3;padding:0 .25em;border-radius:3px}
"""


@dataclass
class Section:
    """One section of the report (each benchmark contributes one)."""

    title: str
    body: list[str] = field(default_factory=list)

    def add(self, fragment: str) -> Section:
        self.body.append(fragment)
        return self

    def paragraph(self, text: str, cls: str | None = None) -> Section:
        c = f' class="{cls}"' if cls else ""
        return self.add(f"<p{c}>{html.escape(text)}</p>")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if v != v else f"{v:.4f}"
    if v is None:
        return "–"
    return html.escape(str(v))


def table_html(header: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None = None) -> str:
    """An HTML table; floats are shown with 4 decimals."""
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure_html(fig: Any, caption: str) -> str:
    """Embed a matplotlib figure as a base64 PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    data = base64.b64encode(buf.getvalue()).decode()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return (
        f'<figure class="fig"><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}"/>'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def render_report(title: str, sections: Sequence[Section], *, subtitle: str | None = None) -> str:
    """The full HTML document."""
    from medlens import __version__

    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
    ]
    parts.append(f"<p class='note'>medlens {__version__}{' · ' + html.escape(subtitle) if subtitle else ''}</p>")
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        parts.extend(s.body)
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: str | os.PathLike, title: str, sections: Sequence[Section], **kw: Any) -> Path:
    """Render and write the report atomically."""
    return atomic_write_text(path, render_report(title, sections, **kw))
