"""The index folder: build, search (bm25 / dense / fused), save and load round trip, atomic writes, caching."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.retrieval import HashingEmbedder, RetrievalIndex, load_index, reciprocal_rank_fusion


@pytest.fixture
def index(corpus):
    return RetrievalIndex.build(corpus, embedder=HashingEmbedder(64))


def test_three_retrievers(index):
    q = "cerebellar vermis hypoplasia with a molar tooth sign"
    bm = index.search(q, top_k=6, retriever="bm25")
    dn = index.search(q, top_k=6, retriever="dense")
    fu = index.search(q, top_k=6)
    assert bm[0].id == "joubert"
    assert fu[0].id == "joubert"
    assert [h.rank for h in fu] == list(range(1, len(fu) + 1))
    # the fused list is RRF of the two lists, by hand
    expect = reciprocal_rank_fusion([[h.id for h in bm], [h.id for h in dn]], rrf_k=60)
    assert [(h.id, pytest.approx(h.score)) for h in fu] == [(d, pytest.approx(s)) for d, s in expect[:6]]
    assert fu[0].ranks == {"bm25": 1, "dense": dn[[h.id for h in dn].index("joubert")].rank}
    d = fu[0].to_dict()
    assert {"id", "score", "title", "rank"} <= set(d)
    assert d["diagnosis"] == "Joubert syndrome"


def test_search_arguments_are_checked(index):
    with pytest.raises(InputError, match="retriever"):
        index.search("x", retriever="hybrid")
    with pytest.raises(InputError, match="top_k must be an integer >= 1"):
        index.search("x", top_k=0)
    with pytest.raises(InputError, match="empty"):
        index.search("   ")


def test_query_vector_skips_encoding(index):
    vec = index.embedder.embed(["ataxia"])[0]
    assert [h.id for h in index.search("ataxia", top_k=3, retriever="dense", query_vector=vec)] == [
        h.id for h in index.search("ataxia", top_k=3, retriever="dense")
    ]


def test_save_load_round_trip(tmp_path, index):
    out = index.save(tmp_path / "idx")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["bm25", "dense.npy", "documents.jsonl", "manifest.json"]
    m = json.loads((out / "manifest.json").read_text())
    assert m["format"] == "medlens-retrieval-index"
    assert m["corpus"]["sha256"] == index.units.content_hash()
    assert m["embedder"]["model_id"] == "medlens/hashing-64"
    assert m["dense"]["kind"] == "numpy"
    assert m["fusion"] == {"method": "rrf", "k": 60, "depth": 100}
    assert {"medlens", "numpy", "bm25s"} <= set(m["versions"])
    again = load_index(out)
    for r in ("fused", "bm25", "dense"):
        a = [(h.id, round(h.score, 6)) for h in index.search("seizures and cortical tubers", top_k=4, retriever=r)]
        b = [(h.id, round(h.score, 6)) for h in again.search("seizures and cortical tubers", top_k=4, retriever=r)]
        assert a == b


def test_faiss_index_round_trip(tmp_path, corpus):
    pytest.importorskip("faiss")
    idx = RetrievalIndex.build(corpus, embedder=HashingEmbedder(64), dense="faiss:Flat")
    idx.save(tmp_path / "f")
    assert (tmp_path / "f" / "dense.faiss").is_file()
    again = load_index(tmp_path / "f")
    assert [h.id for h in again.search("aortic root", top_k=3)] == [h.id for h in idx.search("aortic root", top_k=3)]
    num = RetrievalIndex.build(corpus, embedder=HashingEmbedder(64))
    fa = again.search("aortic root", top_k=6, retriever="dense")
    nu = num.search("aortic root", top_k=6, retriever="dense")
    assert fa[0].id == nu[0].id == "marfan"  # lower scores tie at 0 (no shared word), in either order
    np.testing.assert_allclose([h.score for h in fa], [h.score for h in nu], atol=1e-6)


def test_save_is_atomic_and_refuses_to_clobber(tmp_path, index, corpus, monkeypatch):
    out = tmp_path / "idx"
    index.save(out)
    before = (out / "manifest.json").read_text()
    with pytest.raises(InputError, match="already exists"):
        index.save(out)
    # a failure while writing leaves the old index untouched and no temporary folder behind
    other = RetrievalIndex.build(corpus, embedder=HashingEmbedder(32))

    def boom(folder):
        raise OSError("disk full")

    monkeypatch.setattr(other.dense, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        other.save(out, overwrite=True)
    assert (out / "manifest.json").read_text() == before
    assert sorted(os.listdir(tmp_path)) == ["cache", "idx", "toy.jsonl"]
    assert load_index(out).manifest["embedder"]["dim"] == 64
    monkeypatch.undo()
    other.save(out, overwrite=True)
    assert load_index(out).manifest["embedder"]["dim"] == 32
    assert sorted(os.listdir(tmp_path)) == ["cache", "idx", "toy.jsonl"]
    # a folder that is not an index is never replaced
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a medlens index"):
        index.save(tmp_path / "mine", overwrite=True)


def test_load_errors(tmp_path, index):
    with pytest.raises(InputError, match="does not exist"):
        load_index(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no manifest.json"):
        load_index(tmp_path / "empty")
    out = index.save(tmp_path / "idx")
    (out / "dense.npy").unlink()
    with pytest.raises(InputError, match="files missing"):
        load_index(out)


def test_query_embedder_must_match(tmp_path, index):
    out = index.save(tmp_path / "idx")
    with pytest.raises(InputError, match="query with the same model"):
        load_index(out, embedder=HashingEmbedder(32))


def test_embeddings_are_cached_by_corpus_and_model(corpus, counting_embedder):
    a = RetrievalIndex.build(corpus, embedder=counting_embedder)
    assert counting_embedder.calls == len(corpus)
    assert a.manifest["build"]["embedding_cache"]["cache"] == "miss"
    b = RetrievalIndex.build(corpus, embedder=counting_embedder)
    assert counting_embedder.calls == len(corpus)
    assert b.manifest["build"]["embedding_cache"]["cache"] == "hit"
    np.testing.assert_array_equal(a.dense.vectors, b.dense.vectors)
    RetrievalIndex.build(corpus, embedder=counting_embedder, use_cache=False)
    assert counting_embedder.calls == 2 * len(corpus)


def test_chunked_index_reports_parents(corpus):
    idx = RetrievalIndex.build(corpus, embedder=HashingEmbedder(64), chunking={"size": 6, "overlap": 2})
    assert len(idx) > len(corpus)
    hits = idx.search("hypomelanotic macules", top_k=3, retriever="bm25")
    assert hits[0].parent == "tsc"
    assert hits[0].id.startswith("tsc#")
    assert hits[0].to_dict()["parent"] == "tsc"
    with pytest.raises(InputError, match="unknown chunking option"):
        RetrievalIndex.build(corpus, embedder=HashingEmbedder(8), chunking={"size": 5, "step": 2})


def test_hashing_embedder():
    e = HashingEmbedder(16)
    v = e.embed(["", "ataxia"])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-6)
    with pytest.raises(InputError):
        HashingEmbedder(1)


def test_clause_mode_scores_by_maxsim_by_hand(corpus, tmp_path):
    from medlens.retrieval._clauses import split_clauses

    emb = HashingEmbedder(128)
    idx = RetrievalIndex.build(corpus, embedder=emb, dense_mode="clauses")
    assert idx.dense_mode == "clauses"
    assert idx.manifest["embedding"]["mode"] == "clauses"
    q = "hypotonia, ataxia and a molar tooth sign"
    hits = idx.search(q, top_k=6, retriever="dense")
    qv = emb.embed(split_clauses(q))
    expect = {}
    for d in corpus:
        dv = emb.embed(split_clauses(d.text))
        expect[d.id] = float((qv @ dv.T).max(axis=1).mean())
    assert hits[0].id == "joubert"
    for h in hits:
        assert h.score == pytest.approx(expect[h.id], abs=1e-5)
    # unique clauses are embedded once
    n_unique = len({c for d in corpus for c in split_clauses(d.text)})
    assert idx.manifest["embedding"]["n_texts"] == n_unique
    again = load_index(idx.save(tmp_path / "c"))
    assert [(h.id, round(h.score, 5)) for h in again.search(q, top_k=6)] == [
        (h.id, round(h.score, 5)) for h in idx.search(q, top_k=6)
    ]


def test_clause_mode_numpy_and_faiss_flat_agree(corpus, tmp_path):
    pytest.importorskip("faiss")
    a = RetrievalIndex.build(corpus, embedder=HashingEmbedder(128), dense_mode="clauses")
    b = RetrievalIndex.build(corpus, embedder=HashingEmbedder(128), dense_mode="clauses", dense="faiss:Flat")
    for q in ("cerebellar vermis hypoplasia", "seizures and cortical tubers", "aortic root, tall stature"):
        ha, hb = a.search(q, top_k=3, retriever="dense"), b.search(q, top_k=3, retriever="dense")
        assert [h.id for h in ha] == [h.id for h in hb]
        np.testing.assert_allclose([h.score for h in ha], [h.score for h in hb], atol=1e-5)
    again = load_index(b.save(tmp_path / "f"))
    assert (tmp_path / "f" / "clauses.npz").is_file()
    assert (tmp_path / "f" / "dense.faiss").is_file()
    assert [h.id for h in again.search("tubers", top_k=2)] == [h.id for h in b.search("tubers", top_k=2)]


def test_unwritable_cache_does_not_fail_the_build(corpus, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("MEDLENS_CACHE", str(blocker))
    idx = RetrievalIndex.build(corpus, embedder=HashingEmbedder(16))
    assert idx.manifest["build"]["embedding_cache"]["cache"] == "unwritable"
