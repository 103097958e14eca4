"""Group-conditional (Mondrian) risk control: one threshold per group so the CAE rate is ≤ α within each group.

A marginal threshold (:class:`RiskConstrainedThresholder` on all calibration samples) bounds the CAE rate on
average over the population: a small or hard group can sit well above α while an easy one sits below. The Mondrian
version fits CRC/LTT separately on the calibration samples of each group (exchangeable within the group), so the
guarantee holds for each group; the price is coverage (stricter thresholds where the model errs more) and the
smaller per-group calibration sets (CRC needs α ≥ 1/(n_g + 1); an infeasible group gets the strictest λ and
``feasible: false``). :meth:`GroupRiskThresholder.compare` puts marginal and per-group guarantees side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medlens._results import MetricResult
from medlens._validation import InputError, check_option
from medlens.hierarchy import encode_labels
from medlens.risk._rules import loss_curve, predict_labels
from medlens.risk._thresholder import RiskConstrainedThresholder

__all__ = ["GroupRiskComparison", "GroupRiskThresholder"]


def _group_labels(groups: Any, n: int) -> np.ndarray:
    g = np.asarray(groups, dtype=object)
    if g.ndim != 1 or len(g) != n:
        raise InputError(f"groups must hold one label per sample ({n}); got shape {g.shape}.")
    bad = [i for i, v in enumerate(g) if v is None or (isinstance(v, float) and v != v)]
    if bad:
        raise InputError(f"groups is missing at sample {bad[0]}; give every sample a group (e.g. 'unknown').")
    return np.array([str(v) for v in g], dtype=object)


@dataclass(frozen=True)
class GroupRiskComparison(MetricResult):
    """Marginal vs per-group thresholds on one data set, per group: n, λ, CAE rate and coverage under each."""

    alpha: float
    method: str
    marginal_lambda: float
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    overall: dict[str, Any] = field(default_factory=dict)


class GroupRiskThresholder:
    """One :class:`RiskConstrainedThresholder` per group (Mondrian risk control) plus the marginal one.

    Parameters are those of :class:`RiskConstrainedThresholder` (``taxonomy``, ``rule``, ``alpha``, ``delta``,
    ``method``, ``branch_depth``, ``grid``, ``p_value``); ``unseen`` says what :meth:`predict` does with a group
    absent from calibration: ``"error"`` (default) or ``"marginal"`` (use the marginal λ).

    Examples
    --------
    >>> import numpy as np
    >>> from medlens.taxonomy import Taxonomy
    >>> from medlens.hierarchy import node_scores_from_leaves
    >>> tax = Taxonomy({"root": ["Lung", "Pleura"], "Lung": ["Pneumonia", "Edema"], "Pleura": ["Effusion"]})
    >>> rng = np.random.default_rng(0)
    >>> p = rng.dirichlet(np.full(3, 0.5), size=600)
    >>> s = node_scores_from_leaves(p, taxonomy=tax, leaves=["Pneumonia", "Edema", "Effusion"])
    >>> y = np.array(["Pneumonia", "Edema", "Effusion"])[[rng.choice(3, p=q) for q in p]]
    >>> g = np.where(np.arange(600) % 3 == 0, "a", "b")
    >>> th = GroupRiskThresholder(tax, alpha=0.1).fit(s, y, g)
    >>> sorted(th.lambdas_), all(r.feasible for r in th.reports().values())
    (['a', 'b'], True)
    """

    def __init__(self, taxonomy: Any, *, unseen: str = "error", **options: Any) -> None:
        self.options = dict(options)
        self.unseen = check_option(unseen, ("error", "marginal"), name="unseen")
        self.marginal = RiskConstrainedThresholder(taxonomy, **self.options)
        self.taxonomy = self.marginal.taxonomy
        self.thresholders: dict[str, RiskConstrainedThresholder] = {}

    @property
    def lambdas_(self) -> dict[str, float]:
        """Group → fitted λ̂."""
        return {g: float(t.lambda_) for g, t in self.thresholders.items()}

    def fit(self, node_scores: Any, y_true: Any, groups: Any) -> GroupRiskThresholder:
        """Fit the marginal threshold on every sample and one threshold per group on its samples."""
        s = self.marginal._check_scores(node_scores)
        y = encode_labels(y_true, self.taxonomy, name="y_true")
        if y.n != len(s):
            raise InputError(f"node scores and y_true must have the same number of samples; got {len(s)} and {y.n}.")
        g = _group_labels(groups, len(s))
        self.marginal.fit(s, y)
        self.thresholders = {}
        for name in sorted(set(g)):
            idx = np.flatnonzero(g == name)
            options = {**self.options, "rule": self.marginal.rule}  # one rule for all groups: the marginal's
            self.thresholders[name] = RiskConstrainedThresholder(self.taxonomy, **options).fit(s[idx], y.subset(idx))
        return self

    def reports(self) -> dict[str, Any]:
        """Group → its :class:`ThresholdReport` (λ̂, calibration risk, coverage, feasibility)."""
        if not self.thresholders:
            raise InputError("this thresholder is not fitted yet; call fit(node_scores, y_true, groups).")
        return {g: t.report() for g, t in self.thresholders.items()}

    def _lambda_per_sample(self, g: np.ndarray) -> np.ndarray:
        lams = self.lambdas_
        if not lams:
            raise InputError("this thresholder is not fitted yet; call fit(node_scores, y_true, groups).")
        unknown = sorted(set(g) - set(lams))
        if unknown and self.unseen == "error":
            raise InputError(
                f"group {unknown[0]!r} was not in the calibration data (groups: {sorted(lams)}); pass "
                "unseen='marginal' to use the marginal threshold for it."
            )
        return np.array([lams.get(v, float(self.marginal.lambda_)) for v in g])

    def predict(self, node_scores: Any, groups: Any) -> list[Any]:
        """Each sample decided with its group's λ̂ (``climb``: a node id; ``multilabel``: a label set)."""
        s = self.marginal._check_scores(node_scores)
        g = _group_labels(groups, len(s))
        lam = self._lambda_per_sample(g)
        out: list[Any] = [None] * len(s)
        for value in np.unique(lam):
            idx = np.flatnonzero(lam == value)
            enc = predict_labels(s[idx], self.taxonomy, rule=self.marginal.rule, lam=float(value))
            labels = [self.taxonomy.nodes[i] for i in enc.single] if self.marginal.rule == "climb" else enc.label_sets()
            for i, lab in zip(idx, labels, strict=True):
                out[i] = lab
        return out

    def compare(self, node_scores: Any, y_true: Any, groups: Any) -> GroupRiskComparison:
        """CAE rate and coverage per group on (test) data under the marginal λ̂ and under each group's λ̂."""
        s = self.marginal._check_scores(node_scores)
        y = encode_labels(y_true, self.taxonomy, name="y_true")
        g = _group_labels(groups, len(s))
        lam = self._lambda_per_sample(g)
        m_lam = float(self.marginal.lambda_)
        opts = {"rule": self.marginal.rule, "branch_depth": self.marginal.branch_depth}
        rows: dict[str, dict[str, Any]] = {}
        risk_g = cov_g = 0.0
        for name in sorted(set(g)):
            idx = np.flatnonzero(g == name)
            curve = loss_curve(s[idx], y.subset(idx), **opts)
            lg = float(lam[idx[0]])
            r_m, c_m = float(curve.risk(np.array([m_lam]))[0]), float(curve.coverage(np.array([m_lam]))[0])
            r_g, c_g = float(curve.risk(np.array([lg]))[0]), float(curve.coverage(np.array([lg]))[0])
            rep = self.thresholders.get(name)
            rows[name] = {
                "n": len(idx),
                "marginal": {
                    "lambda": m_lam,
                    "cae_rate": r_m,
                    "coverage": c_m,
                    "within_alpha": r_m <= self.marginal.alpha,
                },
                "group": {
                    "lambda": lg,
                    "cae_rate": r_g,
                    "coverage": c_g,
                    "within_alpha": r_g <= self.marginal.alpha,
                    "feasible": None if rep is None else rep.report().feasible,
                    "n_calibration": None if rep is None else rep.report().n_calibration,
                },
            }
            risk_g += r_g * len(idx)
            cov_g += c_g * len(idx)
        whole = loss_curve(s, y, **opts)
        overall = {
            "n": len(s),
            "marginal": {
                "cae_rate": float(whole.risk(np.array([m_lam]))[0]),
                "coverage": float(whole.coverage(np.array([m_lam]))[0]),
            },
            "group": {"cae_rate": risk_g / len(s), "coverage": cov_g / len(s)},
        }
        return GroupRiskComparison(
            alpha=self.marginal.alpha, method=self.marginal.method, marginal_lambda=m_lam, groups=rows, overall=overall
        )
