"""Fairness summaries of group scores: FAP (Fairness-Aware Performance) and the equity-scaled (ES) metric.

FAP's exact weighting is not published (FMBench, arXiv 2410.01089; see ``design/fairness.md`` §5); what is known
is a performance term minus λ times the groups' deviation from the weighted mean. medlens implements the
reconstruction with its variants and always reports the parts:

    w_g = n_g / N (``weights="size"``) or 1 / |G| (``"uniform"``);   P̄ = Σ_g w_g P_g
    D   = Σ_g w_g |P_g − P̄| (``dispersion="mad"``), sqrt(Σ_g w_g (P_g − P̄)²) (``"std"``) or max − min (``"range"``)
    FAP_λ = P̄ − λ D   (P̄ + λ D when lower scores are better: the penalty always points to the worse side)

ES-metric (FairCLIP's ES-AUC / ES-Acc form): ES = P / (1 + α Σ_g |P_g − P|) with P the overall value and an
unweighted sum over the groups. Every function here is vectorised over a leading axis of resamples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medlens._results import MetricResult
from medlens._validation import InputError, check_interval, check_option

__all__ = ["DISPERSIONS", "FAP_WEIGHTS", "FAPResult", "es_metric", "fap", "fap_arrays"]

FAP_WEIGHTS = ("size", "uniform")
"""Group weights of FAP: by group size (``n_g / N``) or equal (``1 / |G|``)."""
DISPERSIONS = ("mad", "std", "range")
"""FAP's dispersion term: weighted mean absolute deviation, weighted standard deviation, or max − min."""


def fap_arrays(
    scores: np.ndarray,
    sizes: np.ndarray,
    *,
    lam: float = 1.0,
    weights: str = "size",
    dispersion: str = "mad",
    higher_is_better: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FAP, its performance term P̄ and its dispersion D over the last axis of ``(…, G)`` group scores/sizes."""
    P = np.asarray(scores, dtype=np.float64)
    n = np.asarray(sizes, dtype=np.float64)
    w = n if weights == "size" else np.ones_like(P)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = w / w.sum(axis=-1, keepdims=True)
        perf = (w * P).sum(axis=-1)
        dev = P - perf[..., None]
        if dispersion == "mad":
            disp = (w * np.abs(dev)).sum(axis=-1)
        elif dispersion == "std":
            disp = np.sqrt((w * dev**2).sum(axis=-1))
        else:
            disp = P.max(axis=-1) - P.min(axis=-1)
    sign = -1.0 if higher_is_better else 1.0
    return perf + sign * lam * disp, perf, disp


@dataclass(frozen=True)
class FAPResult(MetricResult):
    """FAP_λ of one attribute with its parts.

    Attributes
    ----------
    value : float
        FAP_λ = performance − λ · dispersion (``+`` when lower is better).
    performance : float
        P̄, the weighted mean of the group scores.
    dispersion : float
        D, the groups' spread around P̄ (see ``dispersion_kind``).
    lam : float
        λ (``"lambda"`` in ``to_dict``).
    weights, dispersion_kind : str
        The variant.
    min_group_score : float
        The worst included group's score; ``worst_group`` names it.
    variants : dict
        ``"<weights>/<dispersion>"`` → FAP_λ of every variant, so a table survives whichever one the paper used.
    ci_low, ci_high : float or None
        Bootstrap interval of ``value`` (None without resamples).
    """

    value: float
    performance: float
    dispersion: float
    lam: float
    weights: str
    dispersion_kind: str
    min_group_score: float
    worst_group: Any
    variants: dict[str, float] = field(default_factory=dict)
    ci_low: float | None = None
    ci_high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["lambda"] = d.pop("lam")
        return d


def _check_fap_options(lam: float, weights: str, dispersion: str) -> None:
    check_interval(lam, name="lam", low=0)
    check_option(weights, FAP_WEIGHTS, name="weights")
    check_option(dispersion, DISPERSIONS, name="dispersion")


def fap(
    group_scores: dict[Any, float],
    group_sizes: dict[Any, int] | None = None,
    *,
    lam: float = 1.0,
    weights: str = "size",
    dispersion: str = "mad",
    higher_is_better: bool = True,
) -> FAPResult:
    """Fairness-Aware Performance of group scores (see the module notes for the formula and its variants).

    Parameters
    ----------
    group_scores : dict
        Group → its score P_g (a per-sample mean, higher is better unless ``higher_is_better=False``).
    group_sizes : dict, optional
        Group → n_g; required for ``weights="size"``.
    lam : float >= 0
        λ, the weight of the dispersion penalty (default 1).
    weights : {"size", "uniform"}
    dispersion : {"mad", "std", "range"}
    higher_is_better : bool

    Returns
    -------
    FAPResult

    Examples
    --------
    >>> r = fap({"a": 0.8, "b": 0.5}, {"a": 30, "b": 10})
    >>> round(r.performance, 4), round(r.dispersion, 4), round(r.value, 4), r.worst_group
    (0.725, 0.1125, 0.6125, 'b')
    >>> round(fap({"a": 0.8, "b": 0.5}, weights="uniform").value, 4)
    0.5
    """
    _check_fap_options(lam, weights, dispersion)
    if not group_scores:
        raise InputError("fap needs at least one group score; got none.")
    names = sorted(group_scores, key=str)
    P = np.array([float(group_scores[g]) for g in names])
    if not np.isfinite(P).all():
        raise InputError(f"group scores must be finite; got {dict(zip(names, P.tolist(), strict=True))}.")
    if weights == "size":
        if group_sizes is None:
            raise InputError("weights='size' needs group_sizes (group → n_g); or pass weights='uniform'.")
        missing = [g for g in names if g not in group_sizes]
        if missing:
            raise InputError(f"group_sizes has no size for group(s) {missing}.")
        n = np.array([float(group_sizes[g]) for g in names])
        if (n <= 0).any():
            raise InputError("group sizes must be positive.")
    else:
        n = np.ones(len(names))
    value, perf, disp = fap_arrays(
        P, n, lam=lam, weights=weights, dispersion=dispersion, higher_is_better=higher_is_better
    )
    variants = {
        f"{wk}/{dk}": float(fap_arrays(P, n, lam=lam, weights=wk, dispersion=dk, higher_is_better=higher_is_better)[0])
        for wk in (FAP_WEIGHTS if group_sizes is not None else ("uniform",))
        for dk in DISPERSIONS
    }
    worst = int(np.argmin(P) if higher_is_better else np.argmax(P))
    return FAPResult(
        value=float(value),
        performance=float(perf),
        dispersion=float(disp),
        lam=float(lam),
        weights=weights,
        dispersion_kind=dispersion,
        min_group_score=float(P[worst]),
        worst_group=names[worst],
        variants=variants,
    )


def es_metric(overall: float, group_scores: Any, *, alpha: float = 1.0) -> float:
    """Equity-scaled metric (FairCLIP): ``overall / (1 + alpha * Σ_g |P_g − overall|)``, unweighted over groups.

    >>> es_metric(0.8, [0.8, 0.8])
    0.8
    >>> round(es_metric(0.75, [0.9, 0.6], alpha=1.0), 4)
    0.5769
    """
    check_interval(alpha, name="alpha", low=0)
    P = np.asarray(list(group_scores.values()) if isinstance(group_scores, dict) else group_scores, dtype=np.float64)
    return float(overall / (1.0 + alpha * np.abs(P - overall).sum()))
