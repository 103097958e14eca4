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
from os import PathLike
from pathlib import Path
from typing import Any

from medlens._optional import require
from medlens._provenance import config_hash, file_sha256
from medlens._validation import InputError, check_option
from medlens.grounding._model import PREPROCESSOR, load_grounder
from medlens.grounding._prompts import PROMPT_MODES, render_prompt

__all__ = ["BEST", "caption_for", "train_grounder"]

BEST = "best.safetensors"
MODEL_DIR = "model"


def caption_for(kb: Any, finding: str, mode: str = "definition", attributes: str | None = None) -> str:
    """The caption of a query: the finding's prompt under ``mode`` (see :func:`medlens.grounding.render_prompt`)."""
    return render_prompt(kb.get(finding), mode, attributes=attributes)  # type: ignore[arg-type]


def _plan(n: int, batch_size: int) -> Any:
    def plan(rng: Any) -> list[tuple[list[int], int]]:
        order = rng.permutation(n).tolist()
        return [(order[i : i + batch_size], len(order[i : i + batch_size])) for i in range(0, n, batch_size)]

    return plan


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
) -> dict[str, Any]:
    """Train on ``splits["train"]``, select the epoch on ``splits["val"]``; returns a summary dict.

    Queries carry ``image`` (path), ``finding``, ``gold`` (pixel boxes), ``width``, ``height``.
    ``callback(epoch, row)`` runs after each epoch's checkpoint.
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
        "n_train": len(train),
        "n_val": len(val),
    }
    seed_torch(seed)
    g = load_grounder(mp, device=device)
    model = g.model
    for name, prm in model.named_parameters():
        prm.requires_grad_(not (freeze_vision and "vision_tower" in name))
    trained = {n for n, p in model.named_parameters() if p.requires_grad}

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

        def step(idx: list[int]) -> tuple[Any, dict[str, float]]:
            qs = [train[i] for i in idx]
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

        history = trainer.fit(_plan(len(train), int(batch_size)), step, n_items=len(train), train_mode=train_mode,
                              validate=validate, callback=callback)  # fmt: skip
        tensors, meta = read_safetensors(out_dir / BEST, what="best checkpoint")
        model.load_state_dict(tensors, strict=False)
        dest = out_dir / MODEL_DIR
        if dest.exists():
            shutil.rmtree(dest)
        model.save_pretrained(dest)
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
        "n_trained_parameters": int(sum(p.numel() for n, p in model.named_parameters() if n in trained)),
    }
