"""The denoising networks: MONAI's ``DiffusionModelUNet`` or diffusers' ``UNet2DModel``, built from a small
config and called the same way, ``eps = model(x_t, t, cond=None)``.

Nothing here re-implements a UNet. A config is a plain dict (stored in our checkpoints' header, so a model
file says how to rebuild its network)::

    {"backbone": "monai" | "diffusers", "spatial_dims": 2, "in_channels": 1, "out_channels": 1,
     "channels": [32, 64, 64], "attention_levels": [false, false, true], "num_res_blocks": 1,
     "norm_num_groups": 16, "num_head_channels": 32, "num_classes": null, "sample_size": 64}

``num_classes`` makes a class-conditioned model for classifier-free guidance: it gets ``num_classes + 1``
class embeddings, the last one being the "no class" token ∅ used when ``cond`` is ``None`` (and for the
null-class dropout in training).

``mask_conditioned: true`` (an optional key, absent from configs that do not use it) makes an inpainting model
for counterfactual editing (MedEdit, RePaint, SDEdit): the network takes ``2·C + 1`` input channels, the noisy
image concatenated with the masked image and the mask, ``ε_θ([x_t, x⊙(1−m), m], t)``; ``cond`` is then the
tensor ``[x⊙(1−m), m]`` of :func:`mask_condition` (``in_channels`` stays the image's ``C``).

``palette_conditioned: true`` (optional too) makes the separately trained model of the Palette baseline
(Saharia et al. 2022, as MedEdit's comparison runs it): ``2·C`` input channels, the noisy image concatenated with
the condition ``c = m⊙N(0, I) + (1−m)⊙x`` (the lesion region filled with fresh noise, the image kept elsewhere),
``ε_θ([x_t, c], t)``; ``cond`` is then ``c`` of :func:`palette_condition`. A model has at most one conditioning
kind (:attr:`conditioning`: ``class``, ``mask``, ``palette`` or ``None``), and the key travels in the config, so a
loaded checkpoint knows which it is.

Model files: ours are safetensors (:func:`save_unet`/:func:`load_unet`). Checkpoints of MONAI Generative
(the UNet copies in THOR_DDPM and MedEdit) are ``.pt`` state dicts, read with ``torch.load(weights_only=True)``
(never unpickling code) and renamed to MONAI core's keys by MONAI's own ``load_old_state_dict``.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

from medlens._optional import require
from medlens._validation import InputError, check_option

__all__ = [
    "BACKBONES",
    "DEFAULT_UNET",
    "build_unet",
    "load_monai_generative",
    "load_unet",
    "mask_condition",
    "palette_condition",
    "save_unet",
]

BACKBONES = ("monai", "diffusers")
DEFAULT_UNET: dict[str, Any] = {
    "backbone": "monai",
    "spatial_dims": 2,
    "in_channels": 1,
    "out_channels": 1,
    "channels": [32, 64, 64],
    "attention_levels": [False, False, True],
    "num_res_blocks": 1,
    "norm_num_groups": 16,
    "num_head_channels": 32,
    "num_classes": None,
    "sample_size": 64,
}


def _torch() -> Any:
    return require("torch", extra="torch", purpose="diffusion backbones")


#: Keys a config may hold that are left out of it when unset (so older configs and files stay as they were).
OPTIONAL_KEYS = ("mask_conditioned", "palette_conditioned")


def _config(config: dict[str, Any] | None) -> dict[str, Any]:
    cfg = dict(DEFAULT_UNET)
    unknown = set(config or {}) - set(cfg) - set(OPTIONAL_KEYS)
    if unknown:
        raise InputError(f"unknown UNet config keys {sorted(unknown)}; known keys are {sorted(cfg)}.")
    cfg |= dict(config or {})
    check_option(cfg["backbone"], BACKBONES, name="backbone")
    levels = len(cfg["channels"])
    if len(cfg["attention_levels"]) != levels:
        raise InputError(
            f"attention_levels needs one flag per level ({levels} channels {list(cfg['channels'])}); "
            f"got {list(cfg['attention_levels'])}."
        )
    bad = [c for c in cfg["channels"] if c % cfg["norm_num_groups"]]
    if bad:
        raise InputError(
            f"every channel count must be a multiple of norm_num_groups={cfg['norm_num_groups']}; got {bad}."
        )
    if cfg["backbone"] == "diffusers" and cfg["spatial_dims"] != 2:
        raise InputError("the diffusers backbone (UNet2DModel) is 2-D only; use backbone 'monai' for 3-D images.")
    if cfg["num_classes"] is not None and (not isinstance(cfg["num_classes"], int) or cfg["num_classes"] < 1):
        raise InputError(f"num_classes must be a positive integer or None; got {cfg['num_classes']!r}.")
    for key in OPTIONAL_KEYS:
        if key not in cfg:
            continue
        if not isinstance(cfg[key], bool):
            raise InputError(f"{key} must be true or false; got {cfg[key]!r}.")
        if not cfg[key]:
            del cfg[key]
    kinds = [k for k in ("num_classes", *OPTIONAL_KEYS) if cfg.get(k) is not None]  # optional keys left are true
    if len(kinds) > 1:
        names = {"num_classes": "class-conditioned (num_classes)", "mask_conditioned": "mask-conditioned",
                 "palette_conditioned": "palette-conditioned"}  # fmt: skip
        raise InputError(f"a model is either {names[kinds[0]]} or {names[kinds[1]]}, not both.")
    return cfg


def _net_in_channels(cfg: dict[str, Any]) -> int:
    c = int(cfg["in_channels"])
    if cfg.get("mask_conditioned"):
        return 2 * c + 1
    return 2 * c if cfg.get("palette_conditioned") else c


def mask_condition(images: Any, mask: Any) -> Any:
    """The conditioning of a mask-conditioned model: ``[images⊙(1−mask), mask]`` along channels, shape
    ``(B, C + 1, ...)`` for images ``(B, C, ...)`` and a 0/1 mask ``(B, 1, ...)`` (the masked region set to 0)."""
    torch = _torch()
    m = mask.to(images.dtype)
    return torch.cat([images * (1 - m), m], dim=1)


def palette_condition(images: Any, mask: Any, *, noise: Any = None, generator: Any = None) -> Any:
    """The condition of a Palette-conditioned model: ``c = mask⊙noise + (1−mask)⊙images``, shape like ``images``
    (B, C, ...) for a 0/1 ``mask`` (B, 1, ...): the masked region is filled with standard normal noise and the
    image is kept exactly elsewhere. ``noise`` (like ``images``) is drawn from ``generator`` (on the CPU, then
    moved to the images' device; torch's global generator without one) when not given.

    >>> import torch
    >>> x, m = torch.full((1, 1, 2, 2), 0.5), torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    >>> palette_condition(x, m, noise=torch.full_like(x, -3.0))
    tensor([[[[-3.0000,  0.5000],
              [ 0.5000,  0.5000]]]])
    """
    torch = _torch()
    if noise is None:
        noise = torch.randn(tuple(images.shape), generator=generator, dtype=images.dtype).to(images.device)
    keep = mask.to(images.device) <= 0
    return torch.where(keep, images, noise.to(images.device, images.dtype))


def _monai_net(cfg: dict[str, Any]) -> Any:
    require("einops", extra="diffusion", purpose="MONAI's attention blocks")
    nets = require("monai.networks.nets", extra="diffusion", purpose="the MONAI DiffusionModelUNet")
    return nets.DiffusionModelUNet(
        spatial_dims=cfg["spatial_dims"],
        in_channels=_net_in_channels(cfg),
        out_channels=cfg["out_channels"],
        num_res_blocks=cfg["num_res_blocks"],
        channels=tuple(cfg["channels"]),
        attention_levels=tuple(bool(a) for a in cfg["attention_levels"]),
        norm_num_groups=cfg["norm_num_groups"],
        num_head_channels=cfg["num_head_channels"],
        num_class_embeds=None if cfg["num_classes"] is None else cfg["num_classes"] + 1,
    )


def _diffusers_net(cfg: dict[str, Any]) -> Any:
    models = require("diffusers", extra="diffusion", purpose="the diffusers UNet2DModel")
    attn = [bool(a) for a in cfg["attention_levels"]]
    return models.UNet2DModel(
        sample_size=cfg["sample_size"],
        in_channels=_net_in_channels(cfg),
        out_channels=cfg["out_channels"],
        layers_per_block=cfg["num_res_blocks"],
        block_out_channels=tuple(cfg["channels"]),
        down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attn),
        up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)),
        norm_num_groups=cfg["norm_num_groups"],
        attention_head_dim=cfg["num_head_channels"],
        num_class_embeds=None if cfg["num_classes"] is None else cfg["num_classes"] + 1,
    )


def _eps_model_class() -> type:
    torch = _torch()

    class EpsModel(torch.nn.Module):
        """``eps = model(x_t, t, cond=None)`` around a MONAI or diffusers UNet (``.net``); ``.config`` rebuilds it."""

        def __init__(self, config: dict[str, Any] | None = None) -> None:
            super().__init__()
            self.config = _config(config)
            self.net = _monai_net(self.config) if self.config["backbone"] == "monai" else _diffusers_net(self.config)

        @property
        def null_class(self) -> int | None:
            """The class index of ∅ (no class), or ``None`` for an unconditioned model."""
            n = self.config["num_classes"]
            return None if n is None else int(n)

        @property
        def mask_conditioned(self) -> bool:
            """Whether the model takes ``cond = [masked image, mask]`` (see :func:`mask_condition`)."""
            return bool(self.config.get("mask_conditioned", False))

        @property
        def palette_conditioned(self) -> bool:
            """Whether the model is a Palette model taking ``cond = c`` of :func:`palette_condition`."""
            return bool(self.config.get("palette_conditioned", False))

        @property
        def conditioning(self) -> str | None:
            """The conditioning kind: ``"class"``, ``"mask"``, ``"palette"`` or ``None`` (unconditioned)."""
            if self.null_class is not None:
                return "class"
            if self.mask_conditioned:
                return "mask"
            return "palette" if self.palette_conditioned else None

        def forward(self, x_t: Any, t: Any, cond: Any = None) -> Any:
            b = x_t.shape[0]
            if self.mask_conditioned:
                want = (b, x_t.shape[1] + 1, *x_t.shape[2:])
                if cond is None or tuple(cond.shape) != want:
                    got = None if cond is None else tuple(cond.shape)
                    raise InputError(
                        f"this model is mask-conditioned: cond must be [masked image, mask] {want}; got {got}."
                    )
                x_t, cond = torch.cat([x_t, cond.to(x_t.device, x_t.dtype)], dim=1), None
            elif self.palette_conditioned:
                if cond is None or tuple(cond.shape) != tuple(x_t.shape):
                    got = None if cond is None else tuple(cond.shape)
                    raise InputError(
                        f"this model is palette-conditioned: cond must be c = P*noise + (1-P)*x {tuple(x_t.shape)}; "
                        f"got {got}."
                    )
                x_t, cond = torch.cat([x_t, cond.to(x_t.device, x_t.dtype)], dim=1), None
            steps = torch.as_tensor(t, device=x_t.device).long().reshape(-1).expand(b) if b else None
            labels = None
            if self.null_class is not None:
                labels = torch.full((b,), self.null_class, dtype=torch.long, device=x_t.device)
                if cond is not None:
                    labels = torch.as_tensor(cond, device=x_t.device).long().reshape(-1).expand(b)
            elif cond is not None:
                raise InputError("this model is not class-conditioned (num_classes is None); call it with cond=None.")
            if self.config["backbone"] == "monai":
                return self.net(x_t, steps, class_labels=labels)
            return self.net(x_t, steps, class_labels=labels).sample

    return EpsModel


_CLASS: list[type] = []


def build_unet(config: dict[str, Any] | None = None, *, seed: int | None = None) -> Any:
    """A fresh ``EpsModel`` (a ``torch.nn.Module``: ``eps = model(x_t, t, cond=None)``, ``.net``, ``.config``) for ``config`` (missing keys from :data:`DEFAULT_UNET`), seeded if ``seed``.

    The default is a 2-D MONAI UNet with channels (32, 64, 64) and attention at the last level: about 1 M
    parameters, small enough to train on two CPU cores at 64².
    """
    torch = _torch()
    if not _CLASS:
        _CLASS.append(_eps_model_class())
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return _CLASS[0](config)
    return _CLASS[0](config)


def save_unet(path: str | os.PathLike, model: Any, *, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model``'s weights and config (plus ``metadata``) to the safetensors file ``path``, atomically."""
    from medlens.training import write_safetensors  # imports torch

    meta = {"kind": "medlens.diffusion.unet", "config": model.config, **(metadata or {})}
    return write_safetensors(path, model.state_dict(), meta)


def load_unet(path: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """``(model, metadata)`` from a file written by :func:`save_unet` (no code is unpickled)."""
    from medlens.training import read_safetensors  # imports torch

    tensors, meta = read_safetensors(path, what="diffusion model file")
    if not isinstance(meta, dict) or meta.get("kind") != "medlens.diffusion.unet":
        raise InputError(f"{path} is a safetensors file but not a medlens diffusion model (no UNet config in it).")
    model = build_unet(meta["config"])
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise InputError(f"{path} does not fit its own config (missing {missing[:3]}, unexpected {unexpected[:3]}).")
    return model.eval(), meta


def load_monai_generative(model: Any, source: str | os.PathLike | dict[str, Any]) -> Any:
    """Load a MONAI Generative ``DiffusionModelUNet`` checkpoint (a ``.pt`` path or a state dict) into ``model``
    (a MONAI-backbone model from :func:`build_unet` of the same architecture) through MONAI's ``load_old_state_dict``.

    A file is read with ``torch.load(weights_only=True)``; a dict wrapping the weights under ``model`` or
    ``state_dict`` (as training scripts save them) is unwrapped. Keys that do not fit raise an
    :class:`InputError` naming a few of them.
    """
    torch = _torch()
    if model.config["backbone"] != "monai":
        raise InputError(
            "MONAI Generative checkpoints load into a MONAI backbone; build the model with backbone 'monai'."
        )
    state = source
    if not isinstance(source, dict):
        p = Path(source)
        if not p.is_file():
            raise InputError(f"{p}: no checkpoint file here.")
        try:
            state = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001  (a pickle with code, or not a torch file at all)
            msg = " ".join(str(e).split())[:160]
            raise InputError(f"{p} is not a weights-only torch checkpoint ({type(e).__name__}: {msg}).") from None
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise InputError("the checkpoint holds no state dict of tensors (expected name → tensor).")
    old = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # MONAI prints "All keys match" and the like
            model.net.load_old_state_dict(old)
    except (KeyError, RuntimeError) as e:
        msg = " ".join(str(e).split())[:200]
        raise InputError(f"the checkpoint does not fit this UNet config ({type(e).__name__}: {msg}).") from None
    return model
