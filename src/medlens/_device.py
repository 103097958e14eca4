"""Devices, dtypes and offline mode for every package that runs torch or a hub library."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from medlens._optional import require
from medlens._validation import InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["resolve_device", "resolve_dtype", "set_offline"]


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
