"""Taxonomy-aware evaluation: hierarchical P/R/F, Catastrophic Abstraction Errors, severity, consistency.

Functions follow scikit-learn's metric shape ``f(y_true, y_pred, *, taxonomy, ...)``; labels may be
node ids (single-label), label sets (multi-label) or indicator arrays; trees and DAGs are supported.
Zero-shot scoring (:class:`ZeroShotScorer`) turns an encoder and a taxonomy's prompts into node
probabilities; :func:`map_answers` maps generative models' free-text answers to nodes.
"""

from medlens._results import MetricResult
from medlens.hierarchy._aggregate import AGGREGATORS, complete_node_scores, node_scores_from_leaves
from medlens.hierarchy._answers import ANSWER_METHODS, AnswerMatch, NodeMatch, map_answer, map_answers
from medlens.hierarchy._answers_run import run_map_answers
from medlens.hierarchy._catalog import METRICS
from medlens.hierarchy._core import bad_node_matrix, sample_cae
from medlens.hierarchy._decide import (
    DECISION_RULES,
    climb_paths,
    climb_predict,
    labels_from_indices,
    multilabel_predict,
    predict_labels,
)
from medlens.hierarchy._encode import EncodedLabels, encode_labels
from medlens.hierarchy._evaluate import HierarchicalReport, evaluate
from medlens.hierarchy._evaluate_run import run_evaluate
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
from medlens.hierarchy._prompts import (
    DEFAULT_TEMPLATES,
    PROMPT_SOURCES,
    PromptTable,
    build_prompt_table,
    read_prompt_file,
)
from medlens.hierarchy._stats import Ratio, bootstrap_ci, bootstrap_counts
from medlens.hierarchy._tables import (
    LabelTable,
    ScoreTable,
    align_ids,
    read_label_table,
    read_score_table,
    read_scores_with_truth,
    write_label_table,
    write_node_scores,
    write_score_table,
)
from medlens.hierarchy._zeroshot import (
    PlattScaler,
    ReportSentences,
    prompt_centroids,
    prompt_node_similarity,
    sentence_node_similarity,
)
from medlens.hierarchy._zeroshot_run import run_zeroshot
from medlens.hierarchy._zeroshot_scorer import INTERNAL_RULES, SCORING_METHODS, ZeroShotScorer

__all__ = [
    "run_evaluate",
    "run_map_answers",
    "run_zeroshot",
    "METRICS",
    "MetricResult",
    "PROMPT_SOURCES",
    "prompt_node_similarity",
    "prompt_centroids",
    "sentence_node_similarity",
    "ReportSentences",
    "DECISION_RULES",
    "bad_node_matrix",
    "climb_paths",
    "climb_predict",
    "labels_from_indices",
    "multilabel_predict",
    "predict_labels",
    "sample_cae",
    "LabelTable",
    "ScoreTable",
    "align_ids",
    "read_label_table",
    "read_score_table",
    "read_scores_with_truth",
    "write_label_table",
    "write_node_scores",
    "write_score_table",
    "AGGREGATORS",
    "ANSWER_METHODS",
    "AnswerMatch",
    "DEFAULT_TEMPLATES",
    "INTERNAL_RULES",
    "NodeMatch",
    "PlattScaler",
    "PromptTable",
    "SCORING_METHODS",
    "ZeroShotScorer",
    "build_prompt_table",
    "map_answer",
    "map_answers",
    "read_prompt_file",
    "CAEResult",
    "ConsistencyResult",
    "EncodedLabels",
    "ErrorBreakdown",
    "FlatMetrics",
    "HierarchicalPRF",
    "HierarchicalReport",
    "Ratio",
    "bootstrap_ci",
    "bootstrap_counts",
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
