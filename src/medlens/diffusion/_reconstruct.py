"""Reconstruction-based anomaly localisation: AnoDDPM partial reconstruction (Gaussian or simplex noise), pDDPM
patched reconstruction and THOR's temporal harmonisation, batched over images, counting network evaluations.

``t0`` is the number of forward diffusion steps applied to the input: the input is noised to timestep
``t0 − 1`` (``ᾱ_{t0−1}``) and denoised back, so ``t0 = 0`` returns the input untouched (no network call) and a
full DDPM chain costs ``t0`` network evaluations (NFE) per image. ``steps`` respaces the chain to that many
timesteps evenly spread over ``[0, t0 − 1]`` (DDIM respacing). ``sampler`` is ``ddim`` (deterministic for
``eta = 0``) or ``ddpm`` (ancestral, with noise of the same type as the forward noise). Images are in
[−1, 1]; ``x̂_0`` is clipped to [−1, 1] as the libraries do; nothing is clamped to [0, 1].

Randomness comes from one ``torch.Generator`` seeded with ``seed`` and consumed batch after batch, so results
depend on ``seed`` and ``batch_size``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from medlens._validation import InputError, check_option
from medlens.diffusion._maps import harmonic_mean, residual_map, temporal_map, thor_harmonize
from medlens.diffusion._noise import NOISE_TYPES, noise_like
from medlens.diffusion._schedule import NoiseSchedule, add_noise, ddim_step, ddpm_step, timestep_pairs

__all__ = [
    "METHODS",
    "chain",
    "partial_reconstruct",
    "patched_reconstruct",
    "score_images",
    "thor_reconstruct",
]

METHODS = ("anoddpm", "simplex", "patched", "thor", "classifier", "cfg")
SAMPLERS = ("ddim", "ddpm")


def chain(t0: int, steps: int | None, num_train_timesteps: int) -> list[tuple[int, int]]:
    """``(t, prev_t)`` pairs from ``t0 − 1`` down to the clean image, ``steps`` of them (all ``t0`` if ``None``).

    >>> chain(10, 3, 1000)
    [(9, 4), (4, 0), (0, -1)]
    >>> chain(10, 1, 1000)
    [(9, -1)]
    >>> chain(0, None, 1000)
    []
    """
    if isinstance(t0, bool) or not isinstance(t0, int | np.integer) or not 0 <= t0 <= num_train_timesteps:
        raise InputError(f"t0 must be an integer in [0, {num_train_timesteps}] (forward steps); got {t0!r}.")
    if t0 == 0:
        return []
    n = t0 if steps is None else steps
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= t0:
        raise InputError(f"steps must be an integer in [1, t0={t0}]; got {steps!r}.")
    ts = np.unique(np.round(np.linspace(0, t0 - 1, int(n))).astype(np.int64))[::-1]
    if n == 1:  # one step starts where the input was noised: a one-step x̂_0 from t0 − 1 (not from t = 0)
        ts = np.array([t0 - 1])
    return timestep_pairs(ts)


def _prepare(model: Any, x: Any) -> Any:
    import torch

    x = torch.as_tensor(np.asarray(x, dtype=np.float32)) if not isinstance(x, torch.Tensor) else x.float()
    if x.ndim != 4:
        raise InputError(f"images must be a batch (N, C, H, W); got shape {tuple(x.shape)}.")
    cfg = getattr(model, "config", None)
    if cfg is not None and x.shape[1] != cfg.get("in_channels", x.shape[1]):
        raise InputError(f"the model takes {cfg['in_channels']} channel(s); the images have {x.shape[1]}.")
    if not torch.isfinite(x).all() or float(x.min()) < -1 or float(x.max()) > 1:
        raise InputError(
            f"images must be finite and scaled to [-1, 1]; got values in [{float(x.min()):.3g}, {float(x.max()):.3g}]."
        )
    try:
        device = next(model.parameters()).device
    except (AttributeError, StopIteration):
        device = x.device
    return x.to(device)


def _step(
    schedule: NoiseSchedule, sampler: str, eps: Any, t: int, prev: int, x_t: Any, noise: str, gen: Any, eta: float
) -> tuple[Any, Any]:
    if sampler == "ddpm":
        z = noise_like(x_t, noise, generator=gen, t=max(prev, 0)) if t > 0 else None
        return ddpm_step(schedule, eps, t, x_t, prev_t=prev, noise=z)
    z = noise_like(x_t, noise, generator=gen, t=max(prev, 0)) if eta > 0 else None
    return ddim_step(schedule, eps, t, x_t, prev_t=prev, eta=eta, noise=z)


def _checks(noise: str, sampler: str, batch_size: int) -> None:
    check_option(noise, NOISE_TYPES, name="noise")
    check_option(sampler, SAMPLERS, name="sampler")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer; got {batch_size!r}.")


def _batches(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def partial_reconstruct(
    model: Any,
    x: Any,
    schedule: NoiseSchedule,
    *,
    t0: int,
    noise: str = "gaussian",
    steps: int | None = None,
    sampler: str = "ddim",
    eta: float = 0.0,
    cond: Any = None,
    seed: int = 0,
    batch_size: int = 16,
) -> dict[str, Any]:
    """AnoDDPM: noise ``x`` (N, C, H, W) to ``t0`` and denoise it. Returns ``reconstruction`` (a tensor like
    ``x``) and ``nfe`` (network evaluations per image)."""
    import torch

    _checks(noise, sampler, batch_size)
    x = _prepare(model, x)
    pairs = chain(t0, steps, schedule.num_train_timesteps)
    gen = torch.Generator().manual_seed(int(seed))
    out = x.clone()
    with torch.inference_mode():
        for sl in _batches(len(x), batch_size) if pairs else []:
            x0 = x[sl]
            x_t = add_noise(schedule, x0, noise_like(x0, noise, generator=gen, t=t0 - 1), t0 - 1)
            for t, prev in pairs:
                x_t, _ = _step(schedule, sampler, model(x_t, t, cond), t, prev, x_t, noise, gen, eta)
            out[sl] = x_t
    return {"reconstruction": out, "nfe": len(pairs)}


def _patch_boxes(h: int, w: int, patch: int, stride: int) -> list[tuple[int, int]]:
    def starts(n: int) -> list[int]:
        s = list(range(0, n - patch + 1, stride))
        return s if s[-1] == n - patch else [*s, n - patch]

    return [(i, j) for i in starts(h) for j in starts(w)]


def patched_reconstruct(
    model: Any,
    x: Any,
    schedule: NoiseSchedule,
    *,
    t0: int,
    patch: int = 32,
    stride: int | None = None,
    noise: str = "gaussian",
    steps: int = 1,
    sampler: str = "ddim",
    cond: Any = None,
    seed: int = 0,
    batch_size: int = 16,
) -> dict[str, Any]:
    """pDDPM: noise one ``patch``×``patch`` square to ``t0`` while the context stays clean, denoise it (one step
    by default: ``x̂_0`` directly; with ``steps > 1`` the context is reset to the input after every step), move
    the square over a grid with ``stride`` (default ``patch // 2``) and average the overlapping patches.
    Returns ``reconstruction``, ``nfe`` (patches × steps per image) and ``n_patches``."""
    import torch

    _checks(noise, sampler, batch_size)
    x = _prepare(model, x)
    h, w = int(x.shape[-2]), int(x.shape[-1])
    stride = patch // 2 if stride is None else stride
    if not 1 <= patch <= min(h, w) or stride < 1:
        raise InputError(f"patch must be in [1, {min(h, w)}] and stride ≥ 1; got patch={patch}, stride={stride}.")
    pairs = chain(t0, steps, schedule.num_train_timesteps)
    if not pairs:
        return {"reconstruction": x.clone(), "nfe": 0, "n_patches": 0}
    boxes = _patch_boxes(h, w, patch, stride)
    gen = torch.Generator().manual_seed(int(seed))
    total, count = torch.zeros_like(x), torch.zeros_like(x)
    with torch.inference_mode():
        for i, j in boxes:
            m = torch.zeros((1, 1, h, w), dtype=x.dtype, device=x.device)
            m[..., i : i + patch, j : j + patch] = 1
            for sl in _batches(len(x), batch_size):
                x0 = x[sl]
                noisy = add_noise(schedule, x0, noise_like(x0, noise, generator=gen, t=t0 - 1), t0 - 1)
                x_t = m * noisy + (1 - m) * x0
                for t, prev in pairs:
                    x_t, _ = _step(schedule, sampler, model(x_t, t, cond), t, prev, x_t, noise, gen, 0.0)
                    x_t = m * x_t + (1 - m) * x0
                total[sl] += m * x_t
                count[sl] += m
    return {"reconstruction": total / count, "nfe": len(boxes) * len(pairs), "n_patches": len(boxes)}


def thor_reconstruct(
    model: Any,
    x: Any,
    schedule: NoiseSchedule,
    *,
    t0: int,
    harmonize_at: Sequence[int] = (),
    noise: str = "gaussian",
    steps: int | None = None,
    sampler: str = "ddim",
    perceptual: Callable[[Any, Any], Any] | None = None,
    sigma: float = 2.0,
    close_k: int = 13,
    dilate_k: int = 13,
    cond: Any = None,
    seed: int = 0,
    batch_size: int = 16,
    keep_intermediates: bool = False,
) -> dict[str, Any]:
    """THOR: denoise from ``t0`` with one noise draw ε; on the step that passes each harmonisation timestep
    ``h`` (``prev < h ≤ t``), compute the temporal map ``m_h`` from that step's ``x̂_0``, paste the input back
    where ``m_h`` says healthy (:func:`thor_harmonize`) and re-noise the result to the step's level with the
    same ε. The map is the pixel-wise harmonic mean of the ``m_h`` (the last ``x̂_0``'s map when
    ``harmonize_at`` is empty). Returns ``reconstruction``, ``map`` (N, 1, H, W, in [0, 1]), ``nfe`` and, with
    ``keep_intermediates``, the per-step ``x0_hat`` and ``maps``."""
    import torch

    _checks(noise, sampler, batch_size)
    x = _prepare(model, x)
    pairs = chain(t0, steps, schedule.num_train_timesteps)
    hs = sorted({int(h) for h in harmonize_at}, reverse=True)
    if any(not 0 <= h < max(t0, 1) for h in hs):
        raise InputError(f"harmonisation timesteps must lie in [0, t0 − 1 = {t0 - 1}]; got {hs}.")
    gen = torch.Generator().manual_seed(int(seed))
    recon, final_map = x.clone(), torch.zeros((len(x), 1, *x.shape[-2:]), dtype=x.dtype, device=x.device)
    inter: dict[str, list[Any]] = {"x0_hat": [], "maps": []}
    with torch.inference_mode():
        for sl in _batches(len(x), batch_size) if pairs else []:
            x0 = x[sl]
            eps0 = noise_like(x0, noise, generator=gen, t=t0 - 1)
            x_t, maps, steps_x0 = add_noise(schedule, x0, eps0, t0 - 1), [], []
            for t, prev in pairs:
                x_t, x0_hat = _step(schedule, sampler, model(x_t, t, cond), t, prev, x_t, noise, gen, 0.0)
                if any(prev < h <= t for h in hs):
                    m = temporal_map(x0, x0_hat, perceptual=perceptual, sigma=sigma)
                    maps.append(m)
                    steps_x0.append(x0_hat)
                    harmonised = thor_harmonize(x0, x0_hat, m, close_k=close_k, dilate_k=dilate_k)
                    x_t = add_noise(schedule, harmonised, eps0, prev) if prev >= 0 else harmonised
            recon[sl] = x_t
            final_map[sl] = harmonic_mean(maps) if maps else temporal_map(x0, x_t, perceptual=perceptual, sigma=sigma)
            if keep_intermediates:
                inter["x0_hat"].append(steps_x0)
                inter["maps"].append(maps)
    out = {"reconstruction": recon, "map": final_map, "nfe": len(pairs), "harmonize_at": hs}
    if keep_intermediates:
        out["intermediates"] = inter
    return out


def _channels_last(*models: Any) -> None:
    """Put the 4-D weights of torch modules in channels-last order, in place: the same numbers (to float
    rounding), and oneDNN's convolutions at the demo UNet's small channel counts run about 1.6× faster on CPU."""
    import torch

    for m in models:
        if isinstance(m, torch.nn.Module):
            m.to(memory_format=torch.channels_last)


def score_images(
    model: Any,
    images: Any,
    schedule: NoiseSchedule,
    *,
    method: str = "anoddpm",
    t0: int = 250,
    steps: int | None = 25,
    harmonize_at: Sequence[int] | None = None,
    patch: int | None = None,
    perceptual: Callable[[Any, Any], Any] | None = None,
    sigma: float = 2.0,
    classifier: Any = None,
    scale: float = 10.0,
    weight: float = 3.0,
    encode: str = "noise",
    seed: int = 0,
    batch_size: int = 16,
) -> dict[str, Any]:
    """Anomaly maps for ``images`` (N, C, H, W) in [−1, 1] by ``method``:

    - ``anoddpm``: Gaussian partial reconstruction; ``simplex``: the same with simplex noise;
    - ``patched``: pDDPM patches of ``patch`` (default H/2) px, one-step ``x̂_0``;
    - ``thor``: Gaussian THOR harmonised at ``harmonize_at`` (default ``t0·{6/7, 3/7, 1/7}``, THOR's
      {300, 150, 50} for ``t0 = 350``);
    - ``classifier``: DDIM decoding guided towards the healthy class (0) by the noise-aware ``classifier``
      with gradient scale ``scale``; ``cfg``: classifier-free guidance with weight ``weight`` (a class-conditioned
      model); both encode by ``encode`` (``noise`` or ``ddim`` inversion), see :mod:`medlens.diffusion._guidance`.

    The model (and classifier) are switched to channels-last memory order in place (see :func:`_channels_last`).
    The map is the residual ``|x − x̂|/2`` (weighted by a Gaussian-blurred ``perceptual`` distance if one is
    given) or THOR's harmonic-mean map. Returns numpy ``maps`` (N, 1, H, W, float32), ``reconstructions``
    (N, C, H, W, float32), image ``scores`` (the map's mean), ``nfe`` per image, ``seconds_per_image``.
    """
    from medlens.diffusion._maps import gaussian_blur

    check_option(method, METHODS, name="method")
    start = time.perf_counter()
    _channels_last(model, classifier)
    common = {"t0": t0, "seed": seed, "batch_size": batch_size}
    if method in ("anoddpm", "simplex"):
        noise = "gaussian" if method == "anoddpm" else "simplex"
        res = partial_reconstruct(model, images, schedule, noise=noise, steps=steps, **common)
    elif method == "patched":
        x = _prepare(model, images)
        res = patched_reconstruct(model, x, schedule, patch=patch or int(x.shape[-2]) // 2, **common)
    elif method in ("classifier", "cfg"):
        from medlens.diffusion._guidance import cfg_reconstruct, classifier_reconstruct

        if method == "classifier":
            if classifier is None:
                raise InputError("method 'classifier' needs a noise-aware classifier (classifier=...).")
            res = classifier_reconstruct(model, classifier, images, schedule, steps=steps, scale=scale,
                                         encode=encode, **common)  # fmt: skip
        else:
            res = cfg_reconstruct(model, images, schedule, steps=steps, w=weight, encode=encode, **common)
    else:
        hs = harmonize_at if harmonize_at is not None else [round(t0 * f) for f in (6 / 7, 3 / 7, 1 / 7)]
        hs = sorted({h for h in hs if 0 <= h < t0})
        res = thor_reconstruct(
            model, images, schedule, harmonize_at=hs, steps=steps, perceptual=perceptual, sigma=sigma, **common
        )
    x = _prepare(model, images)
    recon = res["reconstruction"]
    if method == "thor":
        maps = res["map"]
    else:
        maps = residual_map(x, recon)
        if perceptual is not None:
            import torch

            with torch.inference_mode():
                maps = gaussian_blur(perceptual(recon, x), sigma) * maps
    maps_np = maps.detach().cpu().numpy().astype(np.float32)
    seconds = time.perf_counter() - start
    return {
        "method": method,
        "maps": maps_np,
        "reconstructions": recon.detach().cpu().numpy().astype(np.float32),
        "scores": maps_np.reshape(len(maps_np), -1).mean(axis=1),
        "nfe": int(res["nfe"]),
        "seconds_per_image": seconds / max(len(maps_np), 1),
    }
