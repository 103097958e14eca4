"""The retrieval-only diagnosis ranker: no LLM, candidates ranked by the evidence retrieved for a case.

A retrieved unit is evidence for one candidate diagnosis: its document's ``diagnosis`` field, else its
title. Candidates are grouped by a normalised name (case, spacing and punctuation folded) and scored by
the best score of their evidence (``aggregate="max"``, the default: one strong match wins) or by the sum of
their evidence scores (``"sum"``: several matching chunks add up). Ties keep retrieval order.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from medlens._validation import InputError, check_option
from medlens.retrieval._index import Hit, RetrievalIndex

__all__ = ["Candidate", "case_query", "normalize_name", "rank_candidates", "rank_diagnoses"]

AGGREGATES = ("max", "sum")


def normalize_name(name: str) -> str:
    """Fold case, accents, punctuation and spacing: ``"Dandy–Walker  Malformation"`` → ``"dandy walker malformation"``.

    >>> normalize_name("Dandy-Walker  Malformation; type 1")
    'dandy walker malformation type 1'
    """
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return " ".join(re.findall(r"[a-z0-9]+", text))


@dataclass(frozen=True)
class Candidate:
    """A candidate diagnosis, its rank (1-based), score and the ids of the units that support it."""

    name: str
    score: float
    rank: int
    doc_ids: tuple[str, ...] = ()
    parents: tuple[str, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "score": self.score, "rank": self.rank, "doc_ids": list(self.doc_ids)}


def rank_candidates(hits: Sequence[Hit], *, aggregate: str = "max") -> list[Candidate]:
    """Group hits by candidate diagnosis and rank the groups (see the module docstring)."""
    check_option(aggregate, AGGREGATES, name="aggregate")
    groups: dict[str, dict[str, Any]] = {}
    for order, h in enumerate(hits):
        name = h.diagnosis or h.title
        key = normalize_name(name) or name
        g = groups.get(key)
        if g is None:
            g = groups[key] = {"name": name, "scores": [], "ids": [], "parents": [], "first": order}
        g["scores"].append(float(h.score))
        g["ids"].append(h.id)
        if h.parent not in g["parents"]:
            g["parents"].append(h.parent)
    scored = []
    for g in groups.values():
        s = max(g["scores"]) if aggregate == "max" else sum(g["scores"])
        scored.append((s, g))
    scored.sort(key=lambda t: (-t[0], t[1]["first"]))
    return [Candidate(g["name"], s, i + 1, tuple(g["ids"]), tuple(g["parents"])) for i, (s, g) in enumerate(scored)]


def case_query(case: dict[str, Any]) -> str:
    """The retrieval query of a case: its ``clinical_history`` and ``caption`` (NOVA's text setting)."""
    parts = []
    for key in ("clinical_history", "caption"):
        value = case.get(key)
        if value is not None and not isinstance(value, str):
            raise InputError(f"case field {key!r} must be a string; got {type(value).__name__}.")
        if value and value.strip():
            parts.append(value.strip())
    if not parts:
        raise InputError(f"case {case.get('id', '?')!r} has neither clinical_history nor caption text to search with.")
    return " ".join(parts)


def rank_diagnoses(
    index: RetrievalIndex,
    query: str | dict[str, Any],
    *,
    top_k: int = 5,
    retriever: str = "auto",
    depth: int = 50,
    aggregate: str = "max",
) -> list[Candidate]:
    """The ``top_k`` best candidate diagnoses for a query text or a case (``clinical_history`` + ``caption``).

    The ``depth`` best units are retrieved and grouped into candidates (so at most ``depth`` candidates).
    """
    text = case_query(query) if isinstance(query, dict) else query
    hits = index.search(text, top_k=max(depth, top_k), retriever=retriever)
    return rank_candidates(hits, aggregate=aggregate)[:top_k]
