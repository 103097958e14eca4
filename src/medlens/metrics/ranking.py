"""Ranking metrics over many columns at once: per-column AUROC by the Mann–Whitney rank formula.

``auroc_columns(y_true, y_score)`` equals scikit-learn's ``roc_auc_score`` applied column by column (ties count
one half, through average ranks), without its per-call validation cost: one ``rankdata`` over the whole matrix.
A column with a single class has no AUROC (NaN); :func:`macro_auroc` averages the others.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medlens._validation import InputError

__all__ = ["auroc_columns", "macro_auroc"]


def auroc_columns(y_true: Any, y_score: Any) -> np.ndarray:
    """AUROC of every column of ``y_score`` (n, k) against the 0/1 column of ``y_true`` (n, k); NaN if one class.

    >>> auroc_columns([[1, 0], [0, 0], [1, 1]], [[0.9, 0.2], [0.1, 0.5], [0.5, 0.5]]).tolist()
    [1.0, 0.75]
    """
    from scipy.stats import rankdata

    t = np.asarray(y_true)
    s = np.asarray(y_score, dtype=np.float64)
    if t.ndim == 1:
        t, s = t[:, None], s.reshape(-1, 1)
    if t.shape != s.shape or t.ndim != 2:
        raise InputError(f"y_true and y_score must have one shape (n, columns); got {t.shape} and {s.shape}.")
    if not np.isin(t, (0, 1)).all():
        raise InputError("y_true must hold 0/1 values.")
    if not np.isfinite(s).all():
        raise InputError("y_score must be finite.")
    t = t.astype(bool)
    pos = t.sum(axis=0)
    neg = len(t) - pos
    ranks = rankdata(s, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * t).sum(axis=0) - pos * (pos + 1) / 2.0) / (pos * neg)
    return np.where((pos > 0) & (neg > 0), auc, np.nan)


def macro_auroc(y_true: Any, y_score: Any) -> float:
    """Mean of :func:`auroc_columns` over the columns that have both classes (NaN when none has)."""
    a = auroc_columns(y_true, y_score)
    return float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")
