"""One call from a volume to its slices, and per-volume intensity normalisation."""

from __future__ import annotations

import numpy as np

from medlens._validation import InputError, check_option
from medlens.slicing._directions import plane_normals
from medlens.slicing._geometry import plane_geometry
from medlens.slicing._sampling import Slices, sample_planes

__all__ = ["INTENSITY_MODES", "normalize_intensity", "slice_volume"]

INTENSITY_MODES = ("none", "ct", "mr", "minmax")


def normalize_intensity(
    volume: np.ndarray,
    mode: str = "mr",
    *,
    window: tuple[float, float] = (-1000.0, 1000.0),
    percentiles: tuple[float, float] = (0.5, 99.5),
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Scale a whole volume (never slice by slice) to float32 in [0, 1].

    ``ct``: clip to the HU ``window`` (low, high) and scale; ``mr``: clip to the ``percentiles`` of the voxels
    (of ``mask`` when given, else of the non-zero voxels, else of all) and scale; ``minmax``: the volume's own
    range; ``none``: float32 as it is.

    >>> normalize_intensity(np.array([[[-2000.0, 0.0, 500.0]]]), "ct").tolist()
    [[[0.0, 0.5, 0.75]]]
    """
    check_option(mode, INTENSITY_MODES, name="intensity")
    v = np.asarray(volume, dtype=np.float32)
    if mode == "none":
        return v
    if mode == "ct":
        lo, hi = (float(w) for w in window)
    elif mode == "minmax":
        lo, hi = float(v.min()), float(v.max())
    else:
        p_lo, p_hi = (float(p) for p in percentiles)
        if not 0.0 <= p_lo < p_hi <= 100.0:
            raise InputError(f"percentiles must satisfy 0 <= low < high <= 100; got {percentiles!r}.")
        ref = v[np.asarray(mask, dtype=bool)] if mask is not None else v[v != 0]
        if ref.size == 0:
            ref = v.reshape(-1)
        lo, hi = (float(x) for x in np.percentile(ref, [p_lo, p_hi]))
    if not hi > lo:
        if mode == "ct":
            raise InputError(f"the CT window must have low < high; got {window!r}.")
        return np.zeros_like(v)  # a constant volume carries no contrast
    return np.clip((v - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def slice_volume(
    volume: np.ndarray,
    affine: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    views: int = 12,
    method: str = "thomson",
    include_canonical: bool = True,
    seed: int = 0,
    size: int = 224,
    fov_mm: float | None = None,
    centre: str | np.ndarray = "auto",
    offset: str = "centre",
    stack: int = 1,
    spacing_mm: float | None = None,
    order: int = 1,
    fill: float = 0.0,
    backend: str = "numpy",
    device: str = "cpu",
) -> Slices:
    """Cut ``volume`` (on the grid of ``affine``) along ``views`` plane orientations.

    Directions from :func:`plane_normals`, planes from :func:`plane_geometry`, values from
    :func:`sample_planes`; see those for every parameter. Returns :class:`Slices` with ``views × stack`` planes.
    """
    v = np.asarray(volume)
    if v.ndim != 3:
        raise InputError(f"expected a 3-D volume; got an array of shape {v.shape}.")
    normals = plane_normals(views, method, include_canonical=include_canonical, seed=seed)
    geo = plane_geometry(
        normals,
        affine,
        v.shape,
        mask=mask,
        centre=centre,
        offset=offset,
        stack=stack,
        spacing_mm=spacing_mm,
        size=size,
        fov_mm=fov_mm,
    )
    return sample_planes(v, affine, geo, order=order, fill=fill, backend=backend, device=device)
