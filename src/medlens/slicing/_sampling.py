"""Sample planes from volumes: numpy (one ``map_coordinates`` call for every view) and torch (``grid_sample``,
batched over views and volumes, CPU or CUDA).

Both backends interpolate at the same continuous voxel indices ``q = A⁻¹ x`` (computed in float64) and call a
pixel valid when every index lies in ``[0, dim − 1]`` (within 1e-6 voxel); invalid pixels get ``fill``. Inside
that box orders 0 and 1 need no boundary rule, so the backends agree to float rounding. Order 0 rounds half up
(``floor(q + 0.5)``, with 1e-9 voxel of slack so that a tie such as the centre of an even-sized axis does not
depend on the last bit of the arithmetic) in both backends. Order 3 (cubic
B-spline with its prefilter, boundary mode ``mirror``) is numpy only: ``grid_sample`` has no 3-D cubic mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medlens._optional import require
from medlens._validation import InputError, check_option
from medlens.slicing._geometry import PlaneGeometry, check_affine, voxel_coordinates

__all__ = ["BACKENDS", "Slices", "sample_planes", "sample_planes_torch"]

BACKENDS = ("numpy", "torch")
_EPS = 1e-6
_TIE = 1e-9


@dataclass(frozen=True)
class Slices:
    """Sampled planes with everything needed to place them back in the volume."""

    slices: np.ndarray  # (P, S, S) float32
    valid: np.ndarray  # (P, S, S) bool: the pixel lies inside the volume
    geometry: PlaneGeometry
    order: int
    fill: float

    @property
    def normals(self) -> np.ndarray:
        return self.geometry.normals

    @property
    def spacing_mm(self) -> float:
        return self.geometry.spacing_mm

    def views(self) -> list[dict]:
        """Per plane: ``view``, ``normal``, ``u``, ``v``, ``centre_mm``, ``offset_mm``, ``spacing_mm`` (JSON-ready)."""
        g = self.geometry
        return [
            {
                "view": int(g.view_index[p]),
                "normal": [float(x) for x in g.normals[p]],
                "u": [float(x) for x in g.u[p]],
                "v": [float(x) for x in g.v[p]],
                "centre_mm": [float(x) for x in g.centres_mm[p]],
                "offset_mm": float(g.offsets_mm[p]),
                "spacing_mm": float(g.spacing_mm),
                "valid_fraction": float(self.valid[p].mean()),
            }
            for p in range(len(g.normals))
        ]


def _check_volume(volume: np.ndarray) -> np.ndarray:
    v = np.asarray(volume)
    if v.ndim != 3:
        raise InputError(f"expected a 3-D volume; got an array of shape {v.shape}.")
    if min(v.shape) < 1:
        raise InputError(f"the volume is empty (shape {v.shape}).")
    return v


def _check_order(order: int, backend: str) -> int:
    check_option(order, (0, 1, 3), name="order")
    if backend == "torch" and order == 3:
        raise InputError("order 3 (cubic) is not available with the torch backend; use backend 'numpy' or order 0/1.")
    return int(order)


def _valid(q: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    hi = np.asarray(shape, dtype=float)[:, None, None, None] - 1
    return np.all((q >= -_EPS) & (q <= hi + _EPS), axis=0)


def _round_half_up(q: np.ndarray) -> np.ndarray:
    return np.floor(q + 0.5 + _TIE)


def sample_planes(
    volume: np.ndarray,
    affine: np.ndarray,
    geometry: PlaneGeometry,
    *,
    order: int = 1,
    fill: float = 0.0,
    backend: str = "numpy",
    device: str = "cpu",
) -> Slices:
    """Sample every plane of ``geometry`` from ``volume`` (array on the grid of ``affine``).

    ``backend="numpy"`` makes one :func:`scipy.ndimage.map_coordinates` call for all planes (orders 0, 1, 3) —
    for orders 0 and 1 a compiled kernel computing the same values when numba is installed
    (:mod:`medlens.slicing._kernel`); ``backend="torch"`` runs :func:`sample_planes_torch` on ``device``
    (orders 0, 1).
    """
    check_option(backend, BACKENDS, name="backend")
    vol = _check_volume(volume)
    _check_order(order, backend)
    if backend == "torch":
        out, valid = sample_planes_torch(
            vol[None], np.asarray(affine)[None], [geometry], order=order, fill=fill, device=device
        )
        return Slices(slices=out[0], valid=valid[0], geometry=geometry, order=order, fill=float(fill))
    from medlens.slicing._kernel import kernel_available, sample_planes_kernel

    if order in (0, 1) and kernel_available():  # the same values, compiled and parallel (no coordinate array)
        inv = np.linalg.inv(check_affine(affine))
        vals, valid = sample_planes_kernel(vol, inv, geometry, order=order, fill=fill)
        return Slices(slices=vals, valid=valid, geometry=geometry, order=order, fill=float(fill))
    from scipy import ndimage

    q = voxel_coordinates(geometry, affine)
    valid = _valid(q, vol.shape)
    mode = "mirror" if order == 3 else "nearest"
    if order == 0:
        q = _round_half_up(q)
    src = vol if vol.dtype in (np.float32, np.float64) else vol.astype(np.float32)
    vals = ndimage.map_coordinates(src, q.reshape(3, -1), order=order, mode=mode, prefilter=order > 1)
    vals = vals.reshape(valid.shape).astype(np.float32)
    vals[~valid] = fill
    return Slices(slices=vals, valid=valid, geometry=geometry, order=order, fill=float(fill))


def sample_planes_torch(
    volumes,
    affines,
    geometries: list[PlaneGeometry] | PlaneGeometry,
    *,
    order: int = 1,
    fill: float = 0.0,
    device: str = "cpu",
    dtype: str = "float32",
    as_numpy: bool = True,
):
    """Sample the planes of ``B`` volumes of one shape in one ``grid_sample`` call.

    Parameters
    ----------
    volumes : (B, D, H, W) array or tensor
    affines : (B, 4, 4) array (or one (4, 4) for all volumes)
    geometries : one PlaneGeometry per volume (all with the same number of planes and size), or one for all.
    dtype : "float32" | "float64"
        Precision of the grid and the interpolation. The grid is built on ``device`` in float64 from the
        affine, then cast: float32 puts about 1e-5 voxel of rounding into the sampling positions.

    Returns ``(slices (B, P, S, S), valid (B, P, S, S))`` as numpy arrays (float32, bool), or torch tensors on
    ``device`` when ``as_numpy=False``.
    """
    torch = require("torch", extra="torch", purpose="the torch slicing backend")
    from medlens._device import resolve_device

    dev = resolve_device(device)
    check_option(dtype, ("float32", "float64"), name="dtype")
    _check_order(order, "torch")
    tdtype = getattr(torch, dtype)
    vol = volumes if isinstance(volumes, torch.Tensor) else torch.as_tensor(np.asarray(volumes))
    if vol.ndim != 4:
        raise InputError(f"volumes must be a (B, D, H, W) batch of 3-D volumes; got shape {tuple(vol.shape)}.")
    b = vol.shape[0]
    shape = tuple(int(s) for s in vol.shape[1:])
    geos = [geometries] * b if isinstance(geometries, PlaneGeometry) else list(geometries)
    aff = np.asarray(affines, dtype=float)
    if aff.shape == (4, 4):
        aff = np.broadcast_to(aff, (b, 4, 4))
    if len(geos) != b or aff.shape != (b, 4, 4):
        raise InputError(
            f"need one geometry and one affine per volume; got {b} volumes, {len(geos)} geometries "
            f"and affines of shape {aff.shape}."
        )
    if len({(len(g.normals), g.size) for g in geos}) != 1:
        raise InputError("all geometries of a batch must have the same number of planes and the same size.")
    inv = np.stack([np.linalg.inv(check_affine(a)) for a in aff])
    # plane centres and in-plane steps in voxel indices, in (k, j, i) = grid_sample's (x, y, z) order: the pixel
    # positions are then two broadcast adds on the device (the same float64 arithmetic as voxel_coordinates)
    small = []
    for gm, a_inv in zip(geos, inv, strict=True):
        lin = a_inv[:3, :3]
        small.append(np.stack([gm.centres_mm @ lin.T + a_inv[:3, 3], gm.u @ lin.T, gm.v @ lin.T], 1))
    pts = torch.as_tensor(np.stack(small)[..., ::-1].copy(), dtype=torch.float64, device=dev)  # (B, P, 3, 3)
    s = geos[0].size
    step = torch.as_tensor([gm.spacing_mm for gm in geos], dtype=torch.float64, device=dev)
    g = (torch.arange(s, dtype=torch.float64, device=dev) - (s - 1) / 2.0)[None] * step[:, None]  # (B, S) mm
    qc, qu, qv = pts[:, :, 0], pts[:, :, 1], pts[:, :, 2]  # (B, P, 3)
    q = qc[:, :, None, None, :] + qu[:, :, None, None, :] * g[:, None, :, None, None]
    q = q + qv[:, :, None, None, :] * g[:, None, None, :, None]  # (B, P, S, S, 3) voxel indices (k, j, i)
    dims = torch.as_tensor(shape[::-1], dtype=torch.float64, device=dev)
    valid = ((q >= -_EPS) & (q <= dims - 1 + _EPS)).all(dim=-1)
    if order == 0:
        q = torch.floor(q + 0.5 + _TIE)
    denom = torch.clamp(dims - 1, min=1.0)
    grid = 2.0 * q / denom - 1.0
    if min(shape) == 1:  # a one-voxel axis: grid_sample's only sample on it is the middle
        grid = torch.where(dims > 1, grid, torch.zeros_like(grid))
    v = vol.to(device=dev, dtype=tdtype)[:, None]
    out = torch.nn.functional.grid_sample(
        v,
        grid.to(tdtype),
        mode="nearest" if order == 0 else "bilinear",
        padding_mode="border",
        align_corners=True,
    )[:, 0]
    out = torch.where(valid, out, torch.as_tensor(fill, dtype=tdtype, device=dev))
    if not as_numpy:
        return out, valid
    return out.to(torch.float32).cpu().numpy(), valid.cpu().numpy()
