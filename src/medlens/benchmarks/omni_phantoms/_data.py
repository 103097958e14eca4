"""Generator ``omni-phantoms-v1``: a randomly oriented rod or disc drawn into the real MNI152 brain.

Each volume (``size³`` voxels) is the MNI152 2009 T1 template shipped in nilearn's wheel (read by path, never
fetched), deformed by a random affine (scale ±8 % per axis, rotation ≤ 10°) and resampled onto an oblique,
anisotropic grid (spacing 2.6–3.4 mm per axis, direction matrix rotated ≤ 20° about a random axis), plus
Gaussian noise. A lesion is drawn in world millimetres at a random point near the brain centre: a prolate
spheroid (``rod``, semi-axes ``a, a, 3.5a``, label 0) or an oblate one (``disc``, ``b, b, b/3.5``, label 1) of
the same volume (equivalent radius 7–9 mm), its symmetry axis uniform on the sphere. The class is a 3-D shape
property: a single plane of unknown orientation often cannot tell the two apart.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medlens._validation import InputError

__all__ = ["GENERATOR", "Phantom", "generate_phantoms", "mni_t1_path"]

GENERATOR = "omni-phantoms-v1"
_ASPECT = 3.5
_T1 = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"


def mni_t1_path() -> Path:
    """The MNI152 T1 template inside nilearn's installed package (the ``data`` extra)."""
    spec = importlib.util.find_spec("nilearn")
    path = Path(spec.origin).parent / "datasets" / "data" / _T1 if spec and spec.origin else None
    if path is None or not path.is_file():
        raise InputError(f'the MNI152 template ({_T1}) ships with nilearn: pip install "medlens[data]".')
    return path


@dataclass(frozen=True)
class Phantom:
    id: str
    volume: np.ndarray  # (S, S, S) float32
    affine: np.ndarray  # (4, 4) voxel -> world mm
    mask: np.ndarray  # (S, S, S) bool: the lesion
    label: int  # 0 rod, 1 disc
    axis: np.ndarray  # the lesion's symmetry axis (world)


def _rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    t = np.radians(rng.uniform(0, max_deg))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


def _template() -> tuple[np.ndarray, np.ndarray]:
    from medlens.io import read_volume

    v = read_volume(mni_t1_path())
    return np.asarray(v.array, dtype=np.float32), np.asarray(v.affine, dtype=float)


def generate_phantoms(n: int = 200, *, size: int = 64, seed: int = 0) -> list[Phantom]:
    """``n`` volumes, classes alternating (``n // 2`` discs), each from its own generator ``[seed, i]``."""
    from scipy import ndimage

    if n < 2 or size < 16:
        raise InputError(f"need n >= 2 volumes of size >= 16; got n={n}, size={size}.")
    tpl, tpl_aff = _template()
    tpl_inv = np.linalg.inv(tpl_aff)
    hi = float(np.percentile(tpl[tpl > 0], 99))
    centre_mm = tpl_aff[:3, :3] @ ((np.asarray(tpl.shape) - 1) / 2.0) + tpl_aff[:3, 3]
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        label = i % 2
        spacing = rng.uniform(2.6, 3.4, size=3)
        lin = _rotation(rng, 20.0) @ np.diag(spacing)
        c = centre_mm + rng.uniform(-5, 5, size=3)
        aff = np.eye(4)
        aff[:3, :3] = lin
        aff[:3, 3] = c - lin @ np.full(3, (size - 1) / 2.0)
        # voxel -> world (aff) -> deformed world (about c) -> template voxel: one affine map, one C call
        deform = _rotation(rng, 10.0) @ np.diag(1 + rng.uniform(-0.08, 0.08, size=3))
        to_src = np.eye(4)
        to_src[:3, :3] = deform
        to_src[:3, 3] = c - deform @ c
        m = tpl_inv @ to_src @ aff
        vol = ndimage.affine_transform(tpl, m[:3, :3], offset=m[:3, 3], output_shape=(size,) * 3, order=1, cval=0.0)
        vol = vol.astype(np.float32)

        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        r_eq = rng.uniform(7.0, 9.0)
        a = r_eq / _ASPECT ** (1 / 3) if label == 0 else r_eq * _ASPECT ** (1 / 3)
        semi_axial = a * _ASPECT if label == 0 else a / _ASPECT
        lesion_c = c + rng.uniform(-12, 12, size=3)
        # only voxels within the lesion's bounding sphere (1.2 × its longest semi-axis) can be touched
        reach = 1.2 * max(a, semi_axial)
        centre_vox = np.linalg.solve(lin, lesion_c - aff[:3, 3])
        half = np.ceil(reach / spacing.min()) + 1
        lo = np.clip(np.floor(centre_vox - half), 0, size - 1).astype(int)
        hi_ = np.clip(np.ceil(centre_vox + half) + 1, 1, size).astype(int)
        box = np.stack(np.meshgrid(*[np.arange(a0, b0) for a0, b0 in zip(lo, hi_, strict=True)], indexing="ij"), -1)
        rel = box.reshape(-1, 3) @ lin.T + aff[:3, 3] - lesion_c
        along = rel @ axis
        across = np.linalg.norm(rel - along[:, None] * axis, axis=1)
        r = np.sqrt((along / semi_axial) ** 2 + (across / a) ** 2).reshape(box.shape[:3])
        profile = np.clip((1.15 - r) / 0.3, 0.0, 1.0).astype(np.float32)  # soft edge ≈ partial volume
        sub = tuple(slice(a0, b0) for a0, b0 in zip(lo, hi_, strict=True))
        vol[sub] = vol[sub] * (1 - profile) + profile * 1.25 * hi
        vol += (0.03 * hi) * rng.standard_normal(size=vol.shape, dtype=np.float32)
        mask = np.zeros((size,) * 3, dtype=bool)
        mask[sub] = r <= 1.0
        if not mask.any():
            mask[sub][np.unravel_index(np.argmin(r), r.shape)] = True
        out.append(
            Phantom(
                id=f"omni-{i:04d}",
                volume=vol,
                affine=aff,
                mask=mask,
                label=label,
                axis=axis,
            )
        )
    return out
