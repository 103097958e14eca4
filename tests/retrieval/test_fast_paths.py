"""The fast search paths agree with simple reference implementations (clause MaxSim, RRF over rows)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medlens._validation import InputError
from medlens.retrieval import reciprocal_rank_fusion
from medlens.retrieval._clauses import ClauseIndex, bucket_plan
from medlens.retrieval._dense import NumpyIndex
from medlens.retrieval._fusion import fuse_rows


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _toy_clause_index(seed: int, n_units: int = 150, n_clauses: int = 90, dim: int = 24):
    rng = np.random.default_rng(seed)
    vecs = _unit(rng.normal(size=(n_clauses, dim)))
    lists = [rng.choice(n_clauses, size=int(rng.integers(1, 40)), replace=False) for _ in range(n_units)]
    indptr = np.concatenate([[0], np.cumsum([len(x) for x in lists])])
    return ClauseIndex(NumpyIndex(vecs), vecs, indptr, np.concatenate(lists), max_df=None), vecs, lists


def _reference_scores(q: np.ndarray, vecs: np.ndarray, lists: list[np.ndarray]) -> np.ndarray:
    """The definition, one unit at a time in float64: mean over query clauses of the best clause similarity."""
    q64, v64 = q.astype(np.float64), vecs.astype(np.float64)
    return np.array([np.mean([max(float(qc @ v64[c]) for c in cl) for qc in q64]) for cl in lists])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clause_maxsim_fast_path_equals_the_reference(seed):
    idx, vecs, lists = _toy_clause_index(seed)
    rng = np.random.default_rng(100 + seed)
    for m in (1, 3, 9):
        q = _unit(rng.normal(size=(m, vecs.shape[1])))
        ref = _reference_scores(q, vecs, lists)
        np.testing.assert_allclose(idx._maxsim_all(q), ref, atol=1e-6)
        scores, rows = idx.search_clauses(q, 20)
        expect = np.lexsort((np.arange(len(ref)), -ref))[:20]  # best first, ties to the lower row
        assert rows.tolist() == expect.tolist()
        np.testing.assert_allclose(scores, ref[expect], atol=1e-6)
        # the subset path (used behind FAISS) scores the same units the same way
        some = np.array([3, 17, 42, 99])
        np.testing.assert_allclose(idx._maxsim(q, some), ref[some], atol=1e-6)


def test_clause_maxsim_keeps_exact_ties():
    """Units whose best clauses are the same get the same score, and ties go to the lower row."""
    vecs = _unit(np.eye(4, dtype=np.float32) + 0.1)
    lists = [np.array([0, 1]), np.array([2]), np.array([1, 0, 3]), np.array([0])]
    indptr = np.concatenate([[0], np.cumsum([len(x) for x in lists])])
    idx = ClauseIndex(NumpyIndex(vecs), vecs, indptr, np.concatenate(lists), max_df=None)
    q = vecs[[0, 1]]
    scores, rows = idx.search_clauses(q, 4)
    assert rows.tolist()[:2] == [0, 2]
    assert scores[0] == scores[1]


def test_bucket_plan_covers_every_count_once():
    lens = np.array([1, 1, 2, 3, 3, 3, 7, 8, 30, 31, 31])
    for overhead in (0, 5, 1000):
        plan = bucket_plan(lens, overhead=overhead)
        covered = [v for lo, hi in plan for v in np.unique(lens) if lo <= v <= hi]
        assert sorted(covered) == sorted(np.unique(lens).tolist())
        assert all(lo <= hi for lo, hi in plan)
    assert len(bucket_plan(lens, overhead=0)) == len(np.unique(lens))  # no padding when buckets are free
    assert bucket_plan(lens, overhead=10**9) == [(1, 31)]


rankings_strategy = st.lists(st.lists(st.integers(0, 30), unique=True, max_size=25), min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(rankings_strategy, st.sampled_from([1, 2.5, 60]), st.data())
def test_fuse_rows_equals_reciprocal_rank_fusion(rankings, k, data):
    weights = data.draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0]), min_size=len(rankings), max_size=len(rankings)))
    ref = reciprocal_rank_fusion(rankings, rrf_k=k, weights=weights)
    rows, scores = fuse_rows([np.array(r, dtype=np.int64) for r in rankings], rrf_k=k, weights=weights)
    assert rows.tolist() == [d for d, _ in ref]
    assert scores.tolist() == [s for _, s in ref]  # the same float additions, so exactly equal
    top_rows, _ = fuse_rows([np.array(r, dtype=np.int64) for r in rankings], rrf_k=k, weights=weights, top=3)
    assert top_rows.tolist() == [d for d, _ in ref][:3]


def test_fuse_rows_errors():
    with pytest.raises(InputError, match="twice"):
        fuse_rows([np.array([1, 1])])
    with pytest.raises(InputError, match="k must be > 0"):
        fuse_rows([np.array([1])], rrf_k=0)
    assert fuse_rows([np.array([], dtype=np.int64)])[0].tolist() == []
