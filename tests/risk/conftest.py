"""Fixtures for the risk-control tests: a synthetic softmax-over-leaves problem (``toy_tree`` is in tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

from medlens.hierarchy import node_scores_from_leaves
from medlens.taxonomy import Taxonomy


def _synthetic(taxonomy: Taxonomy, n: int, rng: np.random.Generator, *, signal: float = 2.0, noise: float = 1.0):
    """Softmax-over-leaves scores from noisy logits; the true leaf is drawn uniformly.

    Returns node scores (taxonomy order, ``sum`` aggregation) and the true leaf ids.
    """
    leaves = np.array(taxonomy.leaves)
    y = rng.integers(0, len(leaves), n)
    logits = noise * rng.normal(size=(n, len(leaves)))
    logits[np.arange(n), y] += signal
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return node_scores_from_leaves(p, taxonomy=taxonomy, aggregator="sum"), leaves[y]


@pytest.fixture(scope="session")
def synthetic():
    """``synthetic(taxonomy, n, rng, signal=2.0, noise=1.0) -> (node_scores, y_true)``."""
    return _synthetic
