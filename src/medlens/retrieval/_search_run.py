"""The pipeline behind ``rag search``: load an index, search it and return the hits stamped with provenance."""

from __future__ import annotations

import os
from typing import Any

from medlens._provenance import provenance, stamp
from medlens._validation import InputError, check_option
from medlens.retrieval._index import RETRIEVERS, load_index
from medlens.retrieval._index_info import index_provenance

__all__ = ["run_search"]


def run_search(index: str | os.PathLike, query: str, *, top_k: int = 5, retriever: str = "auto") -> dict[str, Any]:
    """Search the index folder ``index`` for ``query``; return ``{query, retriever, top_k, hits: [Hit.to_dict()]}``
    stamped with provenance (what ``rag search --json`` prints). The embedder is recorded only for retrievers
    that use it. When the ontology ranks (``ontology``, ``hybrid``, and ``auto`` on an ``hpo`` index), the
    document also holds ``phenotypes``: the HPO mentions recognised in the query and their status
    (:meth:`medlens.retrieval._phenotype.OntologyRanker.mentions`), so that a user sees what was read as the
    patient's findings, what as negated, uncertain or a relative's."""
    check_option(retriever, RETRIEVERS, name="retriever")
    if top_k < 1:
        raise InputError(f"--top-k must be >= 1; got {top_k}.")
    idx = load_index(index)
    hits = idx.search(query, top_k=top_k, retriever=retriever)
    resolved = idx.resolve_retriever(retriever)
    prov = provenance(
        command="rag search",
        config={"top_k": top_k, "retriever": retriever, "query": query},
        models={"embedder": idx.manifest["embedder"]["model_id"]} if retriever not in ("bm25", "ontology") else {},
        extra={"index": index_provenance(idx)},
    )
    doc: dict[str, Any] = {"query": query, "retriever": retriever, "top_k": top_k, "hits": [h.to_dict() for h in hits]}
    if resolved in ("ontology", "hybrid"):
        doc["phenotypes"] = idx.phenotypes.mentions(query)
    return stamp(doc, prov)
