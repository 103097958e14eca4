"""One call that computes every hierarchical and flat metric, with optional bootstrap intervals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medlens._results import MetricResult, weighted_mean
from medlens._validation import check_interval, check_option
from medlens.hierarchy._core import row_counts, sample_cae
from medlens.hierarchy._flat import FlatMetrics, flat_metrics
from medlens.hierarchy._metrics import (
    _KINDS,
    CAEResult,
    ConsistencyResult,
    ErrorBreakdown,
    _breakdown_from_encoded,
    _breakdown_items,
    _cae_from_encoded,
    _closest_pairs,
    _prepare,
    _prf_parts,
    _sample_errors,
    _severity_per_item,
    _weights,
    consistency_violations,
    hierarchical_distance_at_k,
)
from medlens.hierarchy._stats import Ratio, bootstrap_ci
from medlens.taxonomy import Taxonomy

__all__ = ["HierarchicalReport", "evaluate"]


@dataclass(frozen=True)
class HierarchicalReport(MetricResult):
    """Everything :func:`evaluate` measures. ``to_dict()`` gives the stable JSON of ``medlens hier evaluate``."""

    hP: float
    hR: float
    hF: float
    average: str
    beta: float
    cae_rate: float
    cae_share: float
    coverage: float
    error_breakdown: ErrorBreakdown
    mistake_severity: float
    mean_tree_distance: float
    cae: CAEResult
    flat: FlatMetrics
    consistency: ConsistencyResult | None
    n: int
    n_errors: int
    multilabel: bool
    taxonomy: dict[str, Any]
    branch_depth: int
    ci: dict[str, list[float]] | None = None
    ci_level: float | None = None
    n_bootstrap: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        eb = self.error_breakdown
        out: dict[str, Any] = {
            "hP": self.hP,
            "hR": self.hR,
            "hF": self.hF,
            "average": self.average,
            "beta": self.beta,
            "cae_rate": self.cae_rate,
            "cae_share": self.cae_share,
            "coverage": self.coverage,
            "error_breakdown": {k: getattr(eb, k) for k in _KINDS},
            "error_breakdown_counts": eb.counts,
            "error_breakdown_unit": eb.unit,
            "mistake_severity": self.mistake_severity,
            "mean_tree_distance": self.mean_tree_distance,
            "n": self.n,
            "n_errors": self.n_errors,
            "n_cae": self.cae.n_cae,
            "multilabel": self.multilabel,
            "taxonomy": self.taxonomy,
            "branch_depth": self.branch_depth,
            "branch_confusion": {
                "true_branches": self.cae.branches,
                "predicted_branches": [*self.cae.branches, "(none)"],
                "counts": self.cae.confusion,
            },
            "flat": self.flat.to_dict(),
        }
        if self.consistency is not None:
            out["consistency"] = self.consistency.to_dict()
        if self.ci is not None:
            out["ci"] = self.ci
            out["ci_level"] = self.ci_level
            out["n_bootstrap"] = self.n_bootstrap
        out.update(self.extra)
        return out


def _per_sample(rows: np.ndarray, values: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample (weighted sum of the items' values, weighted item count), for ratio statistics."""
    n = len(w)
    return np.bincount(rows, weights=values * w[rows], minlength=n), np.bincount(rows, weights=w[rows], minlength=n)


def evaluate(
    y_true: Any,
    y_pred: Any,
    *,
    taxonomy: Taxonomy,
    sample_weight: Any = None,
    branch_depth: int = 1,
    average: str = "micro",
    beta: float = 1.0,
    node_scores: np.ndarray | None = None,
    ci: float | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> HierarchicalReport:
    """Hierarchical P/R/F, CAE, error breakdown, severity, distance and flat baselines in one pass.

    Parameters
    ----------
    y_true, y_pred : labels (node ids, label sets or indicator arrays)
    taxonomy : Taxonomy
    sample_weight : array of shape (n_samples,), optional
        Per-sample weights: every rate becomes a weighted one (a weight of 2 = the sample listed twice), and
        the bootstrap resamples the weighted samples. Counts (``n``, ``n_errors``, ...) stay sample counts.
    branch_depth : int
        Branch depth for CAE (1 = children of the root).
    average : {"micro", "macro"}
        Averaging of hP/hR/hF.
    node_scores : array of shape (n_samples, n_nodes), optional
        Probabilities per node (taxonomy order) for AUROC and consistency checks.
    ci : float, optional
        Confidence level of percentile-bootstrap intervals (e.g. 0.95) for every rate.
    n_bootstrap, seed : int

    Examples
    --------
    >>> from medlens.taxonomy import Taxonomy
    >>> tax = Taxonomy({"root": ["Lung", "Pleura"], "Lung": ["Pneumonia", "Edema"], "Pleura": ["Effusion"]})
    >>> r = evaluate(["Pneumonia", "Edema", "Effusion", "Effusion"], ["Pneumonia", "Lung", "Pneumonia", "root"],
    ...              taxonomy=tax)
    >>> round(r.hF, 4), r.cae_rate, r.coverage
    (0.4615, 0.25, 0.75)
    """
    check_option(average, ("micro", "macro"), name="average")
    check_interval(beta, name="beta", low=0, closed="neither")
    t, p = _prepare(y_true, y_pred, taxonomy)
    taxonomy.branch_matrix(branch_depth)  # validates the depth
    w = _weights(sample_weight, t.n)
    parts = _prf_parts(t, p, beta, w)
    if average == "micro":
        hp, hr, hf = parts["micro_p"].value, parts["micro_r"].value, parts["micro_f"].value
    else:
        hp, hr, hf = parts["macro_p"].value, parts["macro_r"].value, parts["macro_f"].value
    cae = _cae_from_encoded(t, p, branch_depth, w)
    eb = _breakdown_from_encoded(t, p, branch_depth, w)
    pairs = _closest_pairs(t, p)
    sev_rows, sev = _severity_per_item(t, p, "height", pairs=pairs)
    committed = pairs[1] != 0  # abstentions are not mistakes: they count against coverage
    dist_rows, dist = pairs[0][committed], pairs[3][committed]
    consistency = None
    extra: dict[str, Any] = {}
    if node_scores is not None:
        node_scores = np.asarray(node_scores, dtype=float)
        consistency = consistency_violations(node_scores, taxonomy=taxonomy)
        if t.single is not None:
            # Bertinetto et al.'s average hierarchical distance of the top-k leaves (0 for an exact hit)
            leaf_cols = np.flatnonzero(taxonomy.leaf_mask)
            leaves = [taxonomy.nodes[j] for j in leaf_cols]
            extra["hierarchical_distance_at_k"] = {
                str(top_k): hierarchical_distance_at_k(
                    t,
                    node_scores[:, leaf_cols],
                    taxonomy=taxonomy,
                    classes=leaves,
                    sample_weight=sample_weight,
                    top_k=top_k,
                )
                for top_k in (1, 5)
                if top_k <= len(leaves)
            }
    flat = flat_metrics(t, p, node_scores, sample_weight=sample_weight)
    multilabel = not (t.single is not None and p.single is not None)
    ci_out = None
    if ci is not None:
        check_interval(ci, name="ci", low=0, high=1, closed="neither")
        n = t.n
        cae_i = sample_cae(t, p, branch_depth).astype(float)
        err_i = _sample_errors(t, p).astype(float)
        b_rows, kinds = _breakdown_items(t, p, branch_depth)
        b_den = np.bincount(b_rows, weights=w[b_rows], minlength=n)
        stats = {
            "hP": parts[f"{average}_p"],
            "hR": parts[f"{average}_r"],
            "cae_rate": Ratio(cae_i * w, w),
            "cae_share": Ratio(cae_i * w, err_i * w),
            "coverage": Ratio((row_counts(p.closure) > 0) * w, w),
            "mistake_severity": Ratio(*_per_sample(sev_rows, sev, w)),
            "mean_tree_distance": Ratio(*_per_sample(dist_rows, dist.astype(float), w)),
        }
        stats["hF"] = parts[f"{average}_f"]
        for j, name in enumerate(_KINDS):
            stats[f"error_breakdown.{name}"] = Ratio(
                np.bincount(b_rows, weights=(kinds == j) * w[b_rows], minlength=n), b_den
            )
        intervals = bootstrap_ci(stats, confidence=ci, n_bootstrap=n_bootstrap, seed=seed)
        ci_out = {name: [lo, hi] for name, (lo, hi) in intervals.items()}
    return HierarchicalReport(
        hP=hp,
        hR=hr,
        hF=hf,
        average=average,
        beta=float(beta),
        cae_rate=cae.rate,
        cae_share=cae.share,
        coverage=weighted_mean(row_counts(p.closure) > 0, w),
        error_breakdown=eb,
        mistake_severity=weighted_mean(sev, w[sev_rows]),
        mean_tree_distance=weighted_mean(dist, w[dist_rows]),
        cae=cae,
        flat=flat,
        consistency=consistency,
        n=t.n,
        n_errors=cae.n_errors,
        multilabel=multilabel,
        taxonomy={"name": taxonomy.name, "version": taxonomy.version},
        branch_depth=int(branch_depth),
        ci=ci_out,
        ci_level=ci,
        n_bootstrap=n_bootstrap if ci is not None else None,
        extra=extra,
    )
