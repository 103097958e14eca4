"""Plane orientations spread over RP²: a normal and its negative are one plane.

Normals live in the volume's world frame (for volumes read by :mod:`medlens.io`: RAS+ millimetres, +x towards
the patient's right, +y anterior, +z superior; see :func:`medlens.io.read_volume`). The canonical normals are
axial ``(0, 0, 1)``, coronal ``(0, 1, 0)`` and sagittal ``(1, 0, 0)``; when asked for they come first, in that
order, and are exact. Every normal is sign-canonicalised: its first component that is not zero is positive.

The distance between two planes is the angle between their lines, ``arccos |n_i · n_j|`` in [0°, 90°].
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from medlens._validation import InputError, check_option

__all__ = [
    "CANONICAL_NORMALS",
    "METHODS",
    "NormalsQuality",
    "canonicalize_normals",
    "normals_quality",
    "plane_angles",
    "plane_normals",
]

METHODS = ("thomson", "fibonacci", "canonical")
CANONICAL_NAMES = ("axial", "coronal", "sagittal")
CANONICAL_NORMALS = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
_STEPS = 2000
_STEP_SIZE = 0.01
_TOL = 1e-6


def canonicalize_normals(normals: np.ndarray) -> np.ndarray:
    """Unit normals of shape ``(n, 3)`` with the sign that makes the first non-zero component positive.

    >>> canonicalize_normals(np.array([[0.0, -2.0, 0.0]])).tolist()
    [[0.0, 1.0, 0.0]]
    """
    n = np.asarray(normals, dtype=float)
    if n.ndim != 2 or n.shape[1] != 3:
        raise InputError(f"normals must have shape (n, 3); got {n.shape}.")
    norms = np.linalg.norm(n, axis=1, keepdims=True)
    if not np.all(np.isfinite(n)) or np.any(norms < 1e-12):
        raise InputError("normals must be finite and non-zero vectors.")
    n = n / norms
    first = np.argmax(np.abs(n) > 1e-12, axis=1)
    sign = np.where(n[np.arange(len(n)), first] < 0, -1.0, 1.0)
    return n * sign[:, None] + 0.0  # + 0.0 turns -0.0 into 0.0


def plane_angles(normals: np.ndarray) -> np.ndarray:
    """The ``(n, n)`` matrix of plane angles ``arccos |n_i · n_j|`` in degrees (0 on the diagonal)."""
    n = canonicalize_normals(normals)
    cos = np.clip(np.abs(n @ n.T), 0.0, 1.0)
    ang = np.degrees(np.arccos(cos))
    np.fill_diagonal(ang, 0.0)
    return ang


@dataclass(frozen=True)
class NormalsQuality:
    """How well a set of planes covers the orientations: nearest-other-plane angles in degrees."""

    n: int
    min_angle_deg: float
    mean_nearest_angle_deg: float
    max_nearest_angle_deg: float
    canonical: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "min_angle_deg": self.min_angle_deg,
            "mean_nearest_angle_deg": self.mean_nearest_angle_deg,
            "max_nearest_angle_deg": self.max_nearest_angle_deg,
            "canonical": list(self.canonical),
        }


def normals_quality(normals: np.ndarray) -> NormalsQuality:
    """Minimum, mean and maximum angle from each plane to its nearest other plane, and which canonical
    planes (``axial``, ``coronal``, ``sagittal``) are present exactly (to 1e-9).

    >>> q = normals_quality(plane_normals(3, method="canonical"))
    >>> q.min_angle_deg, q.canonical
    (90.0, ('axial', 'coronal', 'sagittal'))
    """
    n = canonicalize_normals(normals)
    if len(n) < 2:
        raise InputError(f"a quality report needs at least 2 normals; got {len(n)}.")
    ang = plane_angles(n)
    np.fill_diagonal(ang, np.inf)
    nearest = ang.min(axis=1)
    present = tuple(
        name
        for name, c in zip(CANONICAL_NAMES, CANONICAL_NORMALS, strict=True)
        if np.any(np.max(np.abs(n - c), axis=1) < 1e-9)
    )
    return NormalsQuality(
        n=len(n),
        min_angle_deg=round(float(nearest.min()), 9),
        mean_nearest_angle_deg=round(float(nearest.mean()), 9),
        max_nearest_angle_deg=round(float(nearest.max()), 9),
        canonical=present,
    )


def plane_normals(n: int, method: str = "thomson", *, include_canonical: bool = True, seed: int = 0) -> np.ndarray:
    """``n`` plane normals ``(n, 3)``, unit length, sign-canonicalised, deterministic for given arguments.

    Parameters
    ----------
    n : int
        Number of planes (distinct orientations).
    method : {"thomson", "fibonacci", "canonical"}
        ``thomson`` minimises the Coulomb energy of the points and their antipodes (repulsion on RP², so a
        normal never ends up near another's negative); ``fibonacci`` is a golden-angle lattice on the upper
        hemisphere (no optimisation); ``canonical`` gives the first ``n`` (1–3) of axial, coronal, sagittal.
    include_canonical : bool
        Put the exact axial, coronal and sagittal normals first (held fixed by the optimiser). With ``n < 3``
        only the first ``n`` of them.
    seed : int
        Seeds the random start of the ``thomson`` optimiser.

    The result is cached by its arguments; each call returns a fresh copy.

    >>> plane_normals(3, method="canonical").tolist()
    [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InputError(f"the number of views must be a positive integer; got {n!r}.")
    check_option(method, METHODS, name="method")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise InputError(f"seed must be an integer; got {seed!r}.")
    if method == "canonical" and n > 3:
        raise InputError(f"method 'canonical' gives at most 3 planes; got n={n}. Use 'thomson' for more.")
    return np.array(_cached_normals(int(n), method, bool(include_canonical), int(seed)))


@functools.lru_cache(maxsize=128)
def _cached_normals(n: int, method: str, include_canonical: bool, seed: int) -> tuple[tuple[float, ...], ...]:
    fixed = CANONICAL_NORMALS[: min(n, 3)] if (include_canonical or method == "canonical") else np.zeros((0, 3))
    free = n - len(fixed)
    if free == 0:
        out = fixed
    elif method == "fibonacci":
        out = np.vstack([fixed, _fibonacci_hemisphere(free)])
    else:
        out = np.vstack([fixed, _thomson_rp2(fixed, free, seed)])
    out = canonicalize_normals(out)
    out[: len(fixed)] = fixed  # exact, not renormalised
    return tuple(tuple(float(x) for x in row) for row in out)


def _fibonacci_hemisphere(n: int) -> np.ndarray:
    """Golden-angle lattice on the upper hemisphere: z_k = 1 − (k + ½)/n, θ_k = π(1 + √5)(k + ½)."""
    k = np.arange(n) + 0.5
    z = 1.0 - k / n
    r = np.sqrt(1.0 - z**2)
    theta = np.pi * (1.0 + np.sqrt(5.0)) * k
    return np.stack([r * np.cos(theta), r * np.sin(theta), z], axis=1)


def _thomson_rp2(fixed: np.ndarray, free: int, seed: int) -> np.ndarray:
    """Projected gradient descent on E = Σ_{i<j} 1/|p_i − p_j| + 1/|p_i + p_j| over the free points.

    The step is ``η · F / max|F|`` (so its scale does not depend on n) and halves whenever the energy rises;
    stops after 2000 steps or when no point moves more than 1e-6.
    """
    rng = np.random.default_rng(seed)
    p = rng.standard_normal((free, 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    eta = _STEP_SIZE * 10
    energy = _energy(p, fixed)
    for _ in range(_STEPS):
        force = _forces(p, fixed)
        force -= np.sum(force * p, axis=1, keepdims=True) * p  # tangent part
        scale = np.max(np.linalg.norm(force, axis=1))
        if scale < 1e-15:
            break
        cand = p + eta * force / scale
        cand /= np.linalg.norm(cand, axis=1, keepdims=True)
        e_new = _energy(cand, fixed)
        if e_new > energy:
            eta *= 0.5
            if eta < _TOL:
                break
            continue
        moved = np.max(np.abs(cand - p))
        p, energy = cand, e_new
        if moved < _TOL:
            break
    return p


def _all_points(p: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    return np.vstack([p, fixed]) if len(fixed) else p


def _energy(p: np.ndarray, fixed: np.ndarray) -> float:
    allp = _all_points(p, fixed)
    d_minus = np.linalg.norm(p[:, None, :] - allp[None, :, :], axis=2)
    d_plus = np.linalg.norm(p[:, None, :] + allp[None, :, :], axis=2)
    m = len(p)
    d_minus[np.arange(m), np.arange(m)] = np.inf  # self term; p_i + p_i is 2, a constant that stays
    with np.errstate(divide="ignore"):
        return float(np.sum(1.0 / np.maximum(d_minus, 1e-12)) + np.sum(1.0 / np.maximum(d_plus, 1e-12)))


def _forces(p: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    allp = _all_points(p, fixed)
    diff = p[:, None, :] - allp[None, :, :]
    summ = p[:, None, :] + allp[None, :, :]
    dm = np.linalg.norm(diff, axis=2)
    dp = np.linalg.norm(summ, axis=2)
    m = len(p)
    dm[np.arange(m), np.arange(m)] = np.inf
    dp[np.arange(m), np.arange(m)] = np.inf  # the own antipode pushes straight outwards: no tangent part
    f = diff / np.maximum(dm, 1e-9)[..., None] ** 3 + summ / np.maximum(dp, 1e-9)[..., None] ** 3
    return f.sum(axis=1)
