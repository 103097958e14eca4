"""The graph over views: nodes are planes, edges join planes of close orientation (numpy only).

Plane distance is the angle between lines, ``d_ij = arccos |n_i · n_j|`` in degrees (a normal and its negative
are one plane; :func:`medlens.slicing.plane_angles`). Edge weights are ``w_ij = exp(−(d_ij / σ)²)``. Two
topologies: the weighted complete graph (``k=None``), or each node joined to its ``k`` nearest planes (ties by
index), symmetrised, so an edge kept by either end is kept both ways. No self-loops: the layer has its own root
weight. Planes with the same normal (a parallel stack) are at distance 0 and get weight 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medlens._validation import InputError
from medlens.slicing import plane_angles

__all__ = ["ViewGraph", "view_graph"]


@dataclass(frozen=True)
class ViewGraph:
    """Directed edges (both directions of every undirected edge) with their weights and plane angles."""

    edge_index: np.ndarray  # (2, E) int64: row 0 source j, row 1 target i
    edge_weight: np.ndarray  # (E,) float32
    angle_deg: np.ndarray  # (E,) float64
    n_nodes: int
    k: int | None
    sigma_deg: float

    def to_dict(self) -> dict:
        return {
            "n_nodes": self.n_nodes,
            "n_edges": int(self.edge_index.shape[1]),
            "k": self.k,
            "sigma_deg": self.sigma_deg,
            "mean_edge_angle_deg": float(self.angle_deg.mean()) if self.angle_deg.size else None,
        }


def view_graph(normals: np.ndarray, *, k: int | None = None, sigma_deg: float = 30.0) -> ViewGraph:
    """The graph of planes with unit ``normals`` (n, 3).

    >>> g = view_graph(np.eye(3)[[2, 1, 0]], k=1)  # three orthogonal planes: ties go to the lower index
    >>> g.edge_index.tolist(), g.angle_deg.tolist()
    ([[0, 0, 1, 2], [1, 2, 0, 0]], [90.0, 90.0, 90.0, 90.0])
    """
    n = np.asarray(normals, dtype=float)
    if n.ndim != 2 or n.shape[1] != 3:
        raise InputError(f"normals must have shape (n, 3); got {n.shape}.")
    if not sigma_deg > 0:
        raise InputError(f"sigma_deg must be > 0; got {sigma_deg!r}.")
    m = len(n)
    if m < 2:
        empty = np.zeros((2, 0), dtype=np.int64)
        return ViewGraph(empty, np.zeros(0, np.float32), np.zeros(0), m, k, float(sigma_deg))
    d = plane_angles(n)
    adj = ~np.eye(m, dtype=bool)
    if k is not None:
        if isinstance(k, bool) or int(k) < 1:
            raise InputError(f"k (nearest planes per view) must be a positive integer; got {k!r}.")
        kk = min(int(k), m - 1)
        order = np.lexsort((np.broadcast_to(np.arange(m), (m, m)), d + np.where(adj, 0.0, np.inf)), axis=1)
        near = np.zeros((m, m), dtype=bool)
        near[np.arange(m)[:, None], order[:, :kk]] = True
        adj = near | near.T
    src, tgt = np.nonzero(adj)
    ang = d[src, tgt]
    w = np.exp(-((ang / float(sigma_deg)) ** 2)).astype(np.float32)
    return ViewGraph(np.stack([src, tgt]).astype(np.int64), w, ang, m, None if k is None else int(k), float(sigma_deg))
