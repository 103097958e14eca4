"""Fine-tuning from a training table, and scoring with a fine-tuned model: the pipelines behind ``hier finetune``
and ``hier score``.

Each checks its cheap options before any model loads, runs, and returns its summary stamped with provenance.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from medlens._provenance import provenance, stamp
from medlens._validation import InputError
from medlens.hierarchy._tables import write_node_scores
from medlens.hierarchy.finetune._data import read_training_table
from medlens.hierarchy.finetune._losses import LOSSES, LossConfig
from medlens.hierarchy.finetune._saved import LEGACY, META, MODEL, load_finetuned
from medlens.hierarchy.finetune._setup import FinetuneConfig
from medlens.hierarchy.finetune._train import finetune
from medlens.io import list_images, read_texts
from medlens.taxonomy import Taxonomy, load_taxonomy

__all__ = ["run_finetune", "run_score"]


def run_finetune(
    encoder: str,
    data: str | os.PathLike,
    taxonomy: str | Taxonomy,
    out: str | os.PathLike,
    *,
    loss: str = "radial",
    epochs: int = 5,
    mode: str = "last-block",
    batch_size: int = 32,
    lr: float = 5e-5,
    head_lr: float = 1e-3,
    max_length: int = 128,
    hxe_alpha: float = 0.1,
    soft_beta: float = 10.0,
    branch_depth: int = 1,
    val: str | os.PathLike | None = None,
    seed: int = 0,
    device: str = "cpu",
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Fine-tune ``encoder`` on the training table ``data`` (truth CSV with a text or image column) under
    ``taxonomy``; write the run folder ``out``; return the stamped summary (what ``hier finetune --json`` prints).

    ``val`` (a table in the same format) is evaluated every epoch. ``max_length`` applies to text encoders.
    """
    from medlens.encoders import load_encoder

    out = Path(out)
    if loss not in LOSSES:
        raise InputError(f"unknown --loss {loss!r}; expected radial, hxe, soft or bce.")
    if not (resume or overwrite):
        _refuse_a_finished_run(out)
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
    kw: dict[str, Any] = {"device": device}
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
        progress=progress,
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
    prov = provenance(
        command="hier finetune",
        config=config.to_dict(),
        seed=seed,
        inputs={"data": data},
        taxonomy=tax,
        models={"encoder": enc.model_id},
    )
    return stamp(summary, prov)


def _refuse_a_finished_run(out: Path) -> None:
    """A folder with a finished fine-tune (model and metadata, no legacy pickles, which the run folder refuses with
    its own message): say so before an encoder loads, and what to do instead."""
    if not ((out / MODEL).is_file() and (out / META).is_file()) or any((out / f).exists() for f in LEGACY):
        return
    try:
        meta = json.loads((out / META).read_text(encoding="utf-8"))
        done = f"{len(meta['history'])} epoch(s) of {meta['encoder']['name']}"
    except (OSError, ValueError, KeyError, TypeError):
        return  # an unreadable folder: the run folder's own checks say what is wrong
    raise InputError(
        f"{out} already holds a finished fine-tune ({MODEL}, {done}): score with `medlens hier score --model-path "
        f"{out}`; pass --overwrite to train again, or --resume to reuse it when the configuration is the same."
    )


def run_score(
    model_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    texts: str | os.PathLike | None = None,
    images: str | os.PathLike | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """Score ``texts`` (a file) or ``images`` (a folder) with the fine-tuned model in ``model_path``; write the
    node probabilities to ``out`` (scores CSV); return the stamped summary (what ``hier score --json`` prints).
    """
    if (texts is None) == (images is None):
        raise InputError("give exactly one of --texts FILE or --images DIR.")
    fm = load_finetuned(model_path, device=device)
    if texts is not None:
        ids, inputs = read_texts(texts)
    else:
        ids, inputs = list_images(images)  # type: ignore[arg-type]
    probs = fm.predict_proba(inputs, batch_size=batch_size, progress=progress)
    write_node_scores(out, ids, fm.taxonomy, probs)
    summary = {"out": str(out), "n": len(ids), "nodes": len(fm.taxonomy) - 1, "probability": fm.probability}
    prov = provenance(
        command="hier score",
        config={"model": str(model_path), "batch_size": batch_size},
        inputs={"texts": texts} if texts is not None else {},
        taxonomy=fm.taxonomy,
        models={"encoder": fm.encoder.model_id, "finetuned": str(model_path)},
    )
    return stamp(summary, prov)
