"""What the provenance of a command records about the retrieval index it used."""

from __future__ import annotations

from typing import Any

__all__ = ["index_provenance"]


def index_provenance(index: Any) -> dict[str, Any]:
    """The index block of a provenance: its folder, corpus (name, HPO versions, SHA-256), request hash, dense
    retriever and creation time, read from the index manifest."""
    m = index.manifest
    cprov = m["corpus"].get("provenance") or {}
    versions = {k: cprov[k] for k in ("hpo_version", "hpoa_version") if cprov.get(k)}
    return {
        "path": str(index.path),
        "corpus": m["corpus"]["name"],
        **versions,
        "corpus_sha256": m["corpus"]["sha256"],
        "request_hash": m.get("request_hash"),
        "dense": m["dense"].get("factory", m["dense"]["kind"]),
        "created": m.get("created"),
    }
