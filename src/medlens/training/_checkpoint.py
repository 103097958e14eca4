"""Checkpoints that cannot run code: tensors in a safetensors file, everything else as JSON in its header.

A checkpoint is any nested structure of dicts, lists, tuples, numbers, strings, ``None`` and torch tensors
(a model's state dict, ``optimizer.state_dict()``, ``scheduler.state_dict()``, the RNG state, a training
history). :func:`save_checkpoint` stores every tensor under its path in the structure (``optimizer/state/0/
exp_avg``) and the structure itself, with each tensor replaced by a reference, as JSON in the safetensors
header's metadata; the file is written to a temporary name and renamed. Reading it back parses JSON and raw
tensor bytes only: no pickle, so a crafted file can at worst be refused as unreadable.

Floats round-trip exactly (JSON keeps ``repr(float)``), so a resumed run continues bit for bit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from medlens._optional import require
from medlens._validation import InputError
from medlens.io import atomic_write_bytes

__all__ = ["load_checkpoint", "read_safetensors", "save_checkpoint", "write_safetensors"]

_META_KEY = "medlens"
_TENSOR, _TUPLE, _ITEMS = "__tensor__", "__tuple__", "__items__"


def _torch() -> Any:
    return require("torch", extra="torch", purpose="training checkpoints")


def write_safetensors(path: str | os.PathLike, tensors: dict[str, Any], metadata: Any = None) -> Path:
    """Write ``tensors`` (name → tensor) to ``path`` atomically, with ``metadata`` as JSON in the header.

    Tensors are copied to the CPU (shared storage is fine: each is cloned).
    """
    st = require("safetensors.torch", extra="torch", purpose="safetensors model files")
    flat = {str(k): v.detach().to("cpu").clone().contiguous() for k, v in tensors.items()}
    header = {_META_KEY: json.dumps(metadata, allow_nan=True)} if metadata is not None else None
    return atomic_write_bytes(path, st.save(flat, metadata=header))


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def read_safetensors(
    path: str | os.PathLike, *, what: str = "safetensors file", fix: str = ""
) -> tuple[dict[str, Any], Any]:
    """``(tensors, metadata)`` of a file written by :func:`write_safetensors` (metadata ``None`` if absent).

    Tensors come back on the CPU. A missing, truncated or foreign file (a pickle, say) raises
    :class:`~medlens._validation.InputError` naming the file; ``fix`` is appended to the message.
    """
    st = require("safetensors", extra="torch", purpose="safetensors model files")
    p = Path(path)
    tail = f"; {fix}" if fix else "."
    if not p.is_file():
        raise InputError(f"{p}: no {what} here{tail}")
    try:
        with st.safe_open(str(p), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118  (safe_open has no __iter__)
        meta = json.loads(header[_META_KEY]) if _META_KEY in header else None
    except (st.SafetensorError, OSError, ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{p} is not a readable {what} ({_one_line(e)}){tail}") from None
    return tensors, meta


def _pack(obj: Any, path: str, tensors: dict[str, Any]) -> Any:
    torch = _torch()
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj
        return {_TENSOR: path}
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if hasattr(obj, "dtype") and hasattr(obj, "item") and getattr(obj, "shape", None) == ():  # numpy scalars
        return obj.item()
    if isinstance(obj, tuple):
        return {_TUPLE: [_pack(v, f"{path}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_pack(v, f"{path}/{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _pack(v, f"{path}/{k}", tensors) for k, v in obj.items()}
        for k in obj:
            if not (k is None or isinstance(k, bool | int | float | str)):
                raise TypeError(f"checkpoint dict keys must be numbers or strings, got {type(k).__name__} at {path}")
        return {_ITEMS: [[k, _pack(v, f"{path}/{k}", tensors)] for k, v in obj.items()]}
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint (at {path or 'the top'}).")


def _unpack(obj: Any, tensors: dict[str, Any]) -> Any:
    if isinstance(obj, list):
        return [_unpack(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if set(obj) == {_TENSOR}:
        return tensors[obj[_TENSOR]]
    if set(obj) == {_TUPLE}:
        return tuple(_unpack(v, tensors) for v in obj[_TUPLE])
    if set(obj) == {_ITEMS}:
        return {k: _unpack(v, tensors) for k, v in obj[_ITEMS]}
    return {k: _unpack(v, tensors) for k, v in obj.items()}


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors + plain values, nested) to the safetensors file ``path``, atomically."""
    tensors: dict[str, Any] = {}
    skeleton = _pack(state, "", tensors)
    return write_safetensors(path, {k.lstrip("/"): v for k, v in tensors.items()}, {"checkpoint": skeleton})


def load_checkpoint(path: str | os.PathLike, *, fix: str = "") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; never unpickles anything.

    A missing, corrupt or foreign file raises :class:`~medlens._validation.InputError` naming it (``fix`` is
    appended to the message).
    """
    tensors, meta = read_safetensors(path, what="checkpoint", fix=fix)
    tail = f"; {fix}" if fix else "."
    if not isinstance(meta, dict) or not isinstance(meta.get("checkpoint"), dict):
        raise InputError(f"{path} is a safetensors file but not a medlens checkpoint (no checkpoint header){tail}")
    try:
        return _unpack(meta["checkpoint"], {f"/{k}": v for k, v in tensors.items()})
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path} is not a readable checkpoint (damaged header: {_one_line(e)}){tail}") from None
