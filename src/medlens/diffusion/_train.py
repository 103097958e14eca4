"""Training a denoiser on healthy images: ε-prediction with an L2 loss, AdamW, optional EMA weights, and
optional class conditioning with null-class dropout (for classifier-free guidance), mask conditioning (an
inpainting model for counterfactual editing: ``ε_θ([x_t, x_0⊙(1−m), m], t)`` with each image's mask) or Palette
conditioning (the Palette baseline's model: ``ε_θ([x_t, c], t)`` with ``c = m⊙N(0, I) + (1−m)⊙x_0``, fresh noise
in ``c`` at every step), on the shared :class:`medlens.training.Trainer` (seeded epochs, safetensors
checkpoints, exact resume).

One step: draw a batch, ``t ~ U{0..T−1}`` and noise ε (Gaussian or standardised simplex), form
``x_t = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε`` and minimise ``‖ε_θ(x_t, t[, c]) − ε‖²``. The network's output is compared
with ε as it is: no ``(pred + 1)/2`` rescaling (the THOR trainer's bug that collapses training to white
images). Batches, timesteps and dropped labels come from the epoch's numpy generator; noise from torch's
generator, which the loop reseeds per epoch and checkpoints (the noise filling a Palette condition too, drawn
before ε), so a run killed after any epoch and resumed ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from medlens._validation import InputError, check_interval, check_option
from medlens.diffusion._noise import NOISE_TYPES, noise_like
from medlens.diffusion._schedule import SCHEDULES, add_noise, make_schedule

__all__ = ["MODEL_FILE", "train_diffusion"]

MODEL_FILE = "model.safetensors"


def _check_data(images: Any, labels: Any, model: Any) -> tuple[Any, Any]:
    import torch

    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim != model.config["spatial_dims"] + 2 or x.shape[1] != model.config["in_channels"] or len(x) == 0:
        raise InputError(
            f"images must be a non-empty batch (N, {model.config['in_channels']}, ...) with "
            f"{model.config['spatial_dims']} spatial axes; got shape {tuple(x.shape)}."
        )
    if not torch.isfinite(x).all() or float(x.min()) < -1 or float(x.max()) > 1:
        raise InputError(
            f"images must be finite and scaled to [-1, 1]; got values in [{float(x.min()):.3g}, {float(x.max()):.3g}]."
        )
    if (labels is None) != (model.null_class is None):
        raise InputError("class labels go with a class-conditioned model (num_classes set) and only with one.")
    y = None
    if labels is not None:
        y = torch.as_tensor(np.asarray(labels)).long().reshape(-1)
        if len(y) != len(x) or int(y.min()) < 0 or int(y.max()) >= model.null_class:
            raise InputError(
                f"labels must be {len(x)} class indices in [0, {model.null_class - 1}]; got {len(y)} "
                f"in [{int(y.min())}, {int(y.max())}]."
            )
    return x, y


def _check_masks(masks: Any, x: Any, model: Any) -> Any:
    import torch

    wants = bool(getattr(model, "mask_conditioned", False) or getattr(model, "palette_conditioned", False))
    if (masks is None) == wants:
        raise InputError(
            "masks go with a mask-conditioned model (mask_conditioned or palette_conditioned set) and only with one."
        )
    if masks is None:
        return None
    m = np.asarray(masks)
    want = (len(x), 1, *x.shape[2:])
    if m.shape != want:
        raise InputError(f"masks must have shape {want} (one 0/1 mask per image); got {m.shape}.")
    if not np.isin(m, (0, 1)).all():
        raise InputError("masks must hold only 0 and 1 (or False/True).")
    return torch.as_tensor(m.astype(np.float32))


def train_diffusion(
    model: Any,
    images: Any,
    *,
    labels: Any = None,
    masks: Any = None,
    epochs: int = 10,
    steps_per_epoch: int = 50,
    batch_size: int = 16,
    lr: float = 1e-4,
    weight_decay: float = 0.0,
    schedule: str = "linear",
    num_train_timesteps: int = 1000,
    noise: str = "gaussian",
    null_prob: float = 0.1,
    ema_decay: float | None = None,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    callback: Any = None,
) -> dict[str, Any]:
    """Train ``model`` (from :func:`~medlens.diffusion.build_unet`) on ``images`` in [−1, 1], in place.

    Parameters
    ----------
    images : array of shape (N, C, H, W) or (N, C, D, H, W), float in [−1, 1]
    labels : array of shape (N,), optional
        Class indices for a class-conditioned model; each is replaced by ∅ with probability ``null_prob``.
    masks : array of shape (N, 1, ...), optional
        0/1 masks for a mask-conditioned model (``mask_conditioned`` in its config): each image is seen with its
        own mask, as ``cond = [x_0⊙(1−m), m]`` (:func:`~medlens.diffusion.mask_condition`); or for a Palette
        model (``palette_conditioned``), as ``cond = m⊙z + (1−m)⊙x_0`` with fresh noise ``z ~ N(0, I)`` every step
        (:func:`~medlens.diffusion.palette_condition`). The images should hold the lesions the masks mark.
    epochs, steps_per_epoch, batch_size : int
        A checkpoint is written after every epoch of ``steps_per_epoch`` optimiser steps.
    schedule, num_train_timesteps, noise
        The noise schedule (:func:`~medlens.diffusion.make_schedule`) and noise type (``gaussian``/``simplex``).
    ema_decay : float, optional
        Keep an exponential moving average of the weights (``ema ← d·ema + (1−d)·θ`` after every step).
    out : path, optional
        A run folder (``manifest.json``, ``checkpoint.safetensors``, ``history.jsonl`` and the final
        ``model.safetensors``); ``resume``/``overwrite`` as :func:`medlens.training.open_training_run`.
    callback : callable, optional
        ``callback(epoch, row)`` after each epoch's checkpoint.

    Returns
    -------
    dict with ``history`` (one row per epoch: ``train_loss``, seconds), ``model`` (the trained network), ``ema``
    (the averaged copy or ``None``) and ``model_path`` (``out/model.safetensors`` or ``None``).
    """
    import copy

    import torch

    from medlens.diffusion._backbones import mask_condition, palette_condition, save_unet
    from medlens.training import Trainer, adamw, open_training_run

    check_option(schedule, SCHEDULES, name="schedule")
    check_option(noise, NOISE_TYPES, name="noise")
    check_interval(null_prob, name="null_prob", low=0.0, high=1.0)
    check_interval(lr, name="lr", low=0.0, closed="neither")
    if ema_decay is not None:
        check_interval(ema_decay, name="ema_decay", low=0.0, high=1.0, closed="left")
    for name, v in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"The '{name}' parameter must be a positive integer; got {v!r}.")
    x, y = _check_data(images, labels, model)
    m = _check_masks(masks, x, model)
    palette = bool(getattr(model, "palette_conditioned", False))
    sched = make_schedule(schedule, num_train_timesteps)
    ema = copy.deepcopy(model).requires_grad_(False) if ema_decay is not None else None
    holder = torch.nn.ModuleDict({"model": model, **({"ema": ema} if ema is not None else {})})
    config = {
        "task": "diffusion.train",
        "unet": model.config,
        "n_images": int(len(x)),
        "data_sha": _data_digest(x, y, m),
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "schedule": schedule,
        "num_train_timesteps": num_train_timesteps,
        "noise": noise,
        "null_prob": null_prob,
        "ema_decay": ema_decay,
        "seed": seed,
    }
    run = None
    if out is not None:
        run = open_training_run(out, config, resume=resume, overwrite=overwrite, outputs=(MODEL_FILE,))
    optimizer = adamw([{"params": model.parameters()}], lr=lr, weight_decay=weight_decay)
    trainer = Trainer(holder, optimizer, epochs=epochs, seed=seed, run=run, progress=progress, close_run=False)
    pending = [False]  # an EMA update owed for the last optimiser step

    def settle_ema(_epoch: int = 0) -> dict[str, Any]:
        if ema is not None and pending[0]:
            with torch.no_grad():
                for e, p in zip(ema.parameters(), model.parameters(), strict=True):
                    e.lerp_(p, 1.0 - ema_decay)
        pending[0] = False
        return {}

    def plan(rng: np.random.Generator) -> list[tuple[Any, int]]:
        out_batches = []
        for _ in range(steps_per_epoch):
            idx = rng.integers(0, len(x), batch_size)
            t = rng.integers(0, sched.num_train_timesteps, batch_size)
            drop = rng.random(batch_size) < null_prob
            out_batches.append(((idx, t, drop), batch_size))
        return out_batches

    def step(batch: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[Any, dict[str, float]]:
        settle_ema()
        idx, t, drop = batch
        x0, tt = x[torch.as_tensor(idx)], torch.as_tensor(t)
        cond = None
        if m is not None and palette:  # its noise comes first, from torch's per-epoch generator
            cond = palette_condition(x0, m[torch.as_tensor(idx)])
        eps = noise_like(x0, noise, t=t.tolist())
        if m is not None and not palette:
            cond = mask_condition(x0, m[torch.as_tensor(idx)])
        if y is not None:
            cond = torch.where(torch.as_tensor(drop), model.null_class, y[torch.as_tensor(idx)])
        pred = model(add_noise(sched, x0, eps, tt), tt, cond=cond)
        pending[0] = True
        return torch.nn.functional.mse_loss(pred, eps), {}

    try:
        trainer.resume()
        history = trainer.fit(plan, step, n_items=steps_per_epoch * batch_size, validate=settle_ema, callback=callback)
        model_path = None
        if run is not None:
            meta = {"schedule": schedule, "num_train_timesteps": num_train_timesteps, "noise": noise}
            model_path = save_unet(run.dir / MODEL_FILE, ema if ema is not None else model, metadata=meta)
    finally:
        if run is not None:
            run.close()
    return {"history": history, "model": model, "ema": ema, "model_path": model_path}


def _data_digest(x: Any, y: Any, m: Any = None) -> str:
    import hashlib

    h = hashlib.sha256(x.numpy().tobytes())
    if y is not None:
        h.update(y.numpy().tobytes())
    if m is not None:
        h.update(b"masks" + m.numpy().tobytes())
    return h.hexdigest()[:16]
