"""Noise schedules and the DDPM/DDIM update rules, in torch, equal to diffusers' and MONAI's schedulers.

Notation (Ho et al. 2020; Song et al. 2021): ``β_t`` the schedule, ``α_t = 1 − β_t``, ``ᾱ_t = ∏_{s≤t} α_s``;
forward noising ``x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε``; from an ε-prediction ``x̂_0 = (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t``.

Schedule names and where they come from (all in float32, like the libraries):

==================  ==========================================  ==========================================
name                diffusers ``DDPMScheduler(beta_schedule=)``  MONAI ``DDPMScheduler(schedule=)``
==================  ==========================================  ==========================================
``linear``          ``"linear"``                                 ``"linear_beta"``
``scaled_linear``   ``"scaled_linear"``                          ``"scaled_linear_beta"``
``cosine``          —                                            ``"cosine"`` (ᾱ normalised by ᾱ_0, β ≤ 0.999)
``squaredcos_cap_v2``  ``"squaredcos_cap_v2"`` (GLIDE, β ≤ 0.999)  —
==================  ==========================================  ==========================================

Both cosine schedules follow Nichol & Dhariwal (2021) with offset s = 0.008 but discretise it differently, so
they differ in the last digits: pick the one a checkpoint was trained with.

Steps take the previous timestep explicitly. Both libraries' DDIM steps go to ``t − T // n`` whatever the
spacing of their timesteps, which is not the next timestep for ``linspace`` spacing (MONAI's only spacing);
MONAI's DDPM step always goes to ``t − 1`` even after ``set_timesteps(n < T)``. :func:`timestep_pairs` pairs
each timestep with the one that really follows it.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from medlens._optional import require
from medlens._validation import InputError, check_interval, check_option

__all__ = [
    "SCHEDULES",
    "SPACINGS",
    "NoiseSchedule",
    "add_noise",
    "ddim_step",
    "ddpm_step",
    "make_schedule",
    "predict_x0",
    "timestep_pairs",
    "timesteps",
]

SCHEDULES = ("linear", "scaled_linear", "cosine", "squaredcos_cap_v2")
SPACINGS = ("leading", "linspace", "trailing")


def _torch() -> Any:
    return require("torch", extra="torch", purpose="diffusion schedules")


@dataclass(frozen=True)
class NoiseSchedule:
    """``betas``, ``alphas`` and ``alphas_cumprod`` (float32 CPU tensors of length T) and the schedule's name."""

    name: str
    betas: Any
    alphas: Any
    alphas_cumprod: Any

    @property
    def num_train_timesteps(self) -> int:
        return int(self.betas.shape[0])

    def alpha_bar(self, t: int) -> Any:
        """``ᾱ_t`` as a 0-d float32 tensor; ``t < 0`` gives 1 (the clean image)."""
        return self.alphas_cumprod[int(t)] if t >= 0 else self.alphas_cumprod.new_tensor(1.0)


def make_schedule(
    name: Literal["linear", "scaled_linear", "cosine", "squaredcos_cap_v2"] = "linear",
    num_train_timesteps: int = 1000,
    *,
    beta_start: float = 1e-4,
    beta_end: float = 2e-2,
) -> NoiseSchedule:
    """The schedule ``name`` over ``num_train_timesteps`` steps (``beta_start``/``beta_end`` for the linear ones).

    Examples
    --------
    >>> s = make_schedule("linear", 1000)
    >>> s.num_train_timesteps, round(float(s.betas[0]), 6), round(float(s.betas[-1]), 6)
    (1000, 0.0001, 0.02)
    """
    torch = _torch()
    check_option(name, SCHEDULES, name="schedule")
    if isinstance(num_train_timesteps, bool) or not isinstance(num_train_timesteps, int) or num_train_timesteps < 2:
        raise InputError(f"The 'num_train_timesteps' parameter must be an integer ≥ 2; got {num_train_timesteps!r}.")
    n = num_train_timesteps
    if name in ("linear", "scaled_linear"):
        check_interval(beta_start, name="beta_start", low=0.0, high=1.0, closed="neither")
        check_interval(beta_end, name="beta_end", low=0.0, high=1.0, closed="neither")
    if name == "linear":
        betas = torch.linspace(beta_start, beta_end, n, dtype=torch.float32)
    elif name == "scaled_linear":
        betas = torch.linspace(beta_start**0.5, beta_end**0.5, n, dtype=torch.float32) ** 2
    elif name == "squaredcos_cap_v2":

        def bar(u: float) -> float:
            return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

        betas = torch.tensor([min(1 - bar((i + 1) / n) / bar(i / n), 0.999) for i in range(n)], dtype=torch.float32)
    else:  # MONAI's cosine: ᾱ on a float32 grid, normalised by its first value, β clipped
        grid = torch.linspace(0, n, n + 1)
        bars = torch.cos(((grid / n) + 0.008) / (1 + 0.008) * torch.pi * 0.5) ** 2
        bars /= bars[0].item()
        betas = torch.clip(1.0 - (bars[1:] / bars[:-1]), 0.0, 0.999)
    alphas = 1.0 - betas
    return NoiseSchedule(name, betas, alphas, torch.cumprod(alphas, dim=0))


def _check_t(schedule: NoiseSchedule, t: int, what: str = "t") -> int:
    try:
        value = operator.index(t) if not isinstance(t, bool) else None
    except TypeError:
        value = None
    if value is None or not 0 <= value < schedule.num_train_timesteps:
        raise InputError(f"{what} must be an integer timestep in [0, {schedule.num_train_timesteps - 1}]; got {t!r}.")
    return value


def _per_item(schedule: NoiseSchedule, values: Any, t: Any, like: Any) -> Any:
    """``values[t]`` for an int or one timestep per batch item, shaped to broadcast against ``like``."""
    torch = _torch()
    t = torch.as_tensor(t, dtype=torch.long).reshape(-1)
    if int(t.min()) < 0 or int(t.max()) >= schedule.num_train_timesteps:
        raise InputError(f"timesteps must lie in [0, {schedule.num_train_timesteps - 1}]; got {t.tolist()[:8]}.")
    v = values.to(like.device, like.dtype)[t.to(like.device)]
    return v.reshape(-1, *([1] * (like.ndim - 1)))


def add_noise(schedule: NoiseSchedule, x0: Any, noise: Any, t: Any) -> Any:
    """``x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·noise``; ``t`` an int or one timestep per batch item."""
    if tuple(noise.shape) != tuple(x0.shape):
        raise InputError(f"noise must have the shape of the images {tuple(x0.shape)}; got {tuple(noise.shape)}.")
    bar = _per_item(schedule, schedule.alphas_cumprod, t, x0)
    return bar**0.5 * x0 + (1 - bar) ** 0.5 * noise


def predict_x0(schedule: NoiseSchedule, x_t: Any, eps: Any, t: Any) -> Any:
    """``x̂_0 = (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t`` from an ε-prediction; ``t`` an int or one per batch item."""
    bar = _per_item(schedule, schedule.alphas_cumprod, t, x_t)
    return (x_t - (1 - bar) ** 0.5 * eps) / bar**0.5


def _prev(schedule: NoiseSchedule, t: int, prev_t: int | None) -> int:
    prev = t - 1 if prev_t is None else int(prev_t)
    if not -1 <= prev < t:
        raise InputError(f"prev_t must satisfy -1 ≤ prev_t < t = {t}; got {prev_t!r}.")
    return prev


def _x0(schedule: NoiseSchedule, eps: Any, t: int, x_t: Any, clip: float | None) -> Any:
    bar = schedule.alpha_bar(t)
    x0 = (x_t - (1 - bar) ** 0.5 * eps) / bar**0.5
    return x0.clamp(-clip, clip) if clip is not None else x0


def _draw(eps: Any, noise: Any, generator: Any) -> Any:
    torch = _torch()
    if noise is not None:
        if tuple(noise.shape) != tuple(eps.shape):
            raise InputError(f"noise must have the shape {tuple(eps.shape)}; got {tuple(noise.shape)}.")
        return noise
    return torch.randn(eps.shape, generator=generator, dtype=eps.dtype, device=eps.device)


def ddpm_step(
    schedule: NoiseSchedule,
    eps: Any,
    t: int,
    x_t: Any,
    *,
    prev_t: int | None = None,
    noise: Any = None,
    generator: Any = None,
    clip: float | None = 1.0,
    unit_step: Literal["ratio", "stored"] = "ratio",
) -> tuple[Any, Any]:
    """One ancestral DDPM step from ``t`` to ``prev_t`` (default ``t − 1``); returns ``(x_prev, x̂_0)``.

    The posterior mean ``μ̃ = [√ᾱ_prev·β'/(1−ᾱ_t)]·x̂_0 + [√α'·(1−ᾱ_prev)/(1−ᾱ_t)]·x_t`` plus ``σ·z`` with
    the "fixed_small" variance ``σ² = (1−ᾱ_prev)/(1−ᾱ_t)·β'`` (floored at 1e-20) for ``t > 0``, where
    ``α' = ᾱ_t/ᾱ_prev`` and ``β' = 1 − α'`` (as diffusers computes it, respaced or not; the last step then
    returns ``x̂_0`` exactly). ``unit_step="stored"`` takes the schedule's ``α_t``, ``β_t`` instead when
    ``prev_t = t − 1``, as MONAI does: the two agree to float32 rounding of ``1 − ᾱ_t/ᾱ_{t−1}`` (≤ ~1e-4
    relative at small t).

    ``z`` is ``noise`` if given (Gaussian or standardised simplex), else drawn from ``generator`` as
    ``torch.randn``. ``clip`` clamps ``x̂_0`` to ``[−clip, clip]`` (the libraries' default 1.0, for images in
    [−1, 1]); ``None`` leaves it.
    """
    t = _check_t(schedule, t)
    prev = _prev(schedule, t, prev_t)
    check_option(unit_step, ("stored", "ratio"), name="unit_step")
    bar_t, bar_prev = schedule.alpha_bar(t), schedule.alpha_bar(prev)
    if prev == t - 1 and unit_step == "stored":
        alpha, beta = schedule.alphas[t], schedule.betas[t]
    else:
        alpha = bar_t / bar_prev
        beta = 1 - alpha
    x0 = _x0(schedule, eps, t, x_t, clip)
    mean = (bar_prev**0.5 * beta / (1 - bar_t)) * x0 + (alpha**0.5 * (1 - bar_prev) / (1 - bar_t)) * x_t
    if t > 0:
        var = ((1 - bar_prev) / (1 - bar_t) * beta).clamp(min=1e-20)
        mean = mean + var**0.5 * _draw(eps, noise, generator)
    return mean, x0


def ddim_step(
    schedule: NoiseSchedule,
    eps: Any,
    t: int,
    x_t: Any,
    *,
    prev_t: int | None = None,
    eta: float = 0.0,
    noise: Any = None,
    generator: Any = None,
    clip: float | None = 1.0,
) -> tuple[Any, Any]:
    """One DDIM step from ``t`` to ``prev_t`` (default ``t − 1``; −1 is the clean image); returns ``(x_prev, x̂_0)``.

    ``x_prev = √ᾱ_prev·x̂_0 + √(1−ᾱ_prev−σ²)·ε̂ + σ·z`` with ``σ = eta·√[(1−ᾱ_prev)/(1−ᾱ_t)·(1−ᾱ_t/ᾱ_prev)]``;
    ``eta = 0`` is deterministic, ``eta = 1`` the DDPM posterior's spread. ``ε̂`` is the model's output
    (not recomputed from the clipped ``x̂_0``, as both libraries do by default).
    """
    t = _check_t(schedule, t)
    prev = _prev(schedule, t, prev_t)
    check_interval(eta, name="eta", low=0.0)
    bar_t, bar_prev = schedule.alpha_bar(t), schedule.alpha_bar(prev)
    x0 = _x0(schedule, eps, t, x_t, clip)
    var = (1 - bar_prev) / (1 - bar_t) * (1 - bar_t / bar_prev)
    std = eta * var**0.5
    out = bar_prev**0.5 * x0 + (1 - bar_prev - std**2) ** 0.5 * eps
    if eta > 0:
        out = out + std * _draw(eps, noise, generator)
    return out, x0


def timesteps(
    num_train_timesteps: int,
    num_steps: int,
    *,
    spacing: Literal["leading", "linspace", "trailing"] = "leading",
    steps_offset: int = 0,
) -> np.ndarray:
    """``num_steps`` descending timesteps out of ``num_train_timesteps``, spaced as diffusers' ``set_timesteps``.

    ``leading``: ``k·(T // n) + steps_offset``; ``linspace``: ``round(linspace(0, T−1, n))``;
    ``trailing``: ``round(T − k·T/n) − 1`` (these include ``T − 1``, the pure-noise end).

    >>> timesteps(1000, 5).tolist(), timesteps(1000, 5, spacing="trailing").tolist()
    ([800, 600, 400, 200, 0], [999, 799, 599, 399, 199])
    """
    check_option(spacing, SPACINGS, name="spacing")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or not 1 <= num_steps <= num_train_timesteps:
        raise InputError(
            f"The 'num_steps' parameter must be an integer in [1, {num_train_timesteps}]; got {num_steps!r}."
        )
    if spacing == "linspace":
        return np.linspace(0, num_train_timesteps - 1, num_steps).round()[::-1].astype(np.int64)
    if spacing == "leading":
        ratio = num_train_timesteps // num_steps
        return (np.arange(num_steps) * ratio).round()[::-1].astype(np.int64) + int(steps_offset)
    ratio = num_train_timesteps / num_steps
    return np.round(np.arange(num_train_timesteps, 0, -ratio)).astype(np.int64) - 1


def timestep_pairs(steps: Any) -> list[tuple[int, int]]:
    """``(t, prev_t)`` for a descending sequence of timesteps; the last one steps to −1 (the clean image).

    >>> timestep_pairs([999, 666, 333, 0])
    [(999, 666), (666, 333), (333, 0), (0, -1)]
    """
    ts = [int(t) for t in np.asarray(steps).reshape(-1)]
    if any(b >= a for a, b in zip(ts, ts[1:], strict=False)):
        raise InputError(f"timesteps must be strictly descending; got {ts[:8]}.")
    return list(zip(ts, [*ts[1:], -1], strict=True))
