"""Metrics of counterfactual edits: preservation outside the edit region, Dice of a segmenter against the
requested lesion, and FID / KID between feature sets with bootstrap intervals.

- **Preservation**: mean absolute difference between the edit and its input over the pixels *outside* a region
  (the edit region ``dilate(P, k) ∩ B``); exactly 0 for MedEdit and RePaint by construction, > 0 for SDEdit
  and Palette, which regenerate the whole image. MedEdit's paper does not report it.
- **Segmenter Dice**: a segmenter (any callable ``(images, brain_masks) → 0/1 masks``) reads each edited image
  alone; Dice of its mask against the lesion mask that was asked for, per image (both empty: 1, where the
  public code divides by 0). The default :func:`threshold_segmenter` is a crude, documented stand-in for
  MedEdit's nnU-Net (whose weights are not available offline): inside the brain mask (default: the foreground
  ``x > −0.99``), a pixel is a lesion when its robust z-score ``|x − median| / (1.4826·MAD)`` over the brain
  exceeds ``z`` (default 3). It also flags dark CSF and bright rims, so compare methods with it, not with the
  paper's Dice.
- **FID** (Heusel et al. 2017): ``‖μ_r − μ_f‖² + tr(Σ_r + Σ_f − 2(Σ_r Σ_f)^{1/2})`` with unbiased (n − 1)
  covariances; ``tr((Σ_r Σ_f)^{1/2})`` is the sum of the square roots of the eigenvalues of the symmetric
  ``Σ_r^{1/2} Σ_f Σ_r^{1/2}`` (equal to the trace of scipy's ``sqrtm(Σ_r Σ_f)`` up to rounding, without its
  complex parts).
- **KID** (Bińkowski et al. 2018): the unbiased MMD² with the cubic polynomial kernel
  ``k(a, b) = (a·b / d + 1)³``, averaged over random subsets of ``subset_size`` per side.
- **Features**: no Inception or RadImageNet weights exist offline. ``features="default"`` is a fixed,
  documented extractor: the seeded random conv net of :func:`~medlens.diffusion.random_conv_extractor`
  (channels 16, 32, 64; seed 0), each level's feature maps pooled to their spatial mean and standard
  deviation (224 numbers per image). Its FID is comparable only with FIDs from the same extractor. Any
  ``medlens.encoders`` image encoder (a registered name or a local model folder) or a callable
  ``(images (N, C, H, W) in [−1, 1]) → (N, d)`` can be used instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from medlens._validation import InputError, check_interval

__all__ = [
    "DEFAULT_FEATURES",
    "bootstrap_fid_kid",
    "dice_per_edit",
    "fid",
    "image_features",
    "kid",
    "preservation_mae",
    "segmenter_dice",
    "threshold_segmenter",
]

DEFAULT_FEATURES = "default"


def _np(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def preservation_mae(edited: Any, original: Any, region: Any) -> np.ndarray:
    """Per-image mean ``|edited − original|`` over the pixels where ``region`` is 0 (NaN for an image whose
    region covers everything). ``edited``/``original`` (N, C, H, W); ``region`` (N, 1, H, W)."""
    e, o, r = _np(edited).astype(np.float64), _np(original).astype(np.float64), _np(region) > 0
    if e.shape != o.shape or e.ndim != 4 or r.shape != (len(e), 1, *e.shape[2:]):
        raise InputError(
            f"edits {e.shape}, inputs {o.shape} and regions {r.shape} must be (N, C, H, W) and (N, 1, H, W)."
        )
    outside = np.broadcast_to(~r, e.shape).reshape(len(e), -1)
    diff = np.abs(e - o).reshape(len(e), -1)
    n = outside.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (diff * outside).sum(1) / n, np.nan)


def _foreground(images: np.ndarray) -> np.ndarray:
    return images[:, :1] > -0.99


def threshold_segmenter(images: Any, brain_masks: Any = None, *, z: float = 3.0) -> np.ndarray:
    """The default segmenter (module docstring): ``|x − median_B| > z·1.4826·MAD_B`` inside the brain mask
    ``B`` (default: the foreground ``x > −0.99``) of each image's first channel; returns (N, 1, H, W) uint8."""
    check_interval(z, name="z", low=0.0, closed="neither")
    x = _np(images).astype(np.float64)
    if x.ndim != 4:
        raise InputError(f"images must be (N, C, H, W); got shape {x.shape}.")
    brain = _foreground(x) if brain_masks is None else _np(brain_masks) > 0
    out = np.zeros((len(x), 1, *x.shape[2:]), np.uint8)
    for i in range(len(x)):
        v = x[i, 0][brain[i, 0]]
        if v.size == 0:
            continue
        med = np.median(v)
        mad = 1.4826 * np.median(np.abs(v - med))
        if mad == 0:
            out[i, 0] = brain[i, 0] & (x[i, 0] != med)
        else:
            out[i, 0] = brain[i, 0] & (np.abs(x[i, 0] - med) > z * mad)
    return out


def dice_per_edit(segmentation: Any, lesion_masks: Any) -> np.ndarray:
    """Dice ``2|S∩P| / (|S| + |P|)`` per image; 1.0 when both are empty."""
    s, p = _np(segmentation) > 0, _np(lesion_masks) > 0
    if s.shape != p.shape or s.ndim < 2:
        raise InputError(
            f"segmentations and lesion masks must have the same (N, ...) shape; got {s.shape} and {p.shape}."
        )
    s, p = s.reshape(len(s), -1), p.reshape(len(p), -1)
    den = s.sum(1) + p.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 2.0 * (s & p).sum(1) / den, 1.0)


def segmenter_dice(
    edited: Any, lesion_masks: Any, *, brain_masks: Any = None, segmenter: Callable[..., Any] | None = None
) -> np.ndarray:
    """Dice per image of ``segmenter(edited, brain_masks)`` (default :func:`threshold_segmenter`) against the
    requested ``lesion_masks``."""
    seg = (segmenter or threshold_segmenter)(_np(edited), None if brain_masks is None else _np(brain_masks))
    return dice_per_edit(seg, lesion_masks)


def _stats(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))


def _check_features(real: Any, fake: Any, low: int) -> tuple[np.ndarray, np.ndarray]:
    r, f = _np(real).astype(np.float64), _np(fake).astype(np.float64)
    if r.ndim != 2 or f.ndim != 2 or r.shape[1] != f.shape[1]:
        raise InputError(f"feature sets must be (n, d) with the same d; got {r.shape} and {f.shape}.")
    if len(r) < low or len(f) < low:
        raise InputError(f"each feature set needs at least {low} rows; got {len(r)} and {len(f)}.")
    if not (np.isfinite(r).all() and np.isfinite(f).all()):
        raise InputError("feature sets hold NaN or infinite values.")
    return r, f


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def fid(real: Any, fake: Any) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets (n, d), each of at least 2 rows.

    >>> f = np.random.default_rng(0).normal(size=(50, 4))
    >>> abs(fid(f, f)) < 1e-9
    True
    """
    r, f = _check_features(real, fake, 2)
    (mr, sr), (mf, sf) = _stats(r), _stats(f)
    root = _sqrt_psd(sr)
    middle = root @ sf @ root
    tr_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum())
    return float(np.sum((mr - mf) ** 2) + np.trace(sr) + np.trace(sf) - 2 * tr_sqrt)


def _mmd2_unbiased(a: np.ndarray, b: np.ndarray) -> float:
    d = a.shape[1]
    kaa, kbb, kab = ((a @ a.T) / d + 1) ** 3, ((b @ b.T) / d + 1) ** 3, ((a @ b.T) / d + 1) ** 3
    m, n = len(a), len(b)
    saa = (kaa.sum() - np.trace(kaa)) / (m * (m - 1))
    sbb = (kbb.sum() - np.trace(kbb)) / (n * (n - 1))
    return float(saa + sbb - 2 * kab.mean())


def kid(real: Any, fake: Any, *, subset_size: int = 100, n_subsets: int = 10, seed: int = 0) -> float:
    """Kernel Inception Distance: the unbiased MMD² (cubic polynomial kernel) averaged over ``n_subsets``
    random subsets of ``min(subset_size, n_real, n_fake)`` rows per side (drawn without replacement with
    ``seed``); when both sets fit in one subset it is the plain unbiased MMD² of the two sets."""
    r, f = _check_features(real, fake, 2)
    for name, v in (("subset_size", subset_size), ("n_subsets", n_subsets)):
        if isinstance(v, bool) or not isinstance(v, int) or v < (2 if name == "subset_size" else 1):
            raise InputError(
                f"The '{name}' parameter must be an integer ≥ {2 if name == 'subset_size' else 1}; got {v!r}."
            )
    m = min(subset_size, len(r), len(f))
    if m == len(r) == len(f):
        return _mmd2_unbiased(r, f)
    rng = np.random.default_rng(seed)
    vals = [
        _mmd2_unbiased(r[rng.choice(len(r), m, replace=False)], f[rng.choice(len(f), m, replace=False)])
        for _ in range(n_subsets)
    ]
    return float(np.mean(vals))


def bootstrap_fid_kid(
    real: Any, fake: Any, *, n_bootstrap: int = 200, ci: float = 0.95, seed: int = 0, subset_size: int = 100
) -> dict[str, Any]:
    """FID and KID of two feature sets with percentile bootstrap intervals: each resample draws both sets with
    replacement (independently, seeded). Returns ``{"fid": {"value", "ci"}, "kid": {"value", "ci"}, "n_real",
    "n_fake", "n_bootstrap", "ci_level"}``."""
    r, f = _check_features(real, fake, 2)
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 1:
        raise InputError(f"The 'n_bootstrap' parameter must be a positive integer; got {n_bootstrap!r}.")
    check_interval(ci, name="ci", low=0.0, high=1.0, closed="neither")
    rng = np.random.default_rng(seed)
    fids, kids = [], []
    for _ in range(n_bootstrap):
        rb, fb = r[rng.integers(0, len(r), len(r))], f[rng.integers(0, len(f), len(f))]
        fids.append(fid(rb, fb))
        kids.append(kid(rb, fb, subset_size=subset_size, seed=int(rng.integers(2**31))))
    lo, hi = (1 - ci) / 2, 1 - (1 - ci) / 2

    def entry(value: float, draws: list[float]) -> dict[str, Any]:
        return {"value": value, "ci": [float(np.quantile(draws, lo)), float(np.quantile(draws, hi))]}

    return {
        "fid": entry(fid(r, f), fids),
        "kid": entry(kid(r, f, subset_size=subset_size, seed=seed), kids),
        "n_real": len(r),
        "n_fake": len(f),
        "n_bootstrap": n_bootstrap,
        "ci_level": ci,
    }


def _default_extractor() -> Callable[[Any], np.ndarray]:
    import torch

    from medlens.diffusion._maps import random_conv_extractor

    net = random_conv_extractor(channels=(16, 32, 64), seed=0, in_channels=1)

    def extract(images: Any) -> np.ndarray:
        x = torch.as_tensor(_np(images), dtype=torch.float32)[:, :1]
        with torch.no_grad():
            levels = net(x)
        parts = [torch.cat([h.mean((2, 3)), h.std((2, 3))], 1) for h in levels]
        return torch.cat(parts, 1).numpy().astype(np.float64)

    return extract


def image_features(
    images: Any, features: str | Callable[[Any], Any] = DEFAULT_FEATURES, *, batch_size: int = 32
) -> np.ndarray:
    """Features (n, d) of images (N, C, H, W) in [−1, 1]: ``"default"`` (the fixed extractor of the module
    docstring), a ``medlens.encoders`` image encoder (registered name or local folder; the images go in as
    8-bit grey repeated to RGB), or a callable on the image batch."""
    x = _np(images).astype(np.float32)
    if x.ndim != 4:
        raise InputError(f"images must be (N, C, H, W); got shape {x.shape}.")
    if callable(features):
        out = _np(features(x))
    elif features == DEFAULT_FEATURES:
        extract = _default_extractor()
        out = (
            np.concatenate([extract(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
            if len(x)
            else np.zeros((0, 224))
        )
    else:
        from medlens.encoders import load_encoder

        enc = load_encoder(features)
        grey = np.clip(np.round((x[:, 0] + 1) * 127.5), 0, 255).astype(np.uint8)
        out = enc.encode_images([np.repeat(g[..., None], 3, axis=2) for g in grey], batch_size=batch_size)
    out = np.asarray(out, dtype=np.float64)
    if out.ndim != 2 or len(out) != len(x):
        raise InputError(f"the feature extractor must return one row per image (n, d); got shape {out.shape}.")
    return out
