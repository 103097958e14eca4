"""The fine-tuned model: an encoder tower, a projection head whose output length can vary, node embeddings.

``z = proj(tower(x))`` is the input embedding (no L2 normalisation: its length is free to carry depth);
``E = node_proj(node_features)`` are the node embeddings, from the encoder's own prompt embeddings of
each node (text or image-text encoders) or from one-hot vectors (image-only encoders: free embeddings).
Logits are cosine similarities over a temperature plus a per-node bias; probabilities are sigmoids
(radial, bce) or sums of a leaf softmax (hxe, soft).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medlens._optional import require
from medlens.hierarchy.finetune._losses import ModelOutput
from medlens.hierarchy.finetune._structure import TaxonomyArrays

torch = require("torch", extra="torch", purpose="taxonomy-aware fine-tuning")
F = torch.nn.functional

__all__ = ["TaxonomyModel", "node_probabilities"]


class TaxonomyModel(torch.nn.Module):
    """Encoder tower + projection head + node table → :class:`ModelOutput`.

    Parameters
    ----------
    tower : medlens.encoders.Tower
        The trainable view of the encoder's input modality.
    node_features : array of shape (n_nodes - 1, f)
        One feature vector per non-root node (prompt embeddings, or the identity for free embeddings).
    dim : int, optional
        Embedding size of the heads (default: the tower's feature size; the input head then starts as the
        identity so training starts from the encoder's own geometry).
    temperature : float
        Cosine logits are divided by it (CLIP's 0.07 by default).
    """

    def __init__(self, tower: Any, node_features: np.ndarray, *, dim: int | None = None, temperature: float = 0.07):
        super().__init__()
        self.encoder = tower.module
        self.tower = tower
        in_dim = int(tower.dim)
        dim = int(dim or in_dim)
        nf = np.asarray(node_features, dtype=np.float32)
        self.proj = torch.nn.Linear(in_dim, dim)
        self.node_proj = torch.nn.Linear(nf.shape[1], dim)
        with torch.no_grad():
            for lin, fan_in in ((self.proj, in_dim), (self.node_proj, nf.shape[1])):
                if fan_in == dim:
                    lin.weight.copy_(torch.eye(dim))
                    lin.bias.zero_()
        self.register_buffer("node_features", torch.as_tensor(nf))
        self.bias = torch.nn.Parameter(torch.zeros(nf.shape[0]))
        self.temperature = float(temperature)

    def head_parameters(self) -> list[Any]:
        return [*self.proj.parameters(), *self.node_proj.parameters(), self.bias]

    def embed(self, batch: Any) -> Any:
        """Input embeddings ``z`` (unnormalised) of a prepared batch."""
        return self.proj(self.tower.forward(batch).float())

    def node_embeddings(self) -> Any:
        return self.node_proj(self.node_features)

    def head(self, feats: Any) -> ModelOutput:
        """Logits from tower features (lets callers cache the features of a frozen encoder)."""
        z = self.proj(feats.float())
        nodes = self.node_embeddings()
        logits = F.normalize(z, dim=-1) @ F.normalize(nodes, dim=-1).T / self.temperature + self.bias
        return ModelOutput(logits, z, nodes)

    def forward(self, batch: Any) -> ModelOutput:
        return self.head(self.tower.forward(batch))


def node_probabilities(logits: Any, kind: str, arrays: TaxonomyArrays) -> np.ndarray:
    """Node probabilities in ``taxonomy.nodes`` order (root column = 1) from node logits.

    ``kind="sigmoid"``: one independent sigmoid per node (radial, bce). ``kind="leaf_softmax"``: softmax over
    the leaves, a node's probability is the sum over its leaves (hxe, soft).
    """
    logits = logits.detach().float()
    if kind == "sigmoid":
        p = torch.sigmoid(logits)
    else:
        leaf = torch.softmax(logits[:, torch.as_tensor(arrays.leaves)], dim=-1)
        p = (leaf @ torch.as_tensor(arrays.leaf_to_node)).clamp(0.0, 1.0)
    out = np.ones((p.shape[0], p.shape[1] + 1), dtype=np.float64)
    out[:, 1:] = p.cpu().numpy()
    return out
