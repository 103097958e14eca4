"""Decision rules indexed by one scalar threshold λ: turn node scores into predicted nodes.

* ``climb`` (single prediction): start at the highest-scoring leaf and walk up, always to the highest-scoring
  parent, until a node with score >= λ; the root is always accepted (abstention).
* ``multilabel``: predict every node with score >= λ (plus implied ancestors); nothing predicted = the root.

:mod:`medlens.risk` derives the exact CAE loss curves of both rules and picks λ with statistical guarantees.
"""

from __future__ import annotations

import numpy as np

from medlens.hierarchy._encode import EncodedLabels, _from_single, encode_labels
from medlens.taxonomy import Taxonomy

__all__ = [
    "DECISION_RULES",
    "climb_paths",
    "climb_predict",
    "labels_from_indices",
    "multilabel_predict",
    "predict_labels",
]

DECISION_RULES = ("climb", "multilabel")


def labels_from_indices(nodes: np.ndarray, taxonomy: Taxonomy) -> EncodedLabels:
    """Single-label :class:`EncodedLabels` from one node index per sample (index 0 = the root = abstained)."""
    return _from_single(np.asarray(nodes, dtype=np.int64), taxonomy)


def _longest_climb(taxonomy: Taxonomy) -> int:
    """Edges on the longest upward path to the root (the height in a tree; can exceed it in a DAG)."""
    table = taxonomy.parent_table
    up = np.zeros(len(taxonomy), dtype=np.int64)
    while True:
        nxt = np.where(table >= 0, up[np.maximum(table, 0)] + 1, 0).max(axis=1)
        if np.array_equal(nxt, up):
            return int(up.max())
        up = nxt


def climb_paths(scores: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """Climbing paths, shape (n_samples, L + 1) with L the longest upward path (the height in a tree):
    leaf first, then highest-scoring parents, padded with the root."""
    n = scores.shape[0]
    leaf_idx = np.flatnonzero(taxonomy.leaf_mask)
    cur = leaf_idx[np.argmax(scores[:, leaf_idx], axis=1)]
    table = taxonomy.parent_table
    length = _longest_climb(taxonomy) + 1
    paths = np.zeros((n, length), dtype=np.int64)
    rows = np.arange(n)
    for j in range(length):
        paths[:, j] = cur
        par = table[cur]  # (n, max_parents), -1 padded
        ps = np.where(par >= 0, scores[rows[:, None], np.maximum(par, 0)], -np.inf)
        nxt = par[rows, np.argmax(ps, axis=1)]
        cur = np.where(cur == 0, 0, nxt)
    return paths


def climb_predict(scores: np.ndarray, taxonomy: Taxonomy, lam: float) -> np.ndarray:
    """Node index per sample: the first node on the climbing path with score >= λ (root otherwise)."""
    paths = climb_paths(scores, taxonomy)
    ps = np.take_along_axis(scores, paths, axis=1)
    ok = (ps >= lam) | (paths == 0)
    return paths[np.arange(len(paths)), np.argmax(ok, axis=1)]


def multilabel_predict(scores: np.ndarray, lam: float) -> np.ndarray:
    """Boolean (n_samples, n_nodes) prediction ``s >= λ`` with the root column cleared."""
    pred = scores >= lam
    pred[:, 0] = False
    return pred


def predict_labels(scores: np.ndarray, taxonomy: Taxonomy, *, rule: str, lam: float) -> EncodedLabels:
    """Encoded predictions of ``rule`` (``climb`` or ``multilabel``) at threshold λ; nothing predicted = the root."""
    if rule == "climb":
        return _from_single(climb_predict(scores, taxonomy, lam), taxonomy)
    m = multilabel_predict(scores, lam)
    m[~m.any(axis=1), 0] = True  # nothing predicted: abstain (root)
    return encode_labels(m.astype(np.int8), taxonomy)
