"""timm image models from a local folder in timm's hub layout.

The folder holds ``config.json`` (``architecture``, ``num_classes``, ``pretrained_cfg`` and, from recent timm,
``model_args``) and ``model.safetensors`` or ``pytorch_model.bin``, as ``timm.models.save_for_hf`` writes them
and the ``timm/...`` hub repos hold them. The model is created with ``pretrained=False, num_classes=0`` and
the weights are loaded without the classifier; features are the pooled pre-logits
(``forward_head(forward_features(x), pre_logits=True)``). Preprocessing is timm's own eval transform
(``resolve_data_config`` + ``create_transform``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Unpack

from medlens._device import set_offline
from medlens._optional import require
from medlens._validation import InputError
from medlens.encoders import _towers as T
from medlens.encoders._base import BaseEncoder, EncoderOptions, Tower

__all__ = ["TimmEncoder"]

set_offline()
torch = T.torch
timm = require("timm", extra="vision", purpose="timm image encoders")
timm_data = require("timm.data", extra="vision")


class TimmEncoder(BaseEncoder):
    """A timm model folder (hub layout) as an image encoder of its pooled pre-logits features.

    ``max_length`` is accepted for a uniform signature and unused (there is no text tower; asking for text
    features is a modality error).
    """

    family = "timm"

    def __init__(self, path: str | Path, *, max_length: int | None = None, **options: Unpack[EncoderOptions]) -> None:
        super().__init__(path, **options)
        cfg_file = self.folder / "config.json"
        try:
            cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
            arch, pretrained_cfg = cfg["architecture"], dict(cfg["pretrained_cfg"])
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise InputError(
                f"{cfg_file}: expected timm's hub config with architecture and pretrained_cfg ({type(e).__name__}: {e})."
            ) from None
        if not timm.is_model(arch):
            raise InputError(f"{cfg_file}: architecture {arch!r} is not a timm model (timm {timm.__version__}).")
        kwargs = {**cfg.get("model_args", {}), "num_classes": 0}
        model = timm.create_model(arch, pretrained=False, **kwargs)
        state = T.load_weights(self.weights)
        classifier = pretrained_cfg.get("classifier") or ()
        prefixes = tuple(f"{c}." for c in ([classifier] if isinstance(classifier, str) else classifier))
        state = {k: v for k, v in state.items() if not (prefixes and k.startswith(prefixes))}
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            msg = " ".join(str(e).split())[:300]
            raise InputError(
                f"{self.weights}: the weights do not match {arch} as configured in {cfg_file.name} ({msg})."
            ) from None
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        data_cfg = timm_data.resolve_data_config({}, pretrained_cfg=pretrained_cfg, model=self.model)
        self.data_config = data_cfg
        self.transform = timm_data.create_transform(**data_cfg, is_training=False)
        dim = int(getattr(model, "head_hidden_size", None) or model.num_features)
        self._tower = self._build(dim)
        self.config = self._make_config(
            modality="image",
            embedding_dim=dim,
            input_size=tuple(int(s) for s in data_cfg["input_size"][1:]),
            mean=tuple(float(x) for x in data_cfg["mean"]),
            std=tuple(float(x) for x in data_cfg["std"]),
            interpolation=str(data_cfg["interpolation"]),
            license=self._cite["license"] or pretrained_cfg.get("license"),
        )

    def tower(self, modality: str = "image") -> Tower:
        """The trainable view: the timm model, its blocks (or stages) and the norm/pool layers after them."""
        self._require(modality)
        return self._tower

    def _build(self, dim: int) -> Tower:
        m = self.model

        def prepare(images: Any) -> Any:
            return T.image_batch(
                images, lambda pils: torch.stack([self.transform(p) for p in pils]), self.device, self.dtype
            )

        head = [getattr(m, n, None) for n in ("norm", "fc_norm", "attn_pool", "head")]
        module = T.TowerModule(lambda x: m.forward_head(m.forward_features(x), pre_logits=True), model=m)
        return T.block_tower(module, dim, prepare, head, blocks=T.find_blocks(m))
