"""Encode label inputs as sparse indicator matrices over a taxonomy's nodes.

Every metric works on the same representation: a CSR boolean matrix of shape ``(n_samples, n_nodes)``
with the labels as given, their upward closure (ancestors included, root excluded) and the most-specific
nodes of that closure. Predicting the root means abstaining (an empty closure).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from medlens._validation import InputError, did_you_mean, shorten
from medlens.taxonomy import Taxonomy

__all__ = ["EncodedLabels", "encode_labels", "LabelsLike"]

LabelsLike = Any  # sequence of node ids | sequence of label sets | (n, n_nodes) 0/1 array | DataFrame | EncodedLabels


@dataclass(frozen=True, eq=False)
class EncodedLabels:
    """Labels of ``n`` samples over ``taxonomy`` as sparse matrices.

    Attributes
    ----------
    given : csr_matrix of shape (n_samples, n_nodes)
        The labels as given (the root column marks an abstention).
    taxonomy : Taxonomy
    single : ndarray of shape (n_samples,) or None
        Node index per sample when every sample has exactly one given label, else ``None``.
    """

    given: sp.csr_matrix
    taxonomy: Taxonomy
    single: np.ndarray | None

    @property
    def n(self) -> int:
        return self.given.shape[0]

    @cached_property
    def closure(self) -> sp.csr_matrix:
        """Given labels and all their ancestors, root excluded (an abstention has an empty row)."""
        tax = self.taxonomy
        if self.single is not None:
            c = tax.ancestor_matrix[self.single]
        else:
            c = (self.given.astype(np.int32) @ tax.ancestor_matrix.astype(np.int32)).astype(bool)
        c = c.tocsr()
        c[:, 0] = False
        c.eliminate_zeros()
        c.sort_indices()
        return c

    @cached_property
    def most_specific(self) -> sp.csr_matrix:
        """Nodes of the closure that have no child in the closure (the label set as an antichain)."""
        if self.single is not None:
            rows = np.flatnonzero(self.single != 0)
            return sp.csr_matrix((np.ones(len(rows), dtype=bool), (rows, self.single[rows])), shape=self.given.shape)
        c = self.closure.astype(np.int32)
        has_child = (c @ self.taxonomy.adjacency.T.astype(np.int32)).astype(bool)
        ms = (self.closure.astype(np.int8) - self.closure.multiply(has_child).astype(np.int8)).astype(bool)
        ms = sp.csr_matrix(ms)
        ms.eliminate_zeros()
        ms.sort_indices()
        return ms

    @cached_property
    def closure_size(self) -> np.ndarray:
        return np.diff(self.closure.indptr)

    @cached_property
    def abstained(self) -> np.ndarray:
        """Rows whose closure is empty (only the root was given)."""
        return self.closure_size == 0

    @cached_property
    def is_multilabel(self) -> bool:
        return self.single is None and bool((np.diff(self.most_specific.indptr) > 1).any())

    def subset(self, rows: np.ndarray) -> EncodedLabels:
        """The encoded labels of a subset of rows (keeps the representation)."""
        single = None if self.single is None else self.single[rows]
        return EncodedLabels(self.given[rows], self.taxonomy, single)

    def label_sets(self, *, most_specific: bool = True) -> list[list[str]]:
        """Back to node-id lists per sample (most-specific nodes; ``[root]`` for an abstention)."""
        m = self.most_specific if most_specific else self.closure
        nodes = self.taxonomy.nodes
        out = []
        for i in range(m.shape[0]):
            cols = m.indices[m.indptr[i] : m.indptr[i + 1]]
            out.append([nodes[c] for c in cols] if len(cols) else [self.taxonomy.root])
        return out


def _from_single(idx: np.ndarray, tax: Taxonomy) -> EncodedLabels:
    n = len(idx)
    given = sp.csr_matrix((np.ones(n, dtype=bool), idx, np.arange(n + 1)), shape=(n, len(tax)))
    return EncodedLabels(given, tax, idx)


def encode_labels(y: LabelsLike, taxonomy: Taxonomy, *, name: str = "y") -> EncodedLabels:
    """Encode labels for ``taxonomy``.

    Parameters
    ----------
    y : one of
        * a sequence of node ids (single-label; the root id means abstained);
        * a sequence of label sets (lists/tuples/sets of node ids; multi-label);
        * an array of shape (n_samples, n_nodes) of 0/1 in ``taxonomy.nodes`` order, or a DataFrame
          whose columns are node ids (indicator form, closed upward by the encoder);
        * an :class:`EncodedLabels` (returned as is).
    taxonomy : Taxonomy
    name : str
        Used in error messages (``"y_true"``).

    Examples
    --------
    >>> from medlens.taxonomy import Taxonomy
    >>> tax = Taxonomy({"root": ["A", "B"], "A": ["a1", "a2"]})
    >>> enc = encode_labels(["a1", "B", "root"], tax)
    >>> enc.closure.toarray().astype(int).tolist()
    [[0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0]]
    """
    if isinstance(y, EncodedLabels):
        if y.taxonomy is not taxonomy and y.taxonomy != taxonomy:
            raise InputError(f"{name} was encoded for taxonomy {y.taxonomy.name!r}, not {taxonomy.name!r}.")
        return y
    try:
        import pandas as pd

        if isinstance(y, pd.DataFrame):
            cols = [str(c) for c in y.columns]
            idx = taxonomy.node_indices(cols) if cols else np.array([], dtype=np.int64)
            vals = y.to_numpy()
            return _from_indicator(vals, idx, taxonomy, name)
        if isinstance(y, pd.Series):
            y = y.to_numpy()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(y, str):
        raise TypeError(f"{name} must be a sequence of labels, not a single string {y!r}.")
    if isinstance(y, np.ndarray) and y.ndim == 2 and y.dtype.kind in "OUS":
        raise InputError(
            f"{name} is a 2-D array of strings; hiclass-style label paths are not accepted. Pass the most specific "
            "label per sample (e.g. paths[:, -1] without padding) or one label set per sample."
        )
    if sp.issparse(y) or (isinstance(y, np.ndarray) and y.ndim == 2):
        arr = y.tocsr() if sp.issparse(y) else y
        if arr.shape[0] == 0:
            raise InputError(f"{name} is empty; at least one sample is needed.")
        if arr.shape[1] != len(taxonomy):
            raise InputError(
                f"{name} as an indicator array must have one column per node ({len(taxonomy)} for taxonomy "
                f"{taxonomy.name!r}); got shape {arr.shape}."
            )
        return _from_indicator(arr, np.arange(len(taxonomy)), taxonomy, name)
    if not isinstance(y, Sequence | np.ndarray):
        y = list(y)
    if len(y) == 0:
        raise InputError(f"{name} is empty; at least one sample is needed.")
    if not (isinstance(y, np.ndarray) and y.dtype.kind in "US"):
        bad = next((i for i, v in enumerate(y) if v is None or (isinstance(v, float) and v != v)), None)
        if bad is not None:
            raise InputError(
                f"{name}[{bad}] is missing ({y[bad]!r}); every sample needs a label (the root id means abstained)."
            )
    first = y[0]
    if isinstance(first, str | np.str_):
        return _from_single(taxonomy.node_indices(y), taxonomy)
    if isinstance(first, Iterable):
        return _from_sets(y, taxonomy, name)
    raise TypeError(f"{name} must hold node ids (str) or label sets; got elements of type {type(first).__name__}.")


def _from_sets(y: Sequence[Iterable[str]], tax: Taxonomy, name: str) -> EncodedLabels:
    rows: list[int] = []
    flat: list[str] = []
    for i, s in enumerate(y):
        if isinstance(s, str):
            s = [s]
        s = list(s)
        if not s:
            raise InputError(
                f"{name} row {i} has an empty label set; use the root id {tax.root!r} to mark an abstention."
            )
        rows.extend([i] * len(s))
        flat.extend(str(v) for v in s)
    unknown = [k for k, v in enumerate(flat) if v not in tax.index]
    if unknown:
        bad = flat[unknown[0]]
        raise InputError(
            f"unknown label {shorten(bad)} in {name} row {rows[unknown[0]]} for taxonomy {tax.name!r}."
            f"{did_you_mean(bad, tax.nodes)} Map dataset labels with Taxonomy.map_label or add a 'labels' synonym."
        )
    cols = tax.node_indices(flat)
    n = len(y)
    given = sp.csr_matrix((np.ones(len(cols), dtype=bool), (np.array(rows), cols)), shape=(n, len(tax)))
    given.sum_duplicates()
    return _normalise(given, tax)


def _from_indicator(vals: Any, col_idx: np.ndarray, tax: Taxonomy, name: str) -> EncodedLabels:
    m = sp.csr_matrix(vals)
    if m.nnz:
        data = np.asarray(m.data, dtype=float)
        if not np.isin(data, (0.0, 1.0)).all():
            bad = data[~np.isin(data, (0.0, 1.0))][0]
            raise InputError(f"{name} indicator columns must hold 0 or 1; found {bad}.")
    m = m.astype(bool).tocoo()
    n = m.shape[0]
    given = sp.csr_matrix((np.ones(m.nnz, dtype=bool), (m.row, col_idx[m.col])), shape=(n, len(tax)))
    empty = np.flatnonzero(np.diff(given.indptr) == 0)
    if len(empty):
        # An all-zero indicator row means nothing beyond the root: an abstention (prediction) or no label.
        given = given.tolil()
        for r in empty:
            given[r, 0] = True
        given = given.tocsr()
    given.sort_indices()
    return _normalise(given, tax)


def _normalise(given: sp.csr_matrix, tax: Taxonomy) -> EncodedLabels:
    """Treat rows whose closure has exactly one most-specific node (or none: an abstention) as single-label.

    So ``["Pneumonia"]``, ``[["Lung", "Pneumonia"]]`` and a closed 0/1 row encode identically.
    """
    counts = np.diff(given.indptr)
    if (counts == 1).all():
        return EncodedLabels(given, tax, given.indices.astype(np.int64))
    enc = EncodedLabels(given, tax, None)
    ms = enc.most_specific
    ms_counts = np.diff(ms.indptr)
    if (ms_counts <= 1).all():
        single = np.zeros(enc.n, dtype=np.int64)
        single[ms_counts == 1] = ms.indices
        return _from_single(single, tax)
    return enc
