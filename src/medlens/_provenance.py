"""Provenance for every JSON output: version, command, config hash, seed, input hashes, models, taxonomy."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_VERSION", "config_hash", "file_sha256", "provenance", "stamp"]

SCHEMA_VERSION = "1.0"


def _canonical(obj: Any) -> str:
    def default(o: Any) -> Any:
        if isinstance(o, Path):
            return str(o)
        if isinstance(o, set | frozenset):
            return sorted(o)
        if hasattr(o, "tolist"):
            return o.tolist()
        return repr(o)

    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=default)


def file_sha256(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def config_hash(config: Any) -> str:
    """SHA-256 of the canonical JSON form of ``config`` (key order does not matter).

    >>> config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})
    True
    """
    return hashlib.sha256(_canonical(config).encode()).hexdigest()


def provenance(
    *,
    command: str,
    config: dict[str, Any] | None = None,
    seed: int | None = None,
    inputs: dict[str, str | os.PathLike] | None = None,
    models: dict[str, str] | None = None,
    taxonomy: Any = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the ``provenance`` block of a JSON output.

    ``inputs`` maps a role (``"truth"``) to a file path; its SHA-256 is recorded. ``taxonomy`` is a
    :class:`~medlens.taxonomy.Taxonomy` (its name, version and content hash are recorded) or ``None``.
    """
    from medlens import __version__

    hashes = {}
    for role, p in (inputs or {}).items():
        path = Path(p)
        hashes[role] = {"path": str(path), "sha256": file_sha256(path) if path.is_file() else None}
    tax = None
    if taxonomy is not None:
        tax = {"name": taxonomy.name, "version": taxonomy.version, "sha256": taxonomy.content_hash()}
    out = {
        "medlens_version": __version__,
        "command": command,
        "config_hash": config_hash(config or {}),
        "seed": seed,
        "input_hashes": hashes,
        "model_ids": dict(models or {}),
        "taxonomy": tax,
    }
    if extra:
        out.update(extra)
    return out


def stamp(payload: dict[str, Any], prov: dict[str, Any]) -> dict[str, Any]:
    """Return ``{"schema_version", **payload, "provenance"}``."""
    return {"schema_version": SCHEMA_VERSION, **payload, "provenance": prov}
