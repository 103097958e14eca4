"""Fine-tune a Florence-2 grounder on (image, finding) queries with :class:`medlens.training.Trainer`.

- the vision tower is frozen by default (as in AG-KD); the text encoder, decoder and projector train;
- each epoch ends with the loss on the ``val`` queries (never ``test``); the trained tensors of the epoch with
  the lowest validation loss are kept in ``best.safetensors`` and become the final model in ``model/``
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

__all__ = ["BEST", "LoraOptions", "caption_for", "train_grounder"]

BEST = "best.safetensors"
MODEL_DIR = "model"


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
) -> dict[str, Any]:
    """Train on ``splits["train"]``, select the epoch on ``splits["val"]``; returns a summary dict.

    Queries carry ``image`` (path), ``finding``, ``gold`` (pixel boxes), ``width``, ``height``.
    ``callback(epoch, row)`` runs after each epoch's checkpoint. ``augment`` (an
    :class:`~medlens.grounding.Augment`) moves each training image and its boxes with one random affine map
    per query and epoch (validation queries are never augmented). ``lora`` (a :class:`LoraOptions` or a dict of
    its fields) trains low-rank adapters (``peft``) instead of the full text model.
    """
    torch = require("torch", extra="torch", purpose="training a grounder")
    from medlens.training import adamw, open_training_run, read_safetensors, seed_torch, write_safetensors

    check_option(prompt_mode, PROMPT_MODES, name="prompt_mode")
    train, val = list(splits.get("train", ())), list(splits.get("val", ()))
    if not train:
        raise InputError("no training query: the train split is empty (check the split file and the boxes CSV).")
    if not val:
        raise InputError("no validation query: model selection needs a val split (carved from train by default).")
    if int(batch_size) < 1 or int(epochs) < 1:
        raise InputError(f"--batch-size and epochs must be >= 1; got {batch_size} and {epochs}.")
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
            loss = total / n
            best = min([r["val_loss"] for r in trainer.history] + [float("inf")])
            if loss < best:
                write_safetensors(out_dir / BEST, state(), metadata={"epoch": epoch, "val_loss": loss})
            return {"val_loss": loss}

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
    best_row = min(history, key=lambda r: r["val_loss"])
    return {
        "config": config,
        "config_hash": config_hash(config),
        "history": history,
        "selected_epoch": int(best_row["epoch"]),
        "selected_on": "val_loss (validation split; the test split is never used for selection)",
        "best_val_loss": float(best_row["val_loss"]),
        "best_meta": json.loads(meta) if isinstance(meta, str) else meta,
        "model_path": str(out_dir / MODEL_DIR),
        "n_trained_parameters": n_trained,
    }
