"""A compiled plane sampler for orders 0 and 1 (numba, when installed): the numpy backend's fast path.

For each pixel ``(p, i, j)`` it forms the voxel index ``q = c_p + g_i u_p + g_j v_p`` with the very float64
operations, in the same order, as :func:`~medlens.slicing._geometry.voxel_coordinates`, tests it against the
volume's box like the numpy path (``[-1e-6, dim − 1 + 1e-6]`` on every axis), and interpolates inside it:
order 0 takes the voxel at ``floor(q + 0.5 + 1e-9)`` (clamped), order 1 the trilinear combination of the 8
neighbours (the index clamped into the box, as ``map_coordinates(mode="nearest")`` does at the edges).
Pixels outside get ``fill``. No ``(3, P, S, S)`` coordinate array is made, and the planes' rows run in
parallel over the cores; the values equal ``scipy.ndimage.map_coordinates`` to float32 rounding
(tests/slicing/test_kernel.py).

The kernel compiles on first use (about a second, then cached on disk by numba); without numba the numpy
backend makes its one ``map_coordinates`` call as before. ``MEDLENS_SLICING_KERNEL=0`` turns it off.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["kernel_available", "sample_planes_kernel"]

_EPS = 1e-6
_TIE = 1e-9


def kernel_available() -> bool:
    """Whether the compiled path is used (numba importable and not turned off by ``MEDLENS_SLICING_KERNEL=0``)."""
    if os.environ.get("MEDLENS_SLICING_KERNEL", "1").strip() in ("0", "false", "no", "off"):
        return False
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def _compiled() -> Any:
    import numba

    @numba.njit(parallel=True, cache=True, nogil=True)
    def planes(vol, qc, qu, qv, g, order, fill, out, valid):  # pragma: no cover - compiled
        n_planes, size = qc.shape[0], g.shape[0]
        d0, d1, d2 = vol.shape
        hi0, hi1, hi2 = d0 - 1.0, d1 - 1.0, d2 - 1.0
        for pr in numba.prange(n_planes * size):
            p = pr // size
            i = pr - p * size
            r0 = qc[p, 0] + qu[p, 0] * g[i]
            r1 = qc[p, 1] + qu[p, 1] * g[i]
            r2 = qc[p, 2] + qu[p, 2] * g[i]
            for j in range(size):
                x0 = r0 + qv[p, 0] * g[j]
                x1 = r1 + qv[p, 1] * g[j]
                x2 = r2 + qv[p, 2] * g[j]
                ok = (
                    x0 >= -_EPS
                    and x0 <= hi0 + _EPS
                    and x1 >= -_EPS
                    and x1 <= hi1 + _EPS
                    and x2 >= -_EPS
                    and x2 <= hi2 + _EPS
                )
                valid[p, i, j] = ok
                if not ok:
                    out[p, i, j] = fill
                    continue
                if order == 0:
                    a = min(max(int(np.floor(x0 + 0.5 + _TIE)), 0), d0 - 1)
                    b = min(max(int(np.floor(x1 + 0.5 + _TIE)), 0), d1 - 1)
                    c = min(max(int(np.floor(x2 + 0.5 + _TIE)), 0), d2 - 1)
                    out[p, i, j] = vol[a, b, c]
                    continue
                y0 = min(max(x0, 0.0), hi0)
                y1 = min(max(x1, 0.0), hi1)
                y2 = min(max(x2, 0.0), hi2)
                a = min(int(np.floor(y0)), max(d0 - 2, 0))
                b = min(int(np.floor(y1)), max(d1 - 2, 0))
                c = min(int(np.floor(y2)), max(d2 - 2, 0))
                f0, f1, f2 = y0 - a, y1 - b, y2 - c
                a1, b1, c1 = min(a + 1, d0 - 1), min(b + 1, d1 - 1), min(c + 1, d2 - 1)
                v00 = vol[a, b, c] * (1.0 - f2) + vol[a, b, c1] * f2
                v01 = vol[a, b1, c] * (1.0 - f2) + vol[a, b1, c1] * f2
                v10 = vol[a1, b, c] * (1.0 - f2) + vol[a1, b, c1] * f2
                v11 = vol[a1, b1, c] * (1.0 - f2) + vol[a1, b1, c1] * f2
                v0 = v00 * (1.0 - f1) + v01 * f1
                v1 = v10 * (1.0 - f1) + v11 * f1
                out[p, i, j] = v0 * (1.0 - f0) + v1 * f0

    return planes


def sample_planes_kernel(
    vol: np.ndarray, inv_affine: np.ndarray, geometry: Any, *, order: int, fill: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(slices (P, S, S) float32, valid (P, S, S) bool)`` of ``geometry`` in ``vol`` (orders 0 and 1), where
    ``inv_affine`` maps world mm to voxel indices (the inverse of the volume's affine)."""
    if order not in (0, 1):
        raise ValueError(f"the compiled sampler does orders 0 and 1; got {order}.")
    lin = inv_affine[:3, :3]
    s = geometry.size
    g = np.ascontiguousarray((np.arange(s) - (s - 1) / 2.0) * geometry.spacing_mm)
    qc = np.ascontiguousarray(geometry.centres_mm @ lin.T + inv_affine[:3, 3])
    qu = np.ascontiguousarray(geometry.u @ lin.T)
    qv = np.ascontiguousarray(geometry.v @ lin.T)
    src = np.ascontiguousarray(vol if vol.dtype in (np.float32, np.float64) else vol.astype(np.float32))
    n = len(qc)
    out = np.empty((n, s, s), dtype=np.float32)
    valid = np.empty((n, s, s), dtype=np.bool_)
    _compiled()(src, qc, qu, qv, g, int(order), float(fill), out, valid)
    return out, valid
