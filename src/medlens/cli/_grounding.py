"""``medlens ground kb list | show [NAME] | validate FILE`` (finding knowledge bases) and ``medlens ground
ceiling`` (the human ceiling of grounding)."""

from __future__ import annotations

import typer

from medlens.cli._common import console, emit_json

app = typer.Typer(help="Knowledge-decomposed abnormality grounding (K2Sight).", no_args_is_help=True)
kb_app = typer.Typer(help="Finding knowledge bases: list, show, validate.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")


@kb_app.command("list")
def kb_list(as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout.")) -> None:
    """List the built-in finding knowledge bases.

    Example: medlens ground kb list --json
    """
    from medlens.grounding import knowledge_list_document

    doc = knowledge_list_document()
    if as_json:
        emit_json(doc)
        return
    from rich.table import Table

    t = Table("name", "version", "dataset", "findings", "seen", "unseen", "with box statistics")
    for k in doc["knowledge_bases"]:
        t.add_row(
            k["name"], k["version"], k["dataset"], str(k["n_findings"]), str(k["n_seen"]), str(k["n_unseen"]),
            str(k["n_with_box_statistics"]),
        )  # fmt: skip
    console().print(t)


@kb_app.command("show")
def kb_show(
    name: str = typer.Argument("vindr-cxr", help="Built-in name (vindr-cxr, padchest-gr) or a YAML file."),
    finding: str = typer.Option(None, "--finding", help="Show one finding and its prompt in every mode."),
    attributes: str = typer.Option(
        None, "--attributes", help="Attribute subset of the 'attributes' prompt, e.g. shape,location."
    ),
    measured: bool = typer.Option(
        False, "--measured", help="Add size/location measured on the NIH and VinDr boxes (needs medlens\\[data])."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Show a knowledge base, or one finding with its rendered prompts.

    Example: medlens ground kb show vindr-cxr --finding pneumothorax --attributes shape,location
    """
    from medlens.grounding import knowledge_show_document

    doc = knowledge_show_document(name, finding=finding, attributes=attributes, measured=measured)
    if as_json:
        emit_json(doc)
        return
    c = console()
    if finding is None:
        c.print(
            f"{doc['name']} {doc['version']} ({doc['dataset']}): {doc['n_findings']} findings, "
            f"{doc['n_seen']} seen, {doc['n_unseen']} unseen",
            markup=False,
        )
        for f in doc["findings"]:
            c.print(f"  {f['name']} [{f['split']}]: {f['definition']}", markup=False)
        return
    f = doc["finding"]
    c.print(f"{f['name']} [{f['split']}] in {doc['knowledge']}", markup=False)
    for mode, text in doc["prompts"].items():
        c.print(f"  {mode}: {text}", markup=False)


@kb_app.command("validate")
def kb_validate(
    file: str = typer.Argument(..., help="Knowledge base YAML file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Check a knowledge base file (fields, attributes, splits, unique names, box-table labels); exit 2 if invalid.

    Example: medlens ground kb validate my_findings.yaml
    """
    from medlens.grounding import knowledge_validate_document

    doc = knowledge_validate_document(file)
    if as_json:
        emit_json(doc)
    else:
        console().print(f"{file}: valid ({doc['n_findings']} findings, version {doc['version']})", markup=False)


@app.command("ceiling")
def ceiling(
    truth: str = typer.Option("vindr", "--truth", help="'vindr' (the shipped VinDr-CXR training boxes) or a CSV."),
    iou: float = typer.Option(0.55, "--iou", help="Fusion IoU: boxes of the other readers join above it."),
    min_readers: int = typer.Option(1, "--min-readers", help="Keep fused boxes marked by at least this many."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Each reader against the weighted box fusion of the image's other readers (F1@0.5, mean best IoU).

    Example: medlens ground ceiling --truth vindr --json
    """
    from medlens.grounding import ceiling_document

    doc = ceiling_document(truth, iou=iou, min_readers=min_readers)
    if as_json:
        emit_json(doc)
        return
    from rich.table import Table

    t = Table("finding", "queries with gold", "P@0.5", "R@0.5", "F1@0.5", "mean best IoU", "hallucination")
    rows = {**doc["by_finding"], "all": doc["overall"]}
    for f, v in rows.items():
        t.add_row(f, str(v["n_positive"]), *(f"{v[k]:.3f}" if v[k] is not None else "-"
                                              for k in ("precision50", "recall50", "f1_50", "miou",
                                                        "hallucination_rate")))  # fmt: skip
    console().print(t)
