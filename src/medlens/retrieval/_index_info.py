"""What an index is built from (its request, hashed into the manifest) and what a provenance records about it."""

from __future__ import annotations

from typing import Any

from medlens.retrieval._fusion import RRF_K

FUSION_DEPTH = 100

__all__ = ["FUSION_DEPTH", "build_request", "index_provenance"]


def index_provenance(index: Any) -> dict[str, Any]:
    """The index block of a provenance: its folder, corpus (name, HPO versions, SHA-256), request hash, dense
    retriever and creation time, read from the index manifest; once the ontology ranker of an ``hpo`` index has been
    built, also its concept recogniser (threshold, label count, embedder, the self-alignment map's base model,
    data hash, steps, seed and loss, and the concept scorer's threshold, features and what it was fitted on)."""
    m = index.manifest
    cprov = m["corpus"].get("provenance") or {}
    versions = {k: cprov[k] for k in ("hpo_version", "hpoa_version") if cprov.get(k)}
    rec = getattr(getattr(index, "_phenotypes", None), "concepts", None)
    concepts = {"concepts": rec.spec()} if rec is not None else {}
    return {
        "path": str(index.path),
        "corpus": m["corpus"]["name"],
        **versions,
        "corpus_sha256": m["corpus"]["sha256"],
        "request_hash": m.get("request_hash"),
        "dense": m["dense"].get("factory", m["dense"]["kind"]),
        "created": m.get("created"),
        **concepts,
    }


def build_request(
    corpus: Any,
    *,
    embedder: Any = "minilm",
    max_length: int | None = None,
    dense: str = "numpy",
    dense_mode: str = "document",
    metric: str | None = None,
    search_params: dict[str, Any] | None = None,
    chunking: dict[str, Any] | None = None,
    rrf_k: float = RRF_K,
    depth: int = FUSION_DEPTH,
    bm25_params: dict[str, Any] | None = None,
    shards: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything that determines an index's contents, as requested (no model is loaded).

    Its hash is stored in the manifest (``request_hash``); ``medlens rag index`` reuses an existing folder whose
    hash matches instead of rebuilding it.
    """
    if not isinstance(embedder, str):
        max_length = getattr(embedder, "request_max_length", embedder.max_length)  # as asked (ExecutorEmbedder)
        embedder = embedder.name
    return {
        "corpus_sha256": corpus.content_hash(),
        "chunking": dict(chunking) if chunking else None,
        "embedder": str(embedder),
        "max_length": max_length,
        "dense": str(dense),
        "dense_mode": dense_mode,
        "metric": metric,
        "search_params": dict(search_params or {}),
        "rrf_k": rrf_k,
        "depth": depth,
        "bm25": dict(bm25_params or {}),
        # only when sharded, so that the hash of every unsharded request stays what it was
        **({"shards": dict(shards)} if shards else {}),
    }
