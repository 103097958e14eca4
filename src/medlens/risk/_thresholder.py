"""Risk-constrained thresholds: choose λ on calibration data so the CAE rate stays under α.

Methods
-------
``crc``  Conformal Risk Control (Angelopoulos, Bates, Fisch, Lei, Schuster, ICLR 2024):
         λ̂ = min{λ : n/(n+1)·R̂(λ) + 1/(n+1) <= α}; guarantees E[CAE of a new sample] <= α under
         exchangeability (marginal over calibration draws). Needs α >= 1/(n+1).
``ltt``  Learn-then-Test (Angelopoulos et al. 2021, arXiv 2110.01052): test H0: R(λ) > α at every grid λ
         with a binomial or Hoeffding–Bentkus p-value, walking from the strictest λ with fixed-sequence
         testing; λ̂ is the loosest rejected λ. Guarantees P(R(λ̂) > α) <= δ.
``empirical``  the smallest λ with calibration risk <= α. No guarantee; a baseline.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import numpy as np

from medlens._provenance import SCHEMA_VERSION
from medlens._results import MetricResult
from medlens._validation import (
    InputError,
    check_interval,
    check_option,
    check_probabilities,
    read_text_file,
    shorten,
)
from medlens.hierarchy import encode_labels
from medlens.risk._bounds import binomial_pvalue, hoeffding_bentkus_pvalue
from medlens.risk._rules import LossCurve, loss_curve, predict_labels
from medlens.taxonomy import TAXONOMIES, Taxonomy, load_taxonomy

MAX_GRID = 1_000_000
"""The most λ values a grid may hold (a loss curve is evaluated at each; 10⁶ is far finer than any calibration set)."""

__all__ = ["RiskConstrainedThresholder", "ThresholdReport"]

Rule = Literal["climb", "multilabel"]
Method = Literal["crc", "ltt", "empirical"]


@dataclass(frozen=True)
class ThresholdReport(MetricResult):
    """What :meth:`RiskConstrainedThresholder.fit` found (stable keys of ``medlens hier calibrate --json``)."""

    method: str
    rule: str
    alpha: float
    delta: float | None
    branch_depth: int
    taxonomy: dict[str, Any]
    n_calibration: int
    feasible: bool
    message: str
    calibration_risk: float
    coverage: float
    hF: float
    p_value: str | None = None
    p_value_at_lambda: float | None = None
    crc_bound: float | None = None
    curve: dict[str, list[float]] = field(default_factory=dict)
    lambda_: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lambda"] = d.pop("lambda_")
        order = [
            "lambda",
            "calibration_risk",
            "coverage",
            "feasible",
            "method",
            "alpha",
            "delta",
            "rule",
            "taxonomy",
            "branch_depth",
            "n_calibration",
            "hF",
            "message",
        ]
        return {k: d[k] for k in order} | {k: v for k, v in d.items() if k not in order}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ThresholdReport | None:
        """Inverse of :meth:`to_dict` (``None`` when ``data`` does not describe a report)."""
        names = {f.name for f in fields(cls)}
        kw = {("lambda_" if k == "lambda" else k): v for k, v in data.items()}
        try:
            return cls(**{k: v for k, v in kw.items() if k in names})
        except TypeError:
            return None


class RiskConstrainedThresholder:
    """Choose a decision threshold λ so that the Catastrophic Abstraction Error rate stays under ``alpha``.

    Parameters
    ----------
    taxonomy : Taxonomy or str
    rule : {"climb", "multilabel"}, optional
        ``climb``: one node per sample, backing off from the top leaf towards the root until a node's score
        reaches λ (the root = abstain). ``multilabel``: every node with score >= λ. Default (``None``): chosen
        at :meth:`fit` from the calibration labels, ``climb`` for single-label truth and ``multilabel`` otherwise
        (the default of ``medlens hier calibrate --rule``).
    alpha : float in (0, 1)
        Target CAE rate.
    delta : float in (0, 1)
        LTT's allowed probability that the true risk exceeds α.
    method : {"crc", "ltt", "empirical"}
    branch_depth : int
        Branch depth defining a CAE.
    grid : int or array-like
        Candidate λ values (default 1001 points in [0, 1]).
    p_value : {"binomial", "hb"}
        LTT p-value (exact binomial for 0/1 losses, or Hoeffding–Bentkus).

    Examples
    --------
    >>> import numpy as np
    >>> from medlens.taxonomy import Taxonomy
    >>> from medlens.hierarchy import node_scores_from_leaves
    >>> tax = Taxonomy({"root": ["Lung", "Pleura"], "Lung": ["Pneumonia", "Edema"], "Pleura": ["Effusion"]})
    >>> rng = np.random.default_rng(0)
    >>> leaves = rng.dirichlet(np.ones(3), size=400)
    >>> s = node_scores_from_leaves(leaves, taxonomy=tax, leaves=["Pneumonia", "Edema", "Effusion"])
    >>> y = np.array(["Pneumonia", "Edema", "Effusion"])[leaves.argmax(1)]
    >>> th = RiskConstrainedThresholder(tax, alpha=0.05, method="crc").fit(s, y)
    >>> th.report().feasible, th.report().calibration_risk <= 0.05
    (True, True)
    """

    def __init__(
        self,
        taxonomy: Taxonomy | str,
        *,
        rule: Rule | None = None,
        alpha: float = 0.02,
        delta: float = 0.1,
        method: Method = "crc",
        branch_depth: int = 1,
        grid: int | np.ndarray = 1001,
        p_value: Literal["binomial", "hb"] = "binomial",
    ) -> None:
        self.taxonomy = load_taxonomy(taxonomy)
        self._rule = None if rule is None else check_option(rule, ("climb", "multilabel"), name="rule")
        self.rule: str | None = self._rule  # the rule in use; set by fit when left to the labels
        self.method = check_option(method, ("crc", "ltt", "empirical"), name="method")
        self.alpha = float(check_interval(alpha, name="alpha", low=0, high=1, closed="neither"))
        self.delta = float(check_interval(delta, name="delta", low=0, high=1, closed="neither"))
        self.p_value = check_option(p_value, ("binomial", "hb"), name="p_value")
        self.branch_depth = int(branch_depth)
        self.taxonomy.branch_matrix(self.branch_depth)
        if isinstance(grid, int | np.integer):
            if not 2 <= grid <= MAX_GRID:
                raise InputError(f"grid must have at least 2 points and at most {MAX_GRID:,}; got {grid:,}.")
            self.grid = np.linspace(0.0, 1.0, int(grid))
        else:
            self.grid = np.unique(np.asarray(grid, dtype=float))
            if len(self.grid) < 2 or len(self.grid) > MAX_GRID:
                raise InputError(
                    f"grid must hold at least 2 distinct λ values and at most {MAX_GRID:,}; got {len(self.grid):,}."
                )
            if not (np.isfinite(self.grid).all() and self.grid[0] >= 0 and self.grid[-1] <= 1):
                raise InputError("grid values must be finite thresholds in [0, 1].")
        self.lambda_: float | None = None
        self._report: ThresholdReport | None = None

    # ------------------------------------------------------------------ scores
    def _check_scores(self, scores: Any) -> np.ndarray:
        import pandas as pd

        from medlens.hierarchy import complete_node_scores

        if isinstance(scores, pd.DataFrame):
            cols = [str(c) for c in scores.columns]
            x = scores.to_numpy(dtype=float)
            check_probabilities(x, name="node scores", columns=cols)
            return complete_node_scores(x, taxonomy=self.taxonomy, nodes=cols)
        x = np.asarray(scores, dtype=float)
        if x.ndim != 2 or x.shape[1] != len(self.taxonomy):
            n_leaves = len(self.taxonomy.leaves)
            hint = (
                f" {n_leaves} columns is one per leaf: derive node scores with "
                "medlens.hierarchy.node_scores_from_leaves(scores, taxonomy=..., leaves=...)."
                if x.ndim == 2 and x.shape[1] == n_leaves
                else ""
            )
            raise InputError(
                f"node scores must have shape (n_samples, {len(self.taxonomy)}) in taxonomy order; got {x.shape}."
                + hint
            )
        check_probabilities(x, name="node scores", columns=self.taxonomy.nodes)
        x = x.copy()
        x[:, 0] = 1.0
        return x

    # ------------------------------------------------------------------ fit
    def fit(self, node_scores: Any, y_true: Any) -> RiskConstrainedThresholder:
        """Choose λ̂ on calibration scores (n_samples, n_nodes) and labels."""
        s = self._check_scores(node_scores)
        y = encode_labels(y_true, self.taxonomy, name="y_true")
        if y.n != s.shape[0]:
            raise InputError(
                f"node scores and y_true must have the same number of samples; got {s.shape[0]} and {y.n}."
            )
        self.rule = self._rule or ("multilabel" if y.single is None else "climb")
        curve = loss_curve(s, y, rule=self.rule, branch_depth=self.branch_depth)
        lam, info = self._choose(curve, y.n)
        self.lambda_ = lam
        pred = predict_labels(s, self.taxonomy, rule=self.rule, lam=lam)
        from medlens.hierarchy import hierarchical_precision_recall_fscore

        hf = hierarchical_precision_recall_fscore(y, pred, taxonomy=self.taxonomy).hF
        idx = np.unique(np.linspace(0, len(self.grid) - 1, min(len(self.grid), 101)).round().astype(int))
        grid = self.grid[idx]
        self._report = ThresholdReport(
            method=self.method,
            rule=self.rule,
            alpha=self.alpha,
            delta=self.delta if self.method == "ltt" else None,
            branch_depth=self.branch_depth,
            taxonomy={"name": self.taxonomy.name, "version": self.taxonomy.version},
            n_calibration=y.n,
            feasible=info["feasible"],
            message=info["message"],
            calibration_risk=float(curve.risk(np.array([lam]))[0]),
            coverage=float(curve.coverage(np.array([lam]))[0]),
            hF=float(hf),
            p_value=self.p_value if self.method == "ltt" else None,
            p_value_at_lambda=info.get("p_value"),
            crc_bound=info.get("crc_bound"),
            curve={
                "lambda": grid.tolist(),
                "risk": curve.risk(grid).tolist(),
                "coverage": curve.coverage(grid).tolist(),
            },
            lambda_=float(lam),
        )
        return self

    def _choose(self, curve: LossCurve, n: int) -> tuple[float, dict[str, Any]]:
        lams = self.grid
        risk = curve.risk(lams)
        strictest = float(lams[-1])
        if self.method == "empirical":
            ok = np.flatnonzero(risk <= self.alpha)
            if len(ok):
                return float(lams[ok[0]]), {"feasible": True, "message": "empirical: no statistical guarantee"}
            return strictest, {"feasible": False, "message": self._infeasible_msg(float(risk[-1]), n)}
        if self.method == "crc":
            if self.alpha < 1.0 / (n + 1):
                need = int(np.ceil(1.0 / self.alpha - 1))
                return strictest, {
                    "feasible": False,
                    "message": f"alpha={self.alpha} is below 1/(n+1)={1 / (n + 1):.4g} for n={n} calibration "
                    f"samples: conformal risk control cannot certify it. Use at least {need} samples or a larger alpha.",
                }
            bound = n / (n + 1) * risk + 1.0 / (n + 1)
            ok = np.flatnonzero(bound <= self.alpha)
            if len(ok):
                j = int(ok[0])
                return float(lams[j]), {
                    "feasible": True,
                    "message": f"crc: E[CAE] <= {self.alpha} for an exchangeable new sample",
                    "crc_bound": float(bound[j]),
                }
            return strictest, {"feasible": False, "message": self._infeasible_msg(float(risk[-1]), n)}
        # Learn-then-Test with fixed-sequence testing from the strictest λ downwards.
        pv_fn = binomial_pvalue if self.p_value == "binomial" else hoeffding_bentkus_pvalue
        pvals = pv_fn(risk, n, self.alpha)
        rev = pvals[::-1] <= self.delta
        if not rev[0]:
            min_n = int(np.ceil(np.log(self.delta) / np.log(1 - self.alpha)))
            return strictest, {
                "feasible": False,
                "p_value": float(pvals[-1]),
                "message": f"ltt: no λ passes the test (p={pvals[-1]:.3g} > delta={self.delta} at the strictest "
                f"λ={strictest}). With zero observed CAEs the binomial test needs n >= {min_n} calibration "
                f"samples (n={n}); otherwise the model makes CAEs that no threshold removes.",
            }
        n_rejected = int(np.argmin(rev)) if not rev.all() else len(rev)
        j = len(lams) - n_rejected
        return float(lams[j]), {
            "feasible": True,
            "p_value": float(pvals[j]),
            "message": f"ltt: P(CAE rate > {self.alpha}) <= {self.delta}",
        }

    def _infeasible_msg(self, risk_at_strictest: float, n: int) -> str:
        return (
            f"no λ in [{self.grid[0]}, {self.grid[-1]}] reaches CAE <= {self.alpha} on the {n} calibration samples "
            f"(risk at the strictest λ is {risk_at_strictest:.4g}: the model is certain of some cross-branch "
            "predictions). Raise alpha, use a deeper branch depth, or recalibrate the scores."
        )

    # ------------------------------------------------------------------ predict
    def _require_fit(self) -> float:
        if self.lambda_ is None:
            raise InputError(
                "this thresholder is not fitted yet; call fit(node_scores, y_true) or load a THRESHOLDS.json."
            )
        return self.lambda_

    def predict(self, node_scores: Any) -> list[str] | list[list[str]]:
        """Node id per sample (``climb``; the root = abstain) or most-specific label sets (``multilabel``)."""
        lam = self._require_fit()
        s = self._check_scores(node_scores)
        enc = predict_labels(s, self.taxonomy, rule=self.rule, lam=lam)
        if self.rule == "climb":
            return [self.taxonomy.nodes[i] for i in enc.single]
        return enc.label_sets()

    def report(self) -> ThresholdReport:
        """The fitted λ̂, calibration risk, coverage, hF, feasibility and the risk–coverage curve."""
        self._require_fit()
        if self._report is None:
            raise InputError("this thresholder was loaded without its calibration report; fit it again to get one.")
        return self._report

    # ------------------------------------------------------------------ persistence
    def to_dict(self, *, aggregator: str | None = None) -> dict[str, Any]:
        """Everything ``predict`` needs: taxonomy (name, or the inline definition), rule, λ, depth, aggregator."""
        lam = self._require_fit()
        builtin = self.taxonomy.name in TAXONOMIES and load_taxonomy(self.taxonomy.name) == self.taxonomy
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "medlens.thresholds",
            "taxonomy": self.taxonomy.name if builtin else self.taxonomy.to_dict(),
            "taxonomy_version": self.taxonomy.version,
            "taxonomy_sha256": self.taxonomy.content_hash(),
            "rule": self.rule,
            "lambda": lam,
            "branch_depth": self.branch_depth,
            "aggregator": aggregator,
            "method": self.method,
            "alpha": self.alpha,
            "delta": self.delta,
            # False: no λ met alpha and "lambda" is the strictest one (``hier calibrate`` exits 3)
            "feasible": None if self._report is None else self._report.feasible,
            "report": None if self._report is None else self._report.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "thresholds") -> RiskConstrainedThresholder:
        fix = "Create one with `medlens hier calibrate --out THRESHOLDS.json`."
        if not isinstance(data, dict):
            raise InputError(f"{source} is not a medlens thresholds file: expected a JSON object. {fix}")
        if data.get("kind", "medlens.thresholds") != "medlens.thresholds":
            raise InputError(
                f"{source}: field 'kind' is {shorten(data.get('kind'))}, not 'medlens.thresholds'; this is not a "
                f"thresholds file. {fix}"
            )
        missing = [k for k in ("taxonomy", "rule", "lambda", "branch_depth") if k not in data]
        if missing:
            raise InputError(f"{source} is not a medlens thresholds file: missing {missing}. {fix}")
        lam = data["lambda"]
        if isinstance(lam, bool) or not isinstance(lam, int | float) or not (0.0 <= float(lam) <= 1.0):
            raise InputError(
                f"{source}: field 'lambda' must be a number in [0, 1] (a threshold on probabilities); got "
                f"{shorten(lam)}. Refit the thresholds with `medlens hier calibrate`."
            )
        depth = data["branch_depth"]
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise InputError(f"{source}: field 'branch_depth' must be an integer >= 1; got {shorten(depth)}.")
        try:
            th = cls(
                data["taxonomy"],
                rule=data["rule"],
                alpha=data.get("alpha", 0.02),
                delta=data.get("delta", 0.1),
                method=data.get("method", "crc"),
                branch_depth=depth,
            )
        except (InputError, TypeError) as exc:
            raise InputError(f"{source}: {exc}") from None
        expected = data.get("taxonomy_sha256")
        if expected and th.taxonomy.content_hash() != expected:
            raise InputError(
                f"{source} was fitted on taxonomy {th.taxonomy.name!r} version {data.get('taxonomy_version')!r}, "
                f"but the taxonomy it now names ({th.taxonomy.name!r}, version {th.taxonomy.version!r}) has "
                "another structure. "
                "Refit the thresholds with `medlens hier calibrate`."
            )
        th.lambda_ = float(lam)
        if isinstance(data.get("report"), dict):
            th._report = ThresholdReport.from_dict(data["report"])
        return th

    @classmethod
    def load(cls, path: str | os.PathLike) -> RiskConstrainedThresholder:
        try:
            data = json.loads(read_text_file(path, what="thresholds file"))
        except json.JSONDecodeError as exc:
            raise InputError(f"thresholds file {path} is not valid JSON ({exc.msg}, line {exc.lineno}).") from None
        return cls.from_dict(data, source=str(path))
