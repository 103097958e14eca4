"""Normative-learning metrics of a restoration (a "healthy" reconstruction x̂ of an input x), after Bercea et al.,
"Evaluating normative representation learning in generative AI for robust anomaly detection in brain imaging"
(Nat. Commun. 16:1624, 2025), in NumPy. Images are arrays (N, H, W) or (N, C, H, W) on one intensity scale
(``data_range``: 2 for images in [−1, 1]).

- **RQI** (restoration quality index), :func:`restoration_quality`: fidelity of restorations of *healthy*
  inputs — mean absolute error, SSIM and, when a ``perceptual`` distance is given, its mean. A model that
  changes healthy anatomy scores badly here however well it removes lesions.
- **CACI** (correction vs. context preservation), :func:`masked_fidelity`: the same fidelity measures computed
  separately *inside* the anomaly masks (where a good restoration changes the image: high MAE, low SSIM) and
  *outside* them (healthy context, optionally limited to a brain mask: low MAE, high SSIM), and their contrast
  ``mae_ratio = MAE_inside / MAE_outside``.
- **AHI** (anomaly-to-healthy index), :func:`anomaly_to_healthy_index`: how far restorations of pathological
  inputs move towards the healthy distribution in a feature space, from Fréchet distances to healthy
  reference images N: ``AHI = 1 − [FID(R_P, N) − FID(U_N, N)] / [FID(P, N) − FID(U_N, N)]`` with P the
  pathological inputs, R_P their restorations and U_N unseen healthy images (the floor). **This formula is our
  interpretation** of the paper's FID triplet (the paper reports the three distances): 1 means the restorations
  are as close to N as unseen healthy images are, 0 that they are as far as the pathological inputs, < 0 that
  they moved away. The features are pluggable (``features(images) -> (N, D)``); the default,
  :func:`pooled_pixel_features`, is block-averaged intensities (no network, no download), not Inception's.

SSIM follows Wang et al. (2004) with an isotropic Gaussian window (σ = 1.5, truncated at 3.5σ, reflected edges)
and population statistics, as scikit-image's ``structural_similarity(gaussian_weights=True,
use_sample_covariance=False)``; its per-pixel map (:func:`ssim_map`) is what the masked means average.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from medlens._results import check_sample_weight
from medlens._validation import InputError

__all__ = [
    "anomaly_to_healthy_index",
    "frechet_distance",
    "masked_fidelity",
    "pooled_pixel_features",
    "restoration_quality",
    "ssim_map",
]


def _images(a: Any, what: str) -> np.ndarray:
    """(N, H, W) float64: a channel axis of 1 is dropped, several channels are averaged."""
    x = np.asarray(a, dtype=np.float64)
    if x.ndim == 4:
        x = x.mean(axis=1)
    if x.ndim != 3 or len(x) == 0 or 0 in x.shape:
        raise InputError(f"{what} must be a non-empty batch of 2-D images (N, H, W) or (N, C, H, W); got {x.shape}.")
    if not np.isfinite(x).all():
        raise InputError(f"{what} contain NaN or infinite values.")
    return x


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    x, r = _images(y_true, "images"), _images(y_pred, "restorations")
    if x.shape != r.shape:
        raise InputError(f"images {x.shape} and restorations {r.shape} must have the same shape.")
    return x, r


def ssim_map(a: Any, b: Any, *, data_range: float = 2.0, sigma: float = 1.5) -> np.ndarray:
    """Per-pixel SSIM (N, H, W) of two image batches (Gaussian window, population statistics)."""
    from scipy import ndimage

    x, y = _pair(a, b)
    if not data_range > 0:
        raise InputError(f"data_range must be positive (2 for images in [-1, 1]); got {data_range!r}.")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def blur(v: np.ndarray) -> np.ndarray:
        return np.stack([ndimage.gaussian_filter(i, sigma, truncate=3.5, mode="reflect") for i in v])

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def _weights(sample_weight: Any, n: int) -> np.ndarray:
    return np.ones(n) if sample_weight is None else np.asarray(check_sample_weight(sample_weight, n), dtype=float)


def _perceptual(perceptual: Callable[[np.ndarray, np.ndarray], Any] | None, x: np.ndarray, r: np.ndarray) -> Any:
    if perceptual is None:
        return None
    d = np.asarray(perceptual(x, r), dtype=np.float64)
    if d.shape not in ((len(x),), x.shape) or not np.isfinite(d).all():
        raise InputError(f"perceptual(x, x̂) must return {len(x)} finite distances or an (N, H, W) map; got {d.shape}.")
    return d


def restoration_quality(
    y_true: Any,
    y_pred: Any,
    *,
    sample_weight: Any = None,
    perceptual: Callable[[np.ndarray, np.ndarray], Any] | None = None,
    data_range: float = 2.0,
) -> dict[str, Any]:
    """RQI of restorations ``y_pred`` of healthy images ``y_true``: weighted means over images of the per-image
    ``mae`` and ``ssim`` (and ``perceptual``: the callable's distance per image, or the mean of its map).

    >>> restoration_quality([[[0.0, 1.0], [1.0, 0.0]]], [[[0.0, 0.5], [1.0, 0.0]]])["mae"]
    0.125
    """
    x, r = _pair(y_true, y_pred)
    w = _weights(sample_weight, len(x))
    mae = np.abs(x - r).reshape(len(x), -1).mean(1)
    ssim = ssim_map(x, r, data_range=data_range).reshape(len(x), -1).mean(1)
    out: dict[str, Any] = {"mae": float(w @ mae / w.sum()), "ssim": float(w @ ssim / w.sum())}
    d = _perceptual(perceptual, x, r)
    if d is not None:
        per = d if d.ndim == 1 else d.reshape(len(x), -1).mean(1)
        out["perceptual"] = float(w @ per / w.sum())
    return {**out, "n_images": len(x)}


def masked_fidelity(
    y_true: Any,
    y_pred: Any,
    *,
    masks: Any,
    sample_weight: Any = None,
    region: Any = None,
    perceptual: Callable[[np.ndarray, np.ndarray], Any] | None = None,
    data_range: float = 2.0,
) -> dict[str, Any]:
    """CACI of restorations ``y_pred`` of pathological images ``y_true``: MAE, MSE and mean SSIM (and the
    ``perceptual`` map's mean, when it returns one (N, H, W) map) pooled over the pixels ``inside`` the anomaly
    ``masks`` and ``outside`` them (within ``region``, e.g. brain masks, when given), each pixel weighted by its
    image's ``sample_weight``; ``mae_ratio`` = inside MAE / outside MAE (higher: the restoration changes the
    anomaly more than its healthy context).

    >>> d = masked_fidelity([[[0.0, 1.0]]], [[[0.0, 0.0]]], masks=[[[0, 1]]])
    >>> d["inside"]["mae"], d["outside"]["mae"]
    (1.0, 0.0)
    """
    x, r = _pair(y_true, y_pred)
    m = np.asarray(masks)
    m = m[:, 0] if m.ndim == 4 and m.shape[1] == 1 else m
    if m.shape != x.shape:
        raise InputError(f"masks {m.shape} must match the images {x.shape}.")
    m = m > 0
    keep = np.ones_like(m) if region is None else np.asarray(region).reshape(m.shape) > 0
    w = _weights(sample_weight, len(x))[:, None, None] * np.ones(x.shape)
    maps = {"mae": np.abs(x - r), "mse": (x - r) ** 2, "ssim": ssim_map(x, r, data_range=data_range)}
    d = _perceptual(perceptual, x, r)
    if d is not None and d.ndim == 3:
        maps["perceptual"] = d
    out: dict[str, Any] = {}
    for name, sel in (("inside", m & keep), ("outside", ~m & keep)):
        ws = w * sel
        total = ws.sum()
        out[name] = {k: float((ws * v).sum() / total) if total > 0 else float("nan") for k, v in maps.items()}
        out[name]["n_pixels"] = int(sel.sum())
    lo, hi = out["outside"]["mae"], out["inside"]["mae"]
    out["mae_ratio"] = float(hi / lo) if lo > 0 else float("inf") if hi > 0 else float("nan")
    return out


def pooled_pixel_features(images: Any, *, grid: int = 8) -> np.ndarray:
    """Default AHI features: each image's intensities averaged over a ``grid``×``grid`` array of blocks
    (N, grid²); the image sides must be multiples of ``grid``."""
    x = _images(images, "images")
    n, h, w = x.shape
    if h % grid or w % grid:
        raise InputError(f"images of {h}x{w} cannot be split into a {grid}x{grid} grid; pick a divisor as grid.")
    return x.reshape(n, grid, h // grid, grid, w // grid).mean(axis=(2, 4)).reshape(n, -1)


def frechet_distance(a: Any, b: Any) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D), (M, D):
    ``|μ_a − μ_b|² + tr(Σ_a + Σ_b − 2 (Σ_a^½ Σ_b Σ_a^½)^½)`` (the FID formula; unbiased covariances).

    >>> round(frechet_distance([[0.0], [2.0]], [[1.0], [5.0]]), 6)  # 1-D: (1 − 3)² + (√2 − √8)²
    6.0
    """
    fa, fb = (np.asarray(v, dtype=np.float64) for v in (a, b))
    if fa.ndim != 2 or fb.ndim != 2 or fa.shape[1] != fb.shape[1] or min(len(fa), len(fb)) < 2:
        raise InputError(f"feature sets must be (N, D) and (M, D) with N, M ≥ 2; got {fa.shape} and {fb.shape}.")
    if not (np.isfinite(fa).all() and np.isfinite(fb).all()):
        raise InputError("features contain NaN or infinite values.")
    ca, cb = np.atleast_2d(np.cov(fa, rowvar=False)), np.atleast_2d(np.cov(fb, rowvar=False))
    ev, vec = np.linalg.eigh(ca)
    root = (vec * np.sqrt(np.clip(ev, 0, None))) @ vec.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root @ cb @ root), 0, None)).sum()
    diff = fa.mean(0) - fb.mean(0)
    return float(max(diff @ diff + np.trace(ca) + np.trace(cb) - 2 * cross, 0.0))


def anomaly_to_healthy_index(
    y_true: Any,
    y_pred: Any,
    *,
    healthy_reference: Any,
    healthy_unseen: Any,
    sample_weight: Any = None,
    features: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """AHI of restorations ``y_pred`` of pathological images ``y_true`` against healthy reference images N
    (``healthy_reference``, e.g. training images) with unseen healthy images U_N as the floor (see the module
    docstring for the formula, an interpretation). Returns ``ahi`` (NaN when FID(P, N) ≤ FID(U_N, N): the
    pathology is not visible in this feature space) and the three distances. A set-level metric:
    ``sample_weight`` is refused."""
    if sample_weight is not None:
        raise InputError("anomaly_to_healthy_index is a distance between image sets: sample_weight is not supported.")
    f = features if features is not None else pooled_pixel_features
    p, rp = _pair(y_true, y_pred)
    sets = {"P": p, "R_P": rp, "U_N": _images(healthy_unseen, "healthy_unseen"),
            "N": _images(healthy_reference, "healthy_reference")}  # fmt: skip
    feats = {k: np.asarray(f(v), dtype=np.float64) for k, v in sets.items()}
    fid = {k: frechet_distance(feats[k], feats["N"]) for k in ("P", "R_P", "U_N")}
    span = fid["P"] - fid["U_N"]
    ahi = 1.0 - (fid["R_P"] - fid["U_N"]) / span if span > 0 else float("nan")
    return {"ahi": float(ahi), "fid_pathological": fid["P"], "fid_restored": fid["R_P"], "fid_unseen_healthy": fid["U_N"],
            "n": {k: len(v) for k, v in sets.items()}}  # fmt: skip
