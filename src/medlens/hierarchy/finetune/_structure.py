"""Taxonomy structure as the dense arrays the fine-tuning losses need (numpy; no torch at import).

Columns are the non-root nodes in ``taxonomy.nodes[1:]`` order: the root is always true and has no
embedding, logit or loss term.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from medlens._validation import InputError
from medlens.taxonomy import Taxonomy

__all__ = ["TaxonomyArrays"]


@dataclass(frozen=True)
class TaxonomyArrays:
    """Dense views of a taxonomy over its non-root nodes (column ``j`` is ``taxonomy.nodes[j + 1]``)."""

    taxonomy: Taxonomy
    branch_depth: int = 1

    @property
    def n(self) -> int:
        return len(self.taxonomy) - 1

    @cached_property
    def depth(self) -> np.ndarray:
        """Depth of every column (shortest path from the root; depth-1 nodes are the branches)."""
        return self.taxonomy.depths[1:].astype(np.int64)

    @cached_property
    def edges(self) -> np.ndarray:
        """``(n_edges, 2)`` parent/child column pairs, edges leaving the root excluded."""
        a = self.taxonomy.adjacency.tocoo()
        keep = a.row != 0
        return np.stack([a.row[keep] - 1, a.col[keep] - 1], axis=1).astype(np.int64)

    @cached_property
    def ancestors(self) -> np.ndarray:
        """``A[v, a] = 1`` iff column ``a`` is an ancestor-or-self of column ``v`` (float32)."""
        return self.taxonomy.ancestor_matrix[1:, 1:].toarray().astype(np.float32)

    @cached_property
    def cross_branch(self) -> np.ndarray:
        """``X[u, v] = True`` iff both columns are at depth >= k and their depth-k branch sets are disjoint."""
        b = self.taxonomy.branch_matrix(self.branch_depth)[1:].astype(np.int32)
        share = (b @ b.T).toarray() > 0
        deep = self.depth >= self.branch_depth
        return ~share & deep[:, None] & deep[None, :]

    @cached_property
    def leaves(self) -> np.ndarray:
        """Columns of the leaves."""
        return np.flatnonzero(self.taxonomy.leaf_mask[1:])

    @cached_property
    def leaf_to_node(self) -> np.ndarray:
        """``M[l, v] = 1`` iff column ``v`` is an ancestor-or-self of leaf ``l`` (so ``p_node = p_leaf @ M``)."""
        return self.ancestors[self.leaves]

    @cached_property
    def parent(self) -> np.ndarray:
        """Parent column of every column (-1 for the branches); trees only."""
        self.require_tree("this")
        p = self.taxonomy.parent_table[1:, 0] - 1
        return np.where(p < 0, -1, p).astype(np.int64)

    def require_tree(self, what: str) -> None:
        if not self.taxonomy.is_tree:
            multi = [v for v in self.taxonomy.nodes if len(self.taxonomy.parents(v)) > 1][:3]
            raise InputError(
                f"{what} needs a tree, but taxonomy {self.taxonomy.name!r} has nodes with several parents "
                f"(e.g. {multi}); use the radial or bce loss, which handle DAGs."
            )

    def radial_targets(self, r0: float, delta: float) -> np.ndarray:
        """Target norm ``r0 + depth * delta`` of every column."""
        return (r0 + self.depth * delta).astype(np.float32)

    @cached_property
    def soft_distance(self) -> np.ndarray:
        """``D[v, l]``: LCA height of true column ``v`` and leaf ``l`` (0 when ``l`` lies under ``v``), / max.

        The distance of Bertinetto et al. (2020): height of the lowest common ancestor, normalised by its
        maximum so that the hardness β is comparable across taxonomies.
        """
        tax = self.taxonomy
        anc = tax.ancestor_matrix.toarray()
        depths = tax.depths
        leaves = self.leaves + 1
        d = np.zeros((self.n, len(leaves)), dtype=np.float64)
        for j, leaf in enumerate(leaves):
            common = anc[1:] & anc[leaf][None, :]  # ancestors shared by each column and the leaf
            lca_depth = np.where(common, depths[None, :], -1).max(axis=1)
            under = anc[leaf, 1:]  # column v is an ancestor-or-self of the leaf
            d[:, j] = np.where(under, 0, tax.height - lca_depth)
        top = d.max()
        return (d / top if top > 0 else d).astype(np.float32)
