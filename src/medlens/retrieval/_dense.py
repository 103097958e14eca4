"""Dense vector indexes: exact numpy inner product (default) or FAISS by factory string.

Similarity is the inner product. ``metric="cosine"`` (the default) *requires* L2-normalised corpus and query
vectors and checks them (a unit-norm mismatch is a common silent bug: inner products of unnormalised vectors
rank long vectors first); ``metric="ip"`` takes any vectors.

FAISS indexes are built with ``faiss.index_factory(dim, factory, METRIC_INNER_PRODUCT)``: ``"Flat"`` (exact),
``"HNSW32,Flat"`` (graph, no training), ``"IVF256,Flat"`` or ``"IVF256,PQ32"`` (trained on the corpus vectors
when the index needs training). Search-time parameters default to ``efSearch=128`` for HNSW and
``nprobe=min(nlist, 16)`` for IVF and can be overridden with ``search_params``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from medlens._optional import require
from medlens._validation import InputError, check_option
from medlens.retrieval._bm25 import top_rows

__all__ = ["DenseIndex", "FaissIndex", "NumpyIndex", "check_normalized", "dense_index", "load_dense"]

NORM_TOL = 1e-3
METRICS = ("cosine", "ip")


_CONTROLLER: Any = None


def one_blas_thread() -> Any:
    """A context that runs numpy's BLAS on one thread, for products that alternate with torch encoding: after a
    product OpenBLAS's threads spin for a while and take the cores from torch's threads. The query matmuls here
    are memory-bound, and the spinning slowed the query encoder ~3x on a 2-core machine (measured); concept
    recognition (:mod:`medlens.retrieval._concepts`) took ~145 ms a case back to back with its span-label product
    on 2 BLAS threads and ~80 ms on one (``perf/rare_hpo_latency.py``)."""
    global _CONTROLLER
    try:
        if _CONTROLLER is None:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
        return _CONTROLLER.limit(limits=1, user_api="blas")
    except ImportError:  # pragma: no cover - threadpoolctl is a core dependency
        import contextlib

        return contextlib.nullcontext()


def check_normalized(x: np.ndarray, *, name: str, tol: float = NORM_TOL) -> np.ndarray:
    """Raise unless every row of ``x`` has L2 norm 1 ± ``tol`` (what cosine similarity by inner product needs).

    >>> check_normalized(np.array([[0.6, 0.8]], dtype=np.float32), name="v").shape
    (1, 2)
    >>> check_normalized(np.array([[3.0, 4.0]]), name="corpus vectors")
    Traceback (most recent call last):
    ...
    medlens._validation.InputError: metric='cosine' needs L2-normalised corpus vectors; 1 of 1 rows have a norm outside 1 ± 0.001 (norms 5 to 5). Normalise them (x / ||x||, or an embedder with normalize=True) or use metric='ip'.
    """
    if x.size == 0:
        return x
    norms = np.linalg.norm(x.astype(np.float64, copy=False), axis=1)
    bad = np.abs(norms - 1.0) > tol
    if bad.any():
        raise InputError(
            f"metric='cosine' needs L2-normalised {name}; {int(bad.sum())} of {len(norms)} rows have a norm outside "
            f"1 ± {tol:g} (norms {norms.min():.4g} to {norms.max():.4g}). Normalise them (x / ||x||, or an embedder "
            "with normalize=True) or use metric='ip'."
        )
    return x


def _as_matrix(x: Any, *, name: str, dim: int | None = None) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise InputError(f"{name} must be a 2-D array (n, dim); got shape {arr.shape}.")
    if dim is not None and arr.shape[1] != dim:
        raise InputError(f"{name} have dimension {arr.shape[1]} but the index holds {dim}-d vectors.")
    if not np.isfinite(arr).all():
        raise InputError(f"{name} contain NaN or infinite values.")
    return np.ascontiguousarray(arr)


@runtime_checkable
class DenseIndex(Protocol):
    """What the retrieval index needs from a dense index."""

    kind: str
    metric: str
    dim: int

    @property
    def ntotal(self) -> int: ...

    def search(self, queries: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def save(self, folder: str | os.PathLike) -> None: ...

    def spec(self) -> dict[str, Any]: ...


class NumpyIndex:
    """Exact inner-product search by one matrix product (float32), ties broken by row.

    Examples
    --------
    >>> v = np.eye(3, dtype=np.float32)
    >>> scores, rows = NumpyIndex(v).search(np.array([[0.0, 0.6, 0.8]]), top_k=2)
    >>> rows.tolist(), [[round(float(s), 2) for s in r] for r in scores]
    ([[2, 1]], [[0.8, 0.6]])
    """

    kind = "numpy"

    def __init__(self, vectors: np.ndarray, *, metric: str = "cosine") -> None:
        self.metric = check_option(metric, METRICS, name="metric")
        self.vectors = _as_matrix(vectors, name="corpus vectors")
        if self.metric == "cosine":
            check_normalized(self.vectors, name="corpus vectors")
        self.dim = int(self.vectors.shape[1])

    @property
    def ntotal(self) -> int:
        return int(self.vectors.shape[0])

    def search(self, queries: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows), each (n_queries, min(top_k, ntotal)), best first."""
        q = _as_matrix(queries, name="query vectors", dim=self.dim)
        if self.metric == "cosine":
            check_normalized(q, name="query vectors")
        with one_blas_thread():
            sims = q @ self.vectors.T
        rows = np.stack([top_rows(s, top_k) for s in sims]) if len(q) else np.zeros((0, 0), dtype=np.int64)
        return np.take_along_axis(sims, rows, axis=1), rows

    def save(self, folder: str | os.PathLike) -> None:
        np.save(Path(folder) / "dense.npy", self.vectors)

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "metric": self.metric, "dim": self.dim, "ntotal": self.ntotal}


_NLIST = re.compile(r"IVF(\d+)")


class FaissIndex:
    """A FAISS index built from a factory string over inner product (extra ``retrieval``).

    Parameters
    ----------
    vectors : array (n, dim)
    factory : str
        ``"Flat"``, ``"HNSW32,Flat"``, ``"IVF256,Flat"``, ``"IVF256,PQ32"``, … (``faiss.index_factory``).
    metric : {"cosine", "ip"}
    search_params : dict, optional
        FAISS parameters set with ``ParameterSpace`` (``efSearch``, ``nprobe``); defaults above.
    """

    kind = "faiss"

    def __init__(
        self,
        vectors: np.ndarray | None,
        *,
        factory: str = "Flat",
        metric: str = "cosine",
        search_params: dict[str, Any] | None = None,
        _index: Any = None,
    ) -> None:
        faiss = require("faiss", extra="retrieval", purpose="FAISS dense indexes")
        self.metric = check_option(metric, METRICS, name="metric")
        self.factory = str(factory).strip()
        if _index is not None:
            self.index = _index
            self.dim = int(_index.d)
        else:
            x = _as_matrix(vectors, name="corpus vectors")
            if self.metric == "cosine":
                check_normalized(x, name="corpus vectors")
            self.dim = int(x.shape[1])
            self.index = _factory(faiss, self.dim, self.factory)
            if not self.index.is_trained:
                _train(self.index, x, self.factory)
            self.index.add(x)
        self.search_params = {**_default_params(self.factory), **(search_params or {})}
        ps = faiss.ParameterSpace()
        for key, value in self.search_params.items():
            try:
                ps.set_index_parameter(self.index, key, value)
            except RuntimeError as exc:
                raise InputError(
                    f"FAISS index {self.factory!r} does not take parameter {key}={value!r} ({exc})."
                ) from None

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def search(self, queries: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
        q = _as_matrix(queries, name="query vectors", dim=self.dim)
        if self.metric == "cosine":
            check_normalized(q, name="query vectors")
        top_k = min(int(top_k), self.ntotal)
        scores, rows = self.index.search(q, top_k)
        # an approximate index may find fewer than k neighbours: those slots hold row -1 (callers skip them)
        return scores, rows.astype(np.int64)

    def save(self, folder: str | os.PathLike) -> None:
        faiss = require("faiss", extra="retrieval")
        faiss.write_index(self.index, str(Path(folder) / "dense.faiss"))

    def spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "factory": self.factory,
            "metric": self.metric,
            "dim": self.dim,
            "ntotal": self.ntotal,
            "search_params": self.search_params,
        }


def _factory(faiss: Any, dim: int, factory: str) -> Any:
    try:
        return faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except (RuntimeError, AssertionError) as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"invalid FAISS factory string {factory!r} for {dim}-d vectors ({first}). Examples: 'Flat', "
            "'HNSW32,Flat', 'IVF256,Flat', 'IVF256,PQ32' (PQ m must divide the dimension)."
        ) from None


def _train(index: Any, x: np.ndarray, factory: str) -> None:
    m = _NLIST.search(factory)
    nlist = int(m.group(1)) if m else 0
    if nlist and len(x) < nlist:
        raise InputError(
            f"FAISS index {factory!r} needs at least {nlist} vectors to train its {nlist} lists; the corpus has "
            f"{len(x)}. Use fewer lists (e.g. IVF{max(1, len(x) // 39)},Flat) or 'Flat'."
        )
    ivf = faiss_ivf(index)
    if ivf is not None and hasattr(ivf, "do_polysemous_training"):
        # polysemous training reorders PQ centroids for Hamming-filtered search, which medlens never turns on
        # (polysemous_ht stays 0): it took 14.2 of the 14.3 s an IVF16,PQ8 spent training on 1,000 64-d vectors here
        ivf.do_polysemous_training = False
    try:
        index.train(x)
    except RuntimeError as exc:
        raise InputError(f"training FAISS index {factory!r} on {len(x)} vectors failed: {exc}".strip()) from None


def index_to_bytes(index: Any) -> np.ndarray:
    """A FAISS index as uint8 bytes, through a Python callback writer.

    Not ``faiss.serialize_index``: its ``std::vector<uint8_t>`` SWIG type collides with SimpleITK's when both are
    loaded in one process (the vector comes back as ``SimpleITK.VectorUInt8`` and FAISS's converter fails).
    """
    import faiss

    chunks: list[bytes] = []
    faiss.write_index(index, faiss.PyCallbackIOWriter(lambda b: chunks.append(bytes(b))))
    return np.frombuffer(b"".join(chunks), dtype=np.uint8)


def index_from_bytes(data: Any) -> Any:
    """The inverse of :func:`index_to_bytes` (a callback reader; no SWIG vector either)."""
    import faiss

    buf = memoryview(np.ascontiguousarray(data, dtype=np.uint8)).cast("B")
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        chunk = bytes(buf[pos : pos + n])
        pos += len(chunk)
        return chunk

    return faiss.read_index(faiss.PyCallbackIOReader(read))


def faiss_ivf(index: Any) -> Any:
    """The IVF index inside ``index`` (itself, or under a pre-transform), or None."""
    import faiss

    try:
        return faiss.downcast_index(faiss.extract_index_ivf(index))
    except RuntimeError:
        return None


def _default_params(factory: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "HNSW" in factory:
        out["efSearch"] = 128
    m = _NLIST.search(factory)
    if m:
        out["nprobe"] = min(int(m.group(1)), 16)
    return out


def check_dense_spec(spec: str, dim: int | None = None) -> str:
    """Validate ``"numpy"`` / ``"faiss:FACTORY"`` early (before any embedding); with ``dim``, try the factory."""
    spec = str(spec).strip()
    if spec == "numpy":
        return spec
    if spec == "faiss" or (spec.startswith("faiss:") and spec[6:].strip()):
        faiss = require("faiss", extra="retrieval", purpose="FAISS dense indexes")
        if dim is not None:
            _factory(faiss, int(dim), spec[6:].strip() if ":" in spec else "Flat")
        return spec
    raise InputError(
        f"unknown dense index {spec!r}; expected 'numpy' (exact) or 'faiss:FACTORY' such as 'faiss:Flat', "
        "'faiss:HNSW32,Flat' or 'faiss:IVF256,Flat'."
    )


def dense_index(
    vectors: np.ndarray, spec: str = "numpy", *, metric: str = "cosine", search_params: dict | None = None
) -> NumpyIndex | FaissIndex:
    """Build a dense index from ``"numpy"`` or ``"faiss:FACTORY"`` (e.g. ``"faiss:HNSW32,Flat"``)."""
    spec = check_dense_spec(spec)
    if spec == "numpy":
        if search_params:
            raise InputError("search parameters apply to FAISS indexes only; the numpy index is exact.")
        return NumpyIndex(vectors, metric=metric)
    if spec.startswith("faiss:") and spec[6:].strip():
        return FaissIndex(vectors, factory=spec[6:], metric=metric, search_params=search_params)
    return FaissIndex(vectors, factory="Flat", metric=metric, search_params=search_params)


def load_dense(folder: str | os.PathLike, spec: dict[str, Any]) -> NumpyIndex | FaissIndex:
    """Load the dense index saved in ``folder`` as described by its manifest ``spec``."""
    folder = Path(folder)
    if spec.get("kind") == "numpy":
        path = folder / "dense.npy"
        if not path.is_file():
            raise InputError(f"{folder}: dense.npy is missing; the index is incomplete, rebuild it.")
        idx = NumpyIndex.__new__(NumpyIndex)
        idx.metric = spec.get("metric", "cosine")
        idx.vectors = np.load(path)
        idx.dim = int(idx.vectors.shape[1])
        return idx
    if spec.get("kind") == "faiss":
        faiss = require("faiss", extra="retrieval", purpose="FAISS dense indexes")
        path = folder / "dense.faiss"
        if not path.is_file():
            raise InputError(f"{folder}: dense.faiss is missing; the index is incomplete, rebuild it.")
        return FaissIndex(
            None,
            factory=spec["factory"],
            metric=spec.get("metric", "cosine"),
            search_params=spec.get("search_params"),
            _index=faiss.read_index(str(path)),
        )
    raise InputError(f"{folder}: unknown dense index kind {json.dumps(spec.get('kind'))}; rebuild the index.")
