"""Decision rules indexed by one scalar λ, and the exact per-sample CAE loss curves they induce.

Both rules make the CAE indicator non-increasing in λ (up to the DAG caveat below), so each sample's loss is a step
``L_i(λ) = 1[λ <= m_i]`` described by one critical value ``m_i``; risks over a whole grid follow from a
sort. Coverage (not abstaining to the root) is ``1[λ <= c_i]`` in the same way.

* ``climb`` (single prediction): start at the highest-scoring leaf and walk up, always to the
  highest-scoring parent, until a node with score >= λ; the root is always accepted (abstention).
  In a tree, walking up can only turn a cross-branch prediction into a same-branch or root one. In a DAG
  whose nodes have parents in different branches a climb can leave one branch for another, so the CAE
  indicator need not be monotone; the curve then holds its tightest monotone upper envelope
  (CAE at some λ' >= λ), which keeps CRC and LTT valid (conservative).
* ``multilabel``: predict every node with score >= λ (plus implied ancestors); raising λ removes nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medlens.hierarchy import (
    EncodedLabels,
    bad_node_matrix,
    climb_paths,
    climb_predict,
    labels_from_indices,
    multilabel_predict,
    predict_labels,
    sample_cae,
)
from medlens.taxonomy import Taxonomy

# The decision rules live in medlens.hierarchy (fine-tuning uses them too); risk re-exports them.
__all__ = ["climb_paths", "climb_predict", "multilabel_predict", "predict_labels", "LossCurve", "loss_curve"]


@dataclass(frozen=True)
class LossCurve:
    """Per-sample critical values: CAE at λ iff ``λ <= cae_critical[i]``; covered iff ``λ <= cover_critical[i]``."""

    cae_critical: np.ndarray
    cover_critical: np.ndarray

    def risk(self, lambdas: np.ndarray) -> np.ndarray:
        s = np.sort(self.cae_critical)
        return (len(s) - np.searchsorted(s, lambdas, side="left")) / len(s)

    def coverage(self, lambdas: np.ndarray) -> np.ndarray:
        s = np.sort(self.cover_critical)
        return (len(s) - np.searchsorted(s, lambdas, side="left")) / len(s)


def _strict_descendant_max(scores: np.ndarray, tax: Taxonomy) -> np.ndarray:
    """``τ[i, p]`` = highest score among the strict descendants of ``p`` (-inf for a leaf)."""
    tau = np.full(scores.shape, -np.inf)
    for p in tax._topo[::-1]:  # children before parents
        kids = list(tax._children[p])
        if kids:
            tau[:, p] = np.maximum(scores[:, kids], tau[:, kids]).max(axis=1)
    return tau


def loss_curve(scores: np.ndarray, y_true: EncodedLabels, *, rule: str, branch_depth: int) -> LossCurve:
    """Exact per-sample critical values of the CAE loss under ``rule`` (``climb`` or ``multilabel``).

    In a tree both are exact. In a DAG whose nodes have parents in different branches the CAE indicator need
    not be monotone in λ (climbing can change branch; dropping a node can expose a parent in another
    branch); the values then describe the tightest monotone upper envelope of the loss, which keeps CRC and
    LTT valid (conservative)."""
    tax = y_true.taxonomy
    n = scores.shape[0]
    if rule == "climb":
        paths = climb_paths(scores, tax)
        ps = np.take_along_axis(scores, paths, axis=1)
        cae = np.stack(
            [sample_cae(y_true, labels_from_indices(paths[:, j], tax), branch_depth) for j in range(paths.shape[1])],
            1,
        )
        # Node j is the accepted one for λ in (max(ps[:j]), ps[j]]; a node scoring no more than an earlier one
        # is never accepted. CAE at some λ' >= λ iff an acceptable CAE node scores >= λ. In a tree (CAE on a
        # prefix of the path) this is exactly the loss at λ.
        earlier = np.maximum.accumulate(ps, axis=1)
        reachable = np.ones_like(cae)
        reachable[:, 1:] = ps[:, 1:] > earlier[:, :-1]
        m = np.where(cae & reachable, ps, -np.inf).max(axis=1)
        c = np.where(paths != 0, ps, -np.inf).max(axis=1)
        return LossCurve(m, c)
    # A node p is a most-specific prediction for λ in (τ_p, s_p], with τ_p the best score strictly below p
    # (then p is in the closure and none of its descendants is). The loss is 1 at λ iff some CAE node is
    # most-specific there, so 1[λ <= max{s_p : p a CAE node, s_p > τ_p}] is its tightest monotone upper
    # envelope: exact in a tree (a CAE node's descendants are CAE nodes too), conservative in a DAG.
    tau = _strict_descendant_max(scores, tax)
    bad = bad_node_matrix(y_true, branch_depth)
    m = np.where(bad & (scores > tau), scores, -np.inf).max(axis=1)
    c = scores[:, 1:].max(axis=1) if scores.shape[1] > 1 else np.full(n, -np.inf)
    return LossCurve(m, c)
