"""Hugging Face transformers encoders: CLIP and SigLIP (both towers), DINOv2 and other AutoModel towers.

Features equal the library's own calls, before any L2 norm: CLIP = ``get_text_features`` /
``get_image_features`` (the projected pooled states); SigLIP = the text head on the last token / the
attention-pooling head; DINOv2 and ViT = the CLS token after the final layer norm (``pooling="mean"``: the
mean of the patch tokens; ``"pooler"``: the model's ``pooler_output``, the default for other image models);
a text AutoModel (BERT-like) = the mean of the last hidden states over the attention mask
(sentence-transformers' mean pooling; ``pooling="cls"``: the first token). Inputs go through the folder's
own ``AutoTokenizer`` / ``AutoImageProcessor``, so pixel values and token ids equal the library's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Unpack

from medlens._device import set_offline
from medlens._optional import require
from medlens._validation import InputError, check_option
from medlens.encoders import _towers as T
from medlens.encoders._base import BaseEncoder, EncoderOptions, Tower

__all__ = ["TransformersEncoder"]

log = logging.getLogger(__name__)

set_offline()
torch = T.torch
transformers = require("transformers", extra="hf", purpose="transformers encoders")

CLS_TYPES = ("dinov2", "dinov2_with_registers", "vit")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model")
POOLINGS = {"image": ("cls", "mean", "pooler"), "text": ("mean", "cls")}


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def _kind(folder: Path, cfg: Any, modality: str | None) -> str:
    """``clip`` | ``siglip`` (both towers) | ``image`` | ``text`` (one AutoModel tower)."""
    mt = cfg.model_type
    if mt in ("clip", "siglip"):
        return mt
    if hasattr(cfg, "text_config") and hasattr(cfg, "vision_config"):
        raise InputError(
            f"{folder}: model_type {mt!r} is a vision-language model without a medlens adapter; supported "
            "dual encoders are clip and siglip (transformers) and open_clip folders (open_clip_config.json)."
        )
    if mt in CLS_TYPES:
        return "image"
    if modality is not None:
        return check_option(modality, ("text", "image"), name="modality")
    has_proc = (folder / "preprocessor_config.json").is_file()
    has_tok = any((folder / f).is_file() for f in TOKENIZER_FILES)
    if has_proc != has_tok:
        return "image" if has_proc else "text"
    raise InputError(
        f"{folder}: cannot tell whether this {mt!r} model encodes text or images (it has "
        f"{'both' if has_proc else 'neither'} a tokenizer and an image processor); pass modality='text' or 'image'."
    )


def _image_fields(proc: Any) -> dict[str, Any]:
    """input_size / mean / std / interpolation of an image processor, as the processor will apply them."""
    size = proc.crop_size if getattr(proc, "do_center_crop", False) and getattr(proc, "crop_size", None) else None
    size = size or getattr(proc, "size", None)
    h, w, short = (_get(size, k) for k in ("height", "width", "shortest_edge")) if size else (None, None, None)
    mean, std = getattr(proc, "image_mean", None), getattr(proc, "image_std", None)
    return {
        "input_size": (int(h), int(w)) if h and w else ((int(short), int(short)) if short else None),
        "mean": tuple(float(x) for x in mean) if mean is not None else None,
        "std": tuple(float(x) for x in std) if std is not None else None,
        "interpolation": T.interpolation_name(getattr(proc, "resample", None)),
    }


class TransformersEncoder(BaseEncoder):
    """A transformers model folder (``config.json`` with ``model_type``) as a medlens encoder.

    Parameters
    ----------
    path : path
        Local folder saved with ``save_pretrained`` (weights, config, tokenizer and/or image processor).
    device, dtype, normalize
        As in :func:`medlens.encoders.load_encoder`.
    pooling : {"cls", "mean", "pooler"} for image AutoModels, {"mean", "cls"} for text AutoModels
        Ignored by CLIP and SigLIP, whose pooling is part of the model. Default: ``"cls"`` for DINOv2/ViT,
        ``"pooler"`` for other image models, ``"mean"`` for text models.
    modality : {"text", "image"}, optional
        For an AutoModel folder that holds both or neither of a tokenizer and an image processor.
    max_length : int, optional
        Truncate texts to this many tokens (default: the tokenizer's limit, capped by the position embeddings).

    Attributes
    ----------
    logit_scale : float or None
        CLIP/SigLIP temperature ``exp(learned log-scale)``: zero-shot logits are
        ``logit_scale * cos(text, image) + logit_bias``. ``None`` for single-tower models.
    logit_bias : float or None
        SigLIP's learned bias; ``None`` otherwise.
    """

    family = "transformers"

    def __init__(
        self,
        path: str | Path,
        *,
        pooling: str | None = None,
        modality: str | None = None,
        max_length: int | None = None,
        **options: Unpack[EncoderOptions],
    ) -> None:
        super().__init__(path, **options)
        folder = self.folder
        hf_cfg = transformers.AutoConfig.from_pretrained(str(folder))
        self.model_type = hf_cfg.model_type
        self.kind = kind = _kind(folder, hf_cfg, modality)
        if kind in ("clip", "siglip"):
            if pooling is not None:
                raise InputError(f"{folder}: {kind} pools inside the model; drop pooling={pooling!r}.")
        else:
            default = "mean" if kind == "text" else ("cls" if self.model_type in CLS_TYPES else "pooler")
            pooling = check_option(pooling or default, POOLINGS[kind], name="pooling")
        self.pooling = pooling
        model_cls = {"clip": transformers.CLIPModel, "siglip": transformers.SiglipModel}.get(
            kind, transformers.AutoModel
        )
        self.model = model_cls.from_pretrained(str(folder)).to(device=self.device, dtype=self.dtype).eval()
        has_text, has_image = kind != "image", kind != "text"
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder)) if has_text else None
        self.processor = transformers.AutoImageProcessor.from_pretrained(str(folder)) if has_image else None
        self.max_length = self._max_length(hf_cfg, max_length) if has_text else None
        self.logit_scale = float(self.model.logit_scale.detach().exp()) if has_text and has_image else None
        self.logit_bias = float(self.model.logit_bias.detach()) if kind == "siglip" else None
        self._towers: dict[str, Tower] = {}
        if has_text:
            self._towers["text"] = self._text_tower()
        if has_image:
            self._towers["image"] = self._image_tower()
        image_fields = _image_fields(self.processor) if has_image else {}
        self.config = self._make_config(
            modality="image-text" if has_text and has_image else kind,
            embedding_dim=self._towers["image" if has_image else "text"].dim,
            max_length=self.max_length,
            pooling=pooling,
            **image_fields,
        )

    def _max_length(self, hf_cfg: Any, requested: int | None) -> int:
        text_cfg = getattr(hf_cfg, "text_config", None) or hf_cfg
        limits = [int(self.tokenizer.model_max_length)]
        if getattr(text_cfg, "max_position_embeddings", None):
            limits.append(int(text_cfg.max_position_embeddings))
        if requested is not None:
            limits.append(int(requested))
        return min(limits)

    # -- towers -------------------------------------------------------------------------------------------
    def tower(self, modality: str) -> Tower:
        """The trainable view of the ``"text"`` or ``"image"`` tower (features before L2 norm)."""
        self._require(modality)
        return self._towers[modality]

    def _text_tower(self) -> Tower:
        m, kind = self.model, self.kind
        if kind == "clip":
            module = T.TowerModule(
                lambda b: m.text_projection(m.text_model(**b).pooler_output),
                text_model=m.text_model,
                text_projection=m.text_projection,
            )
            head, dim = [m.text_model.final_layer_norm, m.text_projection], m.text_projection.out_features
        elif kind == "siglip":
            module = T.TowerModule(lambda b: m.text_model(**b).pooler_output, text_model=m.text_model)
            head, dim = [m.text_model.final_layer_norm, m.text_model.head], m.text_model.head.out_features
        else:
            pooling = self.pooling

            def features(b: dict) -> Any:
                hidden = m(**b).last_hidden_state
                if pooling == "cls":
                    return hidden[:, 0]
                mask = b["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

            module, head, dim = T.TowerModule(features, model=m), [], int(m.config.hidden_size)
        # SigLIP was trained on max-length padding without an attention mask (its tokenizer returns none).
        padding = "max_length" if kind == "siglip" else True
        mask = True if kind == "text" else None

        def prepare(texts: Any) -> dict:
            enc = self.tokenizer(
                [str(t) for t in texts],
                padding=padding,
                truncation=True,
                max_length=self.max_length,
                return_attention_mask=mask,
                return_tensors="pt",
            )
            keep = enc.keys() if kind == "text" else ("input_ids", "attention_mask")
            return {k: v.to(self.device) for k, v in enc.items() if k in keep}

        return T.block_tower(module, dim, prepare, head)

    def _image_tower(self) -> Tower:
        m, kind = self.model, self.kind
        if kind == "clip":
            module = T.TowerModule(
                lambda x: m.visual_projection(m.vision_model(pixel_values=x).pooler_output),
                vision_model=m.vision_model,
                visual_projection=m.visual_projection,
            )
            head, dim = [m.vision_model.post_layernorm, m.visual_projection], m.visual_projection.out_features
        elif kind == "siglip":
            module = T.TowerModule(lambda x: m.vision_model(pixel_values=x).pooler_output, vision_model=m.vision_model)
            head = [m.vision_model.post_layernorm, getattr(m.vision_model, "head", None)]
            dim = int(m.config.vision_config.hidden_size)
        else:
            pooling, model_type = self.pooling, self.model_type
            n_prefix = 1 + int(getattr(m.config, "num_register_tokens", 0) or 0) if model_type in CLS_TYPES else 0

            def features(x: Any) -> Any:
                out = m(pixel_values=x)
                if pooling == "pooler":
                    return out.pooler_output.flatten(1)
                hidden = out.last_hidden_state
                if hidden.ndim != 3:
                    raise InputError(
                        f"pooling={pooling!r} needs token outputs, but {model_type!r} returns feature maps of "
                        f"shape {tuple(hidden.shape)}; use pooling='pooler'."
                    )
                return hidden[:, 0] if pooling == "cls" else hidden[:, n_prefix:].mean(1)

            module = T.TowerModule(features, model=m)
            norms = [getattr(m, n, None) for n in ("layernorm", "post_layernorm", "norm")]
            head = norms + ([getattr(m, "pooler", None)] if pooling == "pooler" else [])
            sizes = getattr(m.config, "hidden_sizes", None)
            dim = int(sizes[-1]) if sizes else int(m.config.hidden_size)

        def prepare(images: Any) -> Any:
            to_pixels = lambda pils: self.processor(images=pils, return_tensors="pt")["pixel_values"]  # noqa: E731
            return T.image_batch(images, to_pixels, self.device, self.dtype)

        return T.block_tower(module, int(dim), prepare, head)
