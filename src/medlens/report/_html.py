"""A self-contained HTML report: sections with tables and inline PNG figures (no external assets).

The page loads nothing from elsewhere: a Content-Security-Policy meta tag allows only inline styles and
``data:`` images, so a stray external URL shows up as a console error in the browser check.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medlens.io import atomic_write_text

__all__ = ["CAE_DEFINITION", "Section", "render_report", "table_html", "figure_html", "write_report", "yes_no"]

CAE_DEFINITION: tuple[str, ...] = (
    "A Catastrophic Abstraction Error (CAE) is a mistake that crosses the taxonomy's top-level branches: "
    "a predicted finding whose branch at depth k (the branch depth, 1 = the top level) holds none of the "
    "true findings.",
    "A mistake inside the right branch is an ordinary error, and abstaining (predicting nothing) is never a "
    "CAE: it lowers coverage instead.",
    "Example (cxr_anatomic_v1, k = 1): Pneumothorax (Pleura) read as Cardiomegaly (Cardiomediastinal) is a CAE; "
    "Pneumonia read as Lung Opacity (both Lung) is an error but not a CAE.",
)
"""Three lines that define CAE, with an example; the report opens with them (the README does too)."""

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;color:#222;
line-height:1.45;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}th,td{border:1px solid #ddd;padding:.3em .6em;
text-align:left;vertical-align:top}th{background:#f5f5f5}td.num{text-align:right;white-space:nowrap}
.note{color:#555;font-size:.9em}.warn{color:#a40}.fig{margin:1em 0}figcaption{font-size:.85em;color:#555}
code{background:#f3f3f3;padding:0 .25em;border-radius:3px}
img{max-width:100%;height:auto}.wide{overflow-x:auto}.box{background:#f7f9fc;border:1px solid #dde4ee;
padding:.4em 1em;border-radius:4px;margin:1em 0}.used{font-size:.92em}.prov td,.prov th{font-size:.85em}
"""


@dataclass
class Section:
    """One section of the report (each benchmark contributes one).

    ``data`` and ``model`` say what the section's numbers come from; they open the section, so every section
    names them (``None`` prints "not recorded"). ``name`` (the benchmark) becomes the section's ``id``.
    """

    title: str
    body: list[str] = field(default_factory=list)
    data: str | None = None
    model: str | None = None
    name: str | None = None

    def add(self, fragment: str) -> Section:
        self.body.append(fragment)
        return self

    def paragraph(self, text: str, cls: str | None = None) -> Section:
        c = f' class="{cls}"' if cls else ""
        return self.add(f"<p{c}>{html.escape(text)}</p>")


def yes_no(v: bool | None) -> str:
    """The one style for booleans in reports and console lines: ``yes`` / ``no`` (``–`` for ``None``)."""
    return "–" if v is None else "yes" if v else "no"


def _fmt(v: Any) -> str:
    if isinstance(v, bool | np.bool_):
        return yes_no(bool(v))
    if isinstance(v, float):
        return "nan" if v != v else f"{v:.4f}"
    if v is None:
        return "–"
    return html.escape(str(v))


_NUMBER = re.compile(r"[-+−]?(\d[\d,]*\.?\d*|nan|–)(\s*[±–]\s*\d[\d.,]*)?(\s*\[[-\d., ]+\])?")


def _cell(v: Any) -> str:
    """A table cell: numbers (and "0.1 ± 0.02", "0.3 [0.2, 0.4]") right-aligned, text left-aligned."""
    text = _fmt(v)
    numeric = (isinstance(v, int | float | np.number) and not isinstance(v, bool | np.bool_)) or (
        isinstance(v, str) and _NUMBER.fullmatch(v.strip()) is not None
    )
    return f"<td class='num'>{text}</td>" if numeric else f"<td>{text}</td>"


def table_html(header: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None = None) -> str:
    """An HTML table; floats are shown with 4 decimals, numbers right-aligned and text left-aligned."""
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in r) + "</tr>" for r in rows)
    return f"<div class='wide'><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


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


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "section"


def _short(value: str) -> str:
    """A hex digest cut to 12 characters (the whole one is in the cell's title); anything else, such as a
    generator version ``brain-anomaly-v1``, whole."""
    is_hex = len(value) > 12 and all(c in "0123456789abcdef" for c in value.lower())
    return value[:12] if is_hex else value


def _header(provenance: Sequence[dict[str, Any]]) -> str:
    """The provenance table: one row per benchmark run (version, config hash, seed, data hashes, models, date)."""
    rows = []
    for p in provenance:
        data = p.get("data_hashes") or {}
        hashes = "<br>".join(
            f"{html.escape(k)} <code title='{html.escape(str(v))}'>{html.escape(_short(str(v)))}</code>"
            for k, v in data.items()
        )
        models = "<br>".join(f"{html.escape(k)}: {html.escape(str(v))}" for k, v in (p.get("models") or {}).items())
        ch = str(p.get("config_hash") or "")
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{c}</td>"
                for c in (
                    html.escape(str(p.get("benchmark", ""))),
                    html.escape(str(p.get("medlens_version") or "–")),
                    f"<code title='{html.escape(ch)}'>{html.escape(ch[:12])}</code>" if ch else "–",
                    _fmt(p.get("seed")),
                    hashes or "–",
                    models or "–",
                    html.escape(str(p.get("date") or "–")),
                )
            )
            + "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>" for h in ("run", "medlens", "config hash", "seed", "data (sha256)", "models", "written (UTC)")
    )
    return (
        "<div class='wide'><table class='prov'><caption>Provenance (from each run's metrics.json; hover a hash for "
        f"all of it)</caption><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def render_report(
    title: str,
    sections: Sequence[Section],
    *,
    subtitle: str | None = None,
    provenance: Sequence[dict[str, Any]] | None = None,
    notes: Sequence[str] | None = None,
    definitions: Sequence[str] | None = CAE_DEFINITION,
    generated: str | None = None,
) -> str:
    """The full HTML document.

    It opens with ``definitions`` (default: :data:`CAE_DEFINITION`), then ``notes`` (one-line readings of the
    results, e.g. why a test CAE above α does not break CRC's guarantee), then the ``provenance`` table (one
    dict per run: ``benchmark``, ``medlens_version``, ``config_hash``, ``seed``, ``data_hashes``, ``models``,
    ``date``), then a contents list and the sections. ``generated`` is the date printed under the title.
    """
    from medlens import __version__

    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<header id='report-header'><h1>{html.escape(title)}</h1>",
    ]
    meta = [f"medlens {__version__}"]
    if generated:
        meta.append(f"generated {html.escape(generated)}")
    if subtitle:
        meta.append(html.escape(subtitle))
    parts.append(f"<p class='note'>{' · '.join(meta)}</p>")
    if definitions:
        parts.append(
            "<div class='box' id='definitions'><b>Reading the numbers.</b>"
            + "".join(f"<p>{html.escape(line)}</p>" for line in definitions)
            + "</div>"
        )
    if notes:
        parts.append(
            "<div class='box' id='notes'><b>What the results mean.</b><ul>"
            + "".join(f"<li>{html.escape(n)}</li>" for n in notes)
            + "</ul></div>"
        )
    if provenance:
        parts.append(_header(provenance))
    ids: list[str] = []
    for s in sections:  # unique ids: a second section of the same benchmark gets "-2"
        base = s.name or _slug(s.title)
        sid, i = base, 1
        while sid in ids:
            i += 1
            sid = f"{base}-{i}"
        ids.append(sid)
    if len(sections) > 1:
        parts.append(
            "<nav><ul>"
            + "".join(
                f"<li><a href='#{html.escape(i)}'>{html.escape(s.title)}</a></li>"
                for i, s in zip(ids, sections, strict=True)
            )
            + "</ul></nav>"
        )
    parts.append("</header>")
    for sid, s in zip(ids, sections, strict=True):
        parts.append(f"<section id='{html.escape(sid)}' class='bench'><h2>{html.escape(s.title)}</h2>")
        parts.append(
            f"<p class='used'><b>Data:</b> {html.escape(s.data or 'not recorded')}<br>"
            f"<b>Model:</b> {html.escape(s.model or 'not recorded')}</p>"
        )
        parts.extend(s.body)
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: str | os.PathLike, title: str, sections: Sequence[Section], **kw: Any) -> Path:
    """Render and write the report atomically."""
    return atomic_write_text(path, render_report(title, sections, **kw))
