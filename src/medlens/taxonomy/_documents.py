"""The stamped JSON documents behind ``taxonomy list | show | validate``."""

from __future__ import annotations

import os
from typing import Any

from medlens._provenance import provenance, stamp
from medlens.taxonomy._io import list_taxonomies, load_taxonomy, read_taxonomy_file

__all__ = ["taxonomy_list_document", "taxonomy_show_document", "taxonomy_validate_document"]

# ``taxonomy show --json`` includes the full definition up to this many nodes (``null`` above it).
MAX_DEFINITION_NODES = 5000


def taxonomy_list_document() -> dict[str, Any]:
    """The built-in taxonomies (name, description, extra), stamped: what ``taxonomy list --json`` prints."""
    return stamp({"taxonomies": list_taxonomies()}, provenance(command="taxonomy list"))


def taxonomy_show_document(name: str) -> dict[str, Any]:
    """The summary of the taxonomy ``name`` (a built-in name or a file) with its definition (``None`` above
    5,000 nodes), stamped: what ``taxonomy show --json`` prints."""
    tax = load_taxonomy(name)
    out = tax.summary()
    out["definition"] = tax.to_dict() if len(tax) <= MAX_DEFINITION_NODES else None
    return stamp(out, provenance(command="taxonomy show", config={"name": name}, taxonomy=tax))


def taxonomy_validate_document(file: str | os.PathLike) -> dict[str, Any]:
    """Read and check the taxonomy file ``file`` (one root, no cycles, known nodes in labels and prompts; an
    :class:`~medlens._validation.InputError` names the problem); return ``{"valid": True, **summary}`` stamped:
    what ``taxonomy validate --json`` prints."""
    tax = read_taxonomy_file(file)
    prov = provenance(command="taxonomy validate", inputs={"taxonomy": file}, taxonomy=tax)
    return stamp({"valid": True, **tax.summary()}, prov)
