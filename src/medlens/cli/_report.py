"""``medlens report``: render the HTML report of a run folder from its ``metrics.json`` files."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, emit_json


def report(
    run: Path = typer.Option(Path("runs/demo"), "--run", help="Run folder holding <benchmark>/metrics.json."),
    out: Path | None = typer.Option(None, "--out", help="HTML file to write (default RUN/report.html)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Render the HTML report (tables, risk–coverage plot, branch confusion) of a run folder.

    Example: medlens report --run runs/demo --out runs/demo/report.html
    """
    from medlens.benchmarks import report_document

    info = report_document(run, out)
    if as_json:
        emit_json(info)
    else:
        console().print(f"wrote {info['report']} ({', '.join(info['sections'])})", markup=False)
