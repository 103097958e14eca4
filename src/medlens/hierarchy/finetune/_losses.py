"""Taxonomy-aware training losses: radial embeddings, hierarchical cross-entropy, soft labels, BCE.

Every loss takes a :class:`ModelOutput` (node logits, input embeddings ``z``, node embeddings ``E``) and the
closed 0/1 truth over the non-root nodes (``targets``, shape (n, n_nodes - 1)), and returns
``(loss, parts)`` where ``parts`` holds the value of each term (floats, for logging).

* :class:`RadialTaxonomyLoss` — the spec of ``hierarchical-eval.md`` §6: multi-label BCE on cosine logits
  plus ``w_rad · L_rad`` (node norms on the radial target ``r0 + depth·Δ``) plus ``w_tree · L_tree``
  (parent–child cosine ≥ ``m_pc``, cross-branch cosine ≤ ``m_x``), plus an optional input radial term that
  puts ``‖z‖`` on the target of the deepest true node (the radial read-out). Terms are *means* over their
  nodes, edges and pairs (the note writes sums), so the default weights carry over between taxonomies of
  different sizes.
* :class:`HXELoss` — hierarchical cross-entropy (Bertinetto et al., CVPR 2020): leaf softmax, node
  probabilities by summation, ``-Σ_edges exp(-α (depth(c) - 1)) log p(c | parent(c))`` along the path of
  each most-specific true node (the reference code's weights up to the constant factor it normalises away).
  With α = 0 it is the cross-entropy of the true node. Trees only.
* :class:`SoftLabelLoss` — soft labels (Bertinetto et al., 2020): cross-entropy of the leaf softmax against
  ``softmax(-β · d(leaf, true))`` with ``d`` the normalised LCA height. Trees only.
* :class:`BCELoss` — plain multi-label BCE on the node logits (the flat baseline).

Multi-label samples contribute the mean of HXE / soft-label terms over their most-specific true nodes;
samples whose truth is the root (abstention) contribute nothing to those two losses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

from medlens._optional import require
from medlens._validation import InputError
from medlens.hierarchy.finetune._structure import TaxonomyArrays

torch = require("torch", extra="torch", purpose="taxonomy-aware fine-tuning")
F = torch.nn.functional

__all__ = [
    "BCELoss",
    "HXELoss",
    "LOSSES",
    "ModelOutput",
    "RadialConfig",
    "RadialTaxonomyLoss",
    "SoftLabelLoss",
    "make_loss",
    "soft_labels",
]


class ModelOutput(NamedTuple):
    logits: Any  # (n, n_nodes - 1)
    z: Any = None  # (n, dim) input embeddings, unnormalised
    nodes: Any = None  # (n_nodes - 1, dim) node embeddings, unnormalised


def _most_specific(targets: Any, arrays: TaxonomyArrays) -> Any:
    """Closed 0/1 targets → most-specific true columns (true with no true child)."""
    if len(arrays.edges) == 0:
        return targets
    e = torch.as_tensor(arrays.edges, device=targets.device)
    child_true = torch.zeros_like(targets)
    child_true.index_add_(1, e[:, 0], targets[:, e[:, 1]])
    return targets * (child_true == 0).to(targets.dtype)


class _Buffers(torch.nn.Module):
    def _buf(self, name: str, value: np.ndarray) -> None:
        self.register_buffer(name, torch.as_tensor(value), persistent=False)


class BCELoss(_Buffers):
    """Multi-label binary cross-entropy on the node logits (mean over samples and nodes)."""

    probability = "sigmoid"

    def __init__(self, arrays: TaxonomyArrays) -> None:
        super().__init__()
        self.arrays = arrays

    def forward(self, out: ModelOutput, targets: Any) -> tuple[Any, dict[str, float]]:
        loss = F.binary_cross_entropy_with_logits(out.logits, targets)
        return loss, {"bce": float(loss.detach())}


@dataclass(frozen=True)
class RadialConfig:
    """Weights and margins of :class:`RadialTaxonomyLoss` (defaults of ``hierarchical-eval.md`` §6)."""

    r0: float = 0.5
    delta: float = 0.5
    m_pc: float = 0.7
    m_x: float = 0.2
    w_rad: float = 0.1
    w_tree: float = 0.5
    w_rad_input: float = 0.1
    max_pairs: int | None = 200_000

    def __post_init__(self) -> None:
        for name in ("r0", "w_rad", "w_tree", "w_rad_input"):
            if getattr(self, name) < 0:
                raise InputError(f"radial loss: {name} must be >= 0, got {getattr(self, name)}.")
        if self.delta <= 0:
            raise InputError(f"radial loss: delta (radius step per level) must be > 0, got {self.delta}.")
        for name in ("m_pc", "m_x"):
            if not -1 <= getattr(self, name) <= 1:
                raise InputError(f"radial loss: {name} is a cosine margin in [-1, 1], got {getattr(self, name)}.")


class RadialTaxonomyLoss(_Buffers):
    """BCE on cosine logits + radial norm targets + parent–child and cross-branch cosine margins.

    Parameters
    ----------
    arrays : TaxonomyArrays
        The taxonomy (and branch depth ``k`` defining "cross-branch").
    config : RadialConfig
        ``r0, delta`` (target norm ``r0 + depth·delta``), ``m_pc`` (parent–child cosine floor), ``m_x``
        (cross-branch cosine ceiling), weights ``w_rad, w_tree, w_rad_input``; ``max_pairs`` caps the
        cross-branch pairs per step (sampled with a fixed generator beyond it, for large taxonomies).
    """

    probability = "sigmoid"

    def __init__(self, arrays: TaxonomyArrays, config: RadialConfig | None = None) -> None:
        super().__init__()
        self.arrays = arrays
        self.config = config or RadialConfig()
        c = self.config
        self._buf("target_norm", arrays.radial_targets(c.r0, c.delta))
        self._buf("edges", arrays.edges)
        cross = np.argwhere(np.triu(arrays.cross_branch, 1))
        if c.max_pairs is not None and len(cross) > c.max_pairs:
            pick = np.random.default_rng(0).choice(len(cross), c.max_pairs, replace=False)
            cross = cross[np.sort(pick)]
        self._buf("cross", cross.astype(np.int64).reshape(-1, 2))
        self._buf("depth", arrays.depth.astype(np.float32))

    def geometry(self, nodes: Any, z: Any = None, targets: Any = None) -> dict[str, Any]:
        """The embedding terms (tensors): ``rad`` (node norms), ``pc`` and ``cross`` (cosine margins), and
        ``rad_input`` (input norms vs the target of the deepest true node) when ``z`` and ``targets`` are given.
        """
        c = self.config
        norms = nodes.norm(dim=-1)
        terms = {"rad": ((norms - self.target_norm.to(norms)) ** 2).mean()}
        unit = F.normalize(nodes, dim=-1)
        zero = nodes.sum() * 0.0
        if len(self.edges):
            cos_pc = (unit[self.edges[:, 0]] * unit[self.edges[:, 1]]).sum(-1)
            terms["pc"] = F.relu(c.m_pc - cos_pc).mean()
        else:
            terms["pc"] = zero
        if len(self.cross):
            cos_x = (unit[self.cross[:, 0]] * unit[self.cross[:, 1]]).sum(-1)
            terms["cross"] = F.relu(cos_x - c.m_x).mean()
        else:
            terms["cross"] = zero
        if z is not None and targets is not None:
            deepest = (targets * self.depth.to(targets)).amax(dim=1)
            want = c.r0 + deepest * c.delta
            terms["rad_input"] = ((z.norm(dim=-1) - want) ** 2).mean()
        return terms

    def forward(self, out: ModelOutput, targets: Any) -> tuple[Any, dict[str, float]]:
        c = self.config
        task = F.binary_cross_entropy_with_logits(out.logits, targets)
        g = self.geometry(out.nodes, out.z, targets)
        loss = task + c.w_rad * g["rad"] + c.w_tree * (g["pc"] + g["cross"])
        if "rad_input" in g:
            loss = loss + c.w_rad_input * g["rad_input"]
        parts = {"bce": float(task.detach())} | {k: float(v.detach()) for k, v in g.items()}
        return loss, parts


def _leaf_log_probs(logits: Any, leaves: Any, leaf_to_node: Any) -> tuple[Any, Any]:
    """Leaf log-softmax and node log-probabilities (sum of their leaves) from node logits."""
    log_leaf = F.log_softmax(logits[:, leaves], dim=-1)
    # log p(v) = logsumexp over the leaves under v; masked log-sum-exp keeps it exact for tiny probabilities
    if leaf_to_node.numel() * logits.shape[0] <= 4_000_000:
        mask = torch.where(leaf_to_node.T > 0, 0.0, float("-inf")).to(log_leaf)  # (nodes, leaves)
        log_node = torch.logsumexp(log_leaf[:, None, :] + mask[None, :, :], dim=-1)
    else:  # large taxonomies: one matrix product, probabilities floored at the smallest normal float
        p_node = log_leaf.exp() @ leaf_to_node.to(log_leaf)
        log_node = p_node.clamp_min(torch.finfo(p_node.dtype).tiny).log()
    return log_leaf, log_node


class HXELoss(_Buffers):
    """Hierarchical cross-entropy with edge weights ``exp(-alpha · (depth(child) - 1))``. Trees only."""

    probability = "leaf_softmax"

    def __init__(self, arrays: TaxonomyArrays, alpha: float = 0.1) -> None:
        super().__init__()
        arrays.require_tree("the HXE loss")
        if alpha < 0:
            raise InputError(f"HXE alpha must be >= 0, got {alpha}.")
        self.arrays, self.alpha = arrays, float(alpha)
        self._buf("leaves", arrays.leaves)
        self._buf("leaf_to_node", arrays.leaf_to_node)
        self._buf("parent", arrays.parent)
        self._buf("weight", np.exp(-self.alpha * (arrays.depth - 1)).astype(np.float32))
        self._buf("path", arrays.ancestors)  # path[t, c] = 1 iff c lies on the root→t path

    def forward(self, out: ModelOutput, targets: Any) -> tuple[Any, dict[str, float]]:
        _, log_node = _leaf_log_probs(out.logits, self.leaves, self.leaf_to_node)
        parent_log = torch.where(
            self.parent >= 0, log_node[:, self.parent.clamp_min(0)], torch.zeros_like(log_node)
        )  # log p(parent); the root has probability 1
        term = self.weight * (parent_log - log_node)  # -w log p(c | parent(c)) per column
        ms = _most_specific(targets, self.arrays)
        per_target = ms * (term @ self.path.T.to(term))  # Σ over the path of each most-specific node
        count = ms.sum(dim=1)
        per_sample = per_target.sum(dim=1) / count.clamp_min(1)
        used = count > 0
        loss = per_sample[used].mean() if used.any() else out.logits.sum() * 0.0
        return loss, {"hxe": float(loss.detach())}


def soft_labels(arrays: TaxonomyArrays, true_columns: Any, beta: float) -> np.ndarray:
    """Soft targets over the leaves for the given true columns: ``softmax(-beta · d(leaf, true))``.

    >>> from medlens.taxonomy import Taxonomy
    >>> tax = Taxonomy.from_dict({"name": "t", "root": "r", "children": {"r": ["A", "B"], "A": ["a1", "a2"]}})
    >>> y = soft_labels(TaxonomyArrays(tax), [tax.index["a1"] - 1], beta=30.0)  # leaves in node order: B, a1, a2
    >>> [round(float(v), 3) for v in y[0]], round(float(y.sum()), 6)
    ([0.0, 1.0, 0.0], 1.0)
    """
    d = arrays.soft_distance[np.asarray(true_columns, dtype=np.int64)]
    w = np.exp(-beta * (d - d.min(axis=1, keepdims=True)))
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


class SoftLabelLoss(_Buffers):
    """Cross-entropy of the leaf softmax against Bertinetto et al.'s soft labels (hardness ``beta``)."""

    probability = "leaf_softmax"

    def __init__(self, arrays: TaxonomyArrays, beta: float = 10.0) -> None:
        super().__init__()
        arrays.require_tree("the soft-label loss")
        if beta <= 0:
            raise InputError(f"soft-label beta (hardness) must be > 0, got {beta}.")
        self.arrays, self.beta = arrays, float(beta)
        self._buf("leaves", arrays.leaves)
        self._buf("soft", soft_labels(arrays, np.arange(arrays.n), self.beta))  # (columns, leaves)

    def forward(self, out: ModelOutput, targets: Any) -> tuple[Any, dict[str, float]]:
        log_leaf = F.log_softmax(out.logits[:, self.leaves], dim=-1)
        ms = _most_specific(targets, self.arrays)
        count = ms.sum(dim=1)
        target = (ms @ self.soft.to(ms)) / count.clamp_min(1)[:, None]  # mean soft label of the true nodes
        per_sample = -(target * log_leaf).sum(dim=1)
        used = count > 0
        loss = per_sample[used].mean() if used.any() else out.logits.sum() * 0.0
        return loss, {"soft": float(loss.detach())}


LOSSES = ("radial", "hxe", "soft", "bce")


@dataclass(frozen=True)
class LossConfig:
    """Which loss and its parameters (recorded in the run manifest)."""

    name: str = "radial"
    radial: RadialConfig = RadialConfig()
    hxe_alpha: float = 0.1
    soft_beta: float = 10.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_loss(name: str, arrays: TaxonomyArrays, config: LossConfig | None = None) -> Any:
    """Build a loss by name (``radial | hxe | soft | bce``)."""
    config = config or LossConfig(name=name)
    if name == "radial":
        return RadialTaxonomyLoss(arrays, config.radial)
    if name == "hxe":
        return HXELoss(arrays, config.hxe_alpha)
    if name == "soft":
        return SoftLabelLoss(arrays, config.soft_beta)
    if name == "bce":
        return BCELoss(arrays)
    raise InputError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}.")
