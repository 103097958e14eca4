"""OpenSimplex gradient noise (Kurt Spencer's 2014 algorithm, as the ``opensimplex`` package computes it),
vectorised over whole arrays in numpy.

Same seed, same coordinates, same numbers as ``opensimplex.OpenSimplex(seed).noise2array / noise3array`` (to
floating-point rounding), without a per-pixel Python call or numba. The algorithm, in our words:

- A point ``p`` is *stretched* to ``s = p + sum(p)·STRETCH``; ``floor(s)`` names a lattice super-cell and
  ``s - floor(s)`` says where in it ``p`` lies. A lattice vertex ``v`` (integer, stretched coordinates) sits at
  ``v + sum(v)·SQUISH`` in the input space.
- A vertex contributes ``max(0, 2 - |d|²)⁴ · (g_v · d)`` with ``d = p - position(v)`` and ``g_v`` one of the
  fixed integer gradients, chosen by hashing ``v`` through a 256-entry permutation of the seed.
- In 2-D every vertex within reach counts. In 3-D the reference sums a fixed set per region of the cell (the
  tetrahedron or octahedron holding ``p`` plus two "extra" vertices picked by comparing the in-cell
  coordinates), which leaves out a few distant vertices with a tiny positive weight: we pick exactly the
  same vertices.
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["opensimplex_noise2", "opensimplex_noise3", "opensimplex_permutation"]

_GRAD2 = np.array([5, 2, 2, 5, -5, 2, -2, 5, 5, -2, 2, -5, -5, -2, -2, -5], dtype=np.int64)
_GRAD3 = np.array(
    [-11, 4, 4, -4, 11, 4, -4, 4, 11, 11, 4, 4, 4, 11, 4, 4, 4, 11, -11, -4, 4, -4, -11, 4, -4, -4, 11, 11, -4, 4]
    + [4, -11, 4, 4, -4, 11, -11, 4, -4, -4, 11, -4, -4, 4, -11, 11, 4, -4, 4, 11, -4, 4, 4, -11, -11, -4, -4]
    + [-4, -11, -4, -4, -4, -11, 11, -4, -4, 4, -11, -4, 4, -4, -11],
    dtype=np.int64,
)
_STRETCH2, _SQUISH2, _NORM2 = -0.211324865405187, 0.366025403784439, 47.0
_STRETCH3, _SQUISH3, _NORM3 = -1.0 / 6, 1.0 / 3, 103.0
_LCG_A, _LCG_C, _MASK = 6364136223846793005, 1442695040888963407, (1 << 64) - 1


def _signed64(v: int) -> int:
    v &= _MASK
    return v - (1 << 64) if v >> 63 else v


def opensimplex_permutation(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The 256-entry permutation and the 3-D gradient offsets ``opensimplex`` derives from ``seed``.

    A 64-bit linear congruential generator (wrapping like a C ``int64``) drives a Fisher-Yates draw.
    """
    s = _signed64(int(seed))
    for _ in range(3):
        s = _signed64(s * _LCG_A + _LCG_C)
    source = list(range(256))
    perm = np.zeros(256, dtype=np.int64)
    for i in range(255, -1, -1):
        s = _signed64(s * _LCG_A + _LCG_C)
        r = (s + 31) % (i + 1)
        perm[i] = source[r]
        source[r] = source[i]
    return perm, (perm % (len(_GRAD3) // 3)) * 3


def opensimplex_noise2(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """2-D noise on the grid ``x × y``: shape ``(y.size, x.size)``, like ``OpenSimplex(seed).noise2array(x, y)``."""
    perm, _ = opensimplex_permutation(seed)
    yy, xx = np.meshgrid(np.asarray(y, float), np.asarray(x, float), indexing="ij")
    offset = (xx + yy) * _STRETCH2
    xb, yb = np.floor(xx + offset).astype(np.int64), np.floor(yy + offset).astype(np.int64)
    value = np.zeros(xx.shape)
    # every vertex that can be within reach of a point in the cell (radius² 2 around it)
    for a, b in ((-1, 1), (0, 0), (0, 1), (0, 2), (1, -1), (1, 0), (1, 1), (2, 0)):
        i, j = xb + a, yb + b
        squish = (i + j) * _SQUISH2
        dx, dy = xx - (i + squish), yy - (j + squish)
        attn = 2.0 - dx * dx - dy * dy
        g = perm[(perm[i & 0xFF] + j) & 0xFF] & 0x0E
        value += np.where(attn > 0, attn**4 * (_GRAD2[g] * dx + _GRAD2[g + 1] * dy), 0.0)
    return value / _NORM2


def _bits(c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (c & 1) != 0, (c & 2) != 0, (c & 4) != 0


def _first_zero_bit_minus_one(c: np.ndarray) -> np.ndarray:
    """(-1,1,1), (1,-1,1) or (1,1,-1): −1 on the first axis whose bit is clear in ``c``."""
    bx, by, _ = _bits(c)
    axis = np.where(~bx, 0, np.where(~by, 1, 2))
    return np.where(np.arange(3) == axis[..., None], -1, 1)


def _first_set_bit_two(c: np.ndarray) -> np.ndarray:
    """(2,0,0), (0,2,0) or (0,0,2): 2 on the first axis whose bit is set in ``c``."""
    bx, by, _ = _bits(c)
    axis = np.where(bx, 0, np.where(by, 1, 2))
    return np.where(np.arange(3) == axis[..., None], 2, 0)


def _extras_low(xi: np.ndarray, yi: np.ndarray, zi: np.ndarray, in_sum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two extra vertices (offsets from the cell origin) for points in the tetrahedron at (0,0,0)."""
    a_pt, a_sc, b_pt, b_sc = np.full(xi.shape, 1), xi.copy(), np.full(xi.shape, 2), yi.copy()
    to_b = (a_sc >= b_sc) & (zi > b_sc)
    to_a = ~to_b & (a_sc < b_sc) & (zi > a_sc)
    b_sc, b_pt = np.where(to_b, zi, b_sc), np.where(to_b, 4, b_pt)
    a_sc, a_pt = np.where(to_a, zi, a_sc), np.where(to_a, 4, a_pt)
    w = 1.0 - in_sum
    near_origin = (w > a_sc) | (w > b_sc)
    # (0,0,0) among the closest two: the extras follow the other closest vertex c
    cx, cy, cz = _bits(np.where(b_sc > a_sc, b_pt, a_pt))
    e0 = np.stack([np.where(cx, 1, -1), np.where(cy, 1, np.where(cx, -1, 0)), np.where(cz, 1, 0)], -1)
    e1 = np.stack([np.where(cx, 1, 0), np.where(cy, 1, np.where(cx, 0, -1)), np.where(cz, 1, -1)], -1)
    # otherwise they follow the union of the closest two
    ux, uy, uz = _bits(a_pt | b_pt)
    u0 = np.stack([ux, uy, uz], -1).astype(np.int64)
    u1 = np.where(np.stack([ux, uy, uz], -1), 1, -1)
    return np.where(near_origin[..., None], e0, u0), np.where(near_origin[..., None], e1, u1)


def _extras_high(xi: np.ndarray, yi: np.ndarray, zi: np.ndarray, in_sum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two extra vertices for points in the tetrahedron at (1,1,1)."""
    a_pt, a_sc, b_pt, b_sc = np.full(xi.shape, 6), xi.copy(), np.full(xi.shape, 5), yi.copy()
    to_b = (a_sc <= b_sc) & (zi < b_sc)
    to_a = ~to_b & (a_sc > b_sc) & (zi < a_sc)
    b_sc, b_pt = np.where(to_b, zi, b_sc), np.where(to_b, 3, b_pt)
    a_sc, a_pt = np.where(to_a, zi, a_sc), np.where(to_a, 3, a_pt)
    w = 3.0 - in_sum
    near_far = (w < a_sc) | (w < b_sc)
    cx, cy, cz = _bits(np.where(b_sc < a_sc, b_pt, a_pt))
    e0 = np.stack([np.where(cx, 2, 0), np.where(cy, np.where(cx, 1, 2), 0), np.where(cz, 1, 0)], -1)
    e1 = np.stack([np.where(cx, 1, 0), np.where(cy, np.where(cx, 2, 1), 0), np.where(cz, 2, 0)], -1)
    ix, iy, iz = _bits(a_pt & b_pt)
    i0 = np.stack([ix, iy, iz], -1).astype(np.int64)
    i1 = 2 * i0
    return np.where(near_far[..., None], e0, i0), np.where(near_far[..., None], e1, i1)


def _extras_mid(xi: np.ndarray, yi: np.ndarray, zi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two extra vertices for points in the octahedron between the two tetrahedra."""
    p1, p2, p3 = xi + yi, xi + zi, yi + zi
    a_far, b_far = p1 > 1, p2 > 1
    a_sc, a_pt = np.where(a_far, p1 - 1, 1 - p1), np.where(a_far, 3, 4)
    b_sc, b_pt = np.where(b_far, p2 - 1, 1 - p2), np.where(b_far, 5, 2)
    far3 = p3 > 1
    score = np.where(far3, p3 - 1, 1 - p3)
    to_a = (a_sc <= b_sc) & (a_sc < score)
    to_b = ~to_a & (a_sc > b_sc) & (b_sc < score)
    a_pt, a_far = np.where(to_a, np.where(far3, 6, 1), a_pt), np.where(to_a, far3, a_far)
    b_pt, b_far = np.where(to_b, np.where(far3, 6, 1), b_pt), np.where(to_b, far3, b_far)
    same, zeros = a_far == b_far, np.zeros((*xi.shape, 3), dtype=np.int64)
    # both closest on the (1,1,1) side, both on the (0,0,0) side, or one on each
    both_far0, both_far1 = zeros + 1, _first_set_bit_two(a_pt & b_pt)
    both_near0, both_near1 = zeros, _first_zero_bit_minus_one(a_pt | b_pt)
    c1, c2 = np.where(a_far, a_pt, b_pt), np.where(a_far, b_pt, a_pt)
    split0, split1 = _first_zero_bit_minus_one(c1), _first_set_bit_two(c2)
    sel_far, sel_same = (same & a_far)[..., None], same[..., None]
    e0 = np.where(sel_same, np.where(sel_far, both_far0, both_near0), split0)
    e1 = np.where(sel_same, np.where(sel_far, both_far1, both_near1), split1)
    return e0, e1


def opensimplex_noise3(x: np.ndarray, y: np.ndarray, z: np.ndarray, seed: int) -> np.ndarray:
    """3-D noise on the grid ``x × y × z``: shape ``(z.size, y.size, x.size)``, like
    ``OpenSimplex(seed).noise3array(x, y, z)``."""
    perm, grad_index = opensimplex_permutation(seed)
    zz, yy, xx = np.meshgrid(np.asarray(z, float), np.asarray(y, float), np.asarray(x, float), indexing="ij")
    p = np.stack([xx, yy, zz], -1)
    s = p + (xx + yy + zz)[..., None] * _STRETCH3
    base = np.floor(s).astype(np.int64)
    ins = s - base
    xi, yi, zi = ins[..., 0], ins[..., 1], ins[..., 2]
    in_sum = xi + yi + zi
    low, high = in_sum <= 1, in_sum >= 2
    mid = ~low & ~high

    def contribution(offset: np.ndarray) -> np.ndarray:
        v = base + offset
        d = p - (v + v.sum(-1, keepdims=True) * _SQUISH3)
        attn = 2.0 - (d * d).sum(-1)
        g = grad_index[(perm[(perm[v[..., 0] & 0xFF] + v[..., 1]) & 0xFF] + v[..., 2]) & 0xFF]
        dot = _GRAD3[g] * d[..., 0] + _GRAD3[g + 1] * d[..., 1] + _GRAD3[g + 2] * d[..., 2]
        return np.where(attn > 0, attn**4 * dot, 0.0)

    value = np.zeros(xx.shape)
    for corner in itertools.product((0, 1), repeat=3):  # the vertices of the simplex holding each point
        n = sum(corner)
        member = (low & (n <= 1)) | (high & (n >= 2)) | (mid & (1 <= n <= 2))
        value += np.where(member, contribution(np.broadcast_to(np.array(corner), base.shape)), 0.0)
    lo0, lo1 = _extras_low(xi, yi, zi, in_sum)
    hi0, hi1 = _extras_high(xi, yi, zi, in_sum)
    md0, md1 = _extras_mid(xi, yi, zi)
    for lo, hi, md in ((lo0, hi0, md0), (lo1, hi1, md1)):
        value += contribution(np.where(low[..., None], lo, np.where(high[..., None], hi, md)))
    return value / _NORM3
