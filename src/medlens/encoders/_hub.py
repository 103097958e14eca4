"""Where weights come from: the local Hugging Face cache or a local folder, never the network.

Pure path logic (no hub library is imported), so ``medlens encoders list`` can say which weights are
present without loading anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from medlens._validation import InputError

__all__ = [
    "FAMILIES",
    "check_weights",
    "detect_family",
    "find_weights",
    "hf_cache_dir",
    "missing_weights_error",
    "resolve_cached",
    "resolve_hf_ref",
]

FAMILIES = ("sentence-transformers", "transformers", "open_clip", "timm")

# Weight files each layout may hold, in order of preference (sharded checkpoints keep an index file).
WEIGHT_FILES = {
    "sentence-transformers": ("model.safetensors", "pytorch_model.bin"),
    "transformers": (
        "model.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
    ),
    "open_clip": (
        "open_clip_model.safetensors",
        "open_clip_pytorch_model.safetensors",
        "open_clip_pytorch_model.bin",
    ),
    "timm": ("model.safetensors", "pytorch_model.bin"),
}
CONFIG_FILES = {
    "sentence-transformers": "modules.json",
    "transformers": "config.json",
    "open_clip": "open_clip_config.json",
    "timm": "config.json",
}
LAYOUTS = (
    "modules.json (sentence-transformers)",
    "open_clip_config.json with model_cfg (open_clip, e.g. BiomedCLIP)",
    "config.json with architecture + pretrained_cfg (timm)",
    "config.json with model_type (transformers: CLIP, SigLIP, DINOv2, ViT, BERT, ...)",
)


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (``HF_HUB_CACHE``, ``HF_HOME``, ...)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def resolve_cached(repo_id: str, *, cache_dir: Path | None = None) -> tuple[Path, str] | None:
    """``(snapshot folder, commit)`` of ``repo_id`` in the local cache, or ``None`` when it is not there.

    The snapshot that ``refs/main`` points to wins; without that ref, the most recently written snapshot.
    """
    repo = (cache_dir or hf_cache_dir()) / ("models--" + repo_id.replace("/", "--"))
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    ref = repo / "refs" / "main"
    if ref.is_file():
        commit = ref.read_text(encoding="utf-8").strip()
        if (snapshots / commit).is_dir():
            return snapshots / commit, commit
    candidates = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    return (candidates[-1], candidates[-1].name) if candidates else None


def find_weights(folder: Path, family: str) -> Path | None:
    """The weight file of ``folder`` in ``family``'s layout (``None`` when absent)."""
    for name in WEIGHT_FILES[family]:
        if (folder / name).is_file():
            return folder / name
    return None


def missing_weights_error(name: str, repo_id: str, family: str, found: Path | None = None) -> InputError:
    """The error for a registered encoder whose weights are not in the local cache."""
    cache = hf_cache_dir()
    what = f"is incomplete in the local Hugging Face cache ({found} has no {' or '.join(WEIGHT_FILES[family])})"
    if found is None:
        what = f"is not in the local Hugging Face cache ({cache})"
    return InputError(
        f"encoder {name!r} ({repo_id}) {what}; medlens never downloads weights. On a connected machine run "
        f"`hf download {repo_id}` (older huggingface_hub: `huggingface-cli download {repo_id}`) and copy its "
        f"models--{repo_id.replace('/', '--')} folder into {cache} (or point HF_HUB_CACHE at a cache that has it), "
        "or pass a local model folder instead of the name."
    )


def detect_family(folder: Path) -> str:
    """The layout of a model folder, from its files; an unknown layout is an error listing what was expected."""
    if (folder / "modules.json").is_file():
        return "sentence-transformers"
    if (folder / "open_clip_config.json").is_file():
        return "open_clip"
    cfg_file = folder / "config.json"
    if cfg_file.is_file():
        try:
            cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InputError(f"{cfg_file}: not valid JSON ({e}).") from None
        if isinstance(cfg, dict) and "architecture" in cfg and "pretrained_cfg" in cfg:
            return "timm"
        if isinstance(cfg, dict) and "model_type" in cfg:
            return "transformers"
    files = sorted(p.name for p in folder.iterdir())[:12] if folder.is_dir() else []
    raise InputError(
        f"{folder}: not a model folder medlens can read; expected one of: {'; '.join(LAYOUTS)}. "
        f"Found: {', '.join(files) or 'nothing'}."
    )


def check_weights(folder: Path, family: str) -> Path:
    """The weight file of a local folder, or an error naming the files that were looked for."""
    weights = find_weights(folder, family)
    if weights is None:
        raise InputError(
            f"{folder}: a {family} model folder without weights; expected one of {', '.join(WEIGHT_FILES[family])} "
            f"next to {CONFIG_FILES[family]}."
        )
    return weights


def resolve_hf_ref(ref: str, *, base: Path, what: str) -> Path:
    """A tokenizer/config reference inside a model config (a folder, or a hub id in the local cache) → folder.

    Relative folders are looked up next to the model (``base``) first, then from the working directory.
    """
    for cand in (base / ref, Path(ref).expanduser()):
        if cand.is_dir():
            return cand
    hit = resolve_cached(ref) if ref.count("/") == 1 and not ref.startswith((".", "/")) else None
    if hit is not None:
        return hit[0]
    raise InputError(
        f"{what} {ref!r} is neither a folder nor in the local Hugging Face cache ({hf_cache_dir()}); medlens "
        f"never downloads. Run `hf download {ref}` on a connected machine and copy the cache, or set it to a local "
        "folder in the model's config."
    )
