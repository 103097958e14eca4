"""open_clip models from a local folder in the hub layout (BiomedCLIP and other open_clip checkpoints).

The folder holds ``open_clip_config.json`` (``model_cfg`` + ``preprocess_cfg``) and
``open_clip_pytorch_model.bin`` or ``open_clip_model.safetensors``. The model is built from the config with
no pretrained tower weights, then the checkpoint is loaded with open_clip's own ``load_checkpoint``.
A Hugging Face text tower (``text_cfg.hf_model_name``) and tokenizer (``hf_tokenizer_name``) must resolve
to a local folder or the local cache; tokenizer files inside the model folder win, as in open_clip.
Features are ``encode_text`` / ``encode_image`` before L2 norm.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Unpack

from medlens._device import set_offline
from medlens._optional import require
from medlens._validation import InputError
from medlens.encoders import _towers as T
from medlens.encoders._base import BaseEncoder, EncoderOptions, Tower
from medlens.encoders._hub import resolve_hf_ref
from medlens.encoders._transformers import TOKENIZER_FILES

__all__ = ["OpenClipEncoder"]

set_offline()
torch = T.torch
open_clip = require("open_clip", extra="vision", purpose="open_clip encoders")
oc_transform = require("open_clip.transform", extra="vision")
oc_tokenizer = require("open_clip.tokenizer", extra="vision")


def _attrs(root: Any, *paths: str) -> list[Any]:
    """The objects at dotted ``paths`` under ``root`` that exist (modules or parameters)."""
    out = []
    for path in paths:
        obj = root
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if obj is not None:
            out.append(obj)
    return out


class OpenClipEncoder(BaseEncoder):
    """An open_clip model folder (``open_clip_config.json`` + weights) as an image-text encoder.

    ``max_length`` shortens the text context of models with a separate text tower (BiomedCLIP's PubMedBERT,
    open_clip's custom text transformers); classic CLIP text towers read exactly ``context_length`` tokens.

    Attributes
    ----------
    logit_scale : float
        ``exp(learned log temperature)``; zero-shot logits are ``logit_scale * cos + logit_bias``.
    logit_bias : float or None
        Learned bias of SigLIP-style models, ``None`` for CLIP-style ones.
    """

    family = "open_clip"

    def __init__(self, path: str | Path, *, max_length: int | None = None, **options: Unpack[EncoderOptions]) -> None:
        super().__init__(path, **options)
        folder = self.folder
        cfg_file = folder / "open_clip_config.json"
        try:
            cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
            model_cfg = copy.deepcopy(cfg["model_cfg"])
            text_cfg, vision_cfg = model_cfg["text_cfg"], model_cfg["vision_cfg"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise InputError(
                f"{cfg_file}: expected JSON with model_cfg.text_cfg and model_cfg.vision_cfg ({type(e).__name__}: {e})."
            ) from None
        if "multimodal_cfg" in model_cfg:
            raise InputError(f"{cfg_file}: CoCa models (multimodal_cfg) are not supported; use a CLIP-style model.")
        hf_text = bool(text_cfg.get("hf_model_name"))
        if hf_text:
            ref = resolve_hf_ref(text_cfg["hf_model_name"], base=folder, what="text_cfg.hf_model_name")
            text_cfg["hf_model_name"] = str(ref)
            text_cfg["hf_model_pretrained"] = False
        if "timm_model_name" in vision_cfg:
            vision_cfg["timm_model_pretrained"] = False
        custom_text = bool(model_cfg.pop("custom_text", False)) or hf_text
        model = (open_clip.CustomTextCLIP if custom_text else open_clip.CLIP)(**model_cfg)
        try:
            open_clip.load_checkpoint(model, str(self.weights))
        except RuntimeError as e:
            msg = " ".join(str(e).split())[:300]
            raise InputError(f"{self.weights}: the weights do not match {cfg_file.name} ({msg}).") from None
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.tokenizer = self._tokenizer(folder, text_cfg, self._context(folder, text_cfg, custom_text, max_length))
        pp = oc_transform.merge_preprocess_dict(oc_transform.PreprocessCfg(), cfg.get("preprocess_cfg", {}))
        pp["size"] = self.model.visual.image_size
        self.preprocess = oc_transform.image_transform_v2(oc_transform.PreprocessCfg(**pp), is_train=False)
        self.logit_scale = float(self.model.logit_scale.detach().exp())
        bias = getattr(self.model, "logit_bias", None)
        self.logit_bias = float(bias.detach()) if bias is not None else None
        self._dim = int(model_cfg["embed_dim"])
        self._towers = {"text": self._text_tower(custom_text), "image": self._image_tower()}
        size = pp["size"]
        self.config = self._make_config(
            modality="image-text",
            embedding_dim=self._dim,
            max_length=int(self.tokenizer.context_length),
            input_size=tuple(int(s) for s in size) if isinstance(size, list | tuple) else (int(size), int(size)),
            mean=tuple(float(x) for x in pp["mean"]),
            std=tuple(float(x) for x in pp["std"]),
            interpolation=str(pp["interpolation"]),
        )

    @staticmethod
    def _context(folder: Path, text_cfg: dict, custom_text: bool, max_length: int | None) -> int:
        """Tokens per text: the config's context, or fewer when ``max_length`` asks and the tower allows it."""
        context = int(text_cfg.get("context_length", oc_tokenizer.DEFAULT_CONTEXT_LENGTH))
        if max_length is None or int(max_length) >= context:
            return context
        if not custom_text:  # classic CLIP adds its full positional table and causal mask to every text
            raise InputError(
                f"{folder}: this open_clip text tower reads exactly {context} tokens; max_length={max_length} "
                "cannot shorten it (drop max_length)."
            )
        return int(max_length)

    @staticmethod
    def _tokenizer(folder: Path, text_cfg: dict, context: int) -> Any:
        """The tokenizer open_clip would build: an HF tokenizer when the config names one, else CLIP's BPE."""
        kwargs = dict(text_cfg.get("tokenizer_kwargs", {}))
        ref = text_cfg.get("hf_tokenizer_name")
        if not ref:
            return oc_tokenizer.SimpleTokenizer(context_length=context, **kwargs)
        local = any((folder / f).is_file() for f in TOKENIZER_FILES)
        source = folder if local else resolve_hf_ref(ref, base=folder, what="text_cfg.hf_tokenizer_name")
        return oc_tokenizer.HFTokenizer(
            str(source), context_length=context, tokenizer_mode=text_cfg.get("tokenizer_mode"), **kwargs
        )

    def tower(self, modality: str) -> Tower:
        """The trainable view of the ``"text"`` or ``"image"`` tower (``encode_*`` before L2 norm)."""
        self._require(modality)
        return self._towers[modality]

    def _text_tower(self, custom_text: bool) -> Tower:
        m = self.model
        if custom_text:  # a separate text module (HF transformer or open_clip TextTransformer) with its projection
            module = T.TowerModule(lambda t: m.encode_text(t), text=m.text)
            head = _attrs(m.text, "proj", "pooler", "ln_final", "text_projection")
        else:  # classic CLIP keeps the text parts on the model itself; share them in one module
            module = T.TowerModule(
                lambda t: m.encode_text(t),
                token_embedding=m.token_embedding,
                positional_embedding=m.positional_embedding,
                transformer=m.transformer,
                ln_final=m.ln_final,
                text_projection=m.text_projection,
            )
            head = _attrs(m, "ln_final", "text_projection")

        def prepare(texts: Any) -> Any:
            return self.tokenizer([str(t) for t in texts]).to(self.device)

        return T.block_tower(module, self._dim, prepare, head)

    def _image_tower(self) -> Tower:
        m = self.model
        module = T.TowerModule(lambda x: m.encode_image(x), visual=m.visual)
        head = _attrs(
            m.visual, "ln_post", "attn_pool", "attn_pool_contrastive", "proj", "trunk.norm", "trunk.fc_norm", "head"
        )

        def prepare(images: Any) -> Any:
            return T.image_batch(
                images, lambda pils: torch.stack([self.preprocess(p) for p in pils]), self.device, self.dtype
            )

        return T.block_tower(module, self._dim, prepare, head)
