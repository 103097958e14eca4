"""Sharded corpus embedding (Parquet) and dense indexes filled shard by shard: ``rag index --shard-size N``.

For a corpus whose vectors do not fit in one process (24M snippets × 384-d float32 is 37 GB), the corpus is
embedded into Parquet shards of ``N`` consecutive rows, then the dense index is built from the shards:

1. **Embedding** (:func:`embed_shards`): each shard's texts are sorted by length and cut into blocks of whole
   batches; the blocks of every shard still missing run on an executor (``local``, or Ray actors holding one
   model each) and a shard is written — atomically, as ``part-00007.parquet`` — as soon as its last block is
   back. A killed job leaves only complete shards, and the next run embeds the missing ones only. The blocks
   are fixed by the shard plan, so the local and Ray executors write the same vectors.
2. **Training** (:func:`dense_from_shards`): an index that needs training (IVF, PQ) is trained once, on
   ``train_size`` rows drawn uniformly without replacement (seeded) and read from the shards.
3. **Filling**: IVF indexes (``IVF…,Flat``, ``IVF…,PQ…``) are filled *in parallel*: each shard is encoded into
   its own copy of the trained empty index (on the executor: the costly step, assigning lists and PQ codes),
   and the parts are merged in shard order (``merge_from``, ids offset to the rows' global numbers). Flat and
   graph (HNSW) indexes cannot be merged that way and are filled shard by shard here, with FAISS's own
   threads. ``numpy`` (exact) reads the shards back into one matrix.

The result is the usual index folder (``dense.npy`` or ``dense.faiss``): ``rag search`` does not change. The
manifest's ``build.shards`` records the shard plan, how many shards were reused, and the dense build's times
and size in bytes (``build.dense``).

:func:`search_shards` is the exact search over shards that never holds more than one shard in memory (the
reference for the recall of an approximate index), and :func:`merge_topk` the exact merge of per-shard top-k
lists that it rests on: equal to one search over all rows, ties going to the lower row.

Shards live under ``$MEDLENS_CACHE/retrieval/shards``, keyed like the embedding cache by the texts' hash and
the embedder (and the shard size and batch size, which fix the blocks); with the cache off they go to a
temporary folder removed after the build (no resume).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._validation import InputError

__all__ = [
    "ShardStore",
    "dense_from_shards",
    "embed_shards",
    "merge_topk",
    "search_shards",
    "shard_store_for",
]

FORMAT = "medlens-embedding-shards"
FORMAT_VERSION = 1
#: training rows per IVF list when no ``train_size`` is given (FAISS warns below 39 per centroid)
TRAIN_PER_LIST = 64
#: the most rows sampled by default (1.5 GB of 384-d float32): 64 per list up to IVF15625
DEFAULT_TRAIN = 1_000_000


def _pq():
    require("pyarrow", extra="retrieval", purpose="Parquet embedding shards (--shard-size)")
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa, pq


class ShardStore:
    """A folder of Parquet shards holding rows ``[s*size, (s+1)*size)`` of an ``(n, dim)`` float32 matrix.

    ``shards.json`` records ``n``, ``dim``, ``size`` and a ``key`` (what the vectors are of); opening a folder
    whose record differs starts it again (its shards are of something else). Each ``part-SSSSS.parquet`` has
    columns ``row`` (int64) and ``vector`` (fixed-size list of float32) and is written atomically, so a shard
    file that exists is complete.
    """

    def __init__(self, folder: str | os.PathLike, *, n: int, dim: int, size: int, key: str) -> None:
        if size < 1:
            raise InputError(f"--shard-size must be >= 1; got {size}.")
        self.folder = Path(folder)
        self.n, self.dim, self.size, self.key = int(n), int(dim), int(size), str(key)
        self.record = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "key": self.key,
            "n": self.n,
            "dim": self.dim,
            "size": self.size,
        }
        from medlens.io import atomic_write_json

        path = self.folder / "shards.json"
        if path.is_file():
            try:
                same = json.loads(path.read_text()) == self.record
            except (OSError, ValueError):
                same = False
            if not same:
                shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        if not path.is_file():
            atomic_write_json(path, self.record)

    def __repr__(self) -> str:
        return f"ShardStore({str(self.folder)!r}, n={self.n}, dim={self.dim}, size={self.size})"

    def __len__(self) -> int:
        return -(-self.n // self.size)

    def rows(self, s: int) -> range:
        return range(s * self.size, min((s + 1) * self.size, self.n))

    def path(self, s: int) -> Path:
        return self.folder / f"part-{s:05d}.parquet"

    def done(self, s: int) -> bool:
        """Whether shard ``s`` is on disk with the right row count (a damaged file counts as missing)."""
        p = self.path(s)
        if not p.is_file():
            return False
        _, pq = _pq()
        try:
            return pq.read_metadata(p).num_rows == len(self.rows(s))
        except (OSError, ValueError):
            return False

    def write(self, s: int, vectors: np.ndarray) -> None:
        """Write shard ``s`` (its rows' vectors, in row order) atomically."""
        pa, pq = _pq()
        rows = self.rows(s)
        vecs = np.ascontiguousarray(vectors, dtype=np.float32)
        if vecs.shape != (len(rows), self.dim):
            raise RuntimeError(f"shard {s}: vectors of shape {vecs.shape}, expected {(len(rows), self.dim)}.")
        flat = pa.array(vecs.reshape(-1), type=pa.float32())
        table = pa.table(
            {
                "row": pa.array(np.arange(rows.start, rows.stop, dtype=np.int64)),
                "vector": pa.FixedSizeListArray.from_arrays(flat, self.dim),
            }
        )
        fd, tmp = tempfile.mkstemp(prefix=f".part-{s:05d}.", suffix=".tmp", dir=self.folder)
        os.close(fd)
        try:
            pq.write_table(table, tmp, compression="zstd")
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, self.path(s))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, s: int) -> np.ndarray:
        """Shard ``s``'s vectors, (rows, dim) float32, checked against the plan."""
        _, pq = _pq()
        table = pq.read_table(self.path(s))
        rows = table.column("row").to_numpy()
        want = self.rows(s)
        if len(rows) != len(want) or (len(rows) and (rows[0] != want.start or rows[-1] != want.stop - 1)):
            raise InputError(f"{self.path(s)}: rows {rows[:1]}..{rows[-1:]} do not match the shard plan; rebuild.")
        flat = table.column("vector").combine_chunks().flatten().to_numpy()
        return np.ascontiguousarray(flat.reshape(len(rows), self.dim), dtype=np.float32)

    def iter_shards(self) -> Iterator[tuple[int, np.ndarray]]:
        for s in range(len(self)):
            yield s, self.read(s)

    def all_vectors(self) -> np.ndarray:
        out = np.empty((self.n, self.dim), dtype=np.float32)
        for s, vecs in self.iter_shards():
            out[self.rows(s).start : self.rows(s).stop] = vecs
        return out

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of the sorted ``rows``, reading only the shards they fall in."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        shard_of = rows // self.size
        for s in np.unique(shard_of):
            sel = np.nonzero(shard_of == s)[0]
            out[sel] = self.read(int(s))[rows[sel] - int(s) * self.size]
        return out


def shard_store_for(
    texts_hash: str, embedder: Any, *, n: int, size: int, batch_size: int, use_cache: bool
) -> tuple[ShardStore, bool]:
    """The store for these texts and this embedder; and whether it is a temporary folder (cache off)."""
    key = f"{texts_hash}|{embedder.cache_key}|size={size}|batch={batch_size}"
    if use_cache:
        from medlens._cache import cache_root

        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        return ShardStore(cache_root("retrieval", "shards") / digest, n=n, dim=embedder.dim, size=size, key=key), False
    folder = tempfile.mkdtemp(prefix="medlens-shards-")
    return ShardStore(folder, n=n, dim=embedder.dim, size=size, key=key), True


def embed_shards(
    texts: Sequence[str],
    store: ShardStore,
    task: Any,
    *,
    executor: Any,
    batch_size: int,
    block: int = 256,
    progress: bool = False,
) -> dict[str, Any]:
    """Embed the shards of ``store`` that are missing (module docstring, step 1) and write each when complete.

    ``task`` is a picklable embedding task (:class:`~medlens.retrieval._distributed.EmbedTask`). Returns
    ``{"n_shards", "reused", "written", "seconds"}``.
    """
    from medlens._progress import progress_bar

    if len(texts) != store.n:
        raise RuntimeError(f"{len(texts)} texts for a shard store of {store.n} rows.")
    t0 = time.perf_counter()
    step = max(batch_size, (block // batch_size) * batch_size)
    missing = [s for s in range(len(store)) if not store.done(s)]
    blocks: list[np.ndarray] = []
    shard_of: list[int] = []
    for s in missing:
        rows = np.arange(store.rows(s).start, store.rows(s).stop)
        order = rows[np.argsort([-len(texts[i]) for i in rows], kind="stable")]
        for start in range(0, len(order), step):
            blocks.append(order[start : start + step])
            shard_of.append(s)
    left = {s: 0 for s in missing}
    for s in shard_of:
        left[s] += 1
    partial: dict[int, np.ndarray] = {}
    n_todo = sum(len(b) for b in blocks)
    with progress_bar(n_todo, progress, f"embedding {len(missing)} shards") as bar:
        for b, vecs in executor.map_blocks(task, texts, blocks):
            s = shard_of[b]
            vecs = np.asarray(vecs, dtype=np.float32)
            if vecs.shape != (len(blocks[b]), store.dim):
                raise RuntimeError(f"block {b} returned shape {vecs.shape} for {len(blocks[b])} texts.")
            if left[s] <= 0:
                raise RuntimeError(f"block {b} of shard {s} came back twice from the {executor.name} executor.")
            start = store.rows(s).start
            buf = partial.setdefault(s, np.empty((len(store.rows(s)), store.dim), dtype=np.float32))
            buf[blocks[b] - start] = vecs
            left[s] -= 1
            if left[s] == 0:
                store.write(s, partial.pop(s))
            bar(len(blocks[b]))
    if partial or any(left.values()):
        raise RuntimeError(f"the {executor.name} executor left {sum(1 for v in left.values() if v)} shards unfinished.")
    return {
        "n_shards": len(store),
        "reused": len(store) - len(missing),
        "written": len(missing),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def merge_topk(scores: Sequence[np.ndarray], rows: Sequence[np.ndarray], top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-shard results (each ``(n_queries, k_s)``, rows global, ``-1`` for an empty slot) into the top
    ``top_k``: highest score first, ties to the lower row — the order one exact search over all rows gives.

    >>> s, r = merge_topk([np.array([[0.9, 0.5]]), np.array([[0.9, 0.7]])], [np.array([[3, 1]]), np.array([[2, 8]])], 3)
    >>> r.tolist(), [round(float(x), 2) for x in s[0]]
    ([[2, 3, 8]], [0.9, 0.9, 0.7])
    """
    if not scores:
        raise ValueError("nothing to merge")
    sc = np.concatenate([np.asarray(x, dtype=np.float32) for x in scores], axis=1)
    rw = np.concatenate([np.asarray(x, dtype=np.int64) for x in rows], axis=1)
    key = np.where(rw < 0, -np.inf, sc)  # empty slots sort last
    order = np.lexsort((np.where(rw < 0, np.iinfo(np.int64).max, rw), -key), axis=1)[:, : int(top_k)]
    return np.take_along_axis(sc, order, axis=1), np.take_along_axis(rw, order, axis=1)


def search_shards(store: ShardStore, queries: np.ndarray, top_k: int, *, metric: str = "cosine") -> tuple:
    """Exact inner-product search over the shards, one shard in memory at a time; equal to
    :class:`~medlens.retrieval._dense.NumpyIndex` over all rows (scores, rows; best first, ties to the lower row)."""
    from medlens.retrieval._dense import NumpyIndex

    best_s: list[np.ndarray] = []
    best_r: list[np.ndarray] = []
    for s, vecs in store.iter_shards():
        sc, rw = NumpyIndex(vecs, metric=metric).search(queries, top_k)
        best_s.append(sc)
        best_r.append(rw + store.rows(s).start)
        if len(best_s) > 1:  # keep the running top-k only
            a, b = merge_topk(best_s, best_r, top_k)
            best_s, best_r = [a], [b]
    return merge_topk(best_s, best_r, top_k)


class FillTask:
    """A picklable task: ``task()`` deserialises the trained empty index once; ``fn([path])`` adds one shard
    file's vectors to a fresh copy and returns the filled part, serialised (uint8)."""

    def __init__(self, empty: np.ndarray, dim: int, metric: str) -> None:
        self.empty, self.dim, self.metric = empty, int(dim), str(metric)

    def __call__(self):
        require("faiss", extra="retrieval", purpose="FAISS dense indexes")
        from medlens.retrieval._dense import check_normalized, index_from_bytes, index_to_bytes

        def fill(paths: list[str]) -> np.ndarray:
            (path,) = paths
            _, pq = _pq()
            table = pq.read_table(path, columns=["vector"])
            vecs = table.column("vector").combine_chunks().flatten().to_numpy().reshape(-1, self.dim)
            vecs = np.ascontiguousarray(vecs, dtype=np.float32)
            if self.metric == "cosine":
                check_normalized(vecs, name=f"vectors of {Path(path).name}")
            part = index_from_bytes(self.empty)
            part.add(vecs)
            return index_to_bytes(part)

        return fill


def _mergeable(faiss: Any, index: Any) -> bool:
    """IVF indexes merge exactly (their lists append, ids offset); a flat index is a copy, a graph cannot merge."""
    return isinstance(index, faiss.IndexIVF)


def dense_from_shards(
    store: ShardStore,
    spec: str,
    *,
    metric: str,
    search_params: dict[str, Any] | None = None,
    train_size: int | None = None,
    seed: int = 0,
    executor: Any = None,
    progress: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Build the dense index ``spec`` (``"numpy"`` or ``"faiss:FACTORY"``) from the shards (module docstring).

    Returns the index and ``{"train_rows", "train_seconds", "fill_seconds", "fill", "bytes"}``.
    """
    from medlens._progress import progress_bar
    from medlens.executors import LocalExecutor
    from medlens.retrieval._dense import (
        FaissIndex,
        NumpyIndex,
        _factory,
        _train,
        check_dense_spec,
        index_from_bytes,
        index_to_bytes,
    )

    spec = check_dense_spec(spec, store.dim)
    t0 = time.perf_counter()
    if spec == "numpy":
        if search_params:
            raise InputError("search parameters apply to FAISS indexes only; the numpy index is exact.")
        idx = NumpyIndex(store.all_vectors(), metric=metric)
        info = {"train_rows": 0, "train_seconds": 0.0, "fill": "read"}
        info["fill_seconds"] = round(time.perf_counter() - t0, 3)
        info["bytes"] = int(idx.vectors.nbytes)
        return idx, info
    faiss = require("faiss", extra="retrieval", purpose="FAISS dense indexes")
    factory = spec[6:].strip() if ":" in spec else "Flat"
    index = _factory(faiss, store.dim, factory)
    n_train = 0
    if not index.is_trained:
        n_train = _train_rows(factory, store.n, train_size)
        rng = np.random.default_rng(seed)
        sample = store.take(np.sort(rng.choice(store.n, size=n_train, replace=False)))
        if metric == "cosine":
            from medlens.retrieval._dense import check_normalized

            check_normalized(sample, name="training vectors")
        _train(index, sample, factory)
    t_train = time.perf_counter() - t0
    t1 = time.perf_counter()
    if _mergeable(faiss, index):
        how = "parallel"
        executor = executor or LocalExecutor()
        empty = index_to_bytes(index)
        paths = [str(store.path(s)) for s in range(len(store))]
        blocks = [np.array([s]) for s in range(len(store))]
        parts: dict[int, Any] = {}
        with progress_bar(len(store), progress, "filling the index") as bar:
            for s, blob in executor.map_blocks(FillTask(empty, store.dim, metric), paths, blocks):
                if s in parts:
                    raise RuntimeError(f"shard {s} came back twice from the {executor.name} executor.")
                parts[s] = index_from_bytes(blob)
                bar(1)
        for s in range(len(store)):  # in shard order: rows keep their global numbers
            part = parts.pop(s)
            if part.ntotal != len(store.rows(s)):
                raise RuntimeError(
                    f"shard {s}: the filled part holds {part.ntotal} vectors, expected {len(store.rows(s))}."
                )
            index.merge_from(part, store.rows(s).start)
    else:
        how = "sequential"
        from medlens.retrieval._dense import check_normalized

        with progress_bar(len(store), progress, "filling the index") as bar:
            for s, vecs in store.iter_shards():
                if metric == "cosine":
                    check_normalized(vecs, name=f"vectors of shard {s}")
                index.add(vecs)
                bar(1)
    if index.ntotal != store.n:
        raise RuntimeError(f"the index holds {index.ntotal} vectors after filling, expected {store.n}.")
    out = FaissIndex(None, factory=factory, metric=metric, search_params=search_params, _index=index)
    info = {
        "train_rows": n_train,
        "train_seconds": round(t_train, 3),
        "fill": how,
        "fill_seconds": round(time.perf_counter() - t1, 3),
        "bytes": int(index_to_bytes(index).nbytes),
    }
    return out, info


def _train_rows(factory: str, n: int, train_size: int | None) -> int:
    """Rows to train on: ``train_size`` (≤ n), else max(64 per IVF list, 10,000) capped at 1,000,000 and at n
    (FAISS asks for at least 39 per list and uses at most 256)."""
    from medlens.retrieval._dense import _NLIST

    if train_size is not None:
        if train_size < 1:
            raise InputError(f"--train-size must be >= 1; got {train_size}.")
        return min(int(train_size), n)
    m = _NLIST.search(factory)
    want = max(TRAIN_PER_LIST * int(m.group(1)) if m else 0, 10_000)
    return min(want, DEFAULT_TRAIN, n)


def check_shards(shards: dict[str, Any] | None, dense_mode: str) -> dict[str, Any] | None:
    """Validate ``{"size": N, "train_size": M | None, "seed": S}`` (the options of ``--shard-size``)."""
    if not shards:
        return None
    extra = set(shards) - {"size", "train_size", "seed"}
    if extra:
        raise InputError(f"unknown shard option(s) {sorted(extra)}; expected size, train_size, seed.")
    size, train = shards.get("size"), shards.get("train_size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InputError(f"--shard-size must be an integer >= 1; got {size!r}.")
    if train is not None and (isinstance(train, bool) or not isinstance(train, int) or train < 1):
        raise InputError(f"--train-size must be an integer >= 1; got {train!r}.")
    if dense_mode != "document":
        raise InputError(
            f"--shard-size applies to --dense-mode document; clause mode ({dense_mode!r}) embeds unique clauses "
            "and is built in memory. Use --dense-mode document for a sharded build."
        )
    return {"size": size, "train_size": train, "seed": int(shards.get("seed", 0) or 0)}


def sharded_dense(
    texts: Sequence[str],
    texts_hash: str,
    embedder: Any,
    *,
    dense: str,
    metric: str,
    search_params: dict[str, Any] | None,
    shards: dict[str, Any],
    batch_size: int,
    use_cache: bool,
    progress: bool,
) -> tuple[Any, dict[str, Any]]:
    """Embed ``texts`` into shards and build the dense index from them (the whole of ``--shard-size``).

    ``embedder`` is an embedder, or an :class:`~medlens.retrieval._distributed.ExecutorEmbedder` whose executor
    then runs both the shard embedding and the parallel fill. Returns the index and the manifest's
    ``build.shards`` record.
    """
    from medlens.executors import LocalExecutor
    from medlens.retrieval._distributed import EmbedTask

    inner = getattr(embedder, "inner", embedder)
    runner = getattr(embedder, "executor", None) or LocalExecutor()
    store, temporary = shard_store_for(
        texts_hash, inner, n=len(texts), size=shards["size"], batch_size=batch_size, use_cache=use_cache
    )
    try:
        task = EmbedTask(
            inner.name,
            getattr(embedder, "kwargs", {}),
            batch_size=batch_size,
            embedder=inner if runner.name == "local" else None,
        )
        emb = embed_shards(
            texts,
            store,
            task,
            executor=runner,
            batch_size=batch_size,
            block=int(getattr(inner, "block", 256)),
            progress=progress,
        )
        idx, built = dense_from_shards(
            store,
            dense,
            metric=metric,
            search_params=search_params,
            train_size=shards["train_size"],
            seed=shards["seed"],
            executor=runner,
            progress=progress,
        )
    finally:
        if temporary:
            shutil.rmtree(store.folder, ignore_errors=True)
    info = {
        **shards,
        **emb,
        "folder": None if temporary else str(store.folder),
        "executor": runner.info(),
        "dense": built,
    }
    return idx, info
