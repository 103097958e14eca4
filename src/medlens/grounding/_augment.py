"""Box-consistent augmentations for grounding training: one affine map moves the image and its boxes together.

:class:`Augment` draws, per call, a shift (fraction of the width/height), an isotropic scale and a rotation
about the image centre, plus brightness and contrast factors. The image is resampled with the inverse map
(bilinear, black outside); every gold box is mapped by the same matrix: its four corners are transformed and
the enclosing axis-aligned box is taken, clipped to the image. A box is dropped when less than
``min_visible`` of its mapped area stays inside the image (a query whose boxes all leave becomes negative,
which is what the image then shows). No flip: left and right are part of what a chest finding means
(the knowledge base's locations say "right", "left", "cardiac silhouette").

Coordinates are continuous pixels (a box ``[0, 0, W, H]`` is the whole image; pixel ``i`` spans ``[i, i+1]``),
which is PIL's convention for its affine transform, so the boxes land on the pixels the image puts there.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from medlens._validation import InputError

__all__ = ["Augment", "affine_matrix", "map_boxes"]


def affine_matrix(
    width: float, height: float, *, shift: tuple[float, float] = (0.0, 0.0), scale: float = 1.0, degrees: float = 0.0
) -> np.ndarray:
    """The 3 × 3 map ``source pixel → augmented pixel``: scale and rotate (counter-clockwise on screen for
    positive ``degrees``) about the image centre, then shift by ``shift × (width, height)``."""
    cx, cy = width / 2.0, height / 2.0
    t = math.radians(degrees)
    c, s = math.cos(t) * scale, math.sin(t) * scale
    # y points down on screen: a counter-clockwise turn is [[c, s], [-s, c]] in (x, y)
    lin = np.array([[c, s], [-s, c]])
    off = np.array([cx + shift[0] * width, cy + shift[1] * height]) - lin @ np.array([cx, cy])
    m = np.eye(3)
    m[:2, :2] = lin
    m[:2, 2] = off
    return m


def map_boxes(boxes: Any, matrix: np.ndarray, width: float, height: float, *, min_visible: float = 0.25) -> np.ndarray:
    """Boxes ``(n, 4)`` ``xyxy`` through ``matrix``: enclosing box of the mapped corners, clipped to the image;
    boxes with less than ``min_visible`` of their mapped area inside are dropped."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not len(b):
        return np.zeros((0, 4))
    xs = b[:, [0, 2, 2, 0]]
    ys = b[:, [1, 1, 3, 3]]
    mx = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]
    my = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]
    full = np.stack([mx.min(1), my.min(1), mx.max(1), my.max(1)], axis=1)
    clipped = np.stack(
        [np.clip(full[:, 0], 0, width), np.clip(full[:, 1], 0, height),
         np.clip(full[:, 2], 0, width), np.clip(full[:, 3], 0, height)], axis=1,
    )  # fmt: skip
    area = (full[:, 2] - full[:, 0]) * (full[:, 3] - full[:, 1])
    kept_area = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = np.where(area > 0, kept_area >= min_visible * area, kept_area >= 0) & (clipped[:, 2] > clipped[:, 0])
    keep &= clipped[:, 3] > clipped[:, 1]
    return clipped[keep]


@dataclass(frozen=True)
class Augment:
    """Ranges of the random augmentation (each drawn uniformly per call); all zero/one = identity."""

    shift: float = 0.05  # |shift| ≤ this fraction of the width and of the height
    scale: float = 0.10  # scale in [1 - scale, 1 + scale]
    degrees: float = 5.0  # rotation in [-degrees, degrees]
    brightness: float = 0.10  # intensity × [1 - b, 1 + b]
    contrast: float = 0.10  # (intensity - mean) × [1 - c, 1 + c] + mean
    min_visible: float = 0.25

    def __post_init__(self) -> None:
        for name in ("shift", "scale", "brightness", "contrast", "min_visible"):
            v = getattr(self, name)
            if not (0 <= v < 1) and not (name == "min_visible" and v == 1):
                raise InputError(f"augmentation {name}={v!r} must be in [0, 1).")
        if not 0 <= self.degrees <= 45:
            raise InputError(f"augmentation degrees={self.degrees!r} must be in [0, 45].")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        """One draw of the parameters (always the same number of draws from ``rng``)."""
        u = rng.uniform(-1.0, 1.0, size=6)
        return {
            "shift": (float(u[0] * self.shift), float(u[1] * self.shift)),
            "scale": float(1 + u[2] * self.scale),
            "degrees": float(u[3] * self.degrees),
            "brightness": float(1 + u[4] * self.brightness),
            "contrast": float(1 + u[5] * self.contrast),
        }

    def __call__(self, image: Any, boxes: Any, rng: np.random.Generator) -> tuple[Any, np.ndarray]:
        """``(augmented RGB PIL image, mapped boxes)`` for a PIL image (or path/array) and its ``xyxy`` boxes."""
        from medlens._optional import require
        from medlens.io import load_image

        pil = require("PIL.Image", extra="vision", purpose="augmenting images")
        im = load_image(image)
        w, h = im.size
        p = self.draw(rng)
        m = affine_matrix(w, h, shift=p["shift"], scale=p["scale"], degrees=p["degrees"])
        inv = np.linalg.inv(m)
        out = im.transform((w, h), pil.Transform.AFFINE, tuple(inv[:2].ravel()), resample=pil.Resampling.BILINEAR)
        a = np.asarray(out, dtype=np.float32)
        mean = float(a.mean())
        a = ((a - mean) * p["contrast"] + mean) * p["brightness"]
        out = pil.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))
        return out, map_boxes(boxes, m, w, h, min_visible=self.min_visible)
