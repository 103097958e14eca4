"""Lexical retrieval: BM25 (bm25s, Lucene variant) over a small, documented tokenizer.

Tokenizer ``medlens-words-v1``: Unicode NFKD with accents stripped, lower case, runs of ``[a-z0-9]``,
English stop words (bm25s' list) removed, then a light plural stemmer (``-ies`` → ``-y``, ``-sses`` →
``-ss``, a final ``-s`` dropped unless the word ends in ``-ss``, ``-us`` or ``-is``; words of 3 letters or fewer
are kept as they are). Queries and documents go through the same function.
"""

from __future__ import annotations

import json
import logging
import os
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._validation import InputError

__all__ = ["BM25Index", "tokenize"]

TOKENIZER = "medlens-words-v1"
_WORD = re.compile(r"[a-z0-9]+")


def _quiet_bm25s() -> None:
    # bm25s sets its own logger to DEBUG at import; keep it at WARNING so that CLI output stays clean
    logging.getLogger("bm25s").setLevel(logging.WARNING)


def _stopwords() -> frozenset[str]:
    try:
        from bm25s.stopwords import STOPWORDS_EN

        return frozenset(STOPWORDS_EN)
    except ImportError:  # pragma: no cover - bm25s is needed for BM25 anyway
        return frozenset()


_STOP: frozenset[str] | None = None


def _stem(word: str) -> str:
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("sses"):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str, *, stem: bool = True) -> list[str]:
    """Split ``text`` into BM25 terms (see the module docstring).

    >>> tokenize("Seizures and the Cerebellar hypoplasias; café-au-lait spots")
    ['seizure', 'cerebellar', 'hypoplasia', 'cafe', 'au', 'lait', 'spot']
    """
    global _STOP
    if _STOP is None:
        _STOP = _stopwords()
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    words = [w for w in _WORD.findall(text) if w not in _STOP]
    return [_stem(w) for w in words] if stem else words


class BM25Index:
    """BM25 over a list of texts (bm25s, ``method="lucene"``, ``k1=1.5``, ``b=0.75`` by default).

    Examples
    --------
    >>> bm = BM25Index.build(["ataxia and seizures", "cardiac defects", "seizures"])
    >>> [int(i) for i in bm.search("seizure", top_k=5)[1]]
    [2, 0]
    """

    def __init__(self, model: Any, *, params: dict[str, Any]) -> None:
        self.model = model
        self.params = params

    @property
    def n_documents(self) -> int:
        return int(self.model.scores["num_docs"])

    @classmethod
    def build(
        cls, texts: Sequence[str], *, k1: float = 1.5, b: float = 0.75, method: str = "lucene", stem: bool = True
    ) -> BM25Index:
        bm25s = require("bm25s", extra="retrieval", purpose="BM25 retrieval")
        _quiet_bm25s()
        if not texts:
            raise InputError("BM25 needs at least one document; got none.")
        tokens = [tokenize(t, stem=stem) or [""] for t in texts]
        model = bm25s.BM25(k1=k1, b=b, method=method)
        model.index(tokens, show_progress=False)
        params = {"k1": k1, "b": b, "method": method, "tokenizer": TOKENIZER, "stem": stem}
        return cls(model, params=params)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query`` (zeros when no query term is in the vocabulary)."""
        ids = self.model.get_tokens_ids([t for t in tokenize(query, stem=self.params.get("stem", True)) if t])
        if not ids:
            return np.zeros(self.n_documents, dtype=np.float32)
        return np.asarray(self.model.get_scores_from_ids(ids), dtype=np.float32)

    def search(self, query: str, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``top_k`` (scores, rows) by descending score; documents sharing no term with the query are left out."""
        s = self.scores(query)
        rows = top_rows(s, top_k)
        rows = rows[s[rows] > 0]
        return s[rows], rows

    def save(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(str(folder), show_progress=False)
        (folder / "medlens_bm25.json").write_text(json.dumps(self.params, sort_keys=True), encoding="utf-8")

    @classmethod
    def load(cls, folder: str | os.PathLike) -> BM25Index:
        bm25s = require("bm25s", extra="retrieval", purpose="BM25 retrieval")
        _quiet_bm25s()
        folder = Path(folder)
        params_file = folder / "medlens_bm25.json"
        if not params_file.is_file():
            raise InputError(f"{folder} is not a medlens BM25 index (no medlens_bm25.json); rebuild the index.")
        params = json.loads(params_file.read_text(encoding="utf-8"))
        if params.get("tokenizer") != TOKENIZER:
            raise InputError(
                f"{folder}: BM25 index built with tokenizer {params.get('tokenizer')!r}, this medlens uses "
                f"{TOKENIZER!r}; rebuild the index with 'medlens rag index'."
            )
        model = bm25s.BM25.load(str(folder), show_progress=False)
        return cls(model, params=params)


def top_rows(scores: np.ndarray, count: int) -> np.ndarray:
    """Rows of the ``count`` highest scores, highest first; ties go to the lower row (a stable, total order)."""
    n = scores.shape[0]
    count = min(int(count), n)
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    if count < n:
        part = np.argpartition(-scores, count - 1)[:count]
        # keep every row tied with the k-th score so that the tie-break below sees them all
        kth = scores[part].min()
        part = np.nonzero(scores >= kth)[0]
    else:
        part = np.arange(n)
    order = np.lexsort((part, -scores[part]))
    return part[order][:count].astype(np.int64)
