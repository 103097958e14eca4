"""Embedders for dense retrieval, and the on-disk cache of corpus embeddings.

An :class:`Embedder` turns texts into float32 vectors (n, dim). Two ship with medlens:

* :class:`SentenceTransformerEmbedder` — any sentence-transformers model from a local folder, by default the
  packaged all-MiniLM-L6-v2 (``"minilm"``, offline, 384-d, L2-normalised). Texts are sorted by length once,
  encoded in blocks (a progress bar advances per block) with the model's own ``encode``, and put back in order;
  inputs longer than ``max_length`` word pieces are truncated by the model.
* :class:`HashingEmbedder` — a deterministic bag-of-words hashing embedder without any model: a lexical
  baseline, and what the tests use.

:func:`embed_corpus` caches a corpus' vectors under ``$MEDLENS_CACHE/retrieval/embeddings``, keyed by the
corpus content hash and the embedder's ``cache_key`` (model id, max length, normalisation).
"""

from __future__ import annotations

import hashlib
import logging
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from medlens._cache import cache_root
from medlens._validation import InputError

__all__ = [
    "Embedder",
    "HashingEmbedder",
    "SentenceTransformerEmbedder",
    "embed_corpus",
    "embedding_cache_dir",
    "load_embedder",
]

log = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    """Texts → float32 array (n, dim); ``name`` reloads it with :func:`load_embedder`."""

    name: str
    model_id: str
    dim: int
    normalized: bool
    max_length: int | None

    @property
    def cache_key(self) -> str: ...

    def embed(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model (``"minilm"`` or a local folder), via :func:`medlens.encoders.load_encoder`.

    Parameters
    ----------
    model : str
        ``"minilm"`` (the packaged all-MiniLM-L6-v2) or a local sentence-transformers folder.
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    max_length : int, optional
        Truncate inputs to this many word pieces (default: the model's own limit, 256 for MiniLM).
    normalize : bool
        L2-normalise embeddings (needed for cosine search).
    block : int
        Texts per progress step (a multiple of the batch size keeps batches full): 256, so that a bar on a
        terminal moves about every half second with MiniLM on two cores.
    """

    def __init__(
        self,
        model: str = "minilm",
        *,
        device: str = "cpu",
        max_length: int | None = None,
        normalize: bool = True,
        block: int = 256,
    ) -> None:
        from medlens.encoders import load_encoder

        self.encoder = load_encoder(model, device=device, normalize=normalize, max_length=max_length)
        self.model = self.encoder.model  # the sentence_transformers.SentenceTransformer
        self.name = str(model)
        self.model_id = self.encoder.model_id
        self.dim = int(self.encoder.config.embedding_dim)
        self.normalized = bool(normalize)
        self.max_length = int(self.model.max_seq_length)
        self.block = int(block)

    @property
    def cache_key(self) -> str:
        return f"st|{self.model_id}|{self.max_length}|{self.normalized}"

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    def count_tokens(self, texts: Sequence[str]) -> np.ndarray:
        """Word pieces per text, special tokens included, before truncation."""
        enc = self.tokenizer(list(texts), add_special_tokens=True, truncation=False)
        return np.array([len(ids) for ids in enc["input_ids"]], dtype=np.int64)

    def embed(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Embed ``texts`` → float32 (n, dim), in input order."""
        from medlens._progress import progress_bar

        texts = [str(t) for t in texts]
        if batch_size < 1:
            raise InputError(f"batch size must be >= 1, got {batch_size}.")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        step = max(batch_size, (self.block // batch_size) * batch_size)
        with progress_bar(len(texts), progress, "embedding") as bar:
            for start in range(0, len(texts), step):
                rows = order[start : start + step]
                out[rows] = self.encoder.encode_texts(
                    [texts[i] for i in rows], batch_size=batch_size, progress=False, use_cache=False
                )
                bar(len(rows))
        return out


class HashingEmbedder:
    """Bag-of-words feature hashing (signed, CRC32 buckets), L2-normalised: no model, fully deterministic.

    Words are the BM25 tokens (:func:`medlens.retrieval.tokenize`). Useful as a lexical baseline and for tests.

    >>> e = HashingEmbedder(dim=32)
    >>> v = e.embed(["seizures and ataxia", "ataxia with seizures"])
    >>> round(float(v[0] @ v[1]), 6)
    1.0
    """

    def __init__(self, dim: int = 256) -> None:
        if dim < 2:
            raise InputError(f"HashingEmbedder dim must be >= 2; got {dim}.")
        self.dim = int(dim)
        self.name = f"hashing:{self.dim}"
        self.model_id = f"medlens/hashing-{self.dim}"
        self.normalized = True
        self.max_length = None

    @property
    def cache_key(self) -> str:
        return f"hashing|{self.dim}|v1"

    def embed(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        from medlens.retrieval._bm25 import tokenize

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for tok in tokenize(str(text)):
                h = zlib.crc32(tok.encode())
                out[i, h % self.dim] += 1.0 if (h >> 31) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        empty = norms[:, 0] == 0
        out[empty, 0] = 1.0  # an empty text still gets a unit vector
        norms[empty] = 1.0
        return out / norms


def load_embedder(name: str = "minilm", **kwargs: Any) -> Embedder:
    """``"minilm"``, a local sentence-transformers folder, or ``"hashing[:DIM]"``."""
    name = str(name)
    if name == "hashing" or name.startswith("hashing:"):
        dim = name.partition(":")[2]
        if dim and not dim.isdigit():
            raise InputError(f"embedder {name!r}: expected 'hashing' or 'hashing:DIM' with an integer DIM.")
        return HashingEmbedder(int(dim) if dim else 256)
    if name != "minilm" and not Path(name).is_dir():
        raise InputError(
            f"embedder {name!r} is neither 'minilm', 'hashing[:DIM]' nor a local sentence-transformers folder "
            "(medlens never downloads weights)."
        )
    return SentenceTransformerEmbedder(name, **kwargs)


def embedding_cache_dir() -> Path:
    return cache_root("retrieval", "embeddings")


def embed_corpus(
    texts: Sequence[str],
    embedder: Embedder,
    *,
    corpus_hash: str,
    batch_size: int = 64,
    progress: bool = False,
    use_cache: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Embed a corpus' texts, reusing ``$MEDLENS_CACHE/retrieval/embeddings/<model>/<corpus>.npy`` when present.

    Returns the vectors and ``{"cache": "hit" | "miss" | "off", "path": …}``.
    """
    model_key = hashlib.sha256(embedder.cache_key.encode()).hexdigest()[:16]
    path = embedding_cache_dir() / model_key / f"{corpus_hash[:32]}.npy"
    if use_cache and path.is_file():
        try:
            vecs = np.load(path)
        except (OSError, ValueError) as exc:  # a damaged cache file is recomputed, never trusted
            log.warning("ignoring unreadable embedding cache %s (%s)", path, exc)
        else:
            if vecs.shape == (len(texts), embedder.dim) and vecs.dtype == np.float32:
                log.info("embeddings for %d texts loaded from %s", len(texts), path)
                return vecs, {"cache": "hit", "path": str(path)}
            log.warning("embedding cache %s has shape %s, expected %s; recomputing", path, vecs.shape, len(texts))
    vecs = np.ascontiguousarray(embedder.embed(texts, batch_size=batch_size, progress=progress), dtype=np.float32)
    if vecs.shape != (len(texts), embedder.dim):
        raise InputError(
            f"embedder {embedder.model_id} returned shape {vecs.shape}; expected {(len(texts), embedder.dim)}."
        )
    if use_cache:
        from medlens.io import atomic_write

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(path, "wb") as fh:
                np.save(fh, vecs)
        except OSError as exc:  # a read-only or full cache never fails the build
            log.warning(
                "could not write the embedding cache %s (%s); set $MEDLENS_CACHE to a writable folder", path, exc
            )
            return vecs, {"cache": "unwritable", "path": None}
    return vecs, {"cache": "miss" if use_cache else "off", "path": str(path) if use_cache else None}
