"""A fine-tuned model for inference, and its files: ``model.safetensors`` (weights) + ``finetune.json``.

Nothing here unpickles: the weights are a safetensors file, the rest JSON. ``model.pt`` files of older
versions (pickles, which can run code when loaded) are refused with a message saying how to re-create them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._validation import InputError
from medlens.hierarchy.finetune._model import TaxonomyModel, node_probabilities
from medlens.hierarchy.finetune._prefix import fixed_batches
from medlens.hierarchy.finetune._setup import FinetuneConfig, build_model, input_modality
from medlens.hierarchy.finetune._structure import TaxonomyArrays
from medlens.taxonomy import Taxonomy
from medlens.training import read_safetensors

torch = require("torch", extra="torch", purpose="taxonomy-aware fine-tuning")

__all__ = ["LEGACY", "META", "MODEL", "FinetunedModel", "load_finetuned"]

MODEL = "model.safetensors"
META = "finetune.json"
LEGACY = ("model.pt", "checkpoint.pt")  # pickles of older versions: never loaded


@dataclass
class FinetunedModel:
    """A fine-tuned model ready for inference: ``predict_proba(inputs)`` → node probabilities."""

    model: TaxonomyModel
    taxonomy: Taxonomy
    arrays: TaxonomyArrays
    probability: str
    config: FinetuneConfig
    encoder: Any

    def predict_proba(self, inputs: Sequence[Any], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Node probabilities (n, n_nodes) in ``taxonomy.nodes`` order, root column 1."""
        logits, _ = self._run(inputs, batch_size, progress)
        return node_probabilities(logits, self.probability, self.arrays)

    def embed(self, inputs: Sequence[Any], *, batch_size: int = 64) -> np.ndarray:
        """Input embeddings ``z`` (unnormalised; their length carries the predicted depth)."""
        return self._run(inputs, batch_size, False)[1].numpy()

    def node_embeddings(self) -> np.ndarray:
        with torch.inference_mode():
            return self.model.node_embeddings().float().cpu().numpy()

    def radial_depth(self, inputs: Sequence[Any]) -> np.ndarray:
        """Depth read from ``‖z‖`` (radial read-out): ``round((‖z‖ - r0) / delta)``, clipped to the taxonomy."""
        r = self.config.loss.radial
        norms = np.linalg.norm(self.embed(inputs), axis=1)
        return np.clip(np.rint((norms - r.r0) / r.delta), 0, self.taxonomy.height).astype(int)

    def _run(self, inputs: Sequence[Any], batch_size: int, progress: bool) -> tuple[Any, Any]:
        from medlens._progress import progress_bar

        self.model.eval()
        outs, zs = [], []
        inputs = list(inputs)
        if not inputs:
            n = len(self.taxonomy) - 1
            return torch.zeros((0, n)), torch.zeros((0, self.model.proj.out_features))
        batches = fixed_batches(inputs, batch_size)  # texts grouped by length: far less padding
        with torch.inference_mode(), progress_bar(len(inputs), progress, "scoring") as bar:
            for idx in batches:
                o = self.model(self.model.tower.prepare([inputs[i] for i in idx]))
                outs.append(o.logits.float().cpu())
                zs.append(o.z.float().cpu())
                bar(len(idx))
        inv = torch.as_tensor(np.argsort(np.concatenate(batches)))
        return torch.cat(outs)[inv], torch.cat(zs)[inv]


def _recreate(out: Path) -> str:
    return f"re-create it with `medlens hier finetune ... --out {out} --overwrite` (it writes {MODEL} and {META})"


def _read_meta(out: Path) -> tuple[dict[str, Any], FinetuneConfig, Taxonomy]:
    meta_path = out / META
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        config = FinetuneConfig.from_dict(meta["config"])
        tax = Taxonomy.from_dict(meta["taxonomy"])
        recorded = meta["taxonomy_sha256"]
        _ = meta["encoder"]["source"], meta["probability"]
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as e:
        reason = " ".join(str(e).split())[:200]
        raise InputError(
            f"{meta_path} is not a readable fine-tuning record ({type(e).__name__}: {reason}); {_recreate(out)}."
        ) from None
    if tax.content_hash() != recorded:
        raise InputError(f"{meta_path}: the stored taxonomy does not match its recorded hash; the file was edited.")
    return meta, config, tax


def load_finetuned(out_dir: str | os.PathLike, *, encoder: Any = None, device: str = "cpu") -> FinetunedModel:
    """Load a model written by :func:`finetune` (``model.safetensors`` + ``finetune.json``) for inference.

    The base encoder is loaded from the source recorded at training time unless ``encoder`` is given. The
    files are checked before the encoder is loaded; a ``model.pt`` of an older version is refused.
    """
    out = Path(out_dir)
    weights = out / MODEL
    legacy = out / LEGACY[0]
    if not weights.exists() and legacy.exists():
        raise InputError(
            f"{legacy} was written by an older medlens as a pickle, which is never loaded (unpickling a file can "
            f"run code); {_recreate(out)}."
        )
    if not (out / META).is_file() or not weights.is_file():
        raise InputError(f"{out}: no finished fine-tuning run here (expected {META} and {MODEL}).")
    tensors, _ = read_safetensors(weights, what="fine-tuned model", fix=_recreate(out))
    if "node_features" not in tensors:
        raise InputError(f"{weights} has no node_features tensor, so it was not written by finetune; {_recreate(out)}.")
    meta, config, tax = _read_meta(out)
    if encoder is None:
        from medlens.encoders import load_encoder

        src = meta["encoder"]
        name = src["name"] if src["model_id"] and src["name"] == "minilm" else src["source"]
        kw = {"device": device}
        if src.get("max_length"):
            kw["max_length"] = src["max_length"]
        encoder = load_encoder(name, **kw)
    nf = tensors["node_features"].numpy()
    model = build_model(encoder, tax, replace(config), nf, input_modality(encoder, meta["encoder"].get("modality")))
    unknown = set(tensors) - set(model.state_dict())
    if unknown:
        raise InputError(f"{weights} does not fit the encoder {encoder.model_id!r} (keys {sorted(unknown)[:3]}).")
    try:
        model.load_state_dict(tensors, strict=False)
    except RuntimeError as e:
        reason = " ".join(str(e).split())[:200]
        raise InputError(f"{weights} does not fit the encoder {encoder.model_id!r} ({reason}).") from None
    model.eval()
    arrays = TaxonomyArrays(tax, config.branch_depth)
    return FinetunedModel(model, tax, arrays, meta["probability"], config, encoder)
