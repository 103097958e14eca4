"""Anomaly maps from a reconstruction: residuals, perceptual weighting with a pluggable feature extractor, THOR's
temporal map and harmonisation, normalisation and post-processing.

Images are in [−1, 1]; residual maps are reported in [0, 1] units (``|x − x̂|/2``), the scale THOR computes
its maps in, without moving the images themselves to [0, 1] (and so without clamping their background).

Perceptual weighting follows the LPIPS recipe (Zhang et al. 2018) without its learned linear layers (whose
weights, like the backbones', would be a download): each layer's features are unit-normalised over channels,
their squared difference summed over channels, upsampled to the image and averaged over layers. Any callable
``extractor(x) -> list of (B, C, h, w) tensors`` plugs in (for example a torchvision backbone loaded from local
weights through ``torchvision.models.feature_extraction``); :func:`random_conv_extractor` is a fixed,
randomly initialised one for tests and offline use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._validation import InputError, check_option

__all__ = [
    "FeatureDistance",
    "drop_small_components",
    "gaussian_blur",
    "harmonic_mean",
    "normalize_maps",
    "postprocess_maps",
    "random_conv_extractor",
    "residual_map",
    "temporal_map",
    "thor_harmonize",
]


def _torch() -> Any:
    return require("torch", extra="torch", purpose="anomaly maps")


def gaussian_blur(m: Any, sigma: float) -> Any:
    """A (B, C, H, W) tensor blurred by a separable Gaussian (kernel radius ``4σ``, reflected edges)."""
    torch = _torch()
    if sigma <= 0:
        return m
    r = int(4 * sigma + 0.5)
    u = torch.arange(-r, r + 1, dtype=m.dtype, device=m.device)
    k = torch.exp(-(u**2) / (2 * sigma**2))
    k = k / k.sum()
    c = m.shape[1]
    pad_h, pad_w = min(r, m.shape[2] - 1), min(r, m.shape[3] - 1)
    out = torch.nn.functional.pad(m, (pad_w, pad_w, 0, 0), mode="reflect" if pad_w else "replicate")
    out = torch.nn.functional.conv2d(out, k[r - pad_w : r + pad_w + 1].view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    out = torch.nn.functional.pad(out, (0, 0, pad_h, pad_h), mode="reflect" if pad_h else "replicate")
    return torch.nn.functional.conv2d(out, k[r - pad_h : r + pad_h + 1].view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def residual_map(x: Any, recon: Any, *, kind: str = "l1") -> Any:
    """``|x − x̂|/2`` (``l1``) or ``((x − x̂)/2)²`` (``l2``), averaged over channels: (B, 1, H, W) in [0, 1]."""
    check_option(kind, ("l1", "l2"), name="residual")
    d = (x - recon).abs() / 2 if kind == "l1" else ((x - recon) / 2) ** 2
    return d.mean(dim=1, keepdim=True)


def random_conv_extractor(*, channels: Sequence[int] = (16, 32, 64), seed: int = 0, in_channels: int = 1) -> Any:
    """A fixed, randomly initialised conv net (3×3 conv + ReLU, then 2× average pooling, per level) returning
    each level's features: a reproducible stand-in for a pretrained backbone (random features already carry a
    useful perceptual signal; they are no LPIPS)."""
    torch = _torch()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        convs, c_in = [], int(in_channels)
        for c in channels:
            convs.append(torch.nn.Conv2d(c_in, int(c), 3, padding=1))
            c_in = int(c)
    net = torch.nn.ModuleList(convs).eval().requires_grad_(False)

    def extract(x: Any) -> list[Any]:
        feats, h = [], x
        for i, conv in enumerate(net):
            h = torch.relu(conv.to(h.device, h.dtype)(h))
            feats.append(h)
            if i < len(net) - 1 and min(h.shape[-2:]) >= 2:
                h = torch.nn.functional.avg_pool2d(h, 2)
        return feats

    return extract


class FeatureDistance:
    """``d(a, b)``: the LPIPS-style spatial distance (B, 1, H, W) between two image batches under ``extractor``.

    ``repeat`` copies a one-channel image to that many channels first (3 for ImageNet backbones).
    """

    def __init__(self, extractor: Callable[[Any], Sequence[Any]] | None = None, *, repeat: int | None = None) -> None:
        self.extractor = extractor if extractor is not None else random_conv_extractor()
        self.repeat = repeat

    def __call__(self, a: Any, b: Any) -> Any:
        torch = _torch()
        if self.repeat and a.shape[1] == 1:
            a, b = a.repeat(1, self.repeat, 1, 1), b.repeat(1, self.repeat, 1, 1)
        with torch.no_grad():
            fa, fb = self.extractor(a), self.extractor(b)
            if not fa or len(fa) != len(fb):
                raise InputError("the feature extractor must return the same non-empty list of maps for both inputs.")
            out = torch.zeros((a.shape[0], 1, *a.shape[-2:]), dtype=a.dtype, device=a.device)
            for u, v in zip(fa, fb, strict=True):
                u = u / (u.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                v = v / (v.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
                d = (u - v).pow(2).sum(1, keepdim=True)
                out += torch.nn.functional.interpolate(d, size=a.shape[-2:], mode="bilinear", align_corners=False)
        return out / len(fa)


def _max_norm(m: Any) -> Any:
    peak = m.flatten(1).amax(dim=1).clamp(min=1e-12).view(-1, *([1] * (m.ndim - 1)))
    return m / peak


def temporal_map(
    x: Any, x0_hat: Any, *, perceptual: Callable[[Any, Any], Any] | None = None, sigma: float = 2.0
) -> Any:
    """THOR's map at one step: ``maxnorm(G_σ(P(x̂_0, x)) ⊙ |x̂_0 − x|/2)`` per image, or the max-normalised
    residual alone when ``perceptual`` is ``None``. (B, 1, H, W) in [0, 1]."""
    r = residual_map(x, x0_hat)
    if perceptual is not None:
        r = gaussian_blur(perceptual(x0_hat, x), sigma) * r
    return _max_norm(r)


def _grey(m: Any, k: int, op: str) -> Any:
    torch = _torch()
    if k <= 1:
        return m
    pool = torch.nn.functional.max_pool2d
    if op == "dilate":
        return pool(m, k, stride=1, padding=k // 2)[..., : m.shape[-2], : m.shape[-1]]
    return -pool(-m, k, stride=1, padding=k // 2)[..., : m.shape[-2], : m.shape[-1]]


def thor_harmonize(x: Any, x0_hat: Any, m: Any, *, close_k: int = 13, dilate_k: int = 13) -> Any:
    """One THOR harmonisation: region map ``m̃ = clip((dilate_k(close_k(m)) + m)/2, 0, 1)`` (grey-scale, square
    flat elements), then ``x_0′ = m̃·x̂_0 + (1 − m̃)·x``: the input pasted back wherever the map says healthy.
    An all-zero ``m`` returns ``x`` exactly. No clamping: ``x_0′`` stays in the images' [−1, 1] range."""
    closed = _grey(_grey(m, close_k, "dilate"), close_k, "erode")
    region = ((_grey(closed, dilate_k, "dilate") + m) / 2).clamp(0.0, 1.0)
    return region * x0_hat + (1 - region) * x


def harmonic_mean(maps: Sequence[Any]) -> Any:
    """Pixel-wise harmonic mean ``n / Σ 1/m_i`` of non-negative maps (0 wherever any map is 0), as
    ``scipy.stats.hmean`` over the first axis."""
    torch = _torch()
    stack = torch.stack(list(maps))
    zero = (stack <= 0).any(dim=0)
    inv = torch.where(stack > 0, 1.0 / stack.clamp(min=1e-30), torch.zeros_like(stack)).sum(dim=0)
    return torch.where(zero, torch.zeros_like(inv), len(stack) / inv.clamp(min=1e-30))


def normalize_maps(maps: np.ndarray, mode: str = "max", *, percentile: float = 95.0) -> np.ndarray:
    """Divide every map by its own maximum (``max``) or ``percentile`` and clip to [0, 1] (``percentile``,
    autoDDPM's normalisation); ``none`` returns them unchanged."""
    check_option(mode, ("max", "percentile", "none"), name="normalize")
    m = np.asarray(maps, dtype=np.float32)
    if mode == "none":
        return m
    flat = m.reshape(len(m), -1)
    scale = flat.max(axis=1) if mode == "max" else np.percentile(flat, percentile, axis=1)
    scale = np.where(scale > 0, scale, 1.0).reshape(-1, *([1] * (m.ndim - 1)))
    out = m / scale
    return np.clip(out, 0.0, 1.0) if mode == "percentile" else out


def postprocess_maps(
    maps: np.ndarray, *, brain: np.ndarray | None = None, erode: int | None = None, median: int = 5
) -> np.ndarray:
    """pDDPM's post-processing, per 2-D map: multiply by the brain mask eroded ``erode`` times (default
    ``H // 25``), then a ``median``×``median`` median filter (``median ≤ 1`` skips it). ``maps`` (N, 1, H, W)."""
    from scipy import ndimage

    m = np.asarray(maps, dtype=np.float32).copy()
    if m.ndim != 4:
        raise InputError(f"maps must be (N, 1, H, W); got shape {m.shape}.")
    if brain is not None:
        b = np.asarray(brain, dtype=bool)
        if b.shape != m.shape:
            raise InputError(f"brain masks must match the maps' shape {m.shape}; got {b.shape}.")
        it = m.shape[-2] // 25 if erode is None else int(erode)
        for i in range(len(m)):
            keep = ndimage.binary_erosion(b[i, 0], iterations=it) if it > 0 else b[i, 0]
            m[i, 0] *= keep
    if median > 1:
        for i in range(len(m)):
            m[i, 0] = ndimage.median_filter(m[i, 0], size=int(median), mode="reflect")
    return m


def drop_small_components(binary: np.ndarray, min_size: int) -> np.ndarray:
    """Binary maps (N, 1, H, W) without their 8-connected components smaller than ``min_size`` pixels."""
    from scipy import ndimage

    b = np.asarray(binary, dtype=bool).copy()
    if min_size <= 1:
        return b
    for i in range(len(b)):
        lab, n = ndimage.label(b[i, 0], structure=np.ones((3, 3)))
        if n:
            sizes = np.bincount(lab.ravel())
            small = np.nonzero(sizes < min_size)[0]
            b[i, 0][np.isin(lab, small[small > 0])] = False
    return b
