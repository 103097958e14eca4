"""Sharded embedding (Parquet) and dense indexes built from shards: resume, exact merges, parallel fill.

Everything here uses the hashing embedder (deterministic, no model), so a sharded build must give *exactly* the
vectors of an in-memory build; the FAISS parts check that an IVF index filled shard by shard and merged is the
very index one sequential ``add`` gives (serialised bytes equal).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("pyarrow")

from medlens._validation import InputError  # noqa: E402
from medlens.executors import LocalExecutor  # noqa: E402
from medlens.retrieval import Corpus, Document, HashingEmbedder, RetrievalIndex  # noqa: E402
from medlens.retrieval._dense import NumpyIndex, index_from_bytes, index_to_bytes  # noqa: E402
from medlens.retrieval._distributed import EmbedTask  # noqa: E402
from medlens.retrieval._shards import (  # noqa: E402
    ShardStore,
    dense_from_shards,
    embed_shards,
    merge_topk,
    search_shards,
)

WORDS = [
    "effusion",
    "cardiomegaly",
    "pneumothorax",
    "edema",
    "atelectasis",
    "nodule",
    "mass",
    "opacity",
    "fracture",
    "hernia",
]


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"{i} " + " ".join(rng.choice(WORDS, size=int(rng.integers(1, 9)))) for i in range(n)]


def _corpus(n: int) -> Corpus:
    return Corpus([Document(f"d{i}", f"t{i}", t) for i, t in enumerate(_texts(n))], name="toy")


def _store(tmp_path, n: int, size: int, dim: int = 32) -> ShardStore:
    return ShardStore(tmp_path / "shards", n=n, dim=dim, size=size, key="k")


def _embed(store: ShardStore, texts, executor=None, **kw):
    task = EmbedTask("hashing:32", {}, batch_size=4, embedder=HashingEmbedder(32))
    return embed_shards(texts, store, task, executor=executor or LocalExecutor(), batch_size=4, block=8, **kw)


def test_store_round_trip_and_layout(tmp_path):
    store = _store(tmp_path, n=10, size=4)
    assert len(store) == 3
    assert list(store.rows(2)) == [8, 9]
    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    store = ShardStore(tmp_path / "s4", n=10, dim=4, size=4, key="k")
    for s in range(3):
        assert not store.done(s)
        store.write(s, x[store.rows(s).start : store.rows(s).stop])
        assert store.done(s)
    np.testing.assert_array_equal(store.all_vectors(), x)
    np.testing.assert_array_equal(store.take(np.array([1, 5, 9])), x[[1, 5, 9]])
    names = sorted(p.name for p in store.folder.iterdir())
    assert names == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet", "shards.json"]  # no temp
    assert json.loads((store.folder / "shards.json").read_text())["size"] == 4
    with pytest.raises(RuntimeError, match="shape"):
        store.write(0, x[:3])


def test_a_damaged_shard_counts_as_missing_and_another_record_starts_again(tmp_path):
    store = ShardStore(tmp_path / "s", n=6, dim=2, size=3, key="k")
    store.write(0, np.ones((3, 2), np.float32))
    store.path(0).write_bytes(b"not parquet")
    assert not store.done(0)
    store.write(0, np.ones((3, 2), np.float32))
    again = ShardStore(tmp_path / "s", n=6, dim=2, size=3, key="other")  # the shards are of something else
    assert not again.done(0)
    with pytest.raises(InputError, match="--shard-size"):
        ShardStore(tmp_path / "z", n=6, dim=2, size=0, key="k")


def test_embed_shards_equals_embed_and_writes_every_shard(tmp_path):
    texts = _texts(50)
    store = _store(tmp_path, n=50, size=12)
    info = _embed(store, texts)
    assert info | {"seconds": 0} == {"n_shards": 5, "reused": 0, "written": 5, "seconds": 0}
    np.testing.assert_array_equal(store.all_vectors(), HashingEmbedder(32).embed(texts))


class _Killed(Exception):
    pass


class _DiesAfter:
    """The local executor, killed (an exception out of the stream) after ``k`` blocks."""

    name = "local"

    def __init__(self, k: int) -> None:
        self.k = k

    def map_blocks(self, task, items, blocks):
        for i, out in enumerate(LocalExecutor().map_blocks(task, items, blocks)):
            if i == self.k:
                raise _Killed
            yield out


def test_a_killed_job_resumes_with_the_shards_it_wrote(tmp_path):
    """5 shards of 12 texts, blocks of 8 (2 per shard): killed after 5 blocks, 2 shards are complete on disk (the
    third is half done and not written); the rerun embeds only the 3 missing ones and leaves the others alone."""
    texts = _texts(50)
    store = _store(tmp_path, n=50, size=12)
    with pytest.raises(_Killed):
        _embed(store, texts, executor=_DiesAfter(5))
    assert [store.done(s) for s in range(5)] == [True, True, False, False, False]
    stamps = {s: store.path(s).stat().st_mtime_ns for s in (0, 1)}
    info = _embed(ShardStore(store.folder, n=50, dim=32, size=12, key="k"), texts)
    assert (info["reused"], info["written"]) == (2, 3)
    assert {s: store.path(s).stat().st_mtime_ns for s in (0, 1)} == stamps
    np.testing.assert_array_equal(store.all_vectors(), HashingEmbedder(32).embed(texts))


def test_embed_shards_refuses_a_block_twice(tmp_path):
    class Twice(LocalExecutor):
        def map_blocks(self, task, items, blocks):
            for out in super().map_blocks(task, items, blocks):
                yield out
                yield out

    with pytest.raises(RuntimeError, match="twice"):
        _embed(_store(tmp_path, n=20, size=20), _texts(20), executor=Twice())


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    size=st.integers(1, 15),
    k=st.integers(1, 12),
    levels=st.integers(1, 4),
    seed=st.integers(0, 10_000),
)
def test_search_over_shards_equals_one_exact_search(n, size, k, levels, seed):
    """Per-shard top-k merged (with many ties: scores on a coarse grid) = NumpyIndex over all rows, ties to the
    lower row, whatever the shard size."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, levels, size=(n, 3)).astype(np.float32)
    q = rng.integers(0, levels, size=(4, 3)).astype(np.float32)
    want_s, want_r = NumpyIndex(x, metric="ip").search(q, k)
    parts_s, parts_r = [], []
    for start in range(0, n, size):
        sc, rw = NumpyIndex(x[start : start + size], metric="ip").search(q, k)
        parts_s.append(sc)
        parts_r.append(rw + start)
    got_s, got_r = merge_topk(parts_s, parts_r, k)
    np.testing.assert_array_equal(got_r, want_r)
    np.testing.assert_array_equal(got_s, want_s)


def test_search_shards_streams_the_store(tmp_path):
    texts = _texts(37)
    store = _store(tmp_path, n=37, size=10)
    _embed(store, texts)
    q = HashingEmbedder(32).embed(["effusion and edema", "nodule", "fracture of the rib"])
    want = NumpyIndex(HashingEmbedder(32).embed(texts)).search(q, 7)
    got = search_shards(store, q, 7)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], rtol=0, atol=0)


def test_merge_topk_puts_empty_slots_last():
    s, r = merge_topk([np.array([[0.5, -1.0]]), np.array([[0.7]])], [np.array([[4, -1]]), np.array([[9]])], 3)
    assert r.tolist() == [[9, 4, -1]]


def test_a_sharded_numpy_index_is_the_in_memory_index(corpus):
    a = RetrievalIndex.build(corpus, embedder=HashingEmbedder(64), use_cache=False)
    b = RetrievalIndex.build(corpus, embedder=HashingEmbedder(64), shards={"size": 4})
    np.testing.assert_array_equal(a.dense.vectors, b.dense.vectors)
    sh = b.manifest["build"]["shards"]
    assert (sh["n_shards"], sh["written"], sh["dense"]["fill"]) == (2, 2, "read")
    assert b.manifest["request"]["shards"] == {"size": 4, "train_size": None, "seed": 0}
    assert "shards" not in a.manifest["request"]  # unsharded requests hash as before
    for query in ("cerebellar vermis hypoplasia", "tall stature"):
        assert [h.id for h in a.search(query, top_k=3)] == [h.id for h in b.search(query, top_k=3)]
    c = RetrievalIndex.build(corpus, embedder=HashingEmbedder(64), shards={"size": 4})  # the shards are reused
    assert c.manifest["build"]["shards"]["reused"] == 2


def test_shards_without_the_cache_use_a_temporary_folder(corpus):
    b = RetrievalIndex.build(corpus, embedder=HashingEmbedder(64), shards={"size": 4}, use_cache=False)
    assert b.manifest["build"]["shards"]["folder"] is None
    assert b.manifest["build"]["embedding_cache"]["cache"] == "off"


@pytest.mark.parametrize("factory", ["IVF8,Flat", "IVF8,PQ8"])
def test_an_ivf_index_filled_in_parallel_is_the_sequential_index(tmp_path, factory):
    """Each shard encoded into its own copy of the trained index, merged in shard order: byte for byte the index
    that trains on the same sample and adds every row at once."""
    import faiss

    texts = _texts(400)
    store = _store(tmp_path, n=400, size=64)
    _embed(store, texts)
    idx, info = dense_from_shards(store, f"faiss:{factory}", metric="cosine", train_size=320, seed=3)
    assert (info["fill"], info["train_rows"], idx.ntotal) == ("parallel", 320, 400)
    x = store.all_vectors()
    ref = faiss.index_factory(32, factory, faiss.METRIC_INNER_PRODUCT)
    if hasattr(ref, "do_polysemous_training"):
        ref.do_polysemous_training = False
    ref.train(x[np.sort(np.random.default_rng(3).choice(400, size=320, replace=False))])
    ref.add(x)
    ref.nprobe = idx.index.nprobe  # a search parameter the index carries (medlens sets min(nlist, 16))
    assert index_to_bytes(idx.index).tobytes() == index_to_bytes(ref).tobytes()
    assert info["bytes"] == index_to_bytes(ref).nbytes


@pytest.mark.parametrize("factory", ["Flat", "HNSW8,Flat"])
def test_flat_and_graph_indexes_are_filled_shard_by_shard(tmp_path, factory):
    texts = _texts(90)
    store = _store(tmp_path, n=90, size=25)
    _embed(store, texts)
    idx, info = dense_from_shards(store, f"faiss:{factory}", metric="cosine")
    assert (info["fill"], info["train_rows"], idx.ntotal) == ("sequential", 0, 90)
    q = HashingEmbedder(32).embed(["effusion", "nodule and mass"])
    if factory == "Flat":  # exact: the same scores as the exact search over shards
        np.testing.assert_allclose(idx.search(q, 5)[0], search_shards(store, q, 5)[0], atol=1e-6)


def test_default_training_sample():
    from medlens.retrieval._shards import _train_rows

    assert _train_rows("IVF4096,PQ48", 24_000_000, None) == 262_144
    assert _train_rows("IVF65536,PQ48", 24_000_000, None) == 1_000_000
    assert _train_rows("IVF256,Flat", 24_000_000, None) == 16_384
    assert _train_rows("IVF16,Flat", 5_000, None) == 5_000
    assert _train_rows("IVF16,Flat", 5_000, 700) == 700


def test_bad_shard_options(corpus):
    with pytest.raises(InputError, match="document"):
        RetrievalIndex.build(corpus, embedder=HashingEmbedder(64), dense_mode="clauses", shards={"size": 4})
    with pytest.raises(InputError, match="shard-size"):
        RetrievalIndex.build(corpus, embedder=HashingEmbedder(64), shards={"size": 0})
    with pytest.raises(InputError, match="train-size"):
        RetrievalIndex.build(corpus, embedder=HashingEmbedder(64), shards={"size": 2, "train_size": -1})
    with pytest.raises(InputError, match="unknown shard option"):
        RetrievalIndex.build(corpus, embedder=HashingEmbedder(64), shards={"size": 2, "nodes": 3})
    with pytest.raises(InputError, match="IVF"):
        RetrievalIndex.build(
            corpus, embedder=HashingEmbedder(64), dense="faiss:IVF64,Flat", shards={"size": 2, "train_size": 6}
        )


def test_rag_index_cli_shards(corpus_file, tmp_path, capsys):
    from medlens.cli import main

    def run(*args):
        capsys.readouterr()
        rc = main(["rag", "index", "--corpus", str(corpus_file), "--encoder", "hashing:64", *map(str, args)])
        out = capsys.readouterr()
        return rc, " ".join((out.out + out.err).split())

    rc, out = run("--out", tmp_path / "i", "--shard-size", 4, "--dense", "faiss:Flat")
    assert rc == 0, out
    assert "shards: 2 of 4 texts (0 reused, 2 embedded" in out
    rc, out = run("--out", tmp_path / "j", "--train-size", 5)
    assert rc == 2
    assert "give --shard-size too" in out
    rc, out = run("--out", tmp_path / "k", "--shard-size", 3, "--dense-mode", "clauses")
    assert rc == 2
    assert "--dense-mode document" in out


def test_index_bytes_round_trip_with_simpleitk_loaded():
    """faiss.serialize_index fails once SimpleITK is imported (their std::vector<uint8_t> SWIG types collide);
    the callback writer and reader do not."""
    pytest.importorskip("SimpleITK")
    import faiss
    import SimpleITK  # noqa: F401

    index = faiss.IndexFlatIP(4)
    index.add(np.eye(4, dtype=np.float32))
    data = index_to_bytes(index)
    assert data.dtype == np.uint8
    back = index_from_bytes(data)
    assert back.ntotal == 4
    np.testing.assert_array_equal(index_to_bytes(back), data)
