"""The noise a diffusion model is trained and sampled with: Gaussian, or AnoDDPM's fractal simplex noise.

Simplex noise (Wyatt et al., "AnoDDPM", CVPR Workshops 2022) is a sum of octaves of OpenSimplex noise,
``n(p) = Σ_{k<K} persistence^k · S(p / (frequency / 2^k))``, where ``frequency`` is the period of the first
octave in pixels. A 2-D image takes the slice ``z = t`` of 3-D noise (so the field changes with the
timestep without directional artefacts); a 3-D volume takes 3-D noise whose depth axis is shifted by ``t``.
Unlike the public AnoDDPM/THOR code, the field is standardised (zero mean, unit variance over the image) by
default, so that it can stand in for ``N(0, I)`` everywhere the model expects it: in training, in
``add_noise`` and in every reverse-step draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from medlens._optional import require
from medlens._validation import InputError, check_interval, check_option
from medlens.diffusion._simplex import opensimplex_noise3

__all__ = ["NOISE_TYPES", "noise_like", "simplex_noise"]

NOISE_TYPES = ("gaussian", "simplex")


def simplex_noise(
    shape: Sequence[int],
    *,
    t: float = 0.0,
    octaves: int = 6,
    persistence: float = 0.8,
    frequency: float = 64.0,
    seed: int = 0,
    standardize: bool = True,
) -> np.ndarray:
    """One fractal simplex-noise field of ``shape`` ``(H, W)`` or ``(D, H, W)`` (float64).

    Parameters
    ----------
    shape : (H, W) or (D, H, W)
    t : float
        The timestep; a 2-D field is the slice ``z = t`` of 3-D noise.
    octaves, persistence, frequency
        AnoDDPM's settings: ``octaves`` layers, amplitude ``persistence**k`` and period ``frequency / 2**k``
        pixels for layer ``k`` (defaults 6, 0.8, 64).
    seed : int
        The OpenSimplex seed (the same seed gives the same field).
    standardize : bool
        Subtract the field's mean and divide by its standard deviation (a constant field is an error).

    Examples
    --------
    >>> n = simplex_noise((32, 32), t=10, seed=1)
    >>> n.shape, round(float(n.mean()), 6), round(float(n.std()), 6)
    ((32, 32), 0.0, 1.0)
    """
    dims = tuple(int(s) for s in shape)
    if len(dims) not in (2, 3) or min(dims) < 1:
        raise InputError(f"simplex noise needs a shape (H, W) or (D, H, W) of positive sizes; got {tuple(shape)}.")
    if isinstance(octaves, bool) or not isinstance(octaves, int | np.integer) or octaves < 1:
        raise InputError(f"The 'octaves' parameter must be a positive integer; got {octaves!r}.")
    check_interval(persistence, name="persistence", low=0.0, closed="neither")
    check_interval(frequency, name="frequency", low=0.0, closed="neither")
    check_interval(t, name="t")
    out = np.zeros(dims)
    period, amplitude = float(frequency), 1.0
    for _ in range(int(octaves)):
        axes = [np.arange(n) / period for n in dims]
        if len(dims) == 2:
            layer = opensimplex_noise3(axes[1], axes[0], np.array([t / period]), seed)[0]
        else:
            layer = opensimplex_noise3(axes[2], axes[1], axes[0] + t / period, seed)
        out += amplitude * layer
        period /= 2.0
        amplitude *= persistence
    if standardize:
        sd = out.std()
        if not sd > 0:
            raise InputError(
                f"simplex noise of shape {dims} is constant and cannot be standardised; use a larger shape."
            )
        out = (out - out.mean()) / sd
    return out


def noise_like(
    x: Any,
    kind: Literal["gaussian", "simplex"] = "gaussian",
    *,
    generator: Any = None,
    t: float | Sequence[float] = 0.0,
    octaves: int = 6,
    persistence: float = 0.8,
    frequency: float = 64.0,
) -> Any:
    """A noise tensor shaped like ``x`` (``(B, C, H, W)`` or ``(B, C, D, H, W)``), on its device and dtype.

    ``gaussian`` draws ``torch.randn`` from ``generator``. ``simplex`` gives every (item, channel) its own
    standardised field, with seeds drawn from ``generator`` (so the same generator state gives the same
    noise); ``t`` is one timestep or one per batch item.
    """
    torch = require("torch", extra="torch", purpose="diffusion noise")
    check_option(kind, NOISE_TYPES, name="noise")
    if kind == "gaussian":
        return torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
    if x.ndim not in (4, 5):
        raise InputError(f"simplex noise needs a batch (B, C, H, W) or (B, C, D, H, W); got shape {tuple(x.shape)}.")
    b, c = int(x.shape[0]), int(x.shape[1])
    ts = np.broadcast_to(np.asarray(t, dtype=float).reshape(-1), (b,)) if np.ndim(t) else np.full(b, float(t))
    seeds = torch.randint(0, 2**31 - 1, (b, c), generator=generator).tolist()
    fields = [
        [
            simplex_noise(
                x.shape[2:],
                t=float(ts[i]),
                octaves=octaves,
                persistence=persistence,
                frequency=frequency,
                seed=seeds[i][j],
            )
            for j in range(c)
        ]
        for i in range(b)
    ]
    return torch.from_numpy(np.asarray(fields)).to(device=x.device, dtype=x.dtype)
