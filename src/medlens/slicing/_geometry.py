"""Where the planes lie: in-plane frames, centres, offsets and the sampled points, all in world millimetres.

Conventions (one set, used by both backends):

* The volume is an array ``V[i, j, k]`` with a 4×4 ``affine`` taking voxel indices ``(i, j, k, 1)`` to world
  millimetres (for :func:`medlens.io.read_volume`: RAS+). Any spacing and direction matrix; nothing is
  resampled to isotropic.
* Plane ``p`` is ``{x : n_p · (x − c_p) = 0}`` with centre ``c_p`` (mm), unit normal ``n_p`` and in-plane unit
  axes ``u_p`` (down the image rows) and ``v_p`` (along the image columns), with ``u × v = n`` (right-handed).
* Pixel ``(a, b)`` of an ``S × S`` slice samples ``c + (a − (S−1)/2)·δ·u + (b − (S−1)/2)·δ·v``, ``δ = fov_mm / S``.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from medlens._validation import InputError, check_interval, check_option

__all__ = ["OFFSETS", "PlaneGeometry", "check_affine", "in_plane_axes", "plane_geometry", "voxel_coordinates"]

log = logging.getLogger("medlens.slicing")

OFFSETS = ("centre", "max-area")


def in_plane_axes(normals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic right-handed in-plane axes ``(u, v)`` for unit normals ``(n, 3)``.

    ``u`` (image rows, top to bottom) is the world "down" direction ``−z`` projected into the plane, or ``−y``
    when the plane is close to axial (``|n_z| > 0.9``); ``v = n × u``. So coronal and sagittal slices have the
    head at the top, axial slices have anterior at the top, and ``u × v = n`` always.

    >>> u, v = in_plane_axes(np.array([[0.0, 1.0, 0.0]]))  # coronal: rows inferior, columns to the left (-x)
    >>> u.tolist(), v.tolist()
    ([[0.0, 0.0, -1.0]], [[-1.0, 0.0, 0.0]])
    """
    n = np.asarray(normals, dtype=float)
    down = np.where((np.abs(n[:, 2]) > 0.9)[:, None], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0])
    u = down - np.sum(down * n, axis=1, keepdims=True) * n
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(n, u)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return u + 0.0, v + 0.0


def check_affine(affine: np.ndarray, *, what: str = "affine") -> np.ndarray:
    """A finite, invertible 4×4 affine with last row ``(0, 0, 0, 1)``, as float64."""
    a = np.asarray(affine, dtype=float)
    if a.shape != (4, 4):
        raise InputError(f"{what} must be a 4x4 matrix; got shape {a.shape}.")
    if not np.all(np.isfinite(a)) or not np.allclose(a[3], [0, 0, 0, 1]):
        raise InputError(f"{what} must be finite with last row (0, 0, 0, 1); got {a[3].tolist()}.")
    if abs(np.linalg.det(a[:3, :3])) < 1e-12:
        raise InputError(f"{what} is singular (a zero voxel size or collinear axes); check the image header.")
    return a


@dataclass(frozen=True)
class PlaneGeometry:
    """The planes to sample: one row per plane (views × stack, view-major)."""

    normals: np.ndarray  # (P, 3) unit normals, world frame
    u: np.ndarray  # (P, 3) row axis
    v: np.ndarray  # (P, 3) column axis
    centres_mm: np.ndarray  # (P, 3) plane centres (the pixel grid's centre), mm
    offsets_mm: np.ndarray  # (P,) signed distance of each plane from the reference centre along its normal
    view_index: np.ndarray  # (P,) which normal each plane belongs to
    size: int  # S
    fov_mm: float  # side of the square field of view

    @property
    def spacing_mm(self) -> float:
        """In-plane pixel spacing δ = fov_mm / size."""
        return self.fov_mm / self.size

    def points_mm(self) -> np.ndarray:
        """World coordinates of every pixel centre, shape ``(P, S, S, 3)``."""
        s = self.size
        g = (np.arange(s) - (s - 1) / 2.0) * self.spacing_mm
        return (
            self.centres_mm[:, None, None, :]
            + g[None, :, None, None] * self.u[:, None, None, :]
            + g[None, None, :, None] * self.v[:, None, None, :]
        )


def voxel_coordinates(geometry: PlaneGeometry, affine: np.ndarray) -> np.ndarray:
    """Continuous voxel indices of every pixel centre, shape ``(3, P, S, S)``: ``A⁻¹ x`` in float64."""
    inv = np.linalg.inv(check_affine(affine))
    lin = inv[:3, :3]
    s = geometry.size
    g = (np.arange(s) - (s - 1) / 2.0) * geometry.spacing_mm
    qc = geometry.centres_mm @ lin.T + inv[:3, 3]  # (P, 3): the plane centres in voxels
    qu, qv = geometry.u @ lin.T, geometry.v @ lin.T  # the in-plane axes in voxels per mm
    rows = qc.T[:, :, None, None] + qu.T[:, :, None, None] * g[None, None, :, None]  # (3, P, S, 1)
    return rows + qv.T[:, :, None, None] * g[None, None, None, :]


def _physical(affine: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return idx @ affine[:3, :3].T + affine[:3, 3]


def _corners_mm(affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    hi = np.asarray(shape, dtype=float) - 1
    corners = np.array([[a, b, c] for a in (0, hi[0]) for b in (0, hi[1]) for c in (0, hi[2])])
    return _physical(affine, corners)


def plane_geometry(
    normals: np.ndarray,
    affine: np.ndarray,
    shape: tuple[int, ...],
    *,
    mask: np.ndarray | None = None,
    centre: str | np.ndarray = "auto",
    offset: str = "centre",
    stack: int = 1,
    spacing_mm: float | None = None,
    size: int = 224,
    fov_mm: float | None = None,
) -> PlaneGeometry:
    """Lay out the planes for a volume of ``shape`` on ``affine``.

    Parameters
    ----------
    normals : (n, 3) array
        Plane normals in the world frame (e.g. from :func:`plane_normals`); normalised here.
    mask : bool array of ``shape``, optional
        Lesion / region mask on the volume's grid. An empty mask falls back to the volume centre (a warning).
    centre : "auto" | "mask" | "volume" | (3,) point in mm
        ``auto`` is the mask centroid when a non-empty mask is given, else the volume centre.
    offset : "centre" | "max-area"
        ``centre``: every plane passes through the centre. ``max-area``: along each normal, the plane with the
        largest mask cross-section (mask voxels projected on the normal, binned at the smallest voxel size;
        ties go to the bin nearest the centre; the plane goes through the mean projection of the winning
        bin's voxels). Needs a non-empty mask.
    stack, spacing_mm : int, float
        ``stack`` parallel planes per normal, ``spacing_mm`` apart, centred on the chosen plane (2.5-D).
    size, fov_mm : int, float
        Output ``size × size`` pixels over a square of ``fov_mm``. Default FOV: the diameter of the smallest
        sphere about the centre that holds the whole volume (no mask), or 1.2 × that of the mask (with one).
    """
    aff = check_affine(affine)
    if len(shape) != 3:
        raise InputError(f"expected a 3-D volume; got shape {tuple(shape)}.")
    shape = tuple(int(s) for s in shape)
    from medlens.slicing._directions import canonicalize_normals

    nrm = canonicalize_normals(normals)
    check_option(offset, OFFSETS, name="offset")
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise InputError(f"size must be a positive integer (pixels); got {size!r}.")
    if isinstance(stack, bool) or not isinstance(stack, int | np.integer) or stack < 1:
        raise InputError(f"stack must be a positive integer (planes per view); got {stack!r}.")
    if stack > 1 and spacing_mm is None:
        raise InputError("a stack of parallel planes needs spacing_mm (the distance between them, in mm).")
    if spacing_mm is not None:
        check_interval(spacing_mm, name="spacing_mm", low=0.0, closed="neither")

    pts_mask = None
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != shape:
            raise InputError(f"the mask has shape {m.shape} but the volume has {shape}; give a mask on the same grid.")
        idx = np.argwhere(m != 0).astype(float)
        if len(idx) == 0:
            msg = "the mask is empty; using the volume centre instead of the mask centroid"
            warnings.warn(msg, UserWarning, stacklevel=2)
            log.warning(msg)
        else:
            pts_mask = _physical(aff, idx)

    vol_centre = _physical(aff, (np.asarray(shape, dtype=float) - 1) / 2.0)
    if isinstance(centre, str):
        check_option(centre, ("auto", "mask", "volume"), name="centre")
        if centre == "mask" and mask is None:
            raise InputError("centre='mask' needs a mask.")
        c = pts_mask.mean(axis=0) if (centre != "volume" and pts_mask is not None) else vol_centre
    else:
        c = np.asarray(centre, dtype=float).reshape(-1)
        if c.shape != (3,) or not np.all(np.isfinite(c)):
            raise InputError(
                f"centre must be 'auto', 'mask', 'volume' or a finite (x, y, z) point in mm; got {centre!r}."
            )

    if offset == "max-area":
        if pts_mask is None:
            raise InputError("offset 'max-area' needs a non-empty mask; use offset 'centre' without one.")
        voxel = float(np.min(np.linalg.norm(aff[:3, :3], axis=0)))
        t_best = _max_area_offsets(pts_mask - c, nrm, voxel)
    else:
        t_best = np.zeros(len(nrm))

    if fov_mm is None:
        ref = pts_mask if pts_mask is not None else _corners_mm(aff, shape)
        radius = float(np.max(np.linalg.norm(ref - c, axis=1))) if len(ref) else 0.0
        margin = 1.2 if pts_mask is not None else 1.0
        voxel = float(np.max(np.linalg.norm(aff[:3, :3], axis=0)))
        fov_mm = max(2.0 * radius * margin, voxel * 2.0)
    else:
        check_interval(fov_mm, name="fov_mm", low=0.0, closed="neither")

    k = np.arange(stack) - (stack - 1) / 2.0
    steps = k * (spacing_mm or 0.0)
    offs = (t_best[:, None] + steps[None, :]).reshape(-1)
    view = np.repeat(np.arange(len(nrm)), stack)
    n_all = nrm[view]
    u, v = in_plane_axes(n_all)
    centres = c[None, :] + offs[:, None] * n_all
    return PlaneGeometry(
        normals=n_all,
        u=u,
        v=v,
        centres_mm=centres,
        offsets_mm=offs,
        view_index=view,
        size=int(size),
        fov_mm=float(fov_mm),
    )


def _max_area_offsets(rel: np.ndarray, normals: np.ndarray, bin_mm: float) -> np.ndarray:
    """Per normal, the signed offset (mm) of the bin of projected mask points that holds the most points."""
    proj = rel @ normals.T  # (M, n)
    bins = np.rint(proj / bin_mm).astype(np.int64)
    out = np.empty(len(normals))
    for j in range(len(normals)):
        lo = bins[:, j].min()
        counts = np.bincount(bins[:, j] - lo)
        idx = np.arange(len(counts)) + lo
        best = np.flatnonzero(counts == counts.max())
        win = idx[best[np.argmin(np.abs(idx[best]))]]
        out[j] = proj[bins[:, j] == win, j].mean()  # the mean position of the winning bin's points
    return out
