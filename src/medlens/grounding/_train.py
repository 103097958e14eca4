"""Fine-tune a Florence-2 grounder on (image, finding) queries with :class:`medlens.training.Trainer`.

- the vision tower is frozen by default (as in AG-KD); the text encoder, decoder and projector train;
- each epoch ends on the ``val`` queries (never ``test``): their loss (``val_loss``) and, with
  ``select="val_f1"`` (the default), their detection F1 (``val_f1``): the model's greedy predictions on the
  validation queries, decoded as ``ground predict`` decodes them (:meth:`FlorenceGrounder.predict`), every box it
  emits for a query's prompt counted, scored as ``ground evaluate`` scores them
  (:func:`medlens.grounding.evaluate_grounding`'s ``f1_50``: greedy one-to-one matching at IoU >= 0.5, any box
  on a negative query a false positive, an epoch without boxes F1 0). A loss minimum is a poor proxy for
  detection: a small model can lower its loss by emitting no box at all;
- the trained tensors of the best epoch by the criterion (highest ``val_f1``, its ties to the lower
  ``val_loss``; or lowest ``val_loss``; a full tie keeps the earlier epoch) are kept in ``best.safetensors``
  and become the final model in ``model/``
  (``save_pretrained`` layout, tokenizer and preprocessor config copied, so ``--model-path OUT/model`` loads it);
- the checkpoint after every epoch is safetensors (:mod:`medlens.training`): a killed run resumes with
  ``resume=True`` and ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from medlens._optional import require
from medlens._provenance import config_hash, file_sha256
from medlens._validation import InputError, check_option
from medlens.grounding._model import PREPROCESSOR, load_grounder
from medlens.grounding._prompts import PROMPT_MODES, render_prompt

__all__ = ["BEST", "SELECT_CRITERIA", "LoraOptions", "caption_for", "train_grounder", "validation_f1"]

BEST = "best.safetensors"
MODEL_DIR = "model"
SELECT_CRITERIA = ("val_f1", "val_loss")
"""Epoch selection on the validation split: highest detection F1@0.5 (default) or lowest loss."""
SELECTED_ON = {
    "val_f1": "val_f1 (F1@0.5 on the validation split, as `ground evaluate` reports f1_50; the test split is never "
    "used for selection)",
    "val_loss": "val_loss (loss on the validation split; the test split is never used for selection)",
}


def caption_for(kb: Any, finding: str, mode: str = "definition", attributes: str | None = None) -> str:
    """The caption of a query: the finding's prompt under ``mode`` (see :func:`medlens.grounding.render_prompt`)."""
    return render_prompt(kb.get(finding), mode, attributes=attributes)  # type: ignore[arg-type]


def _plan(n: int, batch_size: int, augment: bool = False) -> Any:
    """Each epoch's batches from the epoch's generator: the order, then (with ``augment``) one augmentation
    seed per query, so a resumed run draws the same augmentations as an uninterrupted one."""

    def plan(rng: Any) -> list[tuple[Any, int]]:
        order = rng.permutation(n).tolist()
        seeds = rng.integers(0, 2**63 - 1, size=n).tolist() if augment else [None] * n
        return [
            (
                list(zip(order[i : i + batch_size], seeds[i : i + batch_size], strict=True)),
                len(order[i : i + batch_size]),
            )
            for i in range(0, n, batch_size)
        ]

    return plan


@dataclass(frozen=True)
class LoraOptions:
    """Low-rank adapters (``peft``) on the text model's attention and feed-forward projections (the vision
    tower is never adapted). The defaults are AG-KD's optional branch: rank 8, alpha 8, dropout 0.05,
    rank-stabilised scaling. The trained adapters are merged into the weights of ``OUT/model``."""

    r: int = 8
    alpha: float = 8.0
    dropout: float = 0.05
    rslora: bool = True
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")

    def __post_init__(self) -> None:
        if int(self.r) < 1 or float(self.alpha) <= 0 or not 0 <= float(self.dropout) < 1 or not self.targets:
            raise InputError(
                f"LoRA needs r >= 1, alpha > 0, 0 <= dropout < 1 and a target module; got r={self.r}, "
                f"alpha={self.alpha}, dropout={self.dropout}, targets={list(self.targets)}."
            )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "targets": list(self.targets)}


def _lora_options(lora: Any) -> LoraOptions | None:
    if lora is None or lora is False:
        return None
    if lora is True:
        return LoraOptions()
    if isinstance(lora, LoraOptions):
        return lora
    if isinstance(lora, dict):
        unknown = sorted(set(lora) - set(LoraOptions.__dataclass_fields__))
        if unknown:
            raise InputError(f"unknown LoRA option {unknown[0]!r}; use {', '.join(LoraOptions.__dataclass_fields__)}.")
        return LoraOptions(**{k: tuple(v) if k == "targets" else v for k, v in lora.items()})
    raise InputError(f"lora must be True, a dict or LoraOptions; got {type(lora).__name__}.")


def _add_lora(model: Any, options: LoraOptions) -> Any:
    """Inject the adapters into ``model`` in place (only they train); returns the peft wrapper, for merging."""
    peft = require("peft", extra="hf", purpose="LoRA fine-tuning")
    pattern = r".*language_model\.(encoder|decoder)\.layers\.\d+\..*(" + "|".join(options.targets) + r")$"
    cfg = peft.LoraConfig(
        r=int(options.r), lora_alpha=float(options.alpha), lora_dropout=float(options.dropout),
        use_rslora=bool(options.rslora), target_modules=pattern, init_lora_weights="gaussian",
    )  # fmt: skip
    return peft.get_peft_model(model, cfg)


def _evaluation_queries(val: Sequence[dict[str, Any]], parsed: Sequence[Any]) -> list[dict[str, Any]]:
    """``evaluate_grounding`` queries from validation queries and their :class:`ParsedGrounding`: every box the
    model emitted for the query's prompt (the boxes ``ground predict --json`` prints), with its score."""
    out = []
    for i, (q, p) in enumerate(zip(val, parsed, strict=True)):
        scores = None if p.box_scores is None else p.box_scores.tolist()
        out.append({"image_id": q.get("image_id", q.get("image", i)), "finding": q["finding"], "gold": q["gold"],
                    "pred": p.boxes.tolist(), "scores": scores, "width": q.get("width"),
                    "height": q.get("height")})  # fmt: skip
    if any(q["scores"] is not None for q in out):  # as ground evaluate: a query without boxes has no scores
        for q in out:
            if q["scores"] is None and not q["pred"]:
                q["scores"] = []
    return out


def validation_f1(
    g: Any,
    val: Sequence[dict[str, Any]],
    captions: dict[str, str],
    kb: Any,
    *,
    batch_size: int = 8,
    max_new_tokens: int = 64,
) -> dict[str, Any]:
    """Predict every validation query with ``g`` (greedy, as ``ground predict``) and score the predictions as
    ``ground evaluate`` does; ``{"val_f1", "val_precision", "val_recall", "val_n_pred_boxes"}``.

    ``val_f1`` is :func:`medlens.grounding.evaluate_grounding`'s ``f1_50`` (0 when no box is emitted); the
    validation queries must include a positive one (else F1 is undefined). Images are never augmented here."""
    from medlens.grounding._evaluate import evaluate_grounding

    parsed: list[Any] = []
    for i in range(0, len(val), int(batch_size)):
        qs = val[i : i + int(batch_size)]
        caps = [captions[q["finding"]] for q in qs]
        parsed += g.predict([q["image"] for q in qs], caps, kb, max_new_tokens=int(max_new_tokens))
    ev = evaluate_grounding(_evaluation_queries(val, parsed), kb=kb)
    if ev["f1_50"] is None:
        raise InputError("val_f1 is undefined: the validation split has no positive query; use select='val_loss'.")
    return {
        "val_f1": float(ev["f1_50"]),
        "val_precision": ev["precision50"],
        "val_recall": ev["recall50"],
        "val_n_pred_boxes": int(ev["n_pred_boxes"]),
    }


def _rank(row: dict[str, Any], select: str) -> tuple[float, ...]:
    """Higher is better: validation F1, its ties broken by the lower validation loss (so that a run whose epochs
    all emit no box keeps its best-fitted epoch, not the first); or the validation loss alone."""
    if select == "val_f1":
        return (row["val_f1"], -row["val_loss"])
    return (-row["val_loss"],)


def _improves(row: dict[str, Any], history: Sequence[dict[str, Any]], select: str) -> bool:
    """Whether ``row`` beats every earlier epoch strictly (a full tie keeps the earlier epoch)."""
    return not history or _rank(row, select) > max(_rank(r, select) for r in history)


def _selected(history: Sequence[dict[str, Any]], select: str) -> dict[str, Any]:
    """The selected epoch's row: the first best one (``max`` returns the first of equals)."""
    return max(history, key=lambda r: _rank(r, select))


def _augmented(q: dict[str, Any], augment: Any, seed: int) -> dict[str, Any]:
    import numpy as np

    image, boxes = augment(q["image"], q["gold"], np.random.default_rng(seed))
    return {**q, "image": image, "gold": boxes.tolist()}


def train_grounder(
    model_path: str | PathLike[str],
    splits: dict[str, Sequence[dict[str, Any]]],
    kb: Any,
    out: str | PathLike[str],
    *,
    prompt_mode: str = "definition",
    epochs: int = 3,
    batch_size: int = 8,
    lr: float = 1e-4,
    seed: int = 0,
    freeze_vision: bool = True,
    device: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    data_config: dict[str, Any] | None = None,
    callback: Any = None,
    augment: Any = None,
    lora: Any = None,
    select: str = "val_f1",
    max_new_tokens: int = 64,
) -> dict[str, Any]:
    """Train on ``splits["train"]``, select the epoch on ``splits["val"]``; returns a summary dict.

    ``splits["test"]`` is never read. ``select`` is the criterion (:data:`SELECT_CRITERIA`, module docstring):
    ``"val_f1"`` predicts the validation queries after each epoch (``max_new_tokens`` per query, greedy) and
    keeps the epoch with the highest F1@0.5; ``"val_loss"`` the epoch with the lowest validation loss. Each
    history row has ``val_loss`` and, with ``"val_f1"``, ``val_f1``, ``val_precision``, ``val_recall`` and
    ``val_n_pred_boxes``. The summary's ``selected_epoch``, ``selected_on``, ``selected_val_loss`` and
    ``selected_val_f1`` describe the chosen epoch; ``best_val_loss`` is the lowest validation loss of the run.

    Queries carry ``image`` (path), ``finding``, ``gold`` (pixel boxes), ``width``, ``height``.
    ``callback(epoch, row)`` runs after each epoch's checkpoint. ``augment`` (an
    :class:`~medlens.grounding.Augment`) moves each training image and its boxes with one random affine map
    per query and epoch (validation queries are never augmented). ``lora`` (a :class:`LoraOptions` or a dict of
    its fields) trains low-rank adapters (``peft``) instead of the full text model.
    """
    torch = require("torch", extra="torch", purpose="training a grounder")
    from medlens.training import adamw, open_training_run, read_safetensors, seed_torch, write_safetensors

    check_option(prompt_mode, PROMPT_MODES, name="prompt_mode")
    check_option(select, SELECT_CRITERIA, name="select")
    train, val = list(splits.get("train", ())), list(splits.get("val", ()))
    if not train:
        raise InputError("no training query: the train split is empty (check the split file and the boxes CSV).")
    if not val:
        raise InputError("no validation query: model selection needs a val split (carved from train by default).")
    if int(batch_size) < 1 or int(epochs) < 1:
        raise InputError(f"--batch-size and epochs must be >= 1; got {batch_size} and {epochs}.")
    if select == "val_f1" and not any(len(q["gold"]) for q in val):
        raise InputError(
            "select='val_f1' needs a positive validation query (a finding with boxes); the val split has none. "
            "Give a split with one, or select='val_loss'."
        )
    if int(max_new_tokens) < 1:
        raise InputError(f"max_new_tokens must be >= 1; got {max_new_tokens}.")
    mp = Path(model_path)
    lora_options = _lora_options(lora)
    config = {
        "command": "ground train",
        "model": str(mp),
        "model_sha256": file_sha256(mp / "model.safetensors") if (mp / "model.safetensors").is_file() else None,
        "knowledge": kb.name,
        "prompt_mode": prompt_mode,
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "seed": int(seed),
        "freeze_vision": bool(freeze_vision),
        "data": data_config or {},
        "augment": augment.to_dict() if augment is not None else None,
        "lora": lora_options.to_dict() if lora_options is not None else None,
        "select": select,
        "max_new_tokens": int(max_new_tokens) if select == "val_f1" else None,
        "n_train": len(train),
        "n_val": len(val),
    }
    seed_torch(seed)
    g = load_grounder(mp, device=device)
    model = g.model
    for name, prm in model.named_parameters():
        prm.requires_grad_(not (freeze_vision and "vision_tower" in name))
    wrapper = None
    if lora_options is not None:
        wrapper = _add_lora(model, lora_options)  # in place: g.model now holds the adapters, only they train
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    n_trained = int(sum(p.numel() for n, p in model.named_parameters() if n in trained))

    def state() -> dict[str, Any]:
        return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if n in trained}

    captions = {f: caption_for(kb, f, prompt_mode) for f in sorted({q["finding"] for q in train + val})}
    opt = adamw([{"params": [p for p in model.parameters() if p.requires_grad]}], lr=float(lr), weight_decay=0.01)
    run = open_training_run(out, config, resume=resume, overwrite=overwrite, outputs=(BEST, MODEL_DIR))
    out_dir = run.dir
    from medlens.training import Trainer

    trainer = Trainer(model, opt, epochs=epochs, seed=seed, max_grad_norm=1.0, run=run, model_state=state)
    trainer.close_run = False
    try:
        trainer.resume()

        def step(batch: list[tuple[int, int | None]]) -> tuple[Any, dict[str, float]]:
            qs = [train[i] if s is None else _augmented(train[i], augment, s) for i, s in batch]
            return g.loss(g.batch(qs, [captions[q["finding"]] for q in qs])), {}

        def validate(epoch: int) -> dict[str, Any]:
            model.eval()
            total, n = 0.0, 0
            with torch.no_grad():
                for i in range(0, len(val), batch_size):
                    qs = val[i : i + batch_size]
                    total += float(g.loss(g.batch(qs, [captions[q["finding"]] for q in qs]))) * len(qs)
                    n += len(qs)
            row: dict[str, Any] = {"val_loss": total / n}
            if select == "val_f1":  # greedy generation: no random draw, so resuming stays exact
                row |= validation_f1(g, val, captions, kb, batch_size=int(batch_size), max_new_tokens=max_new_tokens)
            if _improves(row, trainer.history, select):
                meta = {"epoch": epoch, "select": select, **{k: row[k] for k in ("val_loss", "val_f1") if k in row}}
                write_safetensors(out_dir / BEST, state(), metadata=meta)
            return row

        def train_mode() -> None:
            model.train()
            if freeze_vision:
                model.model.vision_tower.eval()

        history = trainer.fit(_plan(len(train), int(batch_size), augment is not None), step, n_items=len(train), train_mode=train_mode,
                              validate=validate, callback=callback)  # fmt: skip
        tensors, meta = read_safetensors(out_dir / BEST, what="best checkpoint")
        model.load_state_dict(tensors, strict=False)
        dest = out_dir / MODEL_DIR
        if dest.exists():
            shutil.rmtree(dest)
        final = wrapper.merge_and_unload() if wrapper is not None else model
        final.save_pretrained(dest)
        g.tokenizer.save_pretrained(dest)
        if (mp / PREPROCESSOR).is_file():
            shutil.copyfile(mp / PREPROCESSOR, dest / PREPROCESSOR)
    finally:
        run.close()
    chosen = _selected(history, select)
    return {
        "config": config,
        "config_hash": config_hash(config),
        "history": history,
        "select": select,
        "selected_epoch": int(chosen["epoch"]),
        "selected_on": SELECTED_ON[select],
        "selected_val_loss": float(chosen["val_loss"]),
        "selected_val_f1": float(chosen["val_f1"]) if "val_f1" in chosen else None,
        "best_val_loss": float(min(r["val_loss"] for r in history)),
        "best_meta": json.loads(meta) if isinstance(meta, str) else meta,
        "model_path": str(out_dir / MODEL_DIR),
        "n_trained_parameters": n_trained,
    }
