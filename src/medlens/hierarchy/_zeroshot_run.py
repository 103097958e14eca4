"""Zero-shot node probabilities of a folder of images or a texts file: the pipeline behind ``hier zeroshot``.

Reads the inputs, checks every cheap option, loads the encoder, scores, optionally fits Platt scaling on labelled
inputs, writes the scores CSV and a stamped ``SCORES.meta.json`` beside it, and returns that document.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from medlens._provenance import provenance, stamp
from medlens._validation import InputError, check_interval, check_option
from medlens.hierarchy._prompts import PROMPT_SOURCES, read_prompt_file
from medlens.hierarchy._tables import read_label_table, write_node_scores
from medlens.hierarchy._zeroshot_scorer import INTERNAL_RULES, SCORING_METHODS, ZeroShotScorer
from medlens.io import atomic_write_json, list_images, read_texts
from medlens.taxonomy import Taxonomy, load_taxonomy

__all__ = ["run_zeroshot"]


def _inputs(images: str | os.PathLike | None, texts: str | os.PathLike | None) -> tuple[str, Path, list[str], list]:
    if (images is None) == (texts is None):
        raise InputError("give exactly one of --images DIR or --texts FILE.")
    if texts is not None:
        ids, items = read_texts(texts)
        if not ids:
            raise InputError(f"{texts}: no texts found.")
        return "texts", Path(texts), ids, items
    ids, paths = list_images(images)
    return "images", Path(images), ids, paths  # type: ignore[arg-type]


def _calibration_rows(truth: str | os.PathLike, ids: list[str], tax: Taxonomy) -> tuple[np.ndarray, Any]:
    """Rows of the inputs that the calibration truth labels (ids must be among the inputs), and the labels."""
    t = read_label_table(truth, tax, what="calibration truth")
    pos = {v: i for i, v in enumerate(ids)}
    missing = [v for v in t.ids if v not in pos]
    if missing:
        raise InputError(
            f"calibration truth {truth}: {len(missing)} id(s) are not among the inputs (e.g. {missing[:3]}); "
            f"its ids must name inputs (e.g. {ids[:3]})."
        )
    return np.array([pos[v] for v in t.ids], dtype=np.int64), t.labels


def _ids_hash(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()


def run_zeroshot(
    encoder: str,
    taxonomy: str | Taxonomy,
    out: str | os.PathLike,
    *,
    images: str | os.PathLike | None = None,
    texts: str | os.PathLike | None = None,
    templates: str | os.PathLike | None = None,
    prompt_source: str | None = None,
    method: str = "softmax",
    internal: str | None = None,
    temperature: float | None = None,
    bias: float | None = None,
    calibration_truth: str | os.PathLike | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    progress: bool = False,
    executor: str = "local",
    ray_address: str | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Score ``images`` (a folder) or ``texts`` (a file) against ``taxonomy``'s prompts; write ``out`` (scores CSV)
    and ``out.meta.json``; return the stamped metadata document (what ``hier zeroshot --json`` prints).

    Every option is checked before the encoder is loaded (loading can take tens of seconds).

    ``executor="ray"`` embeds the inputs on Ray actors (one model each; ``ray_address``, ``workers``) in the same
    blocks of whole batches as ``"local"``, so the scores are equal; prompts are embedded here.
    """
    from medlens._device import resolve_device
    from medlens.encoders import EncodeTask, load_encoder
    from medlens.executors import block_size_for, check_executor_options, make_executor, plan_blocks, run_blocks

    out = Path(out)
    check_option(method, SCORING_METHODS, name="--method")
    if internal is not None:
        check_option(internal, INTERNAL_RULES, name="--internal")
    if prompt_source is not None:
        check_option(prompt_source, PROMPT_SOURCES, name="--prompt-source")
    check_interval(batch_size, name="--batch-size", low=1)
    if temperature is not None:
        check_interval(temperature, name="--temperature", low=0, closed="neither")
    if method == "platt" and calibration_truth is None:
        raise InputError("--method platt fits a calibration on labelled inputs: pass --calibration-truth TRUTH.csv.")
    if method != "platt" and calibration_truth is not None:
        raise InputError(f"--calibration-truth applies to --method platt only; got --method {method}.")
    check_executor_options(executor, ray_address, workers)
    device = resolve_device(device)
    tax = load_taxonomy(taxonomy)
    kind, in_path, ids, items = _inputs(images, texts)
    tmpl, overrides = read_prompt_file(templates) if templates is not None else (None, None)
    source = prompt_source or ("templates" if tmpl is not None else "auto")
    rows = labels = None
    if calibration_truth is not None:
        rows, labels = _calibration_rows(calibration_truth, ids, tax)
    runner = make_executor(executor, ray_address=ray_address, workers=workers, device=device)
    enc = load_encoder(encoder, device=device)
    scorer = ZeroShotScorer(
        enc,
        tax,
        templates=tmpl,
        prompts=overrides,
        prompt_source=source,
        internal=internal,
        method=method,
        temperature=temperature,
        bias=bias,
        batch_size=batch_size,
        progress=progress,
    )
    if kind == "images":
        scorer.check_image_encoder()
    modality = "text" if kind == "texts" else "image"
    task = EncodeTask(
        encoder, modality, batch_size=batch_size, device=device, encoder=enc if runner.name == "local" else None
    )
    blocks = plan_blocks(len(ids), block_size=block_size_for(batch_size))
    emb = run_blocks(runner, task, [str(x) for x in items], blocks, progress=progress, label=f"encoding {modality}s")
    sim = scorer._cosine(emb, modality)  # the checks and messages of similarity_texts / similarity_images
    calibration = None
    if rows is not None:
        scorer.fit(sim[rows], labels, kind="similarity")
        calibration = {"truth": str(calibration_truth), "n": len(rows), "scored_in_sample": len(rows)}
    probs = scorer.probabilities(sim)
    write_node_scores(out, ids, tax, probs)
    meta_path = out.with_suffix(".meta.json")
    model_id = getattr(enc, "model_id", enc.config.name)
    info = scorer.method_info()
    summary = {
        "n": len(ids),
        "n_nodes": len(tax),
        "out": str(out),
        "meta": str(meta_path),
        "input": {"kind": kind, "path": str(in_path)},
        "method": info,
        "encoder": {"model_id": model_id, **enc.config.to_dict()},
        "taxonomy": {"name": tax.name, "version": tax.version, "sha256": tax.content_hash()},
        "calibration": calibration,
        "executor": runner.info(),
    }
    config = {
        "encoder": model_id,
        "taxonomy": tax.name,
        "input_kind": kind,
        "method": method,
        "internal": scorer.internal,
        "scale": scorer.scale,
        "bias": scorer.bias,
        "prompt_source": source,
        "prompts_sha256": info["prompts_sha256"],
    }
    inputs: dict[str, Any] = {kind: in_path}
    if templates is not None:
        inputs["templates"] = templates
    if calibration_truth is not None:
        inputs["calibration_truth"] = calibration_truth
    prov = provenance(
        command="hier zeroshot",
        config=config,
        inputs=inputs,
        models={"encoder": model_id},
        taxonomy=tax,
        extra={"input_ids_sha256": _ids_hash(ids)},
    )
    doc = stamp(summary, prov)
    atomic_write_json(meta_path, doc)
    return doc
