"""Built-in corpora by name, or a JSONL file by path."""

from __future__ import annotations

import os
from pathlib import Path

from medlens._registry import Registry
from medlens._validation import InputError
from medlens.retrieval._corpus import Corpus, read_corpus

__all__ = ["CORPORA", "load_corpus"]

CORPORA: Registry = Registry("corpus")
CORPORA.register(
    "hpo",
    "medlens.retrieval._hpo:hpo_corpus",
    description="one document per rare disease annotated in HPO's phenotype.hpoa (OMIM, ORPHA, DECIPHER; ~12.7k)",
    extra="rare",
)


def load_corpus(name_or_path: str | os.PathLike, **kwargs) -> Corpus:
    """A built-in corpus by name (``"hpo"``) or a JSONL corpus file.

    Keyword arguments go to the built-in corpus' builder (e.g. ``definitions=0`` for ``hpo``).
    """
    key = str(name_or_path)
    if key in CORPORA:
        return CORPORA.get(key)(**kwargs)
    path = Path(key)
    if path.suffix.lower() in (".jsonl", ".json") or path.exists():
        if kwargs:
            raise InputError(f"options {sorted(kwargs)} apply to built-in corpora only, not to {path}.")
        return read_corpus(path)
    try:
        CORPORA.resolve_name(key)
    except KeyError as exc:
        raise InputError(f"{exc.args[0]} (or give a path to a .jsonl corpus file)") from None
    raise AssertionError("unreachable")  # pragma: no cover
