"""``medlens hier finetune`` and ``medlens hier score``: taxonomy-aware fine-tuning of an encoder, and scoring."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from medlens.cli._common import console, emit_json, progress_enabled

TAXONOMY_OPT = typer.Option("cxr_anatomic_v1", "--taxonomy", "-t", help="Built-in name or taxonomy file.")


def finetune(
    encoder: str = typer.Option("minilm", "--encoder", "-e", help="Registered encoder name or a local model folder."),
    data: Path = typer.Option(
        ..., "--data", help="Truth CSV (id,label or 0/1 node columns) plus a text or image column."
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
    with the same weights as an uninterrupted one.

    Example: medlens hier finetune --encoder minilm --data train.csv --taxonomy cxr_anatomic_v1 --loss radial
    --epochs 5 --out runs/ft
    """
    from medlens._provenance import provenance, stamp
    from medlens.encoders import load_encoder
    from medlens.hierarchy.finetune import LOSSES, FinetuneConfig, LossConfig, finetune, read_training_table
    from medlens.taxonomy import load_taxonomy

    if loss not in LOSSES:
        from medlens._validation import InputError

        raise InputError(f"unknown --loss {loss!r}; expected radial, hxe, soft or bce.")
    tax = load_taxonomy(taxonomy)
    config = FinetuneConfig(
        loss=LossConfig(name=loss, hxe_alpha=hxe_alpha, soft_beta=soft_beta),
        mode=mode,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        head_lr=head_lr,
        branch_depth=branch_depth,
        seed=seed,
    )
    table = read_training_table(data, tax)
    val_pair = None
    if val is not None:
        v = read_training_table(val, tax, what="validation data")
        val_pair = (v.inputs, v.labels)
    kw = {"device": device}
    if table.modality == "text":
        kw["max_length"] = max_length
    enc = load_encoder(encoder, **kw)
    t0 = time.perf_counter()
    r = finetune(
        enc,
        tax,
        table.inputs,
        table.labels,
        config=config,
        out_dir=out,
        resume=resume,
        overwrite=overwrite,
        progress=progress_enabled(as_json),
        val=val_pair,
        modality=table.modality,
    )
    summary = {
        "out": str(out),
        "n": len(table.ids),
        "modality": table.modality,
        "epochs": config.epochs,
        "resumed_from_epoch": r.resumed_from,
        "history": r.history,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if as_json:
        emit_json(
            stamp(
                summary,
                provenance(
                    command="hier finetune",
                    config=config.to_dict(),
                    seed=seed,
                    inputs={"data": data},
                    taxonomy=tax,
                    models={"encoder": enc.model_id},
                ),
            )
        )
        return
    c = console()
    for h in r.history:
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
    from medlens._provenance import provenance, stamp
    from medlens._validation import InputError
    from medlens.hierarchy import write_score_table
    from medlens.hierarchy.finetune import load_finetuned
    from medlens.io import list_images, read_texts

    if (texts is None) == (images is None):
        raise InputError("give exactly one of --texts FILE or --images DIR.")
    fm = load_finetuned(model_path, device=device)
    if texts is not None:
        ids, inputs = read_texts(texts)
    else:
        ids, inputs = list_images(images)
    probs = fm.predict_proba(inputs, batch_size=batch_size, progress=progress_enabled(as_json))
    write_score_table(out, ids, list(fm.taxonomy.nodes[1:]), probs[:, 1:])
    summary = {"out": str(out), "n": len(ids), "nodes": len(fm.taxonomy) - 1, "probability": fm.probability}
    if as_json:
        emit_json(
            stamp(
                summary,
                provenance(
                    command="hier score",
                    config={"model": str(model_path), "batch_size": batch_size},
                    inputs={"texts": texts} if texts is not None else {},
                    taxonomy=fm.taxonomy,
                    models={"encoder": fm.encoder.model_id, "finetuned": str(model_path)},
                ),
            )
        )
        return
    console().print(f"wrote {len(ids)} rows to {out}", markup=False)
