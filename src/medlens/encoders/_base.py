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
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from medlens._optional import require
from medlens._validation import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["BaseEncoder", "Encoder", "EncoderConfig", "Tower", "resolve_device", "resolve_dtype", "set_offline"]

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


def set_offline() -> None:
    """Forbid hub downloads: medlens loads weights from local paths or the local cache only."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:  # weight-loading progress bars are noise in logs; medlens shows its own progress where useful
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is optional
        pass


def resolve_device(device: str | None) -> str:
    """``"auto"`` → ``"cuda"`` when available else ``"cpu"``; ``"cuda"`` without a GPU is a clear error."""
    torch = require("torch", extra="torch")
    device = (device or "cpu").lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} was requested but torch sees no CUDA device; use --device cpu or auto.")
    if not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise InputError(f"unknown device {device!r}; expected cpu, cuda, cuda:N, mps or auto.")
    return device


_DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16", "bfloat16": "bfloat16"}


def resolve_dtype(dtype: str | None, device: str) -> torch.dtype:
    """Map ``float32 | float16 | bfloat16`` to a torch dtype; half precision on CPU is refused for float16."""
    torch = require("torch", extra="torch")
    key = _DTYPES.get(str(dtype or "float32").lower())
    if key is None:
        raise InputError(f"unknown dtype {dtype!r}; expected float32, float16 or bfloat16.")
    if key == "float16" and device == "cpu":
        raise InputError("float16 inference is not supported on CPU; use float32 or bfloat16.")
    return getattr(torch, key)


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


class progress_bar:
    """A rich progress bar when ``enabled`` (a terminal, no ``--json``), else a no-op; call it with a step."""

    def __init__(self, total: int, enabled: bool, description: str) -> None:
        self.total, self.enabled, self.description = total, enabled, description
        self._progress = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._progress = Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
        )
        self._progress.__enter__()
        task = self._progress.add_task(self.description, total=self.total)
        return lambda n: self._progress.advance(task, n)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
