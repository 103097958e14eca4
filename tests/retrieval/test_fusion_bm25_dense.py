"""Reciprocal rank fusion by hand, BM25, and the dense indexes (numpy vs FAISS, cosine checks, FAISS kinds)."""

from __future__ import annotations

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.retrieval import BM25Index, NumpyIndex, check_normalized, dense_index, reciprocal_rank_fusion, tokenize
from medlens.retrieval._dense import load_dense

# -- reciprocal rank fusion ---------------------------------------------------------------------------------


def test_rrf_order_and_scores_by_hand():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], rrf_k=60)
    expect = {"a": 1 / 61 + 1 / 62, "b": 1 / 62, "c": 1 / 63 + 1 / 61}
    assert [d for d, _ in fused] == ["a", "c", "b"]
    for d, s in fused:
        assert s == pytest.approx(expect[d], abs=1e-15)


def test_rrf_weights_ties_and_errors():
    # b ranks 1st in the second list only, a 1st in the first only: equal scores, tie broken by first appearance
    assert [d for d, _ in reciprocal_rank_fusion([["a"], ["b"]])] == ["a", "b"]
    assert [d for d, _ in reciprocal_rank_fusion([["a"], ["b"]], weights=[1, 2])] == ["b", "a"]
    # equal scores, different best rank: the one with a first place wins
    tie = reciprocal_rank_fusion([["x", "y"], ["z", "x"], ["y"]], rrf_k=1)
    assert tie[0][0] == "x"
    with pytest.raises(InputError, match="must be > 0"):
        reciprocal_rank_fusion([["a"]], rrf_k=0)
    with pytest.raises(InputError, match="twice"):
        reciprocal_rank_fusion([["a", "a"]])
    with pytest.raises(InputError, match="one per ranking"):
        reciprocal_rank_fusion([["a"]], weights=[1, 1])


# -- BM25 ----------------------------------------------------------------------------------------------------


def test_tokenizer_stems_plurals_and_drops_stop_words():
    assert tokenize("The Seizures of glasses, bodies; iris and virus") == ["seizure", "glass", "body", "iris", "virus"]


def test_bm25_ranks_matching_documents_only(tmp_path, corpus):
    bm = BM25Index.build(corpus.texts)
    scores, rows = bm.search("cerebellar vermis hypoplasia", top_k=10)
    hit_ids = [corpus[int(r)].id for r in rows]
    assert set(hit_ids) == {"joubert", "dandy", "rhombo"}
    assert np.all(np.diff(scores) <= 0)
    assert np.all(scores > 0)
    assert bm.search("zzzz unknown", top_k=3)[1].size == 0
    bm.save(tmp_path / "bm")
    again = BM25Index.load(tmp_path / "bm")
    np.testing.assert_allclose(again.scores("ataxia"), bm.scores("ataxia"))


# -- dense ---------------------------------------------------------------------------------------------------


def _unit(rng, n, d=32):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_numpy_and_faiss_flat_return_identical_top_k():
    pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    x, q = _unit(rng, 500), _unit(rng, 20)
    s_np, r_np = dense_index(x, "numpy").search(q, 10)
    s_fa, r_fa = dense_index(x, "faiss:Flat").search(q, 10)
    np.testing.assert_array_equal(r_np, r_fa)
    np.testing.assert_allclose(s_np, s_fa, atol=1e-5)
    # and both equal the brute-force ranking
    brute = np.argsort(-(q @ x.T), axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(r_np, brute)


def test_cosine_requires_normalised_vectors():
    rng = np.random.default_rng(1)
    raw = rng.normal(size=(10, 8)).astype(np.float32) * 3
    with pytest.raises(InputError, match="needs L2-normalised corpus vectors; 10 of 10 rows"):
        NumpyIndex(raw)
    idx = NumpyIndex(_unit(rng, 10, 8))
    with pytest.raises(InputError, match="L2-normalised query vectors"):
        idx.search(raw[:2], 3)
    ip = NumpyIndex(raw, metric="ip")  # inner product takes any vectors
    assert ip.search(raw[:1], 1)[1][0, 0] == int(np.argmax(raw @ raw[0]))
    with pytest.raises(InputError, match="corpus vectors"):
        check_normalized(np.zeros((2, 3)), name="corpus vectors")
    pytest.importorskip("faiss")
    with pytest.raises(InputError, match="L2-normalised"):
        dense_index(raw, "faiss:Flat")


def test_dense_input_errors():
    rng = np.random.default_rng(2)
    x = _unit(rng, 20, 8)
    with pytest.raises(InputError, match="dimension 4"):
        NumpyIndex(x).search(np.ones((1, 4)) / 2, 1)
    with pytest.raises(InputError, match="unknown dense index 'annoy'"):
        dense_index(x, "annoy")
    with pytest.raises(InputError, match="metric"):
        NumpyIndex(x, metric="l2")
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        NumpyIndex(bad)


def test_faiss_factories_train_and_report_errors(tmp_path):
    pytest.importorskip("faiss")
    rng = np.random.default_rng(3)
    x, q = _unit(rng, 1000, 16), _unit(rng, 50, 16)
    flat = dense_index(x, "numpy").search(q, 10)[1]
    hnsw = dense_index(x, "faiss:HNSW32,Flat")
    assert hnsw.search_params == {"efSearch": 128}
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(hnsw.search(q, 10)[1], flat, strict=True)])
    assert recall >= 0.98
    ivf = dense_index(x, "faiss:IVF16,Flat", search_params={"nprobe": 16})  # all lists probed: exact
    np.testing.assert_array_equal(ivf.search(q, 10)[1], flat)
    pq = dense_index(x, "faiss:IVF8,PQ4x4")  # 4-bit codes: 16 centroids per sub-quantizer train fast
    assert pq.search(q, 5)[1].shape == (50, 5)
    with pytest.raises(InputError, match="invalid FAISS factory string 'Bogus12'"):
        dense_index(x, "faiss:Bogus12")
    with pytest.raises(InputError, match="needs at least 64 vectors"):
        dense_index(x[:10], "faiss:IVF64,Flat")
    with pytest.raises(InputError, match="does not take parameter"):
        dense_index(x, "faiss:Flat", search_params={"efSearch": 3})
    # save / load keeps the search parameters
    hnsw.save(tmp_path)
    again = load_dense(tmp_path, hnsw.spec())
    assert again.search_params == hnsw.search_params
    np.testing.assert_array_equal(again.search(q, 10)[1], hnsw.search(q, 10)[1])
