"""Taxonomy-aware fine-tuning on the shared training loop (:mod:`medlens.training`).

Modes
-----
``head``        the encoder is frozen; only the projection heads and node biases train (features are
                computed once and cached in memory, so an epoch costs almost nothing).
``last-block``  the last transformer block of the tower and the modules after it (final norm, pooling,
                projection) train with the heads.
``lora``        LoRA adapters (peft) on the tower's attention projections train with the heads.
``full``        every parameter trains.

Determinism: the loop reseeds every epoch from ``(seed, epoch)``; a run killed at any point and resumed with
``resume=True`` ends with the same weights as an uninterrupted run (from the last epoch's checkpoint, or
from the start when it was killed before its first checkpoint).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._provenance import config_hash, provenance, stamp
from medlens._validation import InputError
from medlens.hierarchy._encode import EncodedLabels, encode_labels
from medlens.hierarchy.finetune._losses import RadialConfig, make_loss
from medlens.hierarchy.finetune._model import TaxonomyModel
from medlens.hierarchy.finetune._prefix import PrefixCache, fixed_batches
from medlens.hierarchy.finetune._saved import LEGACY, META, MODEL, FinetunedModel
from medlens.hierarchy.finetune._setup import (
    FinetuneConfig,
    build_model,
    input_modality,
    node_features,
    trainable_state,
)
from medlens.hierarchy.finetune._structure import TaxonomyArrays
from medlens.io import atomic_write_json
from medlens.taxonomy import Taxonomy
from medlens.training import (
    Trainer,
    TrainingRun,
    adamw,
    cosine_with_warmup,
    open_training_run,
    warmup_steps,
    write_safetensors,
)

torch = require("torch", extra="torch", purpose="taxonomy-aware fine-tuning")

__all__ = ["FinetuneResult", "finetune", "open_finetune_run"]


@dataclass
class FinetuneResult:
    model: FinetunedModel
    history: list[dict[str, Any]]
    out_dir: Path | None
    resumed_from: int


def _scale_input_head(model: TaxonomyModel, sample: list[Any], arrays: TaxonomyArrays, radial: RadialConfig) -> None:
    """Rescale the input head so that ``‖z‖`` starts at the mean radial target (not the encoder's raw norm)."""
    was = model.training
    model.eval()
    with torch.no_grad():
        norm = model.embed(model.tower.prepare(sample)).norm(dim=-1).mean()
        target = radial.r0 + radial.delta * float(arrays.depth.mean())
        if float(norm) > 0:
            model.proj.weight.mul_(target / norm)
            model.proj.bias.mul_(target / norm)
    model.train(was)


def open_finetune_run(
    out_dir: str | os.PathLike, run_config: dict[str, Any], *, resume: bool, overwrite: bool, prov: dict[str, Any]
) -> TrainingRun:
    """The run folder (manifest, checkpoint, history): the one place that decides refuse / resume / restart."""
    return open_training_run(
        out_dir,
        run_config,
        resume=resume,
        overwrite=overwrite,
        outputs=(MODEL, META, "history.json"),
        legacy=LEGACY,
        provenance=prov,
    )


def finetune(
    encoder: Any,
    taxonomy: Taxonomy,
    inputs: Sequence[Any],
    labels: EncodedLabels | Sequence[Any],
    *,
    config: FinetuneConfig | None = None,
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    val: tuple[Sequence[Any], EncodedLabels | Sequence[Any]] | None = None,
    callback: Callable[[int, dict[str, Any]], None] | None = None,
    modality: str | None = None,
) -> FinetuneResult:
    """Fine-tune ``encoder`` on (``inputs``, ``labels``) with a taxonomy-aware loss.

    Parameters
    ----------
    encoder : medlens.encoders.Encoder
        Any adapter with a :class:`~medlens.encoders.Tower`; its text tower also embeds the node prompts.
    taxonomy : Taxonomy
    inputs : sequence
        Texts, or images (paths, PIL images, arrays) for image encoders.
    labels : EncodedLabels or label lists
        Truth per input (single node ids or label sets).
    config : FinetuneConfig
    out_dir : path, optional
        Run folder: ``manifest.json``, ``checkpoint.safetensors`` (every epoch, atomic), ``history.jsonl``, and
        at the end ``model.safetensors`` (the trained parameters only) and ``finetune.json``. ``None`` trains
        in memory.
    resume : bool
        Continue from ``checkpoint.safetensors`` if there is one (the manifest must match this config);
        without one the run starts from the beginning, exactly as a fresh run.
    val : (inputs, labels), optional
        Evaluated after every epoch (hF, CAE, coverage at probability 0.5; macro-AUROC).
    callback : callable, optional
        Called as ``callback(epoch, history_row)`` after each epoch's checkpoint (raise to stop).
    modality : {"text", "image"}, optional
        Which tower the inputs go through; by default the encoder's only one, or ``image`` for image-text
        encoders (whose text tower then embeds the node prompts).
    """
    config = config or FinetuneConfig()
    modality = input_modality(encoder, modality)
    y = labels if isinstance(labels, EncodedLabels) else encode_labels(list(labels), taxonomy, name="labels")
    inputs = list(inputs)
    if len(inputs) != y.n:
        raise InputError(f"{len(inputs)} inputs but {y.n} labels; give one label (set) per input.")
    if not inputs:
        raise InputError("no training inputs.")
    arrays = TaxonomyArrays(taxonomy, config.branch_depth)
    loss_fn = make_loss(config.loss.name, arrays, config.loss)
    targets_all = torch.as_tensor(y.closure[:, 1:].toarray(), dtype=torch.float32)
    node_feats, node_init = node_features(encoder, taxonomy)
    model = build_model(encoder, taxonomy, config, node_feats, modality)
    device = model.bias.device
    loss_fn.to(device)
    data_hash = config_hash({"inputs": [str(x) for x in inputs], "labels": y.given.indices.tolist()})
    run_config = {
        "finetune": config.to_dict(),
        "encoder": {"source": encoder.config.source, "name": encoder.config.name, "model_id": encoder.model_id},
        "taxonomy": {"name": taxonomy.name, "version": taxonomy.version, "sha256": taxonomy.content_hash()},
        "data_sha256": data_hash,
        "n": len(inputs),
    }
    prov = provenance(
        command="hier finetune",
        config=run_config,
        seed=config.seed,
        taxonomy=taxonomy,
        models={"encoder": encoder.model_id},
    )
    out = Path(out_dir) if out_dir is not None else None
    run = open_finetune_run(out, run_config, resume=resume, overwrite=overwrite, prov=prov) if out is not None else None
    try:  # the folder stays open and locked until the model files are written
        groups = [{"params": model.head_parameters(), "lr": config.head_lr, "weight_decay": 0.0}]
        groups.append(
            {
                "params": [p for p in model.encoder.parameters() if p.requires_grad],
                "lr": config.lr,
                "weight_decay": config.weight_decay,
            }
        )
        opt = adamw(groups)
        total = math.ceil(len(inputs) / config.batch_size) * config.epochs
        # the first update already at lr / warmup (the schedule of this fine-tuning since its first release)
        sched = cosine_with_warmup(
            opt, warmup_steps=warmup_steps(total, config.warmup), total_steps=total, warmup_from_zero=False
        )
        trainer = Trainer(
            model,
            opt,
            sched,
            epochs=config.epochs,
            seed=config.seed,
            max_grad_norm=config.max_grad_norm,
            run=run,
            model_state=lambda: trainable_state(model),
            progress=progress,
            close_run=False,
        )
        start = trainer.resume() if resume else 0
        if config.loss.name == "radial" and start == 0:  # a fresh start (also --resume with nothing to resume)
            _scale_input_head(model, inputs[:64], arrays, config.loss.radial)

        frozen = config.mode == "head"
        batches = fixed_batches(inputs, config.batch_size)
        prefix = None
        if config.mode == "last-block" and len(model.tower.blocks) >= 2 and start < config.epochs:
            prefix = PrefixCache(model.tower, [[inputs[i] for i in b] for b in batches], progress)
        cached_feats = None
        if frozen and start < config.epochs:
            model.encoder.eval()
            feats = []
            with torch.no_grad():
                for s in range(0, len(inputs), 64):
                    feats.append(model.tower.forward(model.tower.prepare(inputs[s : s + 64])).float())
            cached_feats = torch.cat(feats).clone()

        def plan(rng: np.random.Generator) -> list[tuple[tuple[int, np.ndarray], int]]:
            if frozen:  # cached features: a fresh random batch split every epoch
                perm = rng.permutation(len(inputs))
                return [
                    ((-1, perm[s : s + config.batch_size]), len(perm[s : s + config.batch_size]))
                    for s in range(0, len(perm), config.batch_size)
                ]
            # fixed (length-grouped) batches in a fresh random order every epoch
            return [((int(b), batches[b]), len(batches[b])) for b in rng.permutation(len(batches))]

        def step(batch: tuple[int, np.ndarray]) -> tuple[Any, dict[str, float]]:
            batch_id, idx = batch
            if cached_feats is not None:
                out_b = model.head(cached_feats[idx].to(device))
            elif prefix is not None:
                with prefix.replay(batch_id):
                    out_b = model(model.tower.prepare([inputs[i] for i in idx]))
            else:
                out_b = model(model.tower.prepare([inputs[i] for i in idx]))
            return loss_fn(out_b, targets_all[idx].to(device))

        def train_mode() -> None:
            model.train()
            if frozen:
                model.encoder.eval()

        def validate(_epoch: int) -> dict[str, Any]:
            return _validate(FinetunedModel(model, taxonomy, arrays, loss_fn.probability, config, encoder), val, config)

        t_train = time.perf_counter()
        history = trainer.fit(
            plan,
            step,
            n_items=len(inputs),
            train_mode=train_mode,
            validate=validate if val is not None else None,
            callback=callback,
        )
        train_seconds = time.perf_counter() - t_train
        fitted = FinetunedModel(model, taxonomy, arrays, loss_fn.probability, config, encoder)
        if out is not None:
            write_safetensors(out / MODEL, trainable_state(model), {"config": config.to_dict()})
            meta = {
                "config": config.to_dict(),
                "encoder": {
                    "source": encoder.config.source,
                    "name": encoder.config.name,
                    "model_id": encoder.model_id,
                    "family": getattr(encoder.config, "family", None),
                    "max_length": encoder.config.max_length,
                    "modality": modality,
                },
                "taxonomy": taxonomy.to_dict(),
                "taxonomy_sha256": taxonomy.content_hash(),
                "nodes": list(taxonomy.nodes[1:]),
                "node_init": node_init,
                "probability": loss_fn.probability,
                "history": history,
                "train_seconds": round(train_seconds, 2),
                "trainable_parameters": int(sum(p.numel() for g in opt.param_groups for p in g["params"])),
            }
            atomic_write_json(out / META, stamp(meta, prov))
        return FinetuneResult(fitted, history, out, start)
    finally:
        if run is not None:
            run.close()


def _validate(fm: FinetunedModel, val: tuple, config: FinetuneConfig) -> dict[str, Any]:
    from medlens.hierarchy import evaluate
    from medlens.hierarchy._decide import predict_labels

    v_inputs, v_labels = val
    tax = fm.taxonomy
    yv = v_labels if isinstance(v_labels, EncodedLabels) else encode_labels(list(v_labels), tax, name="val labels")
    p = fm.predict_proba(list(v_inputs))
    pred = predict_labels(p, tax, rule="multilabel", lam=0.5)
    r = evaluate(yv, pred, taxonomy=tax, branch_depth=config.branch_depth, node_scores=p, ci=None).to_dict()
    return {
        "val_hF": r["hF"],
        "val_cae_rate": r["cae_rate"],
        "val_coverage": r["coverage"],
        "val_macro_auroc": r["flat"]["macro_auroc"],
    }
