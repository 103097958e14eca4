"""The concept vectors of an ``hpo`` index folder, kept beside it: ``concepts.npz``.

The ontology ranker's concept recogniser (:mod:`medlens.retrieval._concepts`) embeds ~24k HPO labels and trains
the self-alignment map (:mod:`medlens.retrieval._adapt`) once; both are cached under ``$MEDLENS_CACHE`` by
content. ``medlens rag index --corpus hpo`` also writes them into the index folder, so that the folder carries
what its ranker needs: a copy on another machine, a Ray actor on another node or a cleared cache then read the
file instead of embedding the labels and training the map again (minutes on two cores), and the first
``rag search`` after ``rag index`` is as fast as any other.

The file holds the label vectors as the recogniser uses them (after the map), the map's matrix and its
description, and a ``key``: SHA-256 of the store version, the label table's digest (concept version, rendering
split, every (term, text)), the embedder's ``cache_key`` and the map's settings. A store whose key differs (another
embedder, map setting, medlens version or HPO release) is not used (an info message), one whose arrays do not
fit or that cannot be read is ignored with a warning, never trusted: the recogniser is then built from the cache
as before, and ``rag index`` on the folder writes a store that fits. It is written atomically, and it is not
listed among the index's ``files``: an index folder without it is complete.

Nothing in it is pickled (``np.load`` with ``allow_pickle=False``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["STORE_FILE", "STORE_VERSION", "read_concept_store", "store_key", "write_concept_store"]

log = logging.getLogger(__name__)

STORE_VERSION = "medlens-concept-store-v1"
#: The file name inside an index folder.
STORE_FILE = "concepts.npz"


def store_key(labels_digest: str, embedder: Any, settings: Any) -> str:
    """The key of a recogniser's vectors: its label table's digest, embedder and map settings (``None``: no map).

    >>> class E: cache_key = "hash|64"
    >>> store_key("ab", E(), None) == store_key("ab", E(), None) != store_key("ac", E(), None)
    True
    """
    from medlens.retrieval._adapt import ADAPTER_VERSION

    adapt = "none" if settings is None else json.dumps({"version": ADAPTER_VERSION, **asdict(settings)}, sort_keys=True)
    parts = (STORE_VERSION, labels_digest, str(getattr(embedder, "cache_key", "")), adapt)
    return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()


def read_concept_store(path: str | os.PathLike, key: str, n_labels: int) -> tuple[np.ndarray, Any] | None:
    """``(label vectors after the map, ConceptAdapter or None)`` from the store at ``path`` when it holds ``key``
    and ``n_labels`` vectors; ``None`` when there is no store there or it does not fit (a warning says why)."""
    from medlens.retrieval._adapt import ConceptAdapter

    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            found = str(z["key"])
            if found != key:  # another configuration of the ranker, or an older medlens: not damage
                log.info("not using %s: made for other HPO labels, embedder or map settings", path)
                return None
            vectors = np.asarray(z["vectors"], dtype=np.float32)
            weight = np.asarray(z["weight"], dtype=np.float32) if "weight" in z.files else None
            info = json.loads(str(z["info"])) if "info" in z.files else {}
    except Exception as exc:  # a damaged or half-copied store (BadZipFile, EOFError, ...) is never trusted
        log.warning("ignoring unreadable concept store %s (%s)", path, exc)
        return None
    if vectors.ndim != 2 or len(vectors) != n_labels or not np.isfinite(vectors).all():
        log.warning("ignoring %s: %s vectors for %d labels", path, vectors.shape, n_labels)
        return None
    if weight is not None and weight.shape != (vectors.shape[1], vectors.shape[1]):
        log.warning("ignoring %s: a map of shape %s for %d-d vectors", path, weight.shape, vectors.shape[1])
        return None
    return vectors, (None if weight is None else ConceptAdapter(weight, info))


def write_concept_store(path: str | os.PathLike, recognizer: Any) -> Path:
    """Write ``recognizer``'s label vectors and map (a :class:`~medlens.retrieval._concepts.ConceptRecognizer`
    made by :func:`~medlens.retrieval._concepts.hpo_concept_recognizer`, which sets its ``store_key``) to
    ``path`` atomically."""
    from medlens._validation import InputError
    from medlens.io import atomic_write

    key = getattr(recognizer, "store_key", None)
    if not key:
        raise InputError("only a recogniser made by hpo_concept_recognizer() has a store key.")
    arrays: dict[str, Any] = {"key": np.array(key), "vectors": np.ascontiguousarray(recognizer.vectors)}
    if recognizer.adapter is not None:
        arrays["weight"] = np.ascontiguousarray(recognizer.adapter.weight, dtype=np.float32)
        arrays["info"] = np.array(json.dumps(recognizer.adapter.info, sort_keys=True))
    path = Path(path)
    with atomic_write(path, "wb") as fh:
        np.savez(fh, **arrays)
    recognizer.store_path = str(path)
    return path
