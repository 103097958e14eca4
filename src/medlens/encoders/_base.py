"""The ``Encoder`` protocol, its frozen configuration, the trainable ``Tower`` view, and shared plumbing.

Every adapter (sentence-transformers, transformers, open_clip, timm) subclasses :class:`BaseEncoder`:

* ``encode_texts`` / ``encode_images`` run batched, without gradients, on the chosen device and dtype, and
  return float32 arrays of shape (n, dim) (L2-normalised when ``config.normalized``);
* ``tower(modality)`` returns a :class:`Tower`: the torch module of one modality, a ``prepare`` function from
  raw inputs to a model batch, a ``forward`` that returns *unnormalised* features (fine-tuning needs the
  length), the ordered transformer blocks (last-block fine-tuning) and the Linear layers LoRA wraps.

Every adapter starts with ``BaseEncoder.__init__`` (the keyword options of :class:`EncoderOptions`: device and
dtype checked, the model folder and its weight file found, the citation fields kept) and ends with
:meth:`BaseEncoder._make_config`; in between it only loads its model. Weights load only from local folders or
the local Hugging Face cache; :func:`set_offline` is called before any hub library is imported.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

import numpy as np

from medlens._device import resolve_device, resolve_dtype
from medlens._optional import require
from medlens._progress import progress_bar
from medlens._validation import InputError
from medlens.encoders._hub import check_weights

__all__ = ["BaseEncoder", "Encoder", "EncoderConfig", "EncoderOptions", "Tower", "check_batch_size"]

log = logging.getLogger(__name__)

Modality = Literal["text", "image"]


@dataclass(frozen=True)
class EncoderConfig:
    """What a user needs to know to feed an encoder and to cite it.

    ``input_size`` (height, width), ``mean``, ``std`` and ``interpolation`` are the model's own image
    preprocessing; ``max_length`` its text context in tokens; ``pooling`` how token features become one vector
    where the adapter chooses it (``"cls"``, ``"mean"``, ``"pooler"``; ``None`` when fixed by the model).
    """

    name: str
    source: str
    modality: Literal["text", "image", "image-text"]
    embedding_dim: int
    family: str = "sentence-transformers"
    max_length: int | None = None
    input_size: tuple[int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    interpolation: str | None = None
    normalized: bool = True
    license: str | None = None
    paper: str | None = None
    pooling: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("input_size", "mean", "std"):
            if d[key] is not None:
                d[key] = list(d[key])
        return d

    @property
    def modalities(self) -> frozenset[str]:
        return frozenset({"text", "image"}) if self.modality == "image-text" else frozenset({self.modality})


@dataclass
class Tower:
    """Trainable torch view of one modality of an encoder (what fine-tuning needs).

    Attributes
    ----------
    module : torch.nn.Module
        Owns every parameter of the tower (moved, frozen and unfrozen as a whole).
    dim : int
        Feature size returned by ``forward``.
    prepare : callable
        Raw inputs (a list of strings, or of image paths / PIL images / arrays) → a model batch already on
        the module's device (a dict of tensors or a pixel tensor).
    forward : callable
        Model batch → features of shape (n, dim), *never* L2-normalised (the length carries information).
    blocks : sequence of torch.nn.Module
        The transformer blocks in order; last-block fine-tuning trains ``blocks[-1]`` and ``head``.
    head : sequence of torch.nn.Module
        Modules after the last block that last-block fine-tuning also trains (final norm, pooler, projection).
    lora_targets : tuple of str
        Names (suffixes) of the Linear layers that LoRA adapts, e.g. ``("query", "value")``.
    """

    module: Any
    dim: int
    prepare: Callable[[Sequence[Any]], Any]
    forward: Callable[[Any], Any]
    blocks: Sequence[Any] = field(default_factory=list)
    head: Sequence[Any] = field(default_factory=list)
    lora_targets: tuple[str, ...] = ()


class EncoderOptions(TypedDict, total=False):
    """The keyword options every adapter takes (what :func:`medlens.encoders.load_encoder` passes on).

    ``device`` (``"cpu"``, ``"cuda"``, ``"auto"``; default cpu), ``dtype`` (``"float32"``, ``"bfloat16"``,
    ``"float16"``; default float32), ``normalize`` (L2-normalise embeddings; default True), and the citation
    fields ``name``, ``source``, ``license``, ``paper`` (default: from the folder) and ``revision`` (the commit of
    the cached hub snapshot).
    """

    device: str
    dtype: str
    normalize: bool
    name: str | None
    source: str | None
    license: str | None
    paper: str | None
    revision: str | None


def check_batch_size(batch_size: int) -> None:
    """Refuse a batch size below one (every ``encode_*`` call)."""
    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}.")


@runtime_checkable
class Encoder(Protocol):
    """Anything that turns a batch of texts and/or images into float32 embeddings of shape (n, dim)."""

    config: EncoderConfig
    model_id: str

    def encode_texts(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray: ...

    def encode_images(self, images: Sequence[Any], *, batch_size: int = 32, progress: bool = False) -> np.ndarray: ...

    def tower(self, modality: Modality) -> Tower: ...


class BaseEncoder:
    """Shared construction, batching, progress, device/dtype handling and normalisation for every adapter.

    An adapter sets ``family`` (its folder layout), calls ``super().__init__(path, **options)`` first, loads its
    model onto ``self.device`` / ``self.dtype``, sets ``self.config = self._make_config(...)`` and implements
    :meth:`tower` for each modality it supports. (An encoder built another way may skip ``__init__`` and set
    ``config``, ``model_id``, ``device`` and ``dtype`` itself.)
    """

    config: EncoderConfig
    model_id: str
    family: str = ""
    device: str = "cpu"
    dtype: Any = None
    normalize: bool = True
    folder: Path | None = None  # the model folder
    weights: Path | None = None  # its weight file, where the layout names one
    revision: str | None = None  # commit of the cached hub snapshot the weights came from, when known
    logit_scale: float | None = None  # image-text models: exp(learned log temperature)
    logit_bias: float | None = None  # SigLIP-style models: learned logit bias

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        normalize: bool = True,
        name: str | None = None,
        source: str | None = None,
        license: str | None = None,
        paper: str | None = None,
        revision: str | None = None,
    ) -> None:
        """Check the options, find the model folder and its weights (:meth:`_locate`), keep the citation."""
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.normalize = normalize
        self.folder, defaults = self._locate(path)
        self._cite = {
            "name": name or defaults["name"],
            "source": source or defaults["source"],
            "license": license or defaults.get("license"),
            "paper": paper or defaults.get("paper"),
        }
        self.model_id = self._cite["source"]
        self.revision = revision

    def _locate(self, path: str | os.PathLike) -> tuple[Path, dict[str, str]]:
        """The model folder of ``path`` and the citation defaults (``name``, ``source``; optionally ``license``,
        ``paper``) for what the caller leaves out. Default: ``path`` itself, with a weight file of ``family``'s
        layout (kept as ``self.weights``)."""
        folder = Path(path)
        self.weights = check_weights(folder, self.family)
        return folder, {"name": folder.name, "source": str(folder)}

    def _make_config(self, **fields: Any) -> EncoderConfig:
        """The :class:`EncoderConfig`: the citation, family and ``normalize`` of the options, plus the adapter's
        ``fields`` (``modality``, ``embedding_dim``, preprocessing; a ``license`` here overrides the default)."""
        base = {**self._cite, "family": self.family, "normalized": self.normalize}
        return EncoderConfig(**{**base, **fields})

    # -- the trainable view -------------------------------------------------------------------------------
    def tower(self, modality: Modality) -> Tower:  # pragma: no cover - every adapter overrides
        raise NotImplementedError

    def _require(self, modality: Modality) -> None:
        if modality not in self.config.modalities:
            other = "--texts" if modality == "image" else "--images"
            raise InputError(
                f"encoder {self.config.name!r} encodes {self.config.modality} only, not {modality}s; "
                f"use {other} or an encoder that encodes {modality}s."
            )

    # -- inference ----------------------------------------------------------------------------------------
    def encode_texts(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` → float32 array (n, dim)."""
        self._require("text")
        return self._encode("text", [str(t) for t in texts], batch_size, progress)

    def encode_images(self, images: Sequence[Any], *, batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed images (paths, PIL images or H×W[×C] arrays) → float32 array (n, dim)."""
        self._require("image")
        return self._encode("image", list(images), batch_size, progress)

    def _encode(self, modality: Modality, items: list[Any], batch_size: int, progress: bool) -> np.ndarray:
        torch = require("torch", extra="torch")
        check_batch_size(batch_size)
        if not items:
            return np.zeros((0, self.config.embedding_dim), dtype=np.float32)
        tw = self.tower(modality)
        was_training = tw.module.training
        tw.module.eval()
        out = []
        try:
            with torch.inference_mode(), progress_bar(len(items), progress, f"encoding {modality}s") as bar:
                for start in range(0, len(items), batch_size):
                    chunk = items[start : start + batch_size]
                    feats = tw.forward(tw.prepare(chunk)).float()
                    if self.config.normalized:
                        feats = torch.nn.functional.normalize(feats, dim=-1)
                    out.append(feats.cpu().numpy())
                    bar(len(chunk))
        finally:
            tw.module.train(was_training)
        return np.concatenate(out).astype(np.float32, copy=False)
