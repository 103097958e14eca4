"""Aggregation heads over per-view features ``(B, V, D)`` → class logits ``(B, 2)``, at one parameter budget.

* ``graph``: one edge-weighted SAGE layer (restated from the TomoGraphView note): for node ``i`` with
  neighbours ``j`` and edge weights ``w_ij``, ``m_i = [mean_j w_ij x_j ‖ max_j w_ij x_j]``,
  ``h_i = W_l m_i + b + W_r x_i``; then BatchNorm → ReLU, mean over the nodes, ``Linear(hidden, 2)``.
  Parameters ``3·D·h + 5·h + 2`` (``D = 384, h = 86``: 99,504). Built on ``torch_geometric``'s
  ``MessagePassing`` (the ``graph`` extra).
* ``mlp``: the views' features concatenated, ``Linear(V·D, h)`` → BatchNorm → ReLU → ``Linear(h, 2)``.
* ``mean`` / ``attention``: mean or gated-attention pooling over views (Ilse et al. 2018: ``a = softmax(wᵀ
  tanh(U x))``, ``U`` with 64 rows), then the same ``Linear → BN → ReLU → Linear``.

Each head's hidden width is the largest that keeps it within ``budget`` parameters (default 100,000).
Importing this module imports torch.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._validation import InputError, check_option

torch = require("torch", extra="torch", purpose="the multi-view heads")
nn = torch.nn

__all__ = ["HEADS", "GraphHead", "MLPHead", "PoolHead", "WeightedSAGEConv", "build_head", "n_parameters"]

HEADS = ("graph", "mlp", "mean", "attention")
_ATTENTION = 64


def _message_passing() -> Any:
    # torch_geometric scripts a few helpers at import, which torch >= 2.10 answers with a FutureWarning per
    # process (TorchScript is deprecated); it is the library's, not the user's, so it is kept off their terminal
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        return require("torch_geometric.nn", extra="graph", purpose="the graph head").MessagePassing


def n_parameters(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


class WeightedSAGEConv(_message_passing()):
    """``h_i = W_l [mean_j w_ij x_j ‖ max_j w_ij x_j] + b + W_r x_i`` over the edges ``j → i`` of ``edge_index``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(aggr=["mean", "max"])
        self.lin_l = nn.Linear(2 * in_channels, out_channels, bias=True)
        self.lin_r = nn.Linear(in_channels, out_channels, bias=False)

    def forward(self, x: Any, edge_index: Any, edge_weight: Any) -> Any:
        m = self.propagate(edge_index, x=x, edge_weight=edge_weight)
        return self.lin_l(m) + self.lin_r(x)

    def message(self, x_j: Any, edge_weight: Any) -> Any:
        return edge_weight.view(-1, 1) * x_j


class GraphHead(nn.Module):
    """:class:`WeightedSAGEConv` → BatchNorm → ReLU → mean over views → ``Linear(hidden, 2)``, one fixed graph."""

    def __init__(self, dim: int, hidden: int, edge_index: np.ndarray, edge_weight: np.ndarray, n_views: int):
        super().__init__()
        self.conv = WeightedSAGEConv(dim, hidden)
        self.norm = nn.BatchNorm1d(hidden)
        self.out = nn.Linear(hidden, 2)
        self.n_views = int(n_views)
        self.register_buffer("edge_index", torch.as_tensor(np.asarray(edge_index), dtype=torch.long))
        self.register_buffer("edge_weight", torch.as_tensor(np.asarray(edge_weight), dtype=torch.float32))

    def forward(self, x: Any) -> Any:
        b, v, d = x.shape
        e = self.edge_index.shape[1]
        offsets = (torch.arange(b, device=x.device) * v).repeat_interleave(e)
        ei = self.edge_index.repeat(1, b) + offsets[None]
        ew = self.edge_weight.repeat(b)
        h = torch.relu(self.norm(self.conv(x.reshape(b * v, d), ei, ew)))
        return self.out(h.reshape(b, v, -1).mean(dim=1))


class MLPHead(nn.Module):
    """Concatenated view features → ``Linear(V·D, hidden)`` → BatchNorm → ReLU → ``Linear(hidden, 2)``."""

    def __init__(self, dim: int, hidden: int, n_views: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(n_views * dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, 2)
        )

    def forward(self, x: Any) -> Any:
        return self.net(x)


class PoolHead(nn.Module):
    """Mean or gated-attention pooling over views, then ``Linear → BatchNorm → ReLU → Linear(hidden, 2)``."""

    def __init__(self, dim: int, hidden: int, mode: str = "mean"):
        super().__init__()
        self.mode = check_option(mode, ("mean", "attention"), name="pooling")
        if mode == "attention":
            self.att_u = nn.Linear(dim, _ATTENTION)
            self.att_w = nn.Linear(_ATTENTION, 1)
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def attention(self, x: Any) -> Any:
        """The ``(B, V)`` pooling weights (uniform for ``mean``)."""
        if self.mode == "mean":
            return torch.full(x.shape[:2], 1.0 / x.shape[1], device=x.device, dtype=x.dtype)
        return torch.softmax(self.att_w(torch.tanh(self.att_u(x)))[..., 0], dim=1)

    def forward(self, x: Any) -> Any:
        return self.net((self.attention(x)[..., None] * x).sum(dim=1))


def _hidden(budget: int, per_unit: int, fixed: int, kind: str) -> int:
    h = (int(budget) - fixed) // per_unit
    if h < 1:
        raise InputError(f"a {kind} head does not fit in {budget} parameters; raise the budget.")
    return h


def build_head(
    kind: str,
    *,
    n_views: int,
    dim: int,
    budget: int = 100_000,
    edge_index: np.ndarray | None = None,
    edge_weight: np.ndarray | None = None,
) -> Any:
    """A head of ``kind`` (``graph``, ``mlp``, ``mean``, ``attention``) with as many hidden units as fit ``budget``.

    ``graph`` needs the view graph (``edge_index``, ``edge_weight`` from :func:`view_graph`).
    """
    check_option(kind, HEADS, name="head")
    if kind == "graph":
        if edge_index is None or edge_weight is None:
            raise InputError("the graph head needs edge_index and edge_weight (see view_graph).")
        return GraphHead(dim, _hidden(budget, 3 * dim + 5, 2, kind), edge_index, edge_weight, n_views)
    if kind == "mlp":
        return MLPHead(dim, _hidden(budget, n_views * dim + 5, 2, kind), n_views)
    fixed = 2 + ((dim + 1) * _ATTENTION + _ATTENTION + 1 if kind == "attention" else 0)
    return PoolHead(dim, _hidden(budget, dim + 5, fixed, kind), kind)
