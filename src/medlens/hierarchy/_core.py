"""Vectorised building blocks shared by the hierarchical metrics (pairs, LCA, branches, distances)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from medlens.hierarchy._encode import EncodedLabels
from medlens.taxonomy import Taxonomy

__all__ = [
    "row_counts",
    "rowwise_overlap",
    "lca_index",
    "pair_distance",
    "cross_branch_pairs",
    "sample_cae",
    "branch_columns",
    "item_cae",
    "predicted_items",
    "bad_node_matrix",
    "up_distance",
]


def row_counts(m: sp.csr_matrix) -> np.ndarray:
    """Number of stored entries per row."""
    return np.diff(m.indptr)


def rowwise_overlap(a: sp.csr_matrix, b: sp.csr_matrix) -> np.ndarray:
    """``|a_i ∩ b_i|`` for boolean CSR matrices of the same shape."""
    return row_counts(a.multiply(b).tocsr())


def _rank_ancestor_matrix(tax: Taxonomy) -> tuple[sp.csr_matrix, np.ndarray]:
    """Ancestor matrix with columns sorted deepest-first (ties by node id), and the rank → node map."""
    cache = tax.__dict__.setdefault("_rank_cache", None)
    if cache is None:
        order = np.array(sorted(range(len(tax)), key=lambda j: (-int(tax.depths[j]), tax.nodes[j])), dtype=np.int64)
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        a = tax.ancestor_matrix.tocoo()
        m = sp.csr_matrix((a.data, (a.row, rank[a.col])), shape=a.shape)
        m.sort_indices()
        cache = tax.__dict__["_rank_cache"] = (m, order)
    return cache


def lca_index(tax: Taxonomy, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Index of the deepest common ancestor(-or-self) for each pair ``(u[j], v[j])`` (ties: node id)."""
    if len(u) == 0:
        return np.zeros(0, dtype=np.int64)
    if tax.is_tree:
        return _lca_tree(tax, u, v)
    m, order = _rank_ancestor_matrix(tax)
    prod = m[u].multiply(m[v]).tocsr()
    prod.sort_indices()
    # Every pair shares the root, so no row is empty; the first stored column is the deepest ancestor.
    return order[prod.indices[prod.indptr[:-1]]]


def _lca_tree(tax: Taxonomy, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """LCA in a tree by walking both nodes up with a parent array (depth-many vector steps)."""
    parent = tax.parent_table[:, 0].copy()
    parent[0] = 0
    depth = tax.depths
    u = np.asarray(u, dtype=np.int64).copy()
    v = np.asarray(v, dtype=np.int64).copy()
    du, dv = depth[u].copy(), depth[v].copy()
    while True:
        mu = du > dv
        if not mu.any():
            break
        u[mu] = parent[u[mu]]
        du[mu] -= 1
    while True:
        mv = dv > du
        if not mv.any():
            break
        v[mv] = parent[v[mv]]
        dv[mv] -= 1
    while True:
        diff = u != v
        if not diff.any():
            break
        u[diff] = parent[u[diff]]
        v[diff] = parent[v[diff]]
    return u


def pair_distance(tax: Taxonomy, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shortest undirected path length between node pairs (tree formula, or one BFS per distinct source in a DAG)."""
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    if len(u) == 0:
        return np.zeros(0, dtype=np.int64)
    if tax.is_tree:
        lca = lca_index(tax, u, v)
        d = tax.depths
        return (d[u] + d[v] - 2 * d[lca]).astype(np.int64)
    # Search from whichever side has fewer distinct nodes; distances are symmetric.
    if len(np.unique(v)) < len(np.unique(u)):
        u, v = v, u
    return _dag_distance(tax, u, v)


def _undirected(tax: Taxonomy) -> sp.csr_matrix:
    graph = tax.__dict__.get("_undirected")
    if graph is None:
        a = tax.adjacency.astype(np.float64)
        graph = tax.__dict__["_undirected"] = (a + a.T).tocsr()
        graph.data[:] = 1.0
    return graph


def _dag_distance(tax: Taxonomy, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Exact undirected distances in a DAG.

    Few distinct sources: one breadth-first search each. Otherwise a batched bidirectional BFS over all pairs
    at once on sparse frontier matrices: the two visited sets grow one level at a time (the smaller side
    first) and a pair's distance is the sum of the two radii when its sets first meet.
    """
    n_src = len(np.unique(u))
    if n_src <= 64:
        return _bfs_per_source(tax, u, v)
    out = np.zeros(len(u), dtype=np.int64)
    active = np.flatnonzero(u != v)
    if len(active) == 0:
        return out
    graph = _undirected(tax)
    n = len(tax)

    def onehot(idx: np.ndarray) -> sp.csr_matrix:
        k = len(idx)
        return sp.csr_matrix((np.ones(k), idx, np.arange(k + 1)), shape=(k, n))

    vis = [onehot(u[active]), onehot(v[active])]
    front = [vis[0].copy(), vis[1].copy()]
    radius = [0, 0]
    while len(active):
        side = 0 if vis[0].nnz <= vis[1].nnz else 1
        nxt = (front[side] @ graph).tocsr()
        nxt.data[:] = 1.0
        nxt = (nxt - nxt.multiply(vis[side])).tocsr()
        nxt.eliminate_zeros()
        radius[side] += 1
        vis[side] = (vis[side] + nxt).tocsr()
        front[side] = nxt
        met = row_counts(nxt.multiply(vis[1 - side]).tocsr()) > 0
        if met.any():
            out[active[met]] = radius[0] + radius[1]
            keep = np.flatnonzero(~met)
            active = active[keep]
            vis = [m[keep] for m in vis]
            front = [m[keep] for m in front]
        stuck = row_counts(front[side]) == 0
        if stuck.any():  # unreachable cannot happen in a rooted DAG; guard against an infinite loop
            raise RuntimeError("disconnected taxonomy graph while computing distances")
    return out


def up_distance(tax: Taxonomy, u: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Edges on the shortest upward (child → parent) path from ``u[j]`` to its ancestor-or-self ``a[j]``."""
    u = np.asarray(u, dtype=np.int64)
    a = np.asarray(a, dtype=np.int64)
    if tax.is_tree or len(u) == 0:
        return (tax.depths[u] - tax.depths[a]).astype(np.int64)
    up = tax.__dict__.get("_upward")
    if up is None:
        up = tax.__dict__["_upward"] = tax.adjacency.T.tocsr().astype(np.float64)
    return _bfs_per_source(tax, u, a, graph=up)


def _bfs_per_source(tax: Taxonomy, u: np.ndarray, v: np.ndarray, graph: sp.csr_matrix | None = None) -> np.ndarray:
    from scipy.sparse.csgraph import breadth_first_order

    graph = _undirected(tax) if graph is None else graph
    out = np.zeros(len(u), dtype=np.int64)
    order = np.argsort(u, kind="stable")
    bounds = np.flatnonzero(np.diff(u[order])) + 1
    for group in np.split(order, bounds):
        src = int(u[group[0]])
        _, pred = breadth_first_order(graph, src, directed=True, return_predecessors=True)
        # Walk every target back to the source along the BFS tree, all targets at once.
        cur = v[group].copy()
        hops = np.zeros(len(group), dtype=np.int64)
        active = cur != src
        while active.any():
            cur[active] = pred[cur[active]]
            hops[active] += 1
            active = cur != src
        out[group] = hops
    return out


def cross_branch_pairs(tax: Taxonomy, p: np.ndarray, t: np.ndarray, k: int) -> np.ndarray:
    """Whether each pair (prediction, truth) is cross-branch at depth ``k``.

    Both nodes must be at depth >= k (shallower nodes are never a CAE) and their branch sets disjoint.
    """
    b = tax.branch_matrix(k)
    bp, bt = b[p], b[t]
    # depth, not a non-empty branch row: in a DAG a node shallower than k can still have a depth-k ancestor
    deep = (tax.depths[p] >= k) & (tax.depths[t] >= k)
    if tax.is_tree:
        return deep & (_first_col(bp) != _first_col(bt))
    return deep & (rowwise_overlap(bp, bt) == 0)


def _first_col(m: sp.csr_matrix) -> np.ndarray:
    out = np.full(m.shape[0], -1, dtype=np.int64)
    nz = row_counts(m) > 0
    out[nz] = m.indices[m.indptr[:-1][nz]]
    return out


def branch_columns(tax: Taxonomy, k: int) -> np.ndarray:
    """Indices of the nodes at depth ``k`` (the branches), in node order."""
    return np.flatnonzero(tax.depths == k)


def item_cae(y_true: EncodedLabels, rows: np.ndarray, nodes: np.ndarray, k: int) -> np.ndarray:
    """Whether each predicted (sample, node) item is a Catastrophic Abstraction Error against the sample's truth.

    The one rule used for single- and multi-label data, trees and DAGs (ARCHITECTURE.md): a predicted node
    ``p`` is cross-branch when ``p`` is at depth >= k, the truth has at least one node at depth >= k, the
    branch set of ``p`` is disjoint from the union of the true nodes' branch sets, and ``p`` does not lie
    under a true node shallower than k (a shallow truth such as "Lung" covers everything below it). With one
    true and one predicted node this is exactly "both at depth >= k and branch sets disjoint".
    """
    tax = y_true.taxonomy
    rows = np.asarray(rows, dtype=np.int64)
    nodes = np.asarray(nodes, dtype=np.int64)
    cols = branch_columns(tax, k)
    bk = tax.branch_matrix(k)[:, cols].tocsr()
    # branches of the true most-specific nodes at depth >= k (a shallow node's branch set does not count)
    ms = y_true.most_specific.tocoo()
    keep = tax.depths[ms.col] >= k
    deep_truth = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.int32), (ms.row[keep], ms.col[keep])), shape=y_true.given.shape
    )
    tb = (deep_truth @ bk.astype(np.int32)).tocsr()
    has_deep_truth = row_counts(deep_truth) > 0
    deep = tax.depths[nodes] >= k
    disjoint = rowwise_overlap(bk[nodes], tb[rows]) == 0
    out = deep & has_deep_truth[rows] & disjoint
    shallow = _shallow_truth(y_true, k)
    if shallow.nnz and out.any():
        # covered when a shallow true node is an ancestor of p
        cand = np.flatnonzero(out)
        covered = rowwise_overlap(tax.ancestor_matrix[nodes[cand]], shallow[rows[cand]]) > 0
        out[cand[covered]] = False
    return out


def _shallow_truth(y_true: EncodedLabels, k: int) -> sp.csr_matrix:
    """Most-specific true nodes shallower than k (root included for an abstained truth), as a sparse matrix."""
    tax = y_true.taxonomy
    ms = y_true.most_specific.tocoo()
    keep = tax.depths[ms.col] < k
    rows = np.concatenate([ms.row[keep], np.flatnonzero(y_true.abstained)])
    cols = np.concatenate([ms.col[keep], np.zeros(int(y_true.abstained.sum()), dtype=ms.col.dtype)])
    return sp.csr_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=y_true.given.shape)


def predicted_items(enc: EncodedLabels) -> tuple[np.ndarray, np.ndarray]:
    """(sample, node) for every most-specific label, sorted by sample; an abstention is one item on the root."""
    if enc.single is not None:
        return np.arange(enc.n, dtype=np.int64), enc.single.astype(np.int64)
    ms = enc.most_specific.tocoo()
    abst = np.flatnonzero(enc.abstained)
    rows = np.concatenate([ms.row.astype(np.int64), abst])
    nodes = np.concatenate([ms.col.astype(np.int64), np.zeros(len(abst), dtype=np.int64)])
    order = np.lexsort((nodes, rows))
    return rows[order], nodes[order]


def sample_cae(y_true: EncodedLabels, y_pred: EncodedLabels, branch_depth: int) -> np.ndarray:
    """Per-sample Catastrophic Abstraction Error indicator (bool array of shape (n_samples,)).

    A sample is a CAE when one of its most-specific predicted nodes is (see :func:`item_cae`; its ``k`` is
    ``branch_depth``).
    """
    tax = y_true.taxonomy
    if y_true.single is not None and y_pred.single is not None:
        return cross_branch_pairs(tax, y_pred.single, y_true.single, branch_depth)
    rows, nodes = predicted_items(y_pred)
    bad = item_cae(y_true, rows, nodes, branch_depth)
    out = np.zeros(y_true.n, dtype=bool)
    out[rows[bad]] = True
    return out


def bad_node_matrix(y_true: EncodedLabels, branch_depth: int) -> np.ndarray:
    """Dense (n_samples, n_nodes) bool: ``bad[i, p]`` iff predicting ``p`` alone would be a CAE for sample i."""
    n, v = y_true.n, len(y_true.taxonomy)
    rows = np.repeat(np.arange(n, dtype=np.int64), v)
    nodes = np.tile(np.arange(v, dtype=np.int64), n)
    return item_cae(y_true, rows, nodes, branch_depth).reshape(n, v)
