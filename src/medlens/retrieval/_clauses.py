"""Clause-level dense retrieval (``dense_mode="clauses"``): late interaction over short clauses.

Long documents embed slowly and blur into one vector; lists of findings (the ``hpo`` corpus, case notes) are made
of short clauses that a sentence encoder embeds well. In this mode

* every unit's text is split into clauses (:func:`split_clauses`: at ``. ; : ,`` followed by a space, and at
  `` and ``); the *unique* clauses of the whole corpus are embedded once (the ``hpo`` corpus has ~423k clause
  occurrences but ~32k distinct clauses) and put in the dense index (numpy or FAISS);
* a query is split the same way and each query clause is embedded;
* a unit's score is the mean, over query clauses, of the best cosine similarity to any of the unit's clauses
  (MaxSim, as in ColBERT, at clause granularity). In corpora of 200 units or more, clauses found in more than
  ``max_df`` (25 %) of the units (section labels such as "Very frequent") are left out, like stop words.

With the numpy index every unit is scored exactly. With a FAISS index each query clause retrieves its
``candidates`` nearest clauses; the units holding any of them are then scored exactly from the stored clause
vectors (units outside that candidate set are not returned).

Exact scoring of all units (the numpy index) is laid out for speed: the clause similarities of all query
clauses come from one product with a transposed copy of the clause matrix (``q @ Vᵀ``, about twice as fast as
``V @ qᵀ`` for a handful of query clauses), and units are grouped into a dozen *buckets* of similar clause
counts, each stored as a padded ``(L, units)`` matrix of clause ids (padding points at a ``-inf`` column). A
bucket's maxima are then one ``np.take`` and one ``max`` over its ``L`` rows for all query clauses at once,
instead of a segmented ``reduceat`` per query clause (~2.5× less time on the hpo index, see
``perf/rag_index.py``). The per-unit sum over query clauses keeps the query-clause order, so scores equal the
simple formula up to float32 rounding of the dot products.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medlens._validation import InputError
from medlens.retrieval._bm25 import top_rows
from medlens.retrieval._dense import one_blas_thread

__all__ = ["ClauseIndex", "bucket_plan", "split_clauses"]

_SPLIT = re.compile(r"(?:[.;:,]\s+|\s+and\s+)")
_STRIP = " \t\n.;:,"
CANDIDATES = 256
MAX_DF = 0.25
MIN_UNITS_FOR_DF = 200


def _drop_common(
    indptr: np.ndarray, indices: np.ndarray, n_clauses: int, max_df: float
) -> tuple[np.ndarray, np.ndarray]:
    """Drop clauses found in more than ``max_df`` of the units ("Very frequent", "Inheritance", …) from the
    incidence: like stop words they carry no evidence, and they cost time. A unit keeps at least its first clause."""
    n_units = len(indptr) - 1
    if n_units < MIN_UNITS_FOR_DF:  # document frequencies of a handful of units say nothing
        return indptr, indices
    df = np.bincount(indices, minlength=n_clauses)
    common = df > max_df * n_units
    if not common.any():
        return indptr, indices
    keep = ~common[indices]
    unit_of = np.repeat(np.arange(n_units), np.diff(indptr))
    kept_per_unit = np.bincount(unit_of[keep], minlength=n_units)
    keep[indptr[:-1][kept_per_unit == 0]] = True
    new_indices = indices[keep]
    counts = np.bincount(unit_of[keep], minlength=n_units)
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), new_indices


def bucket_plan(lens: np.ndarray, *, overhead: int = 3000) -> list[tuple[int, int]]:
    """Group units by clause count into ranges ``(lo, hi)`` that minimise padded size + ``overhead`` per bucket.

    A bucket is padded to its longest unit (``hi``); each bucket also costs a few numpy calls per query,
    counted as ``overhead`` padded cells. Dynamic programming over the distinct counts (exact, O(d²)).

    >>> bucket_plan(np.array([1, 1, 2, 9, 10]), overhead=3)
    [(1, 2), (9, 10)]
    """
    vals, cnt = np.unique(np.asarray(lens, dtype=np.int64), return_counts=True)
    cum = np.concatenate([[0], np.cumsum(cnt)])
    best = np.full(len(vals) + 1, np.inf)
    best[0] = 0.0
    arg = np.zeros(len(vals) + 1, dtype=np.int64)
    for j in range(1, len(vals) + 1):
        costs = best[:j] + (cum[j] - cum[:j]) * vals[j - 1] + overhead
        arg[j] = int(np.argmin(costs))
        best[j] = costs[arg[j]]
    out, j = [], len(vals)
    while j > 0:
        i = int(arg[j])
        out.append((int(vals[i]), int(vals[j - 1])))
        j = i
    return out[::-1]


def split_clauses(text: str) -> list[str]:
    """Split text into clauses at ``. ; : ,`` + space and at `` and ``; never empty (falls back to the text).

    >>> split_clauses("A 3-year-old girl presents with hypotonia, ataxia and seizures. Brain MRI shows a molar tooth sign.")
    ['A 3-year-old girl presents with hypotonia', 'ataxia', 'seizures', 'Brain MRI shows a molar tooth sign']
    """
    parts = [p.strip(_STRIP) for p in _SPLIT.split(text)]
    parts = [p for p in parts if p]
    return parts or [text.strip() or text]


def clause_table(texts: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Unique clauses (first-seen order) and the CSR incidence ``unit -> clause ids`` (``indptr``, ``indices``)."""
    pos: dict[str, int] = {}
    indptr = [0]
    indices: list[int] = []
    for t in texts:
        seen: set[int] = set()
        for c in split_clauses(t):
            j = pos.setdefault(c, len(pos))
            if j not in seen:
                seen.add(j)
                indices.append(j)
        indptr.append(len(indices))
    return list(pos), np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int64)


class ClauseIndex:
    """MaxSim retrieval over units made of clauses; ``index`` holds the unique clause vectors.

    Parameters
    ----------
    index : NumpyIndex or FaissIndex
        Over the unique clause vectors (cosine: they must be L2-normalised).
    vectors : array (n_clauses, dim)
        The clause vectors (used for exact scoring; the numpy index's own matrix when it is one).
    indptr, indices : arrays
        CSR incidence of units → clause ids.
    candidates : int
        Nearest clauses retrieved per query clause by a FAISS index.
    """

    kind = "clauses"

    def __init__(
        self,
        index: Any,
        vectors: np.ndarray,
        indptr: np.ndarray,
        indices: np.ndarray,
        *,
        candidates: int = CANDIDATES,
        max_df: float | None = MAX_DF,
    ) -> None:
        self.index = index
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        indptr = np.asarray(indptr, dtype=np.int64)
        indices = np.asarray(indices, dtype=np.int64)
        self.max_df = max_df
        if max_df is not None and len(indices):
            indptr, indices = _drop_common(indptr, indices, len(self.vectors), max_df)
        self.indptr, self.indices = indptr, indices
        self.candidates = int(candidates)
        self.metric = index.metric
        self.dim = index.dim
        if self.indptr[-1] != len(self.indices) or (len(self.indices) and self.indices.max() >= len(self.vectors)):
            raise InputError("clause index parts disagree (incidence vs vectors); rebuild the index.")
        if np.any(np.diff(self.indptr) < 1):
            raise InputError("every unit needs at least one clause; rebuild the index.")
        self._inverse: tuple[np.ndarray, np.ndarray] | None = None
        self._fast: tuple[np.ndarray, list[np.ndarray], np.ndarray] | None = None

    @property
    def ntotal(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_clauses(self) -> int:
        return len(self.vectors)

    def _clause_units(self) -> tuple[np.ndarray, np.ndarray]:
        """CSR of clause → units (built on first use)."""
        if self._inverse is None:
            units = np.repeat(np.arange(self.ntotal), np.diff(self.indptr))
            order = np.argsort(self.indices, kind="stable")
            counts = np.bincount(self.indices, minlength=self.n_clauses)
            self._inverse = (np.concatenate([[0], np.cumsum(counts)]), units[order])
        return self._inverse

    def _buckets(self) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """(Vᵀ, padded clause-id matrices (L, b) per bucket, unit order of the concatenated buckets); built once."""
        if self._fast is None:
            lens = np.diff(self.indptr)
            order, mats = [], []
            for lo, hi in bucket_plan(lens):
                units = np.nonzero((lens >= lo) & (lens <= hi))[0]
                pos = self.indptr[units][None, :] + np.arange(hi)[:, None]  # (L, b)
                valid = np.arange(hi)[:, None] < lens[units][None, :]
                ids = self.indices[np.minimum(pos, len(self.indices) - 1)]
                mats.append(np.where(valid, ids, self.n_clauses))  # padding -> the -inf column
                order.append(units)
            self._fast = (np.ascontiguousarray(self.vectors.T), mats, np.concatenate(order))
        return self._fast

    def _maxsim_all(self, q: np.ndarray) -> np.ndarray:
        """:meth:`_maxsim` of every unit (the bucketed layout of the module docstring)."""
        vt, mats, order = self._buckets()
        m = len(q)
        sims = np.empty((m, self.n_clauses + 1), dtype=np.float32)
        with one_blas_thread():
            np.matmul(q, vt, out=sims[:, : self.n_clauses])
        sims[:, self.n_clauses] = -np.inf
        best = np.concatenate([np.take(sims, mat, axis=1).max(axis=1) for mat in mats], axis=1)  # (m, units)
        acc = np.zeros(best.shape[1], dtype=np.float32)
        for row in best:  # query-clause order, as in the simple formula
            acc += row
        out = np.empty_like(acc)
        out[order] = acc
        return out / m

    def _maxsim(self, q: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        """Mean over query clauses of the max similarity to each unit's clauses (all units, or ``rows``)."""
        if rows is None:
            return self._maxsim_all(q)
        rows = np.asarray(rows, dtype=np.int64)
        lens = self.indptr[rows + 1] - self.indptr[rows]
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
        # the clause ids of the selected units, concatenated without a Python loop
        offs = np.arange(int(lens.sum())) - np.repeat(starts, lens)
        flat = self.indices[np.repeat(self.indptr[rows], lens) + offs]
        needed, flat = np.unique(flat, return_inverse=True)  # score only the clauses these units hold
        with one_blas_thread():
            sims = np.ascontiguousarray((self.vectors[needed] @ q.T).T)
        out = np.zeros(len(starts), dtype=np.float32)
        for s in sims:  # one 1-D gather + segment max per query clause: far cheaper than a 2-D gather
            out += np.maximum.reduceat(s[flat], starts)
        return out / len(sims)

    def search_clauses(self, query_clauses: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``top_k`` units for one query given as clause vectors (m, dim): (scores, rows), best first."""
        q = np.asarray(query_clauses, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim or len(q) == 0:
            raise InputError(f"query clauses must be an array (m >= 1, {self.dim}); got shape {q.shape}.")
        if self.metric == "cosine":
            from medlens.retrieval._dense import check_normalized

            check_normalized(q, name="query vectors")
        if self.index.kind == "numpy":
            scores = self._maxsim(q, None)
            rows = top_rows(scores, top_k)
            return scores[rows], rows
        _, near = self.index.search(q, min(self.candidates, self.n_clauses))
        near = np.unique(near[near >= 0])
        cptr, cunits = self._clause_units()
        lens = cptr[near + 1] - cptr[near]
        offs = np.arange(int(lens.sum())) - np.repeat(np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
        cand = np.unique(cunits[np.repeat(cptr[near], lens) + offs])
        if len(cand) == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        s = self._maxsim(q, cand)
        order = top_rows(s, top_k)
        return s[order], cand[order]

    def save(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        self.index.save(folder)
        extra = {} if self.index.kind == "numpy" else {"vectors": self.vectors}
        np.savez(folder / "clauses.npz", indptr=self.indptr, indices=self.indices, **extra)  # already pruned

    def spec(self) -> dict[str, Any]:
        return {
            **self.index.spec(),
            "mode": "clauses",
            "n_clauses": self.n_clauses,
            "n_units": self.ntotal,
            "candidates": self.candidates if self.index.kind != "numpy" else None,
            "max_df": self.max_df,
        }

    @classmethod
    def load(cls, folder: str | os.PathLike, spec: dict[str, Any]) -> ClauseIndex:
        from medlens.retrieval._dense import load_dense

        folder = Path(folder)
        inner = load_dense(folder, spec)
        path = folder / "clauses.npz"
        if not path.is_file():
            raise InputError(f"{folder}: clauses.npz is missing; the index is incomplete, rebuild it.")
        with np.load(path) as z:
            vectors = inner.vectors if inner.kind == "numpy" else z["vectors"]
            return cls(
                inner, vectors, z["indptr"], z["indices"], candidates=spec.get("candidates") or CANDIDATES, max_df=None
            )
