"""``medlens bench``: list the registered benchmarks and run any of them by name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from medlens._validation import InputError
from medlens.cli._common import console, emit_json, print_sections, progress_enabled

app = typer.Typer(
    help="Registered benchmarks: list them, run one by name.\n\nExample: medlens bench run rare-hpo --out runs/rare-hpo",
    no_args_is_help=True,
)


def _parse_sets(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; a VALUE that reads as JSON (numbers, true/false, null, lists) is decoded, else a string."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise InputError(f"--set {item!r}: expected KEY=VALUE, e.g. --set n=50.")
        if key in out:
            raise InputError(f"--set {key} is given twice; give each option once.")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


@app.command("list")
def list_cmd(as_json: bool = typer.Option(False, "--json", help="Print a JSON document on stdout.")) -> None:
    """List every registered benchmark, its extras (and which are missing) and its place in `medlens demo`.

    Example: medlens bench list
    """
    from medlens.benchmarks import bench_list_document

    doc = bench_list_document()
    if as_json:
        emit_json(doc)
        return
    rows = doc["benchmarks"]
    c = console()
    for r in rows:
        demo = {"quick": "in `medlens demo`", "full": "in `medlens demo --full`"}.get(r["demo"], "not in the demo")
        missing = f"; missing extras: {', '.join(r['missing_extras'])}" if r["missing_extras"] else ""
        c.print(f"{r['name']:22s} {r['description']}", markup=False)
        c.print(f"{'':22s} extras: {', '.join(r['extras']) or 'none'}{missing}; {demo}", markup=False)


@app.command("run")
def run_cmd(
    name: str = typer.Argument(..., help="Benchmark name (see `medlens bench list`)."),
    out: Path = typer.Option(..., "--out", help="Run folder (metrics.json, manifest.json and the benchmark's files)."),
    seed: int | None = typer.Option(
        None,
        "--seed",
        min=0,
        max=2**32 - 1,
        help="Seed (default: the benchmark's own; refused by one that takes none).",
    ),
    branch_depth: int | None = typer.Option(
        None,
        "--branch-depth",
        "-k",
        help="CAE branch depth (default: the benchmark's own; refused by one that takes none).",
    ),
    sets: list[str] = typer.Option(
        [], "--set", help="A benchmark option as KEY=VALUE (repeatable), e.g. --set n=50 --set alpha=0.05."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run made with another configuration."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Run one registered benchmark into a folder; the same code path as `medlens demo`.

    Example: medlens bench run rare-hpo --out runs/rare-hpo --set n=50
    """
    from medlens.benchmarks import bench_run_document

    shared = {k: v for k, v in {"seed": seed, "branch_depth": branch_depth}.items() if v is not None}
    options = _parse_sets(sets)
    clash = sorted(set(shared) & set(options))
    if clash:
        raise InputError(f"{clash[0]} is given both as a flag and with --set; give it once.")
    doc = bench_run_document(
        name, out, options={**options, **shared}, progress=progress_enabled(as_json), overwrite=overwrite
    )
    print_sections(doc, as_json, footer=f"metrics: {doc[name]['metrics']}")
