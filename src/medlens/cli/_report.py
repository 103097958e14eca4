"""``medlens report``: render the HTML report of a run folder from its ``metrics.json`` files."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from medlens._validation import InputError
from medlens.cli._common import console, emit_json


def build_report(run_dir: Path, out: Path) -> dict:
    """Collect ``*/metrics.json`` under ``run_dir`` and write one HTML report with a section per benchmark."""
    from medlens.benchmarks import BENCHMARKS
    from medlens.report import write_report

    run_dir = Path(run_dir)
    files = sorted(run_dir.glob("*/metrics.json"))
    if not files:
        raise InputError(f"{run_dir} holds no */metrics.json; run `medlens demo --out {run_dir}` first.")
    sections, names = [], []
    for f in files:
        metrics = json.loads(f.read_text(encoding="utf-8"))
        name = metrics.get("benchmark")
        if name not in BENCHMARKS:
            continue
        sections.append(BENCHMARKS.get(name).report_section(metrics))
        names.append(name)
    write_report(out, "medlens report", sections, subtitle=f"run folder {run_dir}")
    return {"report": str(out), "sections": names}


def report(
    run: Path = typer.Option(Path("runs/demo"), "--run", help="Run folder holding <benchmark>/metrics.json."),
    out: Path | None = typer.Option(None, "--out", help="HTML file to write (default RUN/report.html)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Render the HTML report (tables, risk–coverage plot, branch confusion) of a run folder.

    Example: medlens report --run runs/demo --out runs/demo/report.html
    """
    info = build_report(run, out or Path(run) / "report.html")
    if as_json:
        from medlens._provenance import provenance, stamp

        emit_json(stamp(info, provenance(command="report", config={"run": str(run)})))
    else:
        console().print(f"wrote {info['report']} ({', '.join(info['sections'])})", markup=False)
