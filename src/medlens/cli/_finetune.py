"""``medlens hier finetune`` and ``medlens hier score``: taxonomy-aware fine-tuning of an encoder, and scoring."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, emit_json, progress_enabled

TAXONOMY_OPT = typer.Option("cxr_anatomic_v1", "--taxonomy", "-t", help="Built-in name or taxonomy file.")


def finetune(
    encoder: str = typer.Option("minilm", "--encoder", "-e", help="Registered encoder name or a local model folder."),
    data: Path = typer.Option(
        ...,
        "--data",
        help="Training CSV: id, the truth (label, or one 0/1 column per node) and one input column, 'text' (the "
        "input text) or 'image' (an image path, relative to the CSV's folder).",
    ),
    taxonomy: str = TAXONOMY_OPT,
    loss: str = typer.Option("radial", "--loss", help="radial | hxe | soft | bce."),
    epochs: int = typer.Option(5, "--epochs", help="Training epochs."),
    out: Path = typer.Option(
        ..., "--out", help="Run folder: checkpoint.safetensors, history.jsonl, model.safetensors, finetune.json."
    ),
    mode: str = typer.Option("last-block", "--mode", help="head | last-block | lora | full."),
    batch_size: int = typer.Option(32, "--batch-size", max=65536, help="Batch size."),
    lr: float = typer.Option(5e-5, "--lr", help="Learning rate of the encoder parameters."),
    head_lr: float = typer.Option(1e-3, "--head-lr", help="Learning rate of the projection heads."),
    max_length: int = typer.Option(128, "--max-length", help="Truncate texts to this many tokens."),
    hxe_alpha: float = typer.Option(0.1, "--hxe-alpha", help="HXE decay α (0 = cross-entropy)."),
    soft_beta: float = typer.Option(10.0, "--soft-beta", help="Soft-label hardness β."),
    branch_depth: int = typer.Option(1, "--branch-depth", "-k", help="Depth of the branches (cross-branch margin)."),
    val: Path | None = typer.Option(None, "--val", help="Validation CSV in the same format, evaluated every epoch."),
    seed: int = typer.Option(
        0, "--seed", min=0, max=2**32 - 1, help="Seed of the initialisation, batch order and dropout."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | auto."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the folder's last checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Discard a run of another configuration in --out."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Fine-tune an encoder with a taxonomy-aware loss (radial embeddings, HXE, soft labels or BCE).

    A checkpoint is written atomically after every epoch; --resume continues an interrupted run and ends
    with the same weights as an uninterrupted one. Rerunning into a folder that holds a finished fine-tune says
    so before any model loads (score it with `medlens hier score --model-path OUT`; --overwrite trains again).

    Example: medlens hier finetune --encoder minilm --data train.csv --taxonomy cxr_anatomic_v1 --loss radial
    --epochs 5 --out runs/ft
    """
    from medlens.hierarchy.finetune import run_finetune

    doc = run_finetune(
        encoder,
        data,
        taxonomy,
        out,
        loss=loss,
        epochs=epochs,
        mode=mode,
        batch_size=batch_size,
        lr=lr,
        head_lr=head_lr,
        max_length=max_length,
        hxe_alpha=hxe_alpha,
        soft_beta=soft_beta,
        branch_depth=branch_depth,
        val=val,
        seed=seed,
        device=device,
        resume=resume,
        overwrite=overwrite,
        progress=progress_enabled(as_json),
    )
    if as_json:
        emit_json(doc)
        return
    c = console()
    for h in doc["history"]:
        extra = "".join(f", {k[4:]} {h[k]:.4f}" for k in ("val_hF", "val_cae_rate") if h.get(k) is not None)
        c.print(f"epoch {h['epoch']}: loss {h['train_loss']:.4f}{extra} ({h['seconds']:.1f} s)", markup=False)
    c.print(f"model: {out / 'model.safetensors'}", markup=False)


def score(
    model_path: Path = typer.Option(..., "--model-path", help="A folder written by `medlens hier finetune`."),
    texts: Path | None = typer.Option(None, "--texts", help="A .txt (one per line) or .csv/.jsonl with id,text."),
    images: Path | None = typer.Option(None, "--images", help="A folder of images (ids = relative paths)."),
    out: Path = typer.Option(..., "--out", help="Scores CSV (id + one probability column per node)."),
    batch_size: int = typer.Option(64, "--batch-size", max=65536, help="Batch size."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | auto."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Score texts or images with a fine-tuned model → node probabilities in the scores CSV format.

    Example: medlens hier score --model-path runs/ft --texts reports.csv --out scores.csv
    """
    from medlens.hierarchy.finetune import run_score

    doc = run_score(
        model_path,
        out,
        texts=texts,
        images=images,
        batch_size=batch_size,
        device=device,
        progress=progress_enabled(as_json),
    )
    if as_json:
        emit_json(doc)
        return
    console().print(f"wrote {doc['n']} rows to {out}", markup=False)
