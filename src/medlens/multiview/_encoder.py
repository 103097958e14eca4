"""Encoding many views of a volume with a frozen 2-D image encoder, batched, without a PNG round trip.

Any :mod:`medlens.encoders` image encoder works (its trainable :class:`~medlens.encoders.Tower` is run on a pixel
tensor built here: grey slices in [0, 1] replicated to three channels, resized to the encoder's
``input_size`` and normalised with its ``mean``/``std``). For demonstrations without pretrained weights,
:class:`RandomConvEncoder` is a documented frozen encoder: a small CNN whose weights are drawn from a seeded
generator (He-normal), never trained. The same code takes DINOv2 from a local folder
(``load_encoder("/models/dinov2-small")``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medlens._device import resolve_device
from medlens._optional import require
from medlens._validation import InputError
from medlens.encoders import BaseEncoder, EncoderConfig, Tower

__all__ = ["RandomConvEncoder", "encode_views", "encoder_id"]


class RandomConvEncoder(BaseEncoder):
    """A frozen, seeded, randomly initialised CNN over grey slices (the demo encoder; no pretrained weights).

    Three 3×3 convolutions (stride 2, ReLU; ``widths`` channels) and a global mean‖max pool: features of
    ``2 × widths[-1]`` dimensions. Weights are He-normal draws from ``torch.Generator().manual_seed(seed)``, so the
    same seed gives the same encoder on every machine. ``size`` is the slice side it expects (``input_size``).
    """

    family = "medlens"

    def __init__(self, *, seed: int = 0, widths: Sequence[int] = (16, 32, 64), size: int = 64, device: str = "cpu"):
        torch = require("torch", extra="torch", purpose="the random-init CNN encoder")
        widths = tuple(int(w) for w in widths)
        if len(widths) < 1 or min(widths) < 1:
            raise InputError(f"widths must be positive channel counts; got {widths!r}.")
        self.device = resolve_device(device)
        self.dtype = torch.float32
        self.normalize = False
        self.seed, self.widths, self.size = int(seed), widths, int(size)
        gen = torch.Generator().manual_seed(self.seed)
        layers: list[Any] = []
        c_in = 3
        for w in widths:
            conv = torch.nn.Conv2d(c_in, w, 3, stride=2, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * np.sqrt(2.0 / (9 * c_in)))
                conv.bias.zero_()
            layers += [conv, torch.nn.ReLU()]
            c_in = w
        self.model = torch.nn.Sequential(*layers).to(self.device).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.model_id = f"medlens/random-cnn-{'-'.join(map(str, widths))}-seed{self.seed}"
        self._cite = {"name": "random-cnn", "source": self.model_id, "license": "Apache-2.0", "paper": None}
        dim = 2 * widths[-1]
        self.config = self._make_config(
            modality="image",
            embedding_dim=dim,
            input_size=(self.size, self.size),
            mean=(0.5, 0.5, 0.5),
            std=(0.25, 0.25, 0.25),
            interpolation="bilinear",
            pooling="mean-max",
        )
        m = self.model

        def forward(x: Any) -> Any:
            h = m(x)
            return torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)

        def prepare(images: Any) -> Any:
            arr = np.stack([np.asarray(im, dtype=np.float32) for im in images])
            return pixel_batch(arr, self.config, self.device)

        self._tower = Tower(module=m, dim=dim, prepare=prepare, forward=forward)

    def tower(self, modality: str = "image") -> Tower:
        self._require(modality)
        return self._tower


def encoder_id(encoder: Any) -> str:
    """What identifies an encoder's features: its model id, revision and preprocessing (for cache keys)."""
    cfg: EncoderConfig = encoder.config
    return "|".join(
        str(x)
        for x in (
            encoder.model_id,
            getattr(encoder, "revision", None),
            cfg.input_size,
            cfg.mean,
            cfg.std,
            cfg.pooling,
            cfg.normalized,
        )
    )


def pixel_batch(slices: np.ndarray, config: EncoderConfig, device: str) -> Any:
    """Grey slices ``(n, S, S)`` in [0, 1] → a normalised ``(n, 3, H, W)`` float32 tensor on ``device``.

    Resized (bilinear, ``align_corners=False``) to ``config.input_size`` when it differs from ``S × S``;
    then ``(x − mean) / std`` per channel (ImageNet statistics for DINOv2, CLIP's for CLIP).
    """
    torch = require("torch", extra="torch")
    s = np.asarray(slices, dtype=np.float32)
    if s.ndim == 4 and s.shape[-1] in (1, 3):  # (n, H, W, C) from load_image-style arrays
        s = s.mean(axis=-1)
    if s.ndim != 3:
        raise InputError(f"views must be grey slices of shape (n, S, S); got {s.shape}.")
    x = torch.as_tensor(s, device=device)[:, None].expand(-1, 3, -1, -1)
    if config.input_size is not None and tuple(config.input_size) != tuple(s.shape[1:]):
        x = torch.nn.functional.interpolate(x, size=tuple(config.input_size), mode="bilinear", align_corners=False)
    if config.mean is not None and config.std is not None:
        mean = torch.as_tensor(config.mean, dtype=torch.float32, device=device)[None, :, None, None]
        std = torch.as_tensor(config.std, dtype=torch.float32, device=device)[None, :, None, None]
        x = (x - mean) / std
    return x.contiguous()


def encode_views(encoder: Any, slices: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Features ``(n, dim)`` of grey slices ``(n, S, S)`` in [0, 1] from any image encoder, in batches.

    Runs the encoder's image tower under ``inference_mode`` on :func:`pixel_batch` tensors (L2-normalised when
    the encoder's config says ``normalized``).
    """
    torch = require("torch", extra="torch")
    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}.")
    tw = encoder.tower("image")
    dev = getattr(encoder, "device", "cpu")
    s = np.asarray(slices, dtype=np.float32)
    out = []
    was = tw.module.training
    tw.module.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(s), batch_size):
                x = pixel_batch(s[start : start + batch_size], encoder.config, dev)
                f = tw.forward(x.to(getattr(encoder, "dtype", None) or torch.float32)).float()
                if encoder.config.normalized:
                    f = torch.nn.functional.normalize(f, dim=-1)
                out.append(f.cpu().numpy())
    finally:
        tw.module.train(was)
    if not out:
        return np.zeros((0, encoder.config.embedding_dim), dtype=np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)
