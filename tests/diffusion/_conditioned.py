"""What the diffusion training tests share: the tiny UNet config (and one per conditioning kind) and
images holding a bright blob (the lesion) with the blob's mask."""

from __future__ import annotations

import numpy as np

TINY_BASE = {
    "channels": [8, 16],
    "attention_levels": [False, False],
    "norm_num_groups": 8,
    "num_head_channels": 8,
    "sample_size": 16,
}


def tiny(kind: str) -> dict:
    """The tiny config of a ``"mask"`` or ``"palette"`` conditioned UNet."""
    return {**TINY_BASE, f"{kind}_conditioned": True}


def blob_data(n: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images holding a bright blob (the lesion) and the blob's mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:16, :16]
    imgs, masks = [], []
    for _ in range(n):
        cy, cx = rng.uniform(4, 12, 2)
        blob = (yy - cy) ** 2 + (xx - cx) ** 2
        imgs.append(2 * np.exp(-blob / 18.0) - 1)
        masks.append(blob < 6)
    return np.asarray(imgs, np.float32)[:, None], np.asarray(masks, np.uint8)[:, None]
