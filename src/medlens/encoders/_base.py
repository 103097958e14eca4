"""The ``Encoder`` protocol, its frozen configuration, the trainable ``Tower`` view, and shared plumbing.

Every adapter (sentence-transformers, transformers, open_clip, timm) subclasses :class:`BaseEncoder`:

* ``encode_texts`` / ``encode_images`` run batched, without gradients, on the chosen device and dtype, and
  return float32 arrays of shape (n, dim) (L2-normalised when ``config.normalized``);
* ``tower(modality)`` returns a :class:`Tower`: the torch module of one modality, a ``prepare`` function from
  raw inputs to a model batch, a ``forward`` that returns *unnormalised* features (fine-tuning needs the
  length), the ordered transformer blocks (last-block fine-tuning) and the Linear layers LoRA wraps.

Weights load only from local folders or the local Hugging Face cache; :func:`set_offline` is called before
any hub library is imported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from medlens._optional import require
from medlens._progress import progress_bar
from medlens._validation import InputError

__all__ = ["BaseEncoder", "Encoder", "EncoderConfig", "Tower"]

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


@runtime_checkable
class Encoder(Protocol):
    """Anything that turns a batch of texts and/or images into float32 embeddings of shape (n, dim)."""

    config: EncoderConfig
    model_id: str

    def encode_texts(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray: ...

    def encode_images(self, images: Sequence[Any], *, batch_size: int = 32, progress: bool = False) -> np.ndarray: ...

    def tower(self, modality: Modality) -> Tower: ...


class BaseEncoder:
    """Shared batching, progress, device/dtype handling and normalisation for every adapter.

    Subclasses set ``self.config``, ``self.model_id``, ``self.device``, ``self.dtype`` and implement
    :meth:`tower` for each modality they support.
    """

    config: EncoderConfig
    model_id: str
    device: str = "cpu"
    dtype: Any = None
    revision: str | None = None  # commit of the cached hub snapshot the weights came from, when known
    logit_scale: float | None = None  # image-text models: exp(learned log temperature)
    logit_bias: float | None = None  # SigLIP-style models: learned logit bias

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
        if batch_size < 1:
            raise InputError(f"batch size must be >= 1, got {batch_size}.")
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
