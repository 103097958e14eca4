"""Taxonomy-aware evaluation: hierarchical P/R/F, Catastrophic Abstraction Errors, severity, consistency.

Functions follow scikit-learn's metric shape ``f(y_true, y_pred, *, taxonomy, ...)``; labels may be
node ids (single-label), label sets (multi-label) or indicator arrays; trees and DAGs are supported.
"""

from medlens.hierarchy._aggregate import AGGREGATORS, complete_node_scores, node_scores_from_leaves
from medlens.hierarchy._encode import EncodedLabels, encode_labels
from medlens.hierarchy._evaluate import HierarchicalReport, evaluate
from medlens.hierarchy._flat import FlatMetrics, flat_metrics
from medlens.hierarchy._metrics import (
    CAEResult,
    ConsistencyResult,
    ErrorBreakdown,
    HierarchicalPRF,
    branch_confusion,
    cae_rate,
    consistency_violations,
    error_breakdown,
    hierarchical_distance_at_k,
    hierarchical_precision_recall_fscore,
    mean_tree_distance,
    mistake_severity,
)
from medlens.hierarchy._stats import Ratio, bootstrap_ci

__all__ = [
    "AGGREGATORS",
    "CAEResult",
    "ConsistencyResult",
    "EncodedLabels",
    "ErrorBreakdown",
    "FlatMetrics",
    "HierarchicalPRF",
    "HierarchicalReport",
    "Ratio",
    "bootstrap_ci",
    "branch_confusion",
    "cae_rate",
    "complete_node_scores",
    "consistency_violations",
    "encode_labels",
    "error_breakdown",
    "evaluate",
    "flat_metrics",
    "hierarchical_distance_at_k",
    "hierarchical_precision_recall_fscore",
    "mean_tree_distance",
    "mistake_severity",
    "node_scores_from_leaves",
]
