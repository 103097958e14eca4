"""The view graph, the edge-weighted SAGE layer against a hand-computed example, and the heads' budgets."""

from __future__ import annotations

import numpy as np
import pytest

from medlens.multiview import view_graph
from medlens.slicing import plane_normals

torch = pytest.importorskip("torch")
pytest.importorskip("torch_geometric")

from medlens.multiview import HEADS, WeightedSAGEConv, build_head, n_parameters  # noqa: E402


def test_complete_graph_weights_follow_plane_angles():
    n = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])  # 0 and 1 are the same plane
    g = view_graph(n, sigma_deg=45.0)
    assert g.edge_index.shape == (2, 6)
    w = {(int(a), int(b)): float(x) for a, b, x in zip(*g.edge_index, g.edge_weight, strict=True)}
    assert w[0, 1] == pytest.approx(1.0)
    assert w[0, 2] == pytest.approx(np.exp(-4.0))  # 90° / 45° = 2
    assert w[0, 2] == w[2, 0]


def test_knn_graph_is_symmetric_and_joins_nearest_planes():
    normals = plane_normals(12)
    g = view_graph(normals, k=3)
    edges = set(map(tuple, g.edge_index.T.tolist()))
    assert all((b, a) in edges for a, b in edges)
    d = np.degrees(np.arccos(np.clip(np.abs(normals @ normals.T), 0, 1)))
    np.fill_diagonal(d, np.inf)
    for i in range(12):
        for j in np.argsort(d[i], kind="stable")[:3]:
            assert (int(j), i) in edges
    assert not any(a == b for a, b in edges)


def test_weighted_sage_two_nodes_by_hand():
    conv = WeightedSAGEConv(2, 1)
    with torch.no_grad():
        conv.lin_l.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
        conv.lin_l.bias.fill_(0.5)
        conv.lin_r.weight.copy_(torch.tensor([[10.0, -1.0]]))
    x = torch.tensor([[1.0, 2.0], [3.0, -4.0]])
    ei = torch.tensor([[0, 1], [1, 0]])  # 0 -> 1 and 1 -> 0
    ew = torch.tensor([0.5, 0.25])
    out = conv(x, ei, ew)
    # node 0 receives 0.25 * x1 = (0.75, -1): mean = max = (0.75, -1)
    # h0 = 1*0.75 + 2*(-1) + 3*0.75 + 4*(-1) + 0.5 + 10*1 - 1*2 = 5.5
    # node 1 receives 0.5 * x0 = (0.5, 1): h1 = 0.5 + 2 + 1.5 + 4 + 0.5 + 30 + 4 = 42.5
    assert out[:, 0].tolist() == pytest.approx([5.5, 42.5])


def test_weighted_sage_mean_and_max_differ_with_two_neighbours():
    conv = WeightedSAGEConv(1, 1)
    with torch.no_grad():
        conv.lin_l.weight.copy_(torch.tensor([[1.0, 100.0]]))
        conv.lin_l.bias.zero_()
        conv.lin_r.weight.zero_()
    x = torch.tensor([[0.0], [2.0], [6.0]])
    ei = torch.tensor([[1, 2], [0, 0]])
    out = conv(x, ei, torch.tensor([1.0, 0.5]))
    # node 0: messages 2 and 3 → mean 2.5, max 3 → 2.5 + 300; nodes 1, 2 receive nothing (zeros)
    assert out[:, 0].tolist() == pytest.approx([302.5, 0.0, 0.0])


@pytest.mark.parametrize("kind", HEADS)
def test_heads_fit_the_budget_and_give_two_logits(kind):
    g = view_graph(plane_normals(8), k=4)
    head = build_head(kind, n_views=8, dim=384, edge_index=g.edge_index, edge_weight=g.edge_weight)
    assert 0.9 * 100_000 < n_parameters(head) <= 100_000
    assert head(torch.randn(3, 8, 384)).shape == (3, 2)
    if kind == "graph":
        assert n_parameters(head) == 99_504  # the note's budget: D = 384, hidden 86


def test_graph_head_is_invariant_to_the_order_of_samples_in_a_batch():
    g = view_graph(plane_normals(6), k=2)
    head = build_head("graph", n_views=6, dim=5, budget=500, edge_index=g.edge_index, edge_weight=g.edge_weight)
    head.eval()
    x = torch.randn(4, 6, 5)
    with torch.no_grad():
        a, b = head(x), head(x.flip(0)).flip(0)
        one = head(x[2:3])
    assert torch.allclose(a, b, atol=1e-6)
    assert torch.allclose(a[2:3], one, atol=1e-6)
