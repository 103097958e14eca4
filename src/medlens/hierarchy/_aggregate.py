"""Node scores for every taxonomy node, from leaf scores (``sum``, ``max``, ``noisy_or``) or per-node prompts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from medlens._validation import InputError, check_option, check_probabilities
from medlens.taxonomy import Taxonomy

__all__ = ["node_scores_from_leaves", "AGGREGATORS", "complete_node_scores"]

AGGREGATORS = ("sum", "max", "noisy_or")
Aggregator = Literal["sum", "max", "noisy_or"]


def node_scores_from_leaves(
    leaf_scores: np.ndarray,
    *,
    taxonomy: Taxonomy,
    leaves: Sequence[str] | None = None,
    aggregator: Aggregator = "sum",
) -> np.ndarray:
    """Scores for every node (``taxonomy.nodes`` order) from scores of the leaves.

    Parameters
    ----------
    leaf_scores : array of shape (n_samples, n_leaves)
        Probabilities in [0, 1] (``sum`` expects a distribution over leaves, e.g. a softmax).
    leaves : sequence of str, optional
        Column names; default ``taxonomy.leaves``. Must be exactly the taxonomy's leaves (any order).
    aggregator : {"sum", "max", "noisy_or"}
        ``sum``: P(v) = Σ of the leaves under v (softmax-over-leaves models; clipped to 1 in DAGs, where a
        leaf reached by two paths is still counted once). ``max``: the largest leaf score under v.
        ``noisy_or``: 1 - Π(1 - s(leaf)) over the leaves under v. The root gets 1.

    Returns
    -------
    ndarray of shape (n_samples, n_nodes)

    Examples
    --------
    >>> tax = Taxonomy({"root": ["Lung", "Pleura"], "Lung": ["Pneumonia", "Edema"], "Pleura": ["Effusion"]})
    >>> s = node_scores_from_leaves(np.array([[0.5, 0.3, 0.2]]), taxonomy=tax, leaves=["Pneumonia", "Edema", "Effusion"])
    >>> dict(zip(tax.nodes, s[0].round(2).tolist()))
    {'root': 1.0, 'Lung': 0.8, 'Pleura': 0.2, 'Pneumonia': 0.5, 'Edema': 0.3, 'Effusion': 0.2}
    """
    check_option(aggregator, AGGREGATORS, name="aggregator")
    x = np.asarray(leaf_scores, dtype=float)
    leaves = list(taxonomy.leaves if leaves is None else leaves)
    if x.ndim != 2 or x.shape[1] != len(leaves):
        raise InputError(f"leaf_scores must have shape (n_samples, {len(leaves)}); got {x.shape}.")
    missing = sorted(set(taxonomy.leaves) - set(leaves))
    not_leaves = [lf for lf in leaves if lf not in taxonomy.index or taxonomy.children(lf)]
    if missing or not_leaves:
        raise InputError(
            f"leaf score columns must be exactly the leaves of taxonomy {taxonomy.name!r}; "
            f"missing {missing[:5]}, not leaves {not_leaves[:5]}. Give one column per leaf or score every node."
        )
    check_probabilities(x, name="leaf scores", columns=leaves)
    cols = taxonomy.node_indices(leaves)
    # D[v, leaf column j] = 1 iff leaf j is v or below v
    d = taxonomy.descendant_matrix[:, cols].astype(float)
    if aggregator == "sum":
        out = np.asarray(d @ x.T).T
        if not taxonomy.is_tree:
            out = np.minimum(out, 1.0)
    elif aggregator == "noisy_or":
        log_keep = np.log1p(-np.minimum(x, 1 - 1e-15))
        out = 1.0 - np.exp(np.asarray(d @ log_keep.T).T)
    else:
        out = np.zeros((x.shape[0], len(taxonomy)))
        dc = d.tocsr()
        for v in range(len(taxonomy)):
            js = dc.indices[dc.indptr[v] : dc.indptr[v + 1]]
            out[:, v] = x[:, js].max(axis=1)
    out[:, 0] = 1.0
    return np.clip(out, 0.0, 1.0)


def complete_node_scores(scores: np.ndarray, *, taxonomy: Taxonomy, nodes: Sequence[str]) -> np.ndarray:
    """Arrange per-node scores (one column per node except possibly the root) in ``taxonomy.nodes`` order.

    The root column is set to 1. Every non-root node needs a column.
    """
    x = np.asarray(scores, dtype=float)
    nodes = list(nodes)
    missing = [n for n in taxonomy.nodes[1:] if n not in nodes]
    if missing:
        leaves = set(nodes) - {taxonomy.root} == set(taxonomy.leaves)
        raise InputError(
            f"node scores need one column per node of taxonomy {taxonomy.name!r}; missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}."
            + (
                " These columns are its leaves: derive node scores with node_scores_from_leaves (sum | max | "
                "noisy_or; --from-leaves on the command line)."
                if leaves
                else ""
            )
        )
    out = np.ones((x.shape[0], len(taxonomy)))
    idx = taxonomy.node_indices(nodes)
    out[:, idx] = x
    out[:, 0] = 1.0
    return out
