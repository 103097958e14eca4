"""The one metric contract shared by ``hierarchy``, ``metrics`` and ``risk`` (and, next, ``fairness``).

Metric functions take ``(y_true, y_pred, *, sample_weight=None, <options>)``: truth first, prediction second,
options keyword-only. Scalars come back as Python ``float``; anything with several values comes back as a
frozen dataclass derived from :class:`MetricResult`, whose ``to_dict()`` is ready for ``json.dumps``.

``sample_weight`` is one non-negative finite weight per sample. Every weighted metric is a weighted mean over
samples (or a ratio of weighted sums), so a weight of 2 gives exactly the number of the sample listed twice.
Corpus-level metrics whose statistic is not a mean over samples (BLEU's pooled n-gram counts, CIDEr-D's
dataset-level IDF, COCO's pooled precision/recall curve) have no standard weighted form: they call
:func:`refuse_sample_weight`, which raises instead of silently ignoring the weights. Counts reported next to a
weighted value (``n``, ``n_errors``, ...) stay counts of samples.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from medlens._validation import InputError

__all__ = ["MetricResult", "check_sample_weight", "jsonable", "refuse_sample_weight", "weighted_mean"]


def jsonable(value: Any) -> Any:
    """``value`` with numpy arrays and scalars turned into lists and Python numbers, results into dicts.

    >>> jsonable({"a": np.arange(2), "b": (np.float64(0.5), np.int64(3))})
    {'a': [0, 1], 'b': [0.5, 3]}
    """
    if isinstance(value, MetricResult):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class MetricResult:
    """Base of every multi-valued metric result: a frozen dataclass with a JSON-ready :meth:`to_dict`.

    Subclasses list their fields as usual; ``to_dict()`` maps field names to values (numpy → lists, nested
    results → dicts). A subclass whose JSON has another layout overrides ``to_dict`` and may add keyword-only
    options (``per_sample=True``).
    """

    def to_dict(self) -> dict[str, Any]:
        """Field name → JSON-ready value."""
        return {f.name: jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


def check_sample_weight(sample_weight: Any, n: int, *, name: str = "sample_weight") -> np.ndarray | None:
    """``None``, or the weights as a float array of shape ``(n,)`` after checking them.

    Weights must be finite, non-negative and not all zero.

    >>> check_sample_weight([1, 2], 2).tolist()
    [1.0, 2.0]
    >>> check_sample_weight([1.0, -1.0], 2)
    Traceback (most recent call last):
    ...
    medlens._validation.InputError: sample_weight must be non-negative; got -1.0 at sample 1.
    """
    if sample_weight is None:
        return None
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numbers, one per sample; got {type(sample_weight).__name__}.") from None
    if w.ndim != 1 or len(w) != n:
        raise InputError(f"{name} must have one weight per sample, shape ({n},); got shape {w.shape}.")
    bad = np.flatnonzero(~np.isfinite(w))
    if len(bad):
        raise InputError(f"{name} must be finite; got {w[bad[0]]} at sample {int(bad[0])}.")
    neg = np.flatnonzero(w < 0)
    if len(neg):
        raise InputError(f"{name} must be non-negative; got {w[neg[0]]} at sample {int(neg[0])}.")
    if n and not w.sum() > 0:
        raise InputError(f"{name} sums to 0; give at least one sample a positive weight.")
    return w


def refuse_sample_weight(sample_weight: Any, *, metric: str, reason: str) -> None:
    """Raise when a corpus-level ``metric`` gets weights it cannot honour (see the module notes)."""
    if sample_weight is not None:
        raise InputError(
            f"{metric} does not take sample_weight: {reason}, so a per-sample weight has no standard meaning. "
            "Pass sample_weight=None (or repeat samples explicitly)."
        )


def weighted_mean(values: np.ndarray, weights: np.ndarray | None) -> float:
    """``values.mean()`` or, with weights, ``sum(w * v) / sum(w)`` (nan when there is nothing to average)."""
    v = np.asarray(values, dtype=np.float64)
    if weights is None:
        return float(v.mean()) if v.size else float("nan")
    w = np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    return float((w * v).sum() / total) if total > 0 else float("nan")
