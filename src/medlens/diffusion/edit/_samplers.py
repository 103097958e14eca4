"""Counterfactual lesion editing samplers: MedEdit, naive RePaint, SDEdit and Palette.

All four run a DDIM-respaced reverse chain (``steps`` timesteps evenly spread over ``[0, t_start]``, ``eta``
as :func:`~medlens.diffusion.ddim_step`; ``eta = 1`` has the spread of the ancestral DDPM posterior) and differ
in what they keep, how they condition and which model they need:

- **MedEdit** (Ben Alaya et al. 2024): inpaint inside ``M = dilate(P, k) ∩ B`` (lesion mask ``P`` dilated by a
  k×k square, as OpenCV's one-iteration dilation; brain mask ``B``). The known region ``1 − M`` is re-noised
  from the input with fresh noise to the level of the step being taken: after the step ``t → t'`` it is
  ``√ᾱ_{t'}·x + √(1−ᾱ_{t'})·ε`` (the input itself at ``t' = −1``). The public code noises it to ``t`` instead
  of ``t'``, one step too noisy (the off-by-one of diffusers issue #1581); here it is exact. The output is
  pasted at the end with ``where(M, x̂, x)``, so pixels outside ``M`` equal the input bit for bit.
- **Naive RePaint**: the same sampler with ``M = P`` (no dilation) and RePaint's resampling jumps: after every
  ``jump_length`` respaced steps, the whole state is re-noised ``jump_length`` levels up
  (``q(x_hi | x_lo)``) and denoised again, ``resample − 1`` times (Lugmayr et al. 2022). Each denoising step
  is one network evaluation and is counted in ``nfe``.
- **SDEdit** (Meng et al. 2022): noise the whole input to ``t_start = round(strength·(T−1))`` (MedEdit's
  baseline: strength 0.1) and denoise; nothing is pasted, so the whole image may change.
- **Palette** (Saharia et al. 2022, as MedEdit's comparison runs it): a *separately trained* 2-channel model
  ``ε_θ([x_t, c], t)`` (``palette_conditioned`` in its config; ``anomaly train --conditioned palette``). The
  condition ``c = P⊙z + (1−P)⊙x`` (:func:`~medlens.diffusion.palette_condition`) fills the lesion with noise
  ``z ~ N(0, I)`` drawn once per image from the edit's generator and keeps the input elsewhere; sampling starts
  from the input noised to ``t_start = T − 1`` (its default strength 1; a smaller ``strength`` starts lower) and
  regenerates the whole image from ``c``; nothing is pasted.

MedEdit, RePaint and SDEdit with a mask-conditioned model (``mask_conditioned``, ``anomaly train --conditioned
mask``) pass ``cond = [x⊙(1−P), P]`` (so the model draws a lesion inside ``P``); with an unconditioned model
they run unconditioned (healthy inpainting). ``palette`` refuses any model but a Palette one, and the other
three refuse a Palette model: each raises an :class:`~medlens.InputError` naming the fix.

Randomness comes from one ``torch.Generator`` seeded with ``seed`` and consumed batch after batch: the same
inputs, seed and ``batch_size`` give the same edit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from medlens._validation import InputError, check_interval, check_option
from medlens.diffusion._backbones import mask_condition, palette_condition
from medlens.diffusion._schedule import NoiseSchedule, add_noise, ddim_step

__all__ = [
    "EDIT_METHODS",
    "check_model_for_method",
    "counterfactual_edit",
    "dilate_mask",
    "edit_region",
    "inpaint",
    "jump_path",
]

EDIT_METHODS = ("mededit", "repaint", "sdedit", "palette")
#: Per-method defaults: dilation k, strength (t_start = round(strength·(T−1))), resampling and jump length.
DEFAULTS: dict[str, dict[str, Any]] = {
    "mededit": {"dilate": 25, "strength": 1.0, "resample": 1, "jump_length": 5},
    "repaint": {"dilate": 1, "strength": 1.0, "resample": 2, "jump_length": 5},
    "sdedit": {"dilate": 25, "strength": 0.1, "resample": 1, "jump_length": 5},
    "palette": {"dilate": 25, "strength": 1.0, "resample": 1, "jump_length": 5},
}
_KIND = {"class": "class-conditioned", "mask": "mask-conditioned (MedEdit's inpainting model)",
         "palette": "a Palette model", None: "unconditioned"}  # fmt: skip


def _conditioning(model: Any) -> str | None:
    """``"class"``, ``"mask"``, ``"palette"`` or ``None``, for our ``EpsModel`` or any module with the flags."""
    if getattr(model, "palette_conditioned", False):
        return "palette"
    if getattr(model, "mask_conditioned", False):
        return "mask"
    return "class" if getattr(model, "null_class", None) is not None else None


def check_model_for_method(model: Any, method: str, *, what: str = "the model", flag: str | None = None) -> None:
    """Raise an :class:`InputError` unless ``model`` fits ``method``: ``palette`` needs a Palette model
    (``palette_conditioned``) and the other methods refuse one. ``what`` names the model in the message (a
    checkpoint path), ``flag`` the option choosing the method on the command line (``--method``)."""
    kind = _conditioning(model)
    chosen = f"{flag} {method}" if flag else f"the {method} method"
    if method == "palette" and kind != "palette":
        raise InputError(
            f"{chosen} needs a Palette-conditioned model (palette_conditioned in its config) and {what} is "
            f"{_KIND.get(kind, kind)}; train one with `medlens anomaly train --conditioned palette`."
        )
    if method != "palette" and kind == "palette":
        raise InputError(
            f"{chosen} cannot use {what}: it is a Palette model (trained for the palette method only); use a "
            "mask-conditioned model (`medlens anomaly train --conditioned mask`) or the palette method."
        )


def _torch() -> Any:
    from medlens._optional import require

    return require("torch", extra="torch", purpose="diffusion editing")


def _int(v: Any, name: str, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < low:
        raise InputError(f"The '{name}' parameter must be an integer ≥ {low}; got {v!r}.")
    return int(v)


def dilate_mask(mask: Any, size: int) -> Any:
    """Binary dilation of ``mask`` (B, 1, H, W) by a ``size``×``size`` square, anchored at ``size // 2`` like
    OpenCV's ``cv2.dilate`` (one iteration); ``size`` 0 or 1 returns the mask as 0/1 floats."""
    torch = _torch()
    size = _int(size, "dilate", 0)
    m = torch.as_tensor(mask).float()
    if size <= 1:
        return (m > 0).float()
    a = size // 2
    padded = torch.nn.functional.pad((m > 0).float(), (a, size - 1 - a, a, size - 1 - a))
    return torch.nn.functional.max_pool2d(padded, size, stride=1)


def edit_region(lesion_mask: Any, brain_mask: Any = None, *, dilate: int = 25) -> Any:
    """MedEdit's inpainting region ``M = dilate(P, k) ∩ B`` (0/1 floats); no brain mask keeps the whole image."""
    m = dilate_mask(lesion_mask, dilate)
    if brain_mask is not None:
        m = m * (_torch().as_tensor(brain_mask).to(m.device).float() > 0)
    return m


def jump_path(n: int, *, resample: int = 1, jump_length: int = 5) -> list[int]:
    """The levels a RePaint chain visits over ``n`` respaced steps: level ``n`` is the noisiest, 0 the clean
    image; a step down is a network evaluation, a step up a forward re-noising. After reaching a level
    ``j`` in ``0, L, 2L, … < n − L`` (``L = jump_length``) the chain goes back up ``L`` levels, ``resample − 1``
    times (the schedule of Lugmayr et al.'s RePaint, in respaced levels).

    >>> jump_path(4)
    [4, 3, 2, 1, 0]
    >>> jump_path(4, resample=2, jump_length=2)
    [4, 3, 2, 1, 0, 1, 2, 1, 0]
    """
    n, resample, jump_length = _int(n, "steps", 1), _int(resample, "resample", 1), _int(jump_length, "jump_length", 1)
    left = {j: resample - 1 for j in range(0, n - jump_length, jump_length)}
    k, path = n, [n]
    while k > 0:
        k -= 1
        path.append(k)
        if left.get(k, 0) > 0:
            left[k] -= 1
            for _ in range(jump_length):
                k += 1
                path.append(k)
    return path


def _levels(t_start: int, steps: int) -> list[int]:
    """Timestep of each level: ``[-1, t_1, …, t_start]`` ascending (level 0 the clean image)."""
    ts = np.unique(np.round(np.linspace(0, t_start, steps)).astype(np.int64))
    return [-1, *(int(t) for t in ts)]


def _bar(schedule: NoiseSchedule, t: int) -> Any:
    return schedule.alpha_bar(t)


def inpaint(
    model: Any,
    known: Any,
    region: Any,
    schedule: NoiseSchedule,
    *,
    t_start: int | None = None,
    steps: int = 50,
    resample: int = 1,
    jump_length: int = 5,
    eta: float = 1.0,
    cond: Any = None,
    generator: Any = None,
    paste: bool = True,
    trace: Callable[[int, int, Any], None] | None = None,
) -> tuple[Any, int]:
    """Regenerate ``region`` (B, 1, H, W; 1 = generate) of ``known`` (B, C, H, W) in [−1, 1]; returns
    ``(x̂, nfe)``. Outside ``region`` the state is the input re-noised to the level of every step, and with
    ``paste`` the output there is the input exactly. ``region`` all ones is plain partial denoising from
    ``known`` noised to ``t_start`` (SDEdit, Palette). ``trace(t, t_prev, x)`` sees the state after every step (RePaint's
    upward jumps call it too, with ``t_prev > t``)."""
    torch = _torch()
    T = schedule.num_train_timesteps
    t_start = T - 1 if t_start is None else _int(t_start, "t_start", 0)
    if t_start >= T:
        raise InputError(f"t_start must be in [0, {T - 1}]; got {t_start}.")
    steps = min(_int(steps, "steps", 1), t_start + 1)
    check_interval(eta, name="eta", low=0.0)
    levels = _levels(t_start, steps)
    path = jump_path(len(levels) - 1, resample=resample, jump_length=jump_length)
    keep = region <= 0  # known pixels

    def randn() -> Any:
        return torch.randn(known.shape, generator=generator, dtype=known.dtype).to(known.device)

    x = add_noise(schedule, known, randn(), t_start)
    nfe = 0
    with torch.no_grad():
        for lo, hi in zip(path, path[1:], strict=False):
            if hi < lo:  # a denoising step from level lo to hi = lo − 1
                t, prev = levels[lo], levels[hi]
                eps = model(x, torch.full((len(x),), t, dtype=torch.long, device=x.device), cond=cond)
                nfe += 1
                z = randn() if eta > 0 else None
                x, _ = ddim_step(schedule, eps, t, x, prev_t=prev, eta=eta, noise=z)
                if keep.any():
                    x_known = known if prev < 0 else add_noise(schedule, known, randn(), prev)
                    x = torch.where(keep, x_known, x)
                if trace is not None:
                    trace(t, prev, x)
            else:  # a RePaint jump: q(x_hi | x_lo) for the whole state (the known part stays on its level)
                t, up = levels[lo], levels[hi]
                ratio = _bar(schedule, up) / _bar(schedule, t)
                x = ratio**0.5 * x + (1 - ratio) ** 0.5 * randn()
                if trace is not None:
                    trace(t, up, x)
    if paste:
        x = torch.where(keep, known, x)
    return x, nfe


def _prepare(model: Any, images: Any, lesion_masks: Any, brain_masks: Any) -> tuple[Any, Any, Any]:
    torch = _torch()

    def tensor(a: Any) -> Any:
        return a.float() if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a, dtype=np.float32))

    x, p = tensor(images), tensor(lesion_masks)
    if x.ndim != 4:
        raise InputError(f"images must be a batch (N, C, H, W); got shape {tuple(x.shape)}.")
    if tuple(p.shape) != (len(x), 1, *x.shape[2:]):
        raise InputError(
            f"lesion masks must be one (1, H, W) mask per image, shape {(len(x), 1, *x.shape[2:])}; got {tuple(p.shape)}."
        )
    cfg = getattr(model, "config", None) or {}
    if x.shape[1] != cfg.get("in_channels", x.shape[1]):
        raise InputError(f"the model takes {cfg['in_channels']} channel(s); the images have {x.shape[1]}.")
    if not torch.isfinite(x).all() or float(x.min()) < -1 or float(x.max()) > 1:
        raise InputError(
            f"images must be finite and scaled to [-1, 1]; got values in [{float(x.min()):.3g}, {float(x.max()):.3g}]."
        )
    b = None
    if brain_masks is not None:
        b = tensor(brain_masks)
        if tuple(b.shape) != tuple(p.shape):
            raise InputError(f"brain masks must have the lesion masks' shape {tuple(p.shape)}; got {tuple(b.shape)}.")
        b = (b > 0).float()
    return x, (p > 0).float(), b


def counterfactual_edit(
    model: Any,
    images: Any,
    lesion_masks: Any,
    schedule: NoiseSchedule,
    *,
    method: str = "mededit",
    brain_masks: Any = None,
    dilate: int | None = None,
    strength: float | None = None,
    steps: int = 50,
    resample: int | None = None,
    jump_length: int | None = None,
    eta: float = 1.0,
    seed: int = 0,
    batch_size: int = 16,
    trace: Callable[[int, int, Any], None] | None = None,
) -> dict[str, Any]:
    """Insert the lesions ``lesion_masks`` (N, 1, H, W; 0/1) into ``images`` (N, C, H, W) in [−1, 1].

    ``method``: ``mededit`` | ``repaint`` | ``sdedit`` | ``palette`` (module docstring; ``palette`` needs a
    Palette model, the others refuse one). Unset parameters take the method's defaults (:data:`DEFAULTS`):
    ``dilate`` k (MedEdit 25, RePaint 1 = none; for SDEdit and Palette it only sets the reported ``region``),
    ``strength`` (``t_start = round(strength·(T−1))``; SDEdit 0.1, the others 1), ``resample``/``jump_length``
    (RePaint 2 and 5). ``brain_masks`` (N, 1, H, W) bound the edit region (none: the whole image).

    Returns ``edited`` (a tensor like ``images``, on the model's device), ``region`` (the region
    ``dilate(P, k) ∩ B`` outside which MedEdit and RePaint keep the input exactly), ``nfe`` (network
    evaluations per image, resampling jumps included), ``t_start`` and ``seconds``.
    """
    torch = _torch()
    check_option(method, EDIT_METHODS, name="method")
    d = DEFAULTS[method]
    dilate = d["dilate"] if dilate is None else _int(dilate, "dilate", 0)
    strength = d["strength"] if strength is None else strength
    check_interval(strength, name="strength", low=0.0, high=1.0, closed="right")
    resample = d["resample"] if resample is None else _int(resample, "resample", 1)
    jump_length = d["jump_length"] if jump_length is None else _int(jump_length, "jump_length", 1)
    batch_size = _int(batch_size, "batch_size", 1)
    check_model_for_method(model, method)
    kind = _conditioning(model)
    x, p, b = _prepare(model, images, lesion_masks, brain_masks)
    try:
        device = next(model.parameters()).device
    except (AttributeError, StopIteration):
        device = x.device
    x, p = x.to(device), p.to(device)
    b = b.to(device) if b is not None else None
    region = edit_region(p, b, dilate=dilate)
    T = schedule.num_train_timesteps
    t_start = int(round(strength * (T - 1)))
    generator = torch.Generator().manual_seed(int(seed))
    out, nfe, start = [], 0, time.perf_counter()
    for i in range(0, len(x), batch_size):
        sl = slice(i, i + batch_size)
        cond = None
        if kind == "mask":
            cond = mask_condition(x[sl], p[sl])
        elif kind == "palette":  # c built once per image, its noise from the edit's generator
            cond = palette_condition(x[sl], p[sl], generator=generator)
        inpaint_where = region[sl] if method in ("mededit", "repaint") else torch.ones_like(p[sl])
        res, nfe = inpaint(model, x[sl], inpaint_where, schedule, t_start=t_start, steps=steps, resample=resample,
                           jump_length=jump_length, eta=eta, cond=cond, generator=generator,
                           paste=method in ("mededit", "repaint"), trace=trace)  # fmt: skip
        out.append(res)
    edited = torch.cat(out) if out else x.clone()
    return {
        "edited": edited,
        "region": region,
        "nfe": nfe,
        "t_start": t_start,
        "method": method,
        "dilate": dilate,
        "seconds": time.perf_counter() - start,
    }
