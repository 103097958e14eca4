"""Flat baselines that ignore the hierarchy: accuracy, macro-F1 and per-label AUROC (scikit-learn)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from medlens._results import MetricResult, check_sample_weight
from medlens.hierarchy._encode import EncodedLabels

__all__ = ["FlatMetrics", "flat_metrics"]


@dataclass(frozen=True)
class FlatMetrics(MetricResult):
    """Flat metrics on most-specific labels (each node treated as an unrelated class)."""

    accuracy: float
    macro_f1: float
    macro_auroc: float | None = None
    auroc: dict[str, float] = field(default_factory=dict)


def _multilabel_flat(tm: sp.csr_matrix, pm: sp.csr_matrix, w: np.ndarray | None = None) -> tuple[float, float]:
    """Subset accuracy and macro-F1 over the labels present in truth or prediction, on sparse indicators.

    Equal to ``sklearn.metrics.accuracy_score`` / ``f1_score(average="macro", zero_division=0)`` on the dense
    indicator columns of those labels (with ``sample_weight=w``), without densifying (HPO has ~19k columns).
    """
    tm, pm = tm.astype(np.int8).tocsr(), pm.astype(np.int8).tocsr()
    diff = (tm - pm).tocsr()
    diff.eliminate_zeros()
    match = np.diff(diff.indptr) == 0
    if w is None:
        acc = float(match.mean())
        tp = np.asarray(tm.multiply(pm).sum(axis=0)).ravel()
        n_true = np.asarray(tm.sum(axis=0)).ravel()
        n_pred = np.asarray(pm.sum(axis=0)).ravel()
    else:  # column sums weighted by the sample weights: w @ X
        acc = float((w * match).sum() / w.sum())
        tp = np.asarray(tm.multiply(pm).T @ w).ravel()
        n_true = np.asarray(tm.T @ w).ravel()
        n_pred = np.asarray(pm.T @ w).ravel()
    # the labels that occur at all, whatever their weight (as scikit-learn's unique_labels)
    present = (n_true + n_pred) > 0 if w is None else np.asarray((tm + pm).sum(axis=0)).ravel() > 0
    if not present.any():
        return acc, 1.0
    den = n_true[present] + n_pred[present]  # 0 only for a label seen in zero-weight samples: F1 0, as sklearn
    f1 = np.divide(2 * tp[present], den, out=np.zeros(len(den)), where=den > 0)
    return acc, float(f1.mean())


def flat_metrics(
    t: EncodedLabels, p: EncodedLabels, node_scores: np.ndarray | None = None, *, sample_weight: Any = None
) -> FlatMetrics:
    """Accuracy (exact match of the most-specific label sets), macro-F1 over labels, per-label AUROC.

    Single-label: accuracy and macro-F1 as :func:`sklearn.metrics.accuracy_score` / ``f1_score(average=
    "macro")`` on node ids. Multi-label: subset accuracy and macro-F1 over most-specific indicator
    columns that occur in the truth or the prediction. AUROC per node (``node_scores`` in taxonomy order)
    against the closed truth, for nodes with both classes present (with positive weight). ``sample_weight``
    is passed to scikit-learn (and weighs the multi-label counts the same way).
    """
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    tax = t.taxonomy
    w = check_sample_weight(sample_weight, t.n)
    if t.single is not None and p.single is not None:
        acc = accuracy_score(t.single, p.single, sample_weight=w)
        mf1 = f1_score(t.single, p.single, average="macro", zero_division=0, sample_weight=w)
    else:
        acc, mf1 = _multilabel_flat(t.most_specific, p.most_specific, w)
    auroc: dict[str, float] = {}
    if node_scores is not None:
        closed = t.closure.toarray()
        for v in range(1, len(tax)):
            y = closed[:, v]
            has_both = 0 < y.sum() < len(y) if w is None else (w * y).sum() > 0 and (w * (1 - y)).sum() > 0
            if has_both:
                auroc[tax.nodes[v]] = float(roc_auc_score(y, node_scores[:, v], sample_weight=w))
    macro_auc = float(np.mean(list(auroc.values()))) if auroc else None
    return FlatMetrics(float(acc), float(mf1), macro_auc, auroc)
