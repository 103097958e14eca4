"""An embedded healthy brain and synthetic lesions: the ``brain-anomaly-v1`` generator.

nilearn's wheel ships the ICBM 2009a symmetric MNI152 template at 1 mm (T1, grey- and white-matter
probability maps, ``nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz``); the
files are read by path (found through ``importlib.util.find_spec``; nilearn itself is never imported and its
fetchers are never called). No brain mask ships, so one is derived: ``GM + WM > 0.5``, closed in 3-D, then
holes (ventricles) filled slice by slice.

Every image is an axial slice of the skull-stripped T1 from the central ``slice_fraction`` of the brain (the
slices whose mask area is at least that fraction of the largest), under a seeded random affine and elastic
deformation, a gamma and contrast change, a smooth multiplicative bias field and Gaussian noise, resized to
``size``², as float32 in [−1, 1] (background −1; values are clipped to [−1, 1], never to [0, 1]).

Anomalous images add 1–3 lesions inside the (deformed) brain mask: ellipses with a noisy boundary, radii
drawn log-uniformly, hyper- or hypo-intense with a soft edge, together with their binary ground truth.
Every image depends only on ``(seed, split, index)``, so the same seed gives the same data whatever else is
generated; ``version`` and the config go into every dataset's ``meta``.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medlens._validation import InputError, check_interval

__all__ = [
    "BRAIN_GENERATOR_VERSION",
    "BrainConfig",
    "BrainSlices",
    "brain_mask_from_tissue",
    "brain_slices",
    "generate_brain_anomaly",
    "load_mni152",
    "mni152_files",
]

BRAIN_GENERATOR_VERSION = "brain-anomaly-v1"
_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
_SPLITS = {"train": 0, "healthy": 1, "test": 2, "val": 3}


@dataclass(frozen=True)
class BrainConfig:
    """Parameters of the generator (all written into a dataset's ``meta``)."""

    size: int = 64
    slice_fraction: float = 0.7
    rotation_deg: float = 8.0
    scale: tuple[float, float] = (0.92, 1.08)
    shift_px: float = 4.0
    elastic_alpha: float = 6.0
    elastic_sigma: float = 12.0
    gamma: tuple[float, float] = (0.8, 1.25)
    contrast: tuple[float, float] = (0.9, 1.1)
    bias: float = 0.25
    noise: tuple[float, float] = (0.0, 0.02)
    lesions: tuple[int, int] = (1, 3)
    radius_px: tuple[float, float] = (1.5, 9.0)
    hypo_fraction: float = 0.5
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> BrainConfig:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 16:
            raise InputError(f"size must be an integer ≥ 16; got {self.size!r}.")
        check_interval(self.slice_fraction, name="slice_fraction", low=0.0, high=1.0, closed="right")
        check_interval(self.hypo_fraction, name="hypo_fraction", low=0.0, high=1.0)
        lo, hi = self.lesions
        if not 1 <= lo <= hi:
            raise InputError(f"lesions must be (min, max) with 1 ≤ min ≤ max; got {self.lesions!r}.")
        if not 0 < self.radius_px[0] <= self.radius_px[1]:
            raise InputError(f"radius_px must be (min, max) with 0 < min ≤ max; got {self.radius_px!r}.")
        return self


@dataclass(frozen=True)
class BrainSlices:
    """``images`` (N, 1, S, S) float32 in [−1, 1]; ``masks`` (N, 1, S, S) uint8 lesion truth (all 0 for healthy
    images); ``brain`` (N, 1, S, S) bool brain masks; ``slice_index`` the template's axial slice of each image;
    ``lesion_type`` per image ``""``, ``"hyper"``, ``"hypo"`` (the first lesion's); ``meta`` the version,
    seed, split and config."""

    images: np.ndarray
    masks: np.ndarray
    brain: np.ndarray
    slice_index: np.ndarray
    lesion_type: list[str]
    meta: dict[str, Any]

    @property
    def labels(self) -> np.ndarray:
        """1 for an image with a lesion, else 0."""
        return (self.masks.reshape(len(self.masks), -1).max(axis=1) > 0).astype(np.int64)

    def __len__(self) -> int:
        return len(self.images)


def mni152_files() -> dict[str, Path]:
    """Paths of the template's T1, GM and WM files inside the installed nilearn wheel (``data`` extra)."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError('The MNI152 brain template ships with nilearn; install it with pip install "medlens[data]".')
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    paths = {k: folder / name for k, name in _FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise ImportError(f"this nilearn install lacks the MNI152 template files {missing}; reinstall nilearn.")
    return paths


def brain_mask_from_tissue(gm: np.ndarray, wm: np.ndarray, *, threshold: float = 0.5, closing: int = 3) -> np.ndarray:
    """A brain mask from grey- and white-matter probability maps in [0, 1]: ``gm + wm > threshold``, closed with
    ``closing`` iterations in 3-D, then holes filled in every axial (last-axis) slice."""
    from scipy import ndimage

    if gm.shape != wm.shape:
        raise InputError(f"grey- and white-matter maps differ in shape: {gm.shape} vs {wm.shape}.")
    m = (np.asarray(gm, float) + np.asarray(wm, float)) > threshold
    if closing:
        m = ndimage.binary_closing(m, iterations=int(closing), border_value=0) | m
    for k in range(m.shape[-1]):
        m[..., k] = ndimage.binary_fill_holes(m[..., k])
    return m


@functools.lru_cache(maxsize=1)
def load_mni152() -> dict[str, np.ndarray]:
    """The template as arrays on its 1 mm grid (197, 233, 189), axes RAS: ``t1``, ``gm``, ``wm`` in [0, 1]
    (float32) and the derived ``brain`` mask (bool). Read once per process."""
    from medlens.io import read_volume

    vols = {k: read_volume(p).array / np.float32(255.0) for k, p in mni152_files().items()}
    vols["brain"] = brain_mask_from_tissue(vols["gm"], vols["wm"])
    return vols


@functools.lru_cache(maxsize=4)
def _stack(slice_fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Skull-stripped axial slices (K, H, H) cropped to a square around the brain, their masks and indices."""
    vol = load_mni152()
    brain, t1 = vol["brain"], vol["t1"]
    area = brain.sum(axis=(0, 1))
    ks = np.nonzero(area >= slice_fraction * area.max())[0]
    xs, ys = np.nonzero(brain.any(axis=2))
    cx, cy = (xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2
    half = int(np.ceil(max(xs.max() - xs.min(), ys.max() - ys.min()) / 2)) + 6
    pad = np.pad(t1 * brain, ((half, half), (half, half), (0, 0)))
    bpad = np.pad(brain, ((half, half), (half, half), (0, 0)))
    sx, sy = int(round(cx)), int(round(cy))
    sl = (slice(sx, sx + 2 * half), slice(sy, sy + 2 * half))
    # rows = posterior→anterior flipped to anterior at the top, columns = left→right (radiological view aside)
    imgs = np.stack([pad[sl[0], sl[1], k].T[::-1] for k in ks]).astype(np.float32)
    masks = np.stack([bpad[sl[0], sl[1], k].T[::-1] for k in ks])
    return imgs, masks, ks


def _warp(rng: np.random.Generator, img: np.ndarray, mask: np.ndarray, cfg: BrainConfig) -> tuple[Any, Any]:
    """A random affine plus elastic deformation, applied to the slice (linear) and the mask (linear, > 0.5)."""
    from scipy import ndimage

    n = img.shape[0]
    c = (n - 1) / 2
    theta = np.deg2rad(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg))
    s = rng.uniform(*cfg.scale)
    shift = rng.uniform(-cfg.shift_px, cfg.shift_px, 2)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]) / s
    yy, xx = np.meshgrid(np.arange(n, dtype=float), np.arange(n, dtype=float), indexing="ij")
    grid = np.stack([yy - c, xx - c]).reshape(2, -1)
    src = (rot @ grid).reshape(2, n, n) + c + shift[:, None, None]
    for axis in range(2):
        field_ = ndimage.gaussian_filter(rng.uniform(-1, 1, (n, n)), cfg.elastic_sigma, mode="reflect")
        field_ /= max(np.abs(field_).max(), 1e-12)
        src[axis] += cfg.elastic_alpha * field_
    out = ndimage.map_coordinates(img, src, order=1, mode="constant", cval=0.0)
    m = ndimage.map_coordinates(mask.astype(np.float32), src, order=1, mode="constant", cval=0.0) > 0.5
    return out * m, m


def _intensity(rng: np.random.Generator, img: np.ndarray, brain: np.ndarray, cfg: BrainConfig) -> np.ndarray:
    """Gamma, contrast, a smooth bias field ``exp(quadratic)`` and Gaussian noise, inside the brain; in [0, 1]."""
    n = img.shape[0]
    v = np.clip(img, 0.0, 1.0) ** rng.uniform(*cfg.gamma) * rng.uniform(*cfg.contrast)
    u = np.linspace(-1, 1, n)
    yy, xx = np.meshgrid(u, u, indexing="ij")
    terms = np.stack([yy, xx, yy * xx, yy**2 - 1 / 3, xx**2 - 1 / 3])
    coef = rng.uniform(-1, 1, 5)
    log_bias = np.tensordot(coef, terms, axes=1)
    log_bias *= cfg.bias / max(np.abs(log_bias).max(), 1e-12)
    v = v * np.exp(log_bias) + rng.normal(0, rng.uniform(*cfg.noise), (n, n))
    return np.clip(v, 0.0, 1.0) * brain


def _resize(a: np.ndarray, size: int, order: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.zoom(a.astype(np.float64), size / a.shape[0], order=order, mode="nearest", grid_mode=True)


def _lesion(rng: np.random.Generator, brain: np.ndarray, cfg: BrainConfig) -> np.ndarray:
    """One lesion mask inside ``brain``: an ellipse with a noisy boundary around a point of the eroded mask."""
    from scipy import ndimage

    n = brain.shape[0]
    inner = ndimage.binary_erosion(brain, iterations=2)
    pts = np.argwhere(inner if inner.any() else brain)
    for _ in range(20):
        cy, cx = pts[rng.integers(len(pts))]
        r = float(np.exp(rng.uniform(np.log(cfg.radius_px[0]), np.log(cfg.radius_px[1]))))
        ratio, phi = rng.uniform(0.5, 1.0), rng.uniform(0, np.pi)
        yy, xx = np.meshgrid(np.arange(n) - cy, np.arange(n) - cx, indexing="ij")
        a = (xx * np.cos(phi) + yy * np.sin(phi)) / r
        b = (-xx * np.sin(phi) + yy * np.cos(phi)) / (r * ratio)
        wobble = ndimage.gaussian_filter(rng.normal(0, 1, (n, n)), max(r / 2, 1.0))
        wobble *= 0.35 / max(np.abs(wobble).max(), 1e-12)
        m = (np.hypot(a, b) <= 1 + wobble) & brain
        if m.any():
            return m
    m = np.zeros_like(brain)
    m[cy, cx] = True  # a one-pixel lesion at a brain point: never empty, never outside
    return m


def _paint(rng: np.random.Generator, img: np.ndarray, mask: np.ndarray, brain: np.ndarray, hypo: bool) -> Any:
    """Blend a hyper- or hypo-intense value into ``img`` ([−1, 1]) with a soft edge, inside the brain only."""
    from scipy import ndimage

    target = rng.uniform(-0.7, -0.3) if hypo else rng.uniform(0.8, 1.0)
    alpha = np.clip(ndimage.gaussian_filter(mask.astype(float), 0.7) * 1.5, 0, 1) * rng.uniform(0.75, 1.0)
    alpha = np.maximum(alpha, mask * 0.75) * brain
    texture = rng.normal(0, 0.03, img.shape)
    return img * (1 - alpha) + (target + texture) * alpha


def _one(rng: np.random.Generator, anomalous: bool, cfg: BrainConfig) -> tuple[Any, ...]:
    imgs, masks, ks = _stack(cfg.slice_fraction)
    j = int(rng.integers(len(ks)))
    img, brain = _warp(rng, imgs[j], masks[j], cfg)
    img = _intensity(rng, img, brain, cfg)
    small = _resize(img, cfg.size, 1)
    brain_s = _resize(brain.astype(float), cfg.size, 1) > 0.5
    x = np.where(brain_s, 2.0 * np.clip(small, 0.0, 1.0) - 1.0, -1.0)
    truth = np.zeros_like(brain_s)
    kind = ""
    if anomalous:
        for i in range(int(rng.integers(cfg.lesions[0], cfg.lesions[1] + 1))):
            hypo = bool(rng.random() < cfg.hypo_fraction)
            m = _lesion(rng, brain_s, cfg)
            x = _paint(rng, x, m, brain_s, hypo)
            truth |= m
            kind = kind or ("hypo" if hypo else "hyper")
            del i
    return np.clip(x, -1.0, 1.0).astype(np.float32), truth.astype(np.uint8), brain_s, int(ks[j]), kind


def brain_slices(
    n: int, *, anomalous: bool = False, seed: int = 0, split: str = "train", config: BrainConfig | None = None
) -> BrainSlices:
    """``n`` augmented axial template slices, healthy or with lesions (see the module docstring).

    Image ``i`` is drawn from ``default_rng(SeedSequence(seed, spawn_key=(split, i)))``: the same ``seed``,
    ``split`` and index always give the same image. ``brain_slices(2, anomalous=True).images`` has shape
    ``(2, 1, 64, 64)``.
    """
    cfg = (config or BrainConfig()).check()
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise InputError(f"n must be a non-negative integer; got {n!r}.")
    if split not in _SPLITS:
        raise InputError(f"split must be one of {sorted(_SPLITS)}; got {split!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed must be a non-negative integer; got {seed!r}.")
    rows = [
        _one(
            np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(_SPLITS[split], int(anomalous), i))),
            anomalous,
            cfg,
        )
        for i in range(int(n))
    ]
    s = cfg.size
    meta = {
        "version": BRAIN_GENERATOR_VERSION,
        "seed": int(seed),
        "split": split,
        "anomalous": bool(anomalous),
        "config": asdict(cfg),
        "template": "MNI152 ICBM 2009a symmetric (nilearn)",
    }
    if not rows:
        empty = np.zeros((0, 1, s, s), np.float32)
        return BrainSlices(empty, empty.astype(np.uint8), empty.astype(bool), np.zeros(0, np.int64), [], meta)
    x, m, b, k, kind = zip(*rows, strict=True)
    return BrainSlices(
        np.stack(x)[:, None], np.stack(m)[:, None], np.stack(b)[:, None], np.asarray(k, np.int64), list(kind), meta
    )


def generate_brain_anomaly(
    *,
    n_train: int = 256,
    n_healthy: int = 48,
    n_test: int = 48,
    n_val: int = 0,
    seed: int = 0,
    config: BrainConfig | None = None,
) -> dict[str, Any]:
    """The ``brain-anomaly`` data: ``train`` (healthy, for training), ``healthy`` (healthy, for the FPR
    threshold), ``test`` and ``val`` (half healthy, half with lesions, the anomalous half first).

    Returns ``{split: BrainSlices, ..., "meta": {...}}``; test/val concatenate their two halves.
    """
    out: dict[str, Any] = {
        "train": brain_slices(n_train, seed=seed, split="train", config=config),
        "healthy": brain_slices(n_healthy, seed=seed, split="healthy", config=config),
    }
    for split, n in (("test", n_test), ("val", n_val)):
        n_bad = (int(n) + 1) // 2
        bad = brain_slices(n_bad, anomalous=True, seed=seed, split=split, config=config)
        good = brain_slices(int(n) - n_bad, seed=seed, split=split, config=config)
        out[split] = BrainSlices(
            np.concatenate([bad.images, good.images]),
            np.concatenate([bad.masks, good.masks]),
            np.concatenate([bad.brain, good.brain]),
            np.concatenate([bad.slice_index, good.slice_index]),
            bad.lesion_type + good.lesion_type,
            {**bad.meta, "anomalous": "first half"},
        )
    out["meta"] = {
        "version": BRAIN_GENERATOR_VERSION,
        "seed": int(seed),
        "sizes": {"train": n_train, "healthy": n_healthy, "test": n_test, "val": n_val},
    }
    return out
