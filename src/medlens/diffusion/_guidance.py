"""Guided healthy counterfactuals for weakly supervised localisation: classifier guidance with a noise-aware
classifier (Wolleb et al. 2022) and classifier-free guidance with a class-conditioned denoiser (Ho & Salimans
2022). Either way the input is encoded to noise level ``t0`` (Wolleb's ``L``) and decoded with DDIM steps
pushed towards the *healthy* class; the residual ``|x − x̂|`` is the anomaly map.

- Classifier guidance: ``ε̂ = ε_θ(x_t, t) − s·√(1−ᾱ_t)·∇_{x_t} log p_φ(y = healthy | x_t, t)`` (Dhariwal &
  Nichol's DDIM form); ``s = 0`` is plain DDIM. The classifier is MONAI's ``DiffusionModelEncoder`` (the
  encoder half of the diffusion UNet plus a small MLP, Wolleb's backbone), trained by
  :func:`train_classifier` with cross-entropy on noised images ``x_t``, ``t ~ U{0..T−1}``.
- Classifier-free guidance: ``ε̂ = (1+w)·ε_θ(x_t, t, healthy) − w·ε_θ(x_t, t, ∅)`` (the design note's form):
  ``w = 0`` is the class-conditioned model's plain healthy path and ``w = −1`` its unconditional (∅) path.

``encode`` chooses how ``x`` reaches ``t0``: ``noise`` (one Gaussian draw, as AnoDDPM) or ``ddim``
(deterministic DDIM inversion with the unguided model, as Wolleb; costs as many evaluations as decoding).
``nfe`` counts every network evaluation per image: UNet calls (two per guided CFG step, batched into one
call) plus classifier forward-and-backward passes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._validation import InputError, check_interval, check_option
from medlens.diffusion._noise import noise_like
from medlens.diffusion._reconstruct import _batches, _prepare, chain
from medlens.diffusion._schedule import SCHEDULES, NoiseSchedule, add_noise, ddim_step, make_schedule

log = logging.getLogger(__name__)

__all__ = [
    "CLASSIFIER_FILE",
    "DEFAULT_CLASSIFIER",
    "ENCODINGS",
    "build_classifier",
    "cfg_reconstruct",
    "classifier_reconstruct",
    "load_classifier",
    "save_classifier",
    "train_classifier",
]

ENCODINGS = ("noise", "ddim")
CLASSIFIER_FILE = "classifier.safetensors"
DEFAULT_CLASSIFIER: dict[str, Any] = {
    "spatial_dims": 2,
    "in_channels": 1,
    "num_classes": 2,
    "channels": [16, 32, 64],
    "attention_levels": [False, False, False],
    "num_res_blocks": 1,
    "norm_num_groups": 8,
    "num_head_channels": 32,
    "sample_size": 64,
}


def _classifier_class() -> type:
    torch = require("torch", extra="torch", purpose="the noise-aware classifier")

    class NoisyClassifier(torch.nn.Module):
        """``logits = clf(x_t, t)`` around MONAI's ``DiffusionModelEncoder`` (``.net``); ``.config`` rebuilds it."""

        def __init__(self, config: dict[str, Any] | None = None) -> None:
            super().__init__()
            cfg = dict(DEFAULT_CLASSIFIER)
            unknown = set(config or {}) - set(cfg)
            if unknown:
                raise InputError(f"unknown classifier config keys {sorted(unknown)}; known keys are {sorted(cfg)}.")
            cfg |= dict(config or {})
            if len(cfg["attention_levels"]) != len(cfg["channels"]):
                raise InputError("attention_levels needs one flag per level of channels.")
            self.config = cfg
            require("einops", extra="diffusion", purpose="MONAI's attention blocks")
            from monai.networks.nets.diffusion_model_unet import DiffusionModelEncoder

            self.net = DiffusionModelEncoder(
                spatial_dims=cfg["spatial_dims"],
                in_channels=cfg["in_channels"],
                out_channels=cfg["num_classes"],
                input_shape=(cfg["sample_size"],) * cfg["spatial_dims"],
                num_res_blocks=cfg["num_res_blocks"],
                channels=tuple(cfg["channels"]),
                attention_levels=tuple(bool(a) for a in cfg["attention_levels"]),
                norm_num_groups=cfg["norm_num_groups"],
                num_head_channels=cfg["num_head_channels"],
            )

        def forward(self, x_t: Any, t: Any) -> Any:
            steps = torch.as_tensor(t, device=x_t.device).long().reshape(-1).expand(x_t.shape[0])
            return self.net(x_t, steps)

    return NoisyClassifier


_CLASS: list[type] = []


def build_classifier(config: dict[str, Any] | None = None, *, seed: int | None = None) -> Any:
    """A fresh noise-aware classifier ``logits = clf(x_t, t)`` (missing keys from :data:`DEFAULT_CLASSIFIER`)."""
    torch = require("torch", extra="torch", purpose="the noise-aware classifier")
    if not _CLASS:
        _CLASS.append(_classifier_class())
    if seed is None:
        return _CLASS[0](config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return _CLASS[0](config)


def save_classifier(path: str | os.PathLike, clf: Any, *, metadata: dict[str, Any] | None = None) -> Path:
    """Write the classifier's weights and config to the safetensors file ``path``."""
    from medlens.training import write_safetensors

    meta = {"kind": "medlens.diffusion.classifier", "config": clf.config, **(metadata or {})}
    return write_safetensors(path, clf.state_dict(), meta)


def load_classifier(path: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """``(classifier, metadata)`` from a file written by :func:`save_classifier`."""
    from medlens.training import read_safetensors

    tensors, meta = read_safetensors(path, what="noise-aware classifier file")
    if not isinstance(meta, dict) or meta.get("kind") != "medlens.diffusion.classifier":
        raise InputError(f"{path} is a safetensors file but not a medlens noise-aware classifier.")
    clf = build_classifier(meta["config"])
    missing, unexpected = clf.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise InputError(f"{path} does not fit its own config (missing {missing[:3]}, unexpected {unexpected[:3]}).")
    return clf.eval(), meta


def train_classifier(
    clf: Any,
    images: Any,
    labels: Any,
    *,
    epochs: int = 10,
    steps_per_epoch: int = 50,
    batch_size: int = 16,
    lr: float = 1e-3,
    schedule: str = "linear",
    num_train_timesteps: int = 1000,
    max_t: int | None = None,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Train ``clf`` in place to tell the classes of noised images apart: ``x_t`` from ``images`` at
    ``t ~ U{0..max_t−1}`` (default all T), cross-entropy, AdamW, on the shared Trainer (seeded epochs,
    resumable run folder ``out`` with ``classifier.safetensors``). Returns ``history``, ``classifier``,
    ``classifier_path``."""
    import torch

    from medlens.training import Trainer, adamw, open_training_run

    check_option(schedule, SCHEDULES, name="schedule")
    check_interval(lr, name="lr", low=0.0, closed="neither")
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    y = torch.as_tensor(np.asarray(labels)).long().reshape(-1)
    if x.ndim != 4 or len(x) == 0 or len(y) != len(x):
        raise InputError(
            f"images must be a non-empty batch (N, C, H, W) with N labels; got {tuple(x.shape)}, {len(y)}."
        )
    if int(y.min()) < 0 or int(y.max()) >= clf.config["num_classes"]:
        raise InputError(f"labels must be class indices in [0, {clf.config['num_classes'] - 1}].")
    sched = make_schedule(schedule, num_train_timesteps)
    top = sched.num_train_timesteps if max_t is None else int(max_t)
    if not 1 <= top <= sched.num_train_timesteps:
        raise InputError(f"max_t must be in [1, {sched.num_train_timesteps}]; got {max_t!r}.")
    config = {"task": "diffusion.classifier", "classifier": clf.config, "n_images": int(len(x)), "epochs": epochs,
              "steps_per_epoch": steps_per_epoch, "batch_size": batch_size, "lr": lr, "schedule": schedule,
              "num_train_timesteps": num_train_timesteps, "max_t": top, "seed": seed}  # fmt: skip
    run = None
    if out is not None:
        run = open_training_run(out, config, resume=resume, overwrite=overwrite, outputs=(CLASSIFIER_FILE,))
    holder = torch.nn.ModuleDict({"classifier": clf})
    trainer = Trainer(holder, adamw([{"params": clf.parameters()}], lr=lr), epochs=epochs, seed=seed, run=run,
                      progress=progress, close_run=False)  # fmt: skip

    def plan(rng: np.random.Generator) -> list[tuple[Any, int]]:
        return [((rng.integers(0, len(x), batch_size), rng.integers(0, top, batch_size)), batch_size)
                for _ in range(steps_per_epoch)]  # fmt: skip

    def step(batch: tuple[np.ndarray, np.ndarray]) -> tuple[Any, dict[str, float]]:
        idx, t = (torch.as_tensor(b) for b in batch)
        x0 = x[idx]
        logits = clf(add_noise(sched, x0, torch.randn_like(x0), t), t)
        return torch.nn.functional.cross_entropy(logits, y[idx]), {}

    try:
        trainer.resume()
        history = trainer.fit(plan, step, n_items=steps_per_epoch * batch_size)
        path = None
        if run is not None:
            meta = {"schedule": schedule, "num_train_timesteps": num_train_timesteps}
            path = save_classifier(run.dir / CLASSIFIER_FILE, clf, metadata=meta)
    finally:
        if run is not None:
            run.close()
    return {"history": history, "classifier": clf, "classifier_path": path}


def _encode(model: Any, x0: Any, schedule: NoiseSchedule, pairs: list[tuple[int, int]], encode: str, gen: Any,
            cond: Any) -> tuple[Any, int]:  # fmt: skip
    """``x`` at the chain's top level: ``add_noise`` with one Gaussian draw, or DDIM inversion (NFE returned)."""
    import torch

    top = pairs[0][0]
    if encode == "noise":
        return add_noise(schedule, x0, noise_like(x0, "gaussian", generator=gen), top), 0
    x_t = x0
    with torch.no_grad():
        for t, prev in reversed(pairs):  # climb prev → t with ε evaluated at the current level
            eps = model(x_t, max(prev, 0), cond)
            bar_prev, bar_t = schedule.alpha_bar(prev), schedule.alpha_bar(t)
            x0_hat = (x_t - (1 - bar_prev) ** 0.5 * eps) / bar_prev**0.5
            x_t = bar_t**0.5 * x0_hat + (1 - bar_t) ** 0.5 * eps
    return x_t, len(pairs)


def _checks(encode: str, batch_size: int) -> None:
    check_option(encode, ENCODINGS, name="encode")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer; got {batch_size!r}.")


def classifier_reconstruct(
    model: Any,
    classifier: Any,
    x: Any,
    schedule: NoiseSchedule,
    *,
    t0: int,
    scale: float = 10.0,
    target: int = 0,
    steps: int | None = None,
    encode: str = "noise",
    seed: int = 0,
    batch_size: int = 16,
) -> dict[str, Any]:
    """Classifier-guided healthy counterfactual of ``x`` (N, C, H, W in [−1, 1]): encode to ``t0``, then DDIM
    steps with ``ε̂ = ε − scale·√(1−ᾱ_t)·∇ log p(target | x_t)``. A class-conditioned ``model`` is called with
    ∅. Returns ``reconstruction``, ``nfe`` (UNet + classifier evaluations per image) and ``unet_nfe``."""
    import torch

    _checks(encode, batch_size)
    x = _prepare(model, x)
    if not 0 <= int(target) < classifier.config["num_classes"]:
        raise InputError(f"target must be a class of the classifier (0..{classifier.config['num_classes'] - 1}).")
    pairs = chain(t0, steps, schedule.num_train_timesteps)
    gen = torch.Generator().manual_seed(int(seed))
    out, enc_nfe = x.clone(), 0
    guided = flat = 0
    for sl in _batches(len(x), batch_size) if pairs else []:
        x_t, enc_nfe = _encode(model, x[sl], schedule, pairs, encode, gen, None)
        for t, prev in pairs:
            with torch.no_grad():
                eps = model(x_t, t, None)
            if scale != 0:
                with torch.enable_grad():
                    xg = x_t.detach().requires_grad_(True)
                    logp = torch.log_softmax(classifier(xg, t), dim=-1)[:, int(target)].sum()
                    grad = torch.autograd.grad(logp, xg)[0]
                guided += 1
                flat += int(not bool(grad.abs().amax() > 0))
                eps = eps - float(scale) * (1 - schedule.alpha_bar(t)) ** 0.5 * grad
            with torch.no_grad():
                x_t, _ = ddim_step(schedule, eps, t, x_t, prev_t=prev)
        out[sl] = x_t.detach()
    if guided and flat == guided:
        log.warning(
            "classifier guidance had no effect: the classifier's gradient was exactly 0 at every step (a collapsed "
            "classifier with constant logits); the result is plain DDIM decoding. Retrain it at a lower learning rate."
        )
    unet = len(pairs) + enc_nfe
    return {"reconstruction": out, "nfe": unet + (len(pairs) if scale != 0 else 0), "unet_nfe": unet,
            "zero_gradient_steps": flat, "guided_steps": guided}  # fmt: skip


def cfg_reconstruct(
    model: Any,
    x: Any,
    schedule: NoiseSchedule,
    *,
    t0: int,
    w: float = 3.0,
    target: int = 0,
    steps: int | None = None,
    encode: str = "noise",
    seed: int = 0,
    batch_size: int = 16,
) -> dict[str, Any]:
    """Classifier-free-guided healthy counterfactual of ``x`` with a class-conditioned ``model``: encode to
    ``t0`` (DDIM inversion with ∅), then DDIM steps with ``ε̂ = (1+w)·ε(x_t, target) − w·ε(x_t, ∅)``.
    Returns ``reconstruction`` and ``nfe`` (per image; a guided step costs two evaluations)."""
    import torch

    _checks(encode, batch_size)
    null = getattr(model, "null_class", None)
    if null is None:
        raise InputError("classifier-free guidance needs a class-conditioned model (train with num_classes / "
                         "--conditioned class).")  # fmt: skip
    if not 0 <= int(target) < null:
        raise InputError(f"target must be a class of the model (0..{null - 1}); got {target!r}.")
    x = _prepare(model, x)
    pairs = chain(t0, steps, schedule.num_train_timesteps)
    gen = torch.Generator().manual_seed(int(seed))
    out, enc_nfe = x.clone(), 0
    with torch.no_grad():
        for sl in _batches(len(x), batch_size) if pairs else []:
            x_t, enc_nfe = _encode(model, x[sl], schedule, pairs, encode, gen, null)
            n = len(x_t)
            for t, prev in pairs:
                if w == 0:
                    eps = model(x_t, t, int(target))
                else:
                    labels = torch.cat([torch.full((n,), int(target)), torch.full((n,), null)]).to(x_t.device)
                    both = model(torch.cat([x_t, x_t]), t, labels)
                    eps = (1 + float(w)) * both[:n] - float(w) * both[n:]
                x_t, _ = ddim_step(schedule, eps, t, x_t, prev_t=prev)
            out[sl] = x_t
    return {"reconstruction": out, "nfe": len(pairs) * (1 if w == 0 else 2) + enc_nfe}
