"""The ``Encoder`` protocol and its frozen configuration."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

__all__ = ["Encoder", "EncoderConfig", "set_offline"]


@dataclass(frozen=True)
class EncoderConfig:
    """What a user needs to know to feed an encoder and to cite it."""

    name: str
    source: str
    modality: Literal["text", "image", "image-text"]
    embedding_dim: int
    max_length: int | None = None
    input_size: tuple[int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    interpolation: str | None = None
    normalized: bool = True
    license: str | None = None
    paper: str | None = None


@runtime_checkable
class Encoder(Protocol):
    """Anything that turns a batch of texts and/or images into float32 embeddings of shape (n, dim)."""

    config: EncoderConfig

    def encode_texts(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray: ...


def set_offline() -> None:
    """Forbid hub downloads: medlens loads weights from local paths or the local cache only."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:  # weight-loading progress bars are noise in logs; medlens shows its own progress where useful
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is optional
        pass
