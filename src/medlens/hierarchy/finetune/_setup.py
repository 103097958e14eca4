"""What defines a fine-tuning run and builds its model: the config, the node features, the trainable parts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._validation import InputError
from medlens.hierarchy.finetune._losses import LossConfig, RadialConfig
from medlens.hierarchy.finetune._model import TaxonomyModel
from medlens.taxonomy import Taxonomy
from medlens.training import seed_torch

torch = require("torch", extra="torch", purpose="taxonomy-aware fine-tuning")

__all__ = ["MODES", "FinetuneConfig", "build_model", "input_modality", "node_features", "node_texts"]

MODES = ("head", "last-block", "lora", "full")


@dataclass(frozen=True)
class FinetuneConfig:
    """Everything that defines a fine-tuning run (hashed into the run manifest)."""

    loss: LossConfig = field(default_factory=LossConfig)
    mode: str = "last-block"
    epochs: int = 5
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.1
    max_grad_norm: float = 1.0
    dim: int | None = None
    temperature: float = 0.07
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    branch_depth: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"unknown fine-tuning mode {self.mode!r}; expected one of {', '.join(MODES)}.")
        for name in ("epochs", "batch_size", "lora_r"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}.")
        for name in ("lr", "head_lr", "temperature"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be > 0, got {getattr(self, name)}.")
        if not 0 <= self.warmup < 1:
            raise InputError(f"warmup is a fraction of the steps in [0, 1), got {self.warmup}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FinetuneConfig:
        d = dict(d)
        if "k" in d:  # finetune.json files written before the one-name rule called the branch depth "k"
            d["branch_depth"] = d.pop("k")
        loss = dict(d.pop("loss", {}))
        loss["radial"] = RadialConfig(**loss.get("radial", {}))
        return cls(loss=LossConfig(**loss), **d)


def node_texts(taxonomy: Taxonomy) -> dict[str, list[str]]:
    """The prompts that describe each non-root node (the zero-shot prompt table: the taxonomy's own prompts,
    else templates filled with the node's names)."""
    from medlens.hierarchy._prompts import build_prompt_table

    return build_prompt_table(taxonomy).prompts


def node_features(encoder: Any, taxonomy: Taxonomy) -> tuple[np.ndarray, str]:
    """Prompt-ensemble embedding of each node (as in zero-shot scoring), or one-hot rows for image-only encoders."""
    from medlens.hierarchy._prompts import build_prompt_table, ensemble_embeddings

    if "text" not in encoder.config.modalities:
        return np.eye(len(taxonomy) - 1, dtype=np.float32), "one-hot"
    table = build_prompt_table(taxonomy)
    texts, owner = table.flat()
    emb = ensemble_embeddings(encoder.encode_texts(texts), owner, len(table.nodes), names=table.nodes)
    return emb.astype(np.float32), f"prompts (sha256 {table.sha256()[:12]})"


def _setup_trainable(model: TaxonomyModel, config: FinetuneConfig) -> None:
    """Freeze the encoder, then unfreeze (or add LoRA to) what the mode trains."""
    enc = model.encoder
    for p in enc.parameters():
        p.requires_grad_(False)
    tower = model.tower
    if config.mode == "full":
        for p in enc.parameters():
            p.requires_grad_(True)
    elif config.mode == "last-block":
        if not tower.blocks:
            raise InputError("this encoder exposes no transformer blocks; use --mode head, lora or full.")
        for m in [tower.blocks[-1], *tower.head]:
            for p in m.parameters():
                p.requires_grad_(True)
    elif config.mode == "lora":
        peft = require("peft", extra="hf", purpose="LoRA fine-tuning")
        names = {n.rsplit(".", 1)[-1] for n, m in enc.named_modules() if isinstance(m, torch.nn.Linear)}
        targets = [t for t in tower.lora_targets if t in names]
        if not targets:
            raise InputError(
                f"LoRA: none of the encoder's target layers {list(tower.lora_targets)} exist in this model; "
                "use --mode last-block or head."
            )
        lcfg = peft.LoraConfig(
            r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout, target_modules=targets
        )
        peft.inject_adapter_in_model(lcfg, enc)
        for n, p in enc.named_parameters():
            p.requires_grad_("lora_" in n)


def input_modality(encoder: Any, modality: str | None) -> str:
    """The tower the inputs go through: the only one, or ``image`` for image-text encoders unless told."""
    have = encoder.config.modalities
    if modality is None:
        return "text" if have == {"text"} else "image"
    if modality not in have:
        raise InputError(
            f"encoder {encoder.config.name!r} has no {modality} tower (it encodes {encoder.config.modality}); "
            f"use an encoder that encodes {modality}s."
        )
    return modality


def build_model(
    encoder: Any, taxonomy: Taxonomy, config: FinetuneConfig, node_feats: np.ndarray | None, modality: str
) -> TaxonomyModel:
    """The model to train (or to load weights into): seeded initialisation, the mode's trainable parts."""
    tower = encoder.tower(modality)
    if node_feats is None:
        node_feats, _ = node_features(encoder, taxonomy)
    seed_torch(config.seed)
    model = TaxonomyModel(tower, node_feats, dim=config.dim, temperature=config.temperature)
    _setup_trainable(model, config)
    model.to(getattr(encoder, "device", "cpu"))
    return model


def trainable_state(model: TaxonomyModel) -> dict[str, Any]:
    """The tensors a checkpoint and the saved model hold: the trained parameters and the node features."""
    keep = {n for n, p in model.named_parameters() if p.requires_grad}
    keep |= {"node_features"}
    return {n: t.detach().cpu().clone() for n, t in model.state_dict().items() if n in keep}
