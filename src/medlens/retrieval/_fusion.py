"""Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009).

``score(d) = Σ_r w_r / (k + rank_r(d))`` with ranks starting at 1, over the rankings ``r`` that contain
``d``; a document missing from a ranking gets nothing from it. ``k = 60`` is the value of the original
paper and our default (MedRAG uses 100). Ties are broken by the best single rank, then by first
appearance (ranking order, then position), so the output order is total and reproducible.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from medlens._validation import InputError

__all__ = ["RRF_K", "fuse_rows", "reciprocal_rank_fusion"]

RRF_K = 60


def _check_rrf(rrf_k: float, weights: Sequence[float] | None, n: int) -> Sequence[float]:
    """The RRF weights (1 each by default) after checking ``rrf_k`` and the weights against ``n`` rankings."""
    if rrf_k <= 0:
        raise InputError(f"The RRF constant k must be > 0; got {rrf_k}.")
    if weights is None:
        return [1.0] * n
    if len(weights) != n:
        raise InputError(f"got {len(weights)} RRF weights for {n} rankings; give one per ranking.")
    if any(w < 0 for w in weights):
        raise InputError(f"RRF weights must be >= 0; got {list(weights)}.")
    return weights


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Hashable]], *, rrf_k: float = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[Hashable, float]]:
    """Fuse ranked lists of ids (best first) into one list of ``(id, score)``, best first.

    Parameters
    ----------
    rankings : sequence of sequences
        Each a ranking without repeats, best first.
    rrf_k : float
        The RRF constant (> 0); larger values flatten the contribution of top ranks.
    weights : sequence of float, optional
        One non-negative weight per ranking (default all 1).

    Examples
    --------
    ``b`` gets 1/(1+2) + 1/(1+1), ``c`` gets 1/(1+3) + 1/(1+2), ``a`` only 1/(1+1):

    >>> [(d, round(s, 4)) for d, s in reciprocal_rank_fusion([["a", "b", "c"], ["b", "c"]], rrf_k=1)]
    [('b', 0.8333), ('c', 0.5833), ('a', 0.5)]
    """
    weights = _check_rrf(rrf_k, weights, len(rankings))
    score: dict[Hashable, float] = {}
    best: dict[Hashable, int] = {}
    first: dict[Hashable, tuple[int, int]] = {}
    for r, (ranking, w) in enumerate(zip(rankings, weights, strict=True)):
        seen = set()
        for pos, doc in enumerate(ranking):
            if doc in seen:
                raise InputError(f"ranking {r} lists {doc!r} twice; each ranking must list an id once.")
            seen.add(doc)
            rank = pos + 1
            score[doc] = score.get(doc, 0.0) + w / (rrf_k + rank)
            best[doc] = min(best.get(doc, rank), rank)
            first.setdefault(doc, (r, pos))
    order = sorted(score, key=lambda d: (-score[d], best[d], first[d]))
    return [(d, score[d]) for d in order]


def fuse_rows(
    rankings: Sequence[np.ndarray],
    *,
    rrf_k: float = RRF_K,
    weights: Sequence[float] | None = None,
    top: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`reciprocal_rank_fusion` of rankings of integer rows, vectorised: ``(rows, scores)``, best first.

    Same scores (the same float additions in the same order) and the same tie-breaks as
    :func:`reciprocal_rank_fusion`; ``top`` keeps only the best ``top``. Rankings must not repeat a row.

    >>> rows, scores = fuse_rows([np.array([5, 7, 9]), np.array([7, 9])], rrf_k=1)
    >>> rows.tolist(), [round(float(s), 4) for s in scores]
    ([7, 9, 5], [0.8333, 0.5833, 0.5])
    """
    weights = _check_rrf(rrf_k, weights, len(rankings))
    rankings = [np.asarray(r, dtype=np.int64).ravel() for r in rankings]
    if not any(len(r) for r in rankings):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    for i, r in enumerate(rankings):
        if len(np.unique(r)) != len(r):
            raise InputError(f"ranking {i} lists a row twice; each ranking must list a row once.")
    allrows = np.concatenate(rankings)
    uniq, first_pos = np.unique(allrows, return_index=True)  # first_pos: first appearance (ranking, position)
    score = np.zeros(len(uniq), dtype=np.float64)
    best = np.full(len(uniq), np.iinfo(np.int64).max, dtype=np.int64)
    for r, w in zip(rankings, weights, strict=True):  # ranking order: the float additions of the dict version
        at = np.searchsorted(uniq, r)
        ranks = np.arange(1, len(r) + 1, dtype=np.int64)
        score[at] += w / (rrf_k + ranks.astype(np.float64))
        best[at] = np.minimum(best[at], ranks)
    order = np.lexsort((first_pos, best, -score))
    if top is not None:
        order = order[: max(0, int(top))]
    return uniq[order], score[order]
