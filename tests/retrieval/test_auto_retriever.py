"""Retriever ``auto`` (the default): fused on a user corpus, the benchmark's best (ontology) on an hpo index."""

from __future__ import annotations

import pytest

from medlens._validation import InputError
from medlens.retrieval import HPO_DEFAULT_RETRIEVER, RETRIEVERS, HashingEmbedder, RetrievalIndex


@pytest.fixture
def index(corpus):
    return RetrievalIndex.build(corpus, embedder=HashingEmbedder(64))


def test_auto_is_the_default_and_means_fused_on_a_user_corpus(index):
    assert RETRIEVERS[0] == "auto"
    assert index.resolve_retriever() == "fused"
    assert index.resolve_retriever("bm25") == "bm25"
    q = "cerebellar vermis hypoplasia with a molar tooth sign"
    assert index.search(q, top_k=4) == index.search(q, top_k=4, retriever="fused")
    assert index.search(q, top_k=4, retriever="auto") == index.search(q, top_k=4, retriever="fused")
    with pytest.raises(InputError, match="retriever"):
        index.resolve_retriever("best")


def test_auto_means_the_hpo_default_on_an_hpo_index(index):
    index.manifest["corpus"]["name"] = "hpo"
    assert index.resolve_retriever("auto") == HPO_DEFAULT_RETRIEVER == "ontology"
    assert index.resolve_retriever("fused") == "fused"
