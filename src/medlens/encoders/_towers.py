"""Torch helpers shared by the adapters: a module view over parts of a model, block/head/LoRA discovery.

Imported only by the adapters (never by the core), so it imports torch at module level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from medlens._optional import require
from medlens.encoders._base import Tower

torch = require("torch", extra="torch")
nn = torch.nn

__all__ = [
    "ParamHolder",
    "TowerModule",
    "block_tower",
    "find_blocks",
    "image_batch",
    "interpolation_name",
    "load_weights",
    "lora_targets",
    "with_params",
]

_BLOCK_NAMES = ("layer", "layers", "blocks", "resblocks", "stages")


class TowerModule(nn.Module):
    """One modality of a model as an ``nn.Module``: owns (shares) exactly that tower's parameters.

    ``parts`` are submodules (or ``nn.Parameter`` objects, e.g. a CLIP projection matrix) of the full
    model; they are registered here by reference, so freezing, LoRA injection or moving the tower acts on
    the model itself. ``forward(batch)`` calls ``fn(batch)``, which computes the tower's unnormalised features.
    """

    def __init__(self, fn: Callable[[Any], Any], **parts: Any) -> None:
        super().__init__()
        self._fn = fn
        for key, part in parts.items():
            if isinstance(part, nn.Parameter):
                self.register_parameter(key, part)
            elif part is not None:
                self.add_module(key, part)
        # mirror the parts' mode (a new Module starts in training mode; the adapters load models in eval)
        self.training = any(m.training for m in self.children())

    def forward(self, batch: Any) -> Any:
        return self._fn(batch)


class ParamHolder(nn.Module):
    """A module around one shared parameter (so a bare projection matrix can be listed in ``Tower.head``)."""

    def __init__(self, param: Any) -> None:
        super().__init__()
        self.weight = param


def with_params(modules: Iterable[Any]) -> list[Any]:
    """The modules that exist and own at least one parameter (bare ``nn.Parameter`` objects are wrapped)."""
    out = []
    for m in modules:
        if isinstance(m, nn.Parameter):
            out.append(ParamHolder(m))
        elif isinstance(m, nn.Module) and any(True for _ in m.parameters()):
            out.append(m)
    return out


def block_tower(
    module: Any, dim: int, prepare: Callable[[Sequence[Any]], Any], head: Iterable[Any], blocks: list[Any] | None = None
) -> Tower:
    """The :class:`Tower` of a module that computes the features itself: its blocks (found in ``module`` unless
    given), the ``head`` modules that own parameters, and the LoRA targets of the last block."""
    blocks = find_blocks(module) if blocks is None else blocks
    return Tower(
        module=module,
        dim=dim,
        prepare=prepare,
        forward=module,
        blocks=blocks,
        head=with_params(head),
        lora_targets=lora_targets(blocks[-1]) if blocks else (),
    )


def find_blocks(module: Any) -> list[Any]:
    """The ordered transformer blocks (or CNN stages) of ``module``.

    The shallowest ``ModuleList``/``Sequential`` named ``layer(s)``, ``blocks``, ``resblocks`` or ``stages``
    wins (ties: the longer one), so a ViT's ``blocks`` are found and a ConvNeXt's ``stages`` win over the
    blocks inside a stage. Models with ``layer1..layerN`` attributes (ResNets) return those.
    """
    best: tuple[int, int] | None = None
    found: list[Any] = []
    for name, child in module.named_modules():
        if not name or name.rsplit(".", 1)[-1] not in _BLOCK_NAMES:
            continue
        if not isinstance(child, nn.ModuleList | nn.Sequential) or len(child) == 0:
            continue
        key = (name.count("."), -len(child))
        if best is None or key < best:
            best, found = key, list(child)
    if found:
        return found
    numbered = sorted((int(n[5:]), m) for n, m in module.named_children() if n.startswith("layer") and n[5:].isdigit())
    return [m for _, m in numbered]


def lora_targets(block: Any) -> tuple[str, ...]:
    """Suffixes of the Linear layers LoRA adapts in a transformer block.

    Attention query/value projections when the block has them (``query``/``value``, ``q_proj``/``v_proj``),
    else a fused ``qkv``; blocks built on ``nn.MultiheadAttention`` (whose projections bypass their Linear
    modules) fall back to the block's other Linear layers (the MLP, e.g. open_clip's ``c_fc``/``c_proj``).
    """
    mha = {name for name, m in block.named_modules() if isinstance(m, nn.MultiheadAttention)}
    suffixes = set()
    for name, m in block.named_modules():
        if not isinstance(m, nn.Linear) or not name:
            continue
        parent = name.rsplit(".", 1)[0] if "." in name else ""
        if parent in mha:
            continue
        suffixes.add(name.rsplit(".", 1)[-1])
    for pair in (("query", "value"), ("q_proj", "v_proj")):
        if set(pair) <= suffixes:
            return pair
    if "qkv" in suffixes:
        return ("qkv",)
    return tuple(sorted(suffixes))


_PIL_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


def interpolation_name(resample: Any) -> str | None:
    """A PIL resample code / enum, a torchvision ``InterpolationMode`` or a string → ``"bicubic"`` etc."""
    if resample is None:
        return None
    if isinstance(resample, str):
        return resample.lower()
    value = getattr(resample, "value", resample)
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, int) and value in _PIL_RESAMPLE:
        return _PIL_RESAMPLE[value]
    name = getattr(resample, "name", None)
    return str(name).lower() if name else str(resample)


def image_batch(items: Sequence[Any], to_tensor: Callable[[list[Any]], Any], device: str, dtype: Any) -> Any:
    """Load raw images (paths, PIL images, arrays) as RGB and turn them into a pixel batch on ``device``."""
    from medlens.io import load_image

    pixels = to_tensor([load_image(x) for x in items])
    return pixels.to(device=device, dtype=dtype)


def load_weights(path: Any) -> dict[str, Any]:
    """A state dict from ``.safetensors`` or a torch pickle (tensors only: ``weights_only=True``), on the CPU."""
    if str(path).endswith(".safetensors"):
        st = require("safetensors.torch", extra="vision")
        return st.load_file(str(path), device="cpu")
    return torch.load(str(path), map_location="cpu", weights_only=True)
