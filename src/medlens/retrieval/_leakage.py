"""The leakage guard: drop retrieved documents that are (near-)copies of the case being diagnosed.

Evaluation cases such as NOVA's may come from public teaching-case archives, and a user corpus built from
such an archive can hold the very case being asked about: retrieving it gives the answer away. The guard
checks every retrieved unit against the query case and drops it, with the reason, when

1. its id, its parent document's id or its ``case_id`` field is the case's own ``id`` or on the case-id
   blocklist (``case_id``);
2. its ``url`` is the case's own ``url`` or on the URL blocklist, compared after normalising (scheme,
   ``www.``, case of the host, trailing slash, query and fragment ignored) (``url``);
3. the cosine similarity of its embedding and the case's embedding (the index's embedder, on the unit's
   text and on the case's ``clinical_history`` + ``caption``) exceeds ``cosine`` (default 0.95)
   (``embedding_cosine``);
4. the Jaccard similarity of the two sets of word ``shingle``-grams (default 3) exceeds ``jaccard``
   (default 0.5) (``shingle_jaccard``), or the share of the case's shingles found in the unit exceeds
   ``containment`` (default 0.8; a case page that quotes the caption and history verbatim next to much
   other text has a low Jaccard but a containment near 1) (``shingle_containment``). Shingle sets are
   compared exactly (retrieved sets are small; MinHash would only approximate this).

Every drop is logged as ``{"id", "title", "reason", "value", "threshold"}``. The guard is off for the
``rare-hpo`` benchmark (its documents describe diseases, not cases) and on by default for user corpora.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from medlens._validation import InputError, check_option

__all__ = [
    "LEAKAGE_REASONS",
    "LeakageGuard",
    "leakage_guard",
    "merge_leakage",
    "normalize_url",
    "shingle_similarity",
    "shingles",
]

LEAKAGE_REASONS = ("case_id", "url", "embedding_cosine", "shingle_jaccard", "shingle_containment")


def normalize_url(url: str) -> str:
    """A URL reduced to host + path for comparison: ``"HTTPS://www.Example.org/case/12/?x=1#a"`` → ``"example.org/case/12"``.

    >>> normalize_url("HTTPS://www.Example.org/cases/12/?lang=en#img")
    'example.org/cases/12'
    >>> normalize_url("example.org/cases/12")
    'example.org/cases/12'
    """
    text = url.strip()
    if "://" not in text:
        text = "//" + text
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    host = host[4:] if host.startswith("www.") else host
    return f"{host}{parts.path.rstrip('/')}"


def shingles(text: str, n: int = 3) -> frozenset[tuple[str, ...]]:
    """The set of word ``n``-grams of ``text`` (lower-cased alphanumeric words; a shorter text is one shingle).

    >>> sorted(shingles("Cystic dilatation of the fourth ventricle", 3))[:2]
    [('cystic', 'dilatation', 'of'), ('dilatation', 'of', 'the')]
    """
    words = re.findall(r"[a-z0-9]+", text.lower())
    if not words:
        return frozenset()
    if len(words) < n:
        return frozenset({tuple(words)})
    return frozenset(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def shingle_similarity(a: frozenset, b: frozenset) -> tuple[float, float]:
    """``(jaccard, containment of a in b)`` of two shingle sets (0 when ``a`` is empty).

    >>> shingle_similarity(frozenset({1, 2, 3, 4}), frozenset({3, 4, 5, 6, 7, 8}))
    (0.25, 0.5)
    """
    if not a:
        return 0.0, 0.0
    inter = len(a & b)
    return inter / len(a | b), inter / len(a)


def _threshold(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not 0 < value <= 1:
        raise InputError(f"leakage guard {name} threshold must be in (0, 1] or None (off); got {value!r}.")
    return float(value)


def _case_text(case: Mapping[str, Any]) -> str:
    parts = [str(case.get(k) or "").strip() for k in ("clinical_history", "caption")]
    return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class LeakageGuard:
    """Drop retrieved units that copy the query case (see the module docstring for the four tests).

    Parameters
    ----------
    cosine : float or None
        Embedding cosine above which a unit is a near-duplicate (``None``: test off).
    jaccard, containment : float or None
        Word-shingle Jaccard, and share of the case's shingles in the unit, above which a unit is a copy.
    shingle : int
        Words per shingle.
    min_shingles : int
        The containment test needs at least this many case shingles (a one-line history is too short to
        tell copying from shared phrasing).
    block_urls, block_case_ids : sequence of str
        URLs (of the case pages, say) and case ids that must never be retrieved, for any case.

    Examples
    --------
    >>> from medlens.retrieval import Hit
    >>> guard = LeakageGuard(cosine=None)
    >>> case = {"id": "c1", "clinical_history": "Seizures since infancy in a 4-year-old girl.",
    ...         "caption": "Axial T2 image shows cortical tubers and subependymal nodules."}
    >>> texts = {"d1": "Tuberous sclerosis: cortical tubers, subependymal nodules, seizures.",
    ...          "d2": "Case c7. Seizures since infancy in a 4-year-old girl. Axial T2 image shows cortical "
    ...                "tubers and subependymal nodules. Diagnosis: tuberous sclerosis. Discussion: the complex is "
    ...                "autosomal dominant (TSC1 or TSC2); tubers, nodules and SEGA are the typical imaging features."}
    >>> hits = [Hit("d1", 0.9, "TSC", 1, "d1"), Hit("d2", 0.8, "Case c7", 2, "d2")]
    >>> kept, dropped = guard.filter(case, hits, texts=texts)
    >>> [h.id for h in kept], [(d["id"], d["reason"]) for d in dropped]
    (['d1'], [('d2', 'shingle_containment')])
    """

    cosine: float | None = 0.95
    jaccard: float | None = 0.5
    containment: float | None = 0.8
    shingle: int = 3
    min_shingles: int = 8
    block_urls: tuple[str, ...] = ()
    block_case_ids: tuple[str, ...] = ()
    _vectors: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        for name in ("cosine", "jaccard", "containment"):
            object.__setattr__(self, name, _threshold(getattr(self, name), name))
        if isinstance(self.shingle, bool) or not isinstance(self.shingle, int) or self.shingle < 1:
            raise InputError(f"leakage guard shingle must be an int >= 1; got {self.shingle!r}.")
        if isinstance(self.min_shingles, bool) or not isinstance(self.min_shingles, int) or self.min_shingles < 1:
            raise InputError(f"leakage guard min_shingles must be an int >= 1; got {self.min_shingles!r}.")
        object.__setattr__(self, "block_urls", tuple(str(u) for u in self.block_urls))
        object.__setattr__(self, "block_case_ids", tuple(str(c) for c in self.block_case_ids))

    def to_dict(self) -> dict[str, Any]:
        """The guard's settings (for provenance and run configs)."""
        return {
            "cosine": self.cosine,
            "jaccard": self.jaccard,
            "containment": self.containment,
            "shingle": self.shingle,
            "min_shingles": self.min_shingles,
            "block_urls": list(self.block_urls),
            "block_case_ids": list(self.block_case_ids),
        }

    def filter(
        self,
        case: Mapping[str, Any],
        hits: Sequence[Any],
        *,
        index: Any = None,
        texts: Mapping[str, str] | None = None,
        embedder: Any = None,
    ) -> tuple[list[Any], list[dict[str, Any]]]:
        """Split ``hits`` into ``(kept, dropped)``; ``dropped`` holds one log record per removed unit.

        Unit texts come from ``texts`` (id → text) or from ``index.units``; the embedder from ``embedder`` or
        ``index.embedder`` (needed only when ``cosine`` is set). Kept hits keep their order and ranks.
        """
        if texts is None and index is None:
            raise TypeError("LeakageGuard.filter needs the unit texts: pass index=... or texts={id: text}.")
        own_id = case.get("id")
        block_ids = set(self.block_case_ids) | ({str(own_id)} if own_id not in (None, "") else set())
        block_urls = {normalize_url(u) for u in self.block_urls if u.strip()}
        if isinstance(case.get("url"), str) and case["url"].strip():
            block_urls.add(normalize_url(case["url"]))
        case_text = _case_text(case)
        case_sh = shingles(case_text, self.shingle)

        def unit_text(h: Any) -> str:
            if texts is not None:
                return str(texts.get(h.id, ""))
            return index.units[h.id].full_text

        def unit_meta(h: Any) -> dict[str, Any]:
            return index.units[h.id].meta if index is not None and texts is None else {}

        verdict: dict[str, tuple[str, Any, Any]] = {}
        for h in hits:
            meta_case = unit_meta(h).get("case_id")
            ids = {h.id, getattr(h, "parent", h.id)} | ({str(meta_case)} if meta_case is not None else set())
            hit_ids = sorted(ids & block_ids)
            if hit_ids:
                verdict[h.id] = ("case_id", hit_ids[0], None)
                continue
            url = getattr(h, "url", None)
            if url and normalize_url(url) in block_urls:
                verdict[h.id] = ("url", url, None)
                continue
            if case_sh and (self.jaccard is not None or self.containment is not None):
                jac, cont = shingle_similarity(case_sh, shingles(unit_text(h), self.shingle))
                if self.jaccard is not None and jac > self.jaccard:
                    verdict[h.id] = ("shingle_jaccard", round(jac, 4), self.jaccard)
                    continue
                if self.containment is not None and len(case_sh) >= self.min_shingles and cont > self.containment:
                    verdict[h.id] = ("shingle_containment", round(cont, 4), self.containment)
                    continue
        if self.cosine is not None and case_text:
            rest = [h for h in hits if h.id not in verdict]
            if rest:
                emb = embedder if embedder is not None else getattr(index, "embedder", None)
                if emb is None:
                    raise TypeError(
                        "the cosine test of the leakage guard needs an embedder (embedder=... or index=...)."
                    )
                sims = self._cosines(emb, case_text, [(h.id, unit_text(h)) for h in rest])
                for h, s in zip(rest, sims, strict=True):
                    if s > self.cosine:
                        verdict[h.id] = ("embedding_cosine", round(float(s), 4), self.cosine)
        kept, dropped = [], []
        for h in hits:
            v = verdict.get(h.id)
            if v is None:
                kept.append(h)
            else:
                dropped.append(
                    {"id": h.id, "title": getattr(h, "title", None), "reason": v[0], "value": v[1], "threshold": v[2]}
                )
        return kept, dropped

    def _cosines(self, embedder: Any, case_text: str, units: Sequence[tuple[str, str]]) -> np.ndarray:
        tag = getattr(embedder, "model_id", type(embedder).__name__)
        todo = [(k, t) for k, t in units if f"{tag}|{k}" not in self._vectors]
        texts = [case_text, *[t for _, t in todo]]
        vecs = np.asarray(embedder.embed(texts), dtype=np.float64)
        vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        for (k, _), v in zip(todo, vecs[1:], strict=True):
            self._vectors[f"{tag}|{k}"] = v.astype(np.float32)  # units recur across cases: embed each once
        mat = np.stack([self._vectors[f"{tag}|{k}"] for k, _ in units]).astype(np.float64)
        return mat @ vecs[0]


def merge_leakage(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Leakage records without repeats of the same unit (first record wins), in order."""
    seen: set[str] = set()
    out = []
    for r in records:
        if r["id"] not in seen:
            seen.add(r["id"])
            out.append(r)
    return out


def leakage_guard(
    mode: str,
    corpus: str,
    *,
    cosine: float | None = None,
    block_urls: Sequence[str] | None = None,
    block_case_ids: Sequence[str] | None = None,
) -> LeakageGuard | None:
    """The leakage guard that the ``--leakage`` options name, or ``None`` (off).

    ``mode``: ``on``, ``off`` or ``auto`` (on unless ``corpus`` is ``hpo`` and nothing is blocked). Blocking
    URLs or case ids with the guard off is refused.
    """
    check_option(mode, ("auto", "on", "off"), name="leakage")
    if mode == "off":
        if block_urls or block_case_ids:
            raise InputError("--block-url and --block-case-id need the leakage guard; drop --leakage off.")
        return None
    if mode == "auto" and corpus == "hpo" and not (block_urls or block_case_ids):
        return None
    return LeakageGuard(cosine=cosine, block_urls=tuple(block_urls or ()), block_case_ids=tuple(block_case_ids or ()))
