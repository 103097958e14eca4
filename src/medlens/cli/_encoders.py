"""``medlens encoders list`` and ``medlens encode``: the registered encoders, and features for texts or images."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import (
    console,
    emit_json,
    executor_option,
    progress_enabled,
    ray_address_option,
    workers_option,
)

app = typer.Typer(
    help="Text and image encoders (loaded offline from the local cache or a folder).", no_args_is_help=True
)


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout.")) -> None:
    """List the registered encoders and whether their weights are available locally (nothing is loaded).

    Example: medlens encoders list --json
    """
    from medlens.encoders import encoders_list_document

    doc = encoders_list_document()
    if as_json:
        emit_json(doc)
        return
    c = console()
    for line in encoders_lines(doc):
        c.print(line, markup=False, highlight=False)


def encoders_lines(doc: dict) -> list[str]:
    """What ``encoders list`` prints: one aligned line per encoder, then its hub id whole on the next line.

    The hub id is the string users copy (``hf download <hub id>``): it gets a line of its own, which a narrow
    terminal wraps rather than a table cell cutting it at 80 columns.
    """
    head = ("name", "family", "modality", "local", "licence")
    rows = [
        (r["name"], r["family"], r["modality"], "yes" if r["available"] else "no", r["license"])
        for r in doc["encoders"]
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=False)]

    def fmt(cells) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    lines = [f"Hugging Face cache: {doc['hf_cache']}", fmt(head), "    source (the hub id)"]
    for r, row in zip(doc["encoders"], rows, strict=True):
        lines += [fmt(row), f"    {r['source']}"]
    return lines


def encode(
    encoder: str = typer.Option(
        ..., "--encoder", "-e", help="Registered name (medlens encoders list) or model folder."
    ),
    images: Path | None = typer.Option(None, "--images", help="Folder of images (ids = paths relative to it)."),
    texts: Path | None = typer.Option(None, "--texts", help=".txt (one text per line) or .csv/.jsonl with id,text."),
    out: Path = typer.Option(..., "--out", help="FEATS.npy to write (float32, n x dim) with FEATS.ids.txt beside it."),
    batch_size: int = typer.Option(32, "--batch-size", max=65536, help="Batch size."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | auto."),
    dtype: str = typer.Option("float32", "--dtype", help="float32 | bfloat16 | float16 (float16 needs CUDA)."),
    no_normalize: bool = typer.Option(False, "--no-normalize", help="Keep the raw feature lengths (no L2 norm)."),
    executor: str = executor_option(),
    ray_address: str | None = ray_address_option(),
    workers: int | None = workers_option(),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Embed a folder of images or a file of texts with one encoder; write FEATS.npy and FEATS.ids.txt.

    Weights come from a local folder or the local Hugging Face cache; nothing is downloaded.

    With --executor ray the same blocks of batches run on Ray actors (one model each): equal features.

    Example: medlens encode --encoder minilm --texts findings.txt --out findings.npy --json
    """
    from medlens.encoders import run_encode

    doc = run_encode(
        encoder,
        out,
        images=images,
        texts=texts,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        normalize=not no_normalize,
        progress=progress_enabled(as_json),
        executor=executor,
        ray_address=ray_address,
        workers=workers,
    )
    if as_json:
        emit_json(doc)
        return
    console().print(
        f"wrote {doc['features']} ({doc['n']} x {doc['dim']}, {doc['encoder']['name']}) and {Path(doc['ids']).name} "
        f"in {doc['timing']['encode_s']:.1f} s ({doc['timing']['items_per_s']} {doc['modality']}s/s)",
        markup=False,
    )
