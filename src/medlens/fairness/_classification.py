"""Disaggregated metrics and classification parity, equal to fairlearn's ``MetricFrame`` and its named measures.

:func:`disaggregate` evaluates any ``metric(y_true, y_pred, *, sample_weight=None)`` overall and per group of one or
several sensitive features (several: their observed combinations, keyed by tuples) and gives fairlearn's
summaries: ``group_min``/``group_max``, ``difference`` (``between_groups``: max − min; ``to_overall``: max
|group − overall|) and ``ratio`` (``between_groups``: min / max; ``to_overall``: min of group/overall folded below 1).

Differences from fairlearn, on purpose: only observed combinations are groups (fairlearn lists empty cells of the
cartesian product as NaN); ``min_group_size`` (off by default, for parity) leaves smaller groups out of the
summaries with a :class:`SmallGroupWarning`. As in fairlearn ≥ 0.15, a missing sensitive value is an error (use
:func:`medlens.fairness.group_report`'s ``missing`` policy for score reports).

Rates follow fairlearn: a group without positives (negatives) has a true (false) positive rate of 0.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medlens._results import MetricResult, check_sample_weight, weighted_mean
from medlens._validation import InputError, check_option, check_same_length
from medlens.fairness._groups import SmallGroupWarning

__all__ = [
    "COMPARE_METHODS",
    "Disaggregated",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "disaggregate",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "false_positive_rate",
    "selection_rate",
    "true_positive_rate",
]

COMPARE_METHODS = ("between_groups", "to_overall")
"""How ``difference``/``ratio`` compare groups: with each other, or each with the overall value."""


def _binary(y: Any, name: str, pos_label: Any) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1:
        raise InputError(f"{name} must be one label per sample, shape (n,); got shape {a.shape}.")
    return a == pos_label


def selection_rate(y_true: Any, y_pred: Any, *, sample_weight: Any = None, pos_label: Any = 1) -> float:
    """Share of predictions equal to ``pos_label`` (``y_true`` is ignored).

    >>> selection_rate([0, 0, 1, 1], [1, 0, 1, 1])
    0.75
    """
    p = _binary(y_pred, "y_pred", pos_label)
    if not len(p):
        raise InputError("selection_rate needs at least one prediction; got none.")
    return weighted_mean(p, check_sample_weight(sample_weight, len(p)))


def _rate(y_true: Any, y_pred: Any, sample_weight: Any, pos_label: Any, positives: bool) -> float:
    t = _binary(y_true, "y_true", pos_label)
    p = _binary(y_pred, "y_pred", pos_label)
    check_same_length(t, p)
    w = check_sample_weight(sample_weight, len(t))
    w = np.ones(len(t)) if w is None else w
    mask = t if positives else ~t
    den = float(w[mask].sum())
    return float(w[mask & p].sum() / den) if den > 0 else 0.0


def true_positive_rate(y_true: Any, y_pred: Any, *, sample_weight: Any = None, pos_label: Any = 1) -> float:
    """Recall of ``pos_label`` (0 when there is no positive, as fairlearn).

    >>> true_positive_rate([1, 1, 0, 0], [1, 0, 1, 0])
    0.5
    """
    return _rate(y_true, y_pred, sample_weight, pos_label, True)


def false_positive_rate(y_true: Any, y_pred: Any, *, sample_weight: Any = None, pos_label: Any = 1) -> float:
    """Share of negatives predicted positive (0 when there is no negative, as fairlearn).

    >>> false_positive_rate([1, 1, 0, 0], [1, 0, 1, 1])
    1.0
    """
    return _rate(y_true, y_pred, sample_weight, pos_label, False)


@dataclass(frozen=True)
class Disaggregated(MetricResult):
    """A metric overall and per group, with fairlearn's summaries (see the module notes).

    ``by_group`` maps a group (a value, or a tuple for several features) to its value; ``n`` to its sample
    count; ``excluded`` lists groups under ``min_group_size``, left out of the summaries.
    """

    metric: str
    overall: float
    by_group: dict[Any, float]
    n: dict[Any, int]
    excluded: tuple[Any, ...] = ()
    features: tuple[str, ...] = field(default_factory=tuple)

    def _values(self) -> np.ndarray:
        return np.array([v for g, v in self.by_group.items() if g not in self.excluded], dtype=np.float64)

    def group_min(self) -> float:
        """Smallest group value (NaN values skipped, as pandas does)."""
        return float(np.nanmin(self._values()))

    def group_max(self) -> float:
        """Largest group value."""
        return float(np.nanmax(self._values()))

    def difference(self, method: str = "between_groups") -> float:
        """``between_groups``: max − min; ``to_overall``: max |group − overall|."""
        check_option(method, COMPARE_METHODS, name="method")
        if method == "between_groups":
            return self.group_max() - self.group_min()
        return float(np.nanmax(np.abs(self._values() - self.overall)))

    def ratio(self, method: str = "between_groups") -> float:
        """``between_groups``: min / max; ``to_overall``: min over groups of group/overall, folded to ≤ 1."""
        check_option(method, COMPARE_METHODS, name="method")
        with np.errstate(invalid="ignore", divide="ignore"):
            if method == "between_groups":
                return float(self.group_min() / self.group_max())
            r = self._values() / self.overall
            r = np.where(r > 1, 1.0 / r, r)
        return float(np.nanmin(r))

    def to_dict(self) -> dict[str, Any]:
        def key(g: Any) -> str:
            return "&".join(map(str, g)) if isinstance(g, tuple) else str(g)

        return {
            "metric": self.metric,
            "features": list(self.features),
            "overall": self.overall,
            "by_group": [
                {"group": key(g), "n": self.n[g], "value": v, "excluded": g in self.excluded}
                for g, v in self.by_group.items()
            ],
            "group_min": self.group_min(),
            "group_max": self.group_max(),
            "difference": {m: self.difference(m) for m in COMPARE_METHODS},
            "ratio": {m: self.ratio(m) for m in COMPARE_METHODS},
        }


def _group_keys(sensitive_features: Any, n: int) -> tuple[list[Any], tuple[str, ...]]:
    """One hashable group key per sample (a tuple for several features) and the feature names."""
    if hasattr(sensitive_features, "columns"):
        cols = {str(c): list(sensitive_features[c]) for c in sensitive_features.columns}
    elif isinstance(sensitive_features, Mapping):
        cols = {str(k): list(v) for k, v in sensitive_features.items()}
    else:
        cols = {"sensitive_feature": list(np.asarray(sensitive_features, dtype=object).ravel())}
    if not cols:
        raise InputError("sensitive_features is empty; give at least one feature.")
    for name, values in cols.items():
        if len(values) != n:
            raise InputError(f"sensitive feature {name!r} has {len(values)} values for {n} samples.")
        for i, v in enumerate(values):
            if v is None or (isinstance(v, float) and v != v):
                raise InputError(
                    f"sensitive feature {name!r} is missing at sample {i}; fill it (e.g. 'unknown') or drop the "
                    "sample (group_report has a missing-value policy)."
                )
    names = tuple(cols)
    if len(names) == 1:
        return [v.item() if isinstance(v, np.generic) else v for v in cols[names[0]]], names
    rows = zip(*(cols[k] for k in names), strict=True)
    return [tuple(x.item() if isinstance(x, np.generic) else x for x in row) for row in rows], names


def disaggregate(
    metric: Callable[..., float],
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    sample_weight: Any = None,
    min_group_size: int | None = None,
    name: str | None = None,
) -> Disaggregated:
    """``metric`` overall and per group of ``sensitive_features`` (fairlearn's ``MetricFrame`` for one metric).

    Parameters
    ----------
    metric : callable
        ``metric(y_true, y_pred, *, sample_weight=None) -> float``.
    y_true, y_pred : array-like of shape (n_samples,)
    sensitive_features : array-like of shape (n_samples,), mapping of name → array, or DataFrame
    sample_weight : array-like, optional
        Passed on to ``metric`` (overall and per group) when given.
    min_group_size : int, optional
        Groups with fewer samples stay in ``by_group`` but are left out of the summaries (with a warning).
    name : str, optional
        The metric's name in the output (default: the function's name).

    Returns
    -------
    Disaggregated

    Examples
    --------
    >>> d = disaggregate(selection_rate, [0] * 6, [1, 1, 0, 1, 0, 0], sensitive_features=list("aaabbb"))
    >>> d.by_group, round(d.difference(), 4), round(d.ratio(), 4)
    ({'a': 0.6666666666666666, 'b': 0.3333333333333333}, 0.3333, 0.5)
    """
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    n = check_same_length(yt, yp)
    w = check_sample_weight(sample_weight, n)
    keys, features = _group_keys(sensitive_features, n)
    try:
        groups = sorted(set(keys))
    except TypeError:  # mixed types: order by text
        groups = sorted(set(keys), key=str)
    index: dict[Any, list[int]] = {g: [] for g in groups}
    for i, k in enumerate(keys):
        index[k].append(i)

    def call(idx: np.ndarray | None) -> float:
        if idx is None:
            return float(metric(yt, yp) if w is None else metric(yt, yp, sample_weight=w))
        if w is None:
            return float(metric(yt[idx], yp[idx]))
        return float(metric(yt[idx], yp[idx], sample_weight=w[idx]))

    by_group = {g: call(np.array(index[g])) for g in groups}
    counts = {g: len(index[g]) for g in groups}
    excluded: tuple[Any, ...] = ()
    if min_group_size is not None:
        excluded = tuple(g for g in groups if counts[g] < int(min_group_size))
        for g in excluded:
            warnings.warn(
                f"group {g!r} has {counts[g]} sample(s) < min_group_size {min_group_size}; it is left out of the "
                "group min/max, differences and ratios.",
                SmallGroupWarning,
                stacklevel=2,
            )
        if len(excluded) == len(groups):
            raise InputError(f"every group has fewer than min_group_size={min_group_size} samples.")
    return Disaggregated(
        metric=name or getattr(metric, "__name__", "metric"),
        overall=call(None),
        by_group=by_group,
        n=counts,
        excluded=excluded,
        features=features,
    )


def demographic_parity_difference(
    y_true: Any, y_pred: Any, *, sensitive_features: Any, method: str = "between_groups", sample_weight: Any = None
) -> float:
    """Largest selection-rate difference between groups (or to the overall rate), as fairlearn.

    >>> demographic_parity_difference([0] * 4, [1, 1, 0, 1], sensitive_features=["a", "a", "b", "b"])
    0.5
    """
    return disaggregate(
        selection_rate, y_true, y_pred, sensitive_features=sensitive_features, sample_weight=sample_weight
    ).difference(method)


def demographic_parity_ratio(
    y_true: Any, y_pred: Any, *, sensitive_features: Any, method: str = "between_groups", sample_weight: Any = None
) -> float:
    """Smallest selection-rate ratio between groups (or to the overall rate), as fairlearn."""
    return disaggregate(
        selection_rate, y_true, y_pred, sensitive_features=sensitive_features, sample_weight=sample_weight
    ).ratio(method)


def _eo_parts(y_true: Any, y_pred: Any, sensitive_features: Any, sample_weight: Any) -> list[Disaggregated]:
    return [
        disaggregate(f, y_true, y_pred, sensitive_features=sensitive_features, sample_weight=sample_weight)
        for f in (true_positive_rate, false_positive_rate)
    ]


def equalized_odds_difference(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    method: str = "between_groups",
    sample_weight: Any = None,
    agg: str = "worst_case",
) -> float:
    """The larger (``agg="worst_case"``) or mean (``"mean"``) of the TPR and FPR differences, as fairlearn.

    >>> equalized_odds_difference([1, 0, 1, 0], [1, 0, 0, 0], sensitive_features=["a", "a", "b", "b"])
    1.0
    """
    check_option(agg, ("worst_case", "mean"), name="agg")
    diffs = [d.difference(method) for d in _eo_parts(y_true, y_pred, sensitive_features, sample_weight)]
    return float(max(diffs) if agg == "worst_case" else np.mean(diffs))


def equalized_odds_ratio(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    method: str = "between_groups",
    sample_weight: Any = None,
    agg: str = "worst_case",
) -> float:
    """The smaller (``agg="worst_case"``) or mean (``"mean"``) of the TPR and FPR ratios, as fairlearn."""
    check_option(agg, ("worst_case", "mean"), name="agg")
    ratios = [d.ratio(method) for d in _eo_parts(y_true, y_pred, sensitive_features, sample_weight)]
    return float(min(ratios) if agg == "worst_case" else np.mean(ratios))
