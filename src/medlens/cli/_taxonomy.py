"""``medlens taxonomy list | show NAME | validate FILE``."""

from __future__ import annotations

import typer

from medlens.cli._common import console, emit_json

app = typer.Typer(help="Built-in and user taxonomies.", no_args_is_help=True)


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout.")) -> None:
    """List the built-in taxonomies.

    Example: medlens taxonomy list --json
    """
    from medlens.taxonomy import taxonomy_list_document

    doc = taxonomy_list_document()
    if as_json:
        emit_json(doc)
        return
    from rich.table import Table

    t = Table("name", "extra", "description")
    for it in doc["taxonomies"]:
        t.add_row(it["name"], it.get("extra") or "-", it["description"])
    console().print(t)


def _tree_lines(tax, max_lines: int) -> list[str]:
    lines: list[str] = []

    def walk(node: str, prefix: str, last: bool, top: bool) -> None:
        if len(lines) >= max_lines:
            return
        label = node if not tax.labels.get(node) or tax.labels[node][0] == node else f"{node}  ({tax.labels[node][0]})"
        lines.append(label if top else f"{prefix}{'└── ' if last else '├── '}{label}")
        kids = tax.children(node)
        for i, c in enumerate(kids):
            walk(c, "" if top else prefix + ("    " if last else "│   "), i == len(kids) - 1, False)

    walk(tax.root, "", True, True)
    return lines


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Built-in name or path to a .json/.yaml/.obo file."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary and definition as JSON."),
    max_lines: int = typer.Option(200, min=1, help="Truncate the printed tree after this many lines."),
) -> None:
    """Show a taxonomy's summary and tree.

    Example: medlens taxonomy show cxr_anatomic_v1
    """
    if as_json:
        from medlens.taxonomy import taxonomy_show_document

        emit_json(taxonomy_show_document(name))
        return
    from medlens.taxonomy import load_taxonomy

    tax = load_taxonomy(name)
    c = console()
    s = tax.summary()
    c.print(
        f"[bold]{s['name']}[/bold] version {s['version']}: {s['n_nodes']} nodes, {s['n_leaves']} leaves, "
        f"height {s['height']}, {'tree' if s['is_tree'] else 'DAG'}"
    )
    for line in _tree_lines(tax, max_lines):
        c.print(line, markup=False)
    if len(tax) > max_lines:
        c.print(f"... ({len(tax) - max_lines} more nodes; use --max-lines)")


@app.command("validate")
def validate(
    file: str = typer.Argument(..., help="Taxonomy file (.json, .yaml or .obo)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Check a taxonomy file (one root, no cycles, known nodes in labels and prompts); exit 2 if invalid.

    Example: medlens taxonomy validate my_tree.yaml
    """
    from medlens.taxonomy import taxonomy_validate_document

    s = taxonomy_validate_document(file)
    if as_json:
        emit_json(s)
    else:
        console().print(
            f"{file}: valid ({s['n_nodes']} nodes, height {s['height']}, {'tree' if s['is_tree'] else 'DAG'})",
            markup=False,
        )
