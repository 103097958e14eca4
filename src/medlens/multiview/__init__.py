"""Multi-view aggregation for 3-D volumes (TomoGraphView): encode many planes with a frozen 2-D encoder, join the
views in a graph over plane orientations, and train a small head with patient-level cross-validation.

>>> import numpy as np
>>> from medlens.multiview import view_graph
>>> view_graph(np.eye(3), k=2).edge_index.shape
(2, 6)

Importing this package imports neither torch nor torch_geometric: the heads (``build_head``,
``WeightedSAGEConv``, ...) load them on first use (the ``torch`` and ``graph`` extras).
"""

from typing import Any

from medlens.multiview._cv import CVResult, binary_metrics, bootstrap_metrics, cross_validate, patient_folds, train_head
from medlens.multiview._encoder import RandomConvEncoder, encode_views, encoder_id, pixel_batch
from medlens.multiview._features import (
    LAYOUTS,
    ViewFeatures,
    array_sha256,
    layout_features,
    view_features,
    view_layout,
)
from medlens.multiview._graph import ViewGraph, view_graph
from medlens.multiview._run import read_cases, run_multiview_evaluate, run_multiview_extract, run_multiview_train

_HEAD_NAMES = ("HEADS", "GraphHead", "MLPHead", "PoolHead", "WeightedSAGEConv", "build_head", "n_parameters")

__all__ = [
    "LAYOUTS",
    "CVResult",
    "RandomConvEncoder",
    "ViewFeatures",
    "ViewGraph",
    "array_sha256",
    "binary_metrics",
    "bootstrap_metrics",
    "cross_validate",
    "encode_views",
    "encoder_id",
    "layout_features",
    "patient_folds",
    "pixel_batch",
    "read_cases",
    "run_multiview_evaluate",
    "run_multiview_extract",
    "run_multiview_train",
    "train_head",
    "view_features",
    "view_graph",
    "view_layout",
    *_HEAD_NAMES,
]


def __getattr__(name: str) -> Any:
    if name in _HEAD_NAMES:
        from medlens.multiview import _heads

        return getattr(_heads, name)
    raise AttributeError(f"module 'medlens.multiview' has no attribute {name!r}")
