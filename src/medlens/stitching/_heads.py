"""Linear heads on one space's features, to measure what a translation preserves for a downstream task.

:class:`LogisticHead` is multi-label logistic regression — one independent logistic regression per column, with
scikit-learn's objective ``C · Σ log-loss + ‖w‖²/2`` (intercepts unpenalised) — solved for all columns at once
with L-BFGS on the summed objective (the columns are independent, so the optimum is each column's own). A column
with a single class gets its smoothed prior ``(positives + ½) / (n + 1)`` as a constant.
:class:`Head` picks multinomial regression for one label per row and :class:`LogisticHead` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medlens._validation import InputError

__all__ = ["Head", "LogisticHead"]


class LogisticHead:
    """Independent logistic regressions for the columns of a 0/1 matrix, fitted jointly (module docstring)."""

    def __init__(self, C: float = 1.0, *, tol: float = 1e-6, max_iter: int = 2000) -> None:
        if not C > 0:
            raise InputError(f"C must be > 0; got {C}.")
        self.C, self.tol, self.max_iter = float(C), float(tol), int(max_iter)
        self.coef_ = np.zeros((0, 0))
        self.intercept_ = np.zeros(0)

    def fit(self, x: Any, y: Any) -> LogisticHead:
        from scipy.optimize import minimize
        from scipy.special import expit, log_expit

        xs = np.asarray(x, dtype=np.float64)
        ys = np.asarray(y, dtype=np.float64)
        if ys.ndim == 1:
            ys = ys[:, None]
        if xs.ndim != 2 or len(xs) != len(ys):
            raise InputError(f"features (n, d) and labels (n, columns) must pair; got {xs.shape} and {ys.shape}.")
        n, d = xs.shape
        k = ys.shape[1]
        pos = ys.sum(axis=0)
        fit = (pos > 0) & (pos < n)
        prior = (pos + 0.5) / (n + 1.0)
        sign = 2.0 * ys[:, fit] - 1.0
        yf = ys[:, fit]
        m = int(fit.sum())

        def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w = theta[: d * m].reshape(d, m)
            b = theta[d * m :]
            z = xs @ w + b
            loss = -self.C * log_expit(sign * z).sum() + 0.5 * (w * w).sum()
            r = self.C * (expit(z) - yf)
            return float(loss), np.concatenate([(xs.T @ r + w).ravel(), r.sum(axis=0)])

        coef = np.zeros((d, k))
        intercept = np.log(prior / (1 - prior))
        if m:
            theta0 = np.concatenate([np.zeros(d * m), intercept[fit]])
            res = minimize(
                fun,
                theta0,
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": self.max_iter, "gtol": self.tol, "ftol": self.tol * 1e-3},
            )
            coef[:, fit] = res.x[: d * m].reshape(d, m)
            intercept[fit] = res.x[d * m :]
        self.coef_, self.intercept_ = coef, intercept
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        """``(n, columns)`` probabilities of the positive class of each column."""
        from scipy.special import expit

        if self.coef_.size == 0 and self.intercept_.size == 0:
            raise InputError("the head is not fitted; call fit(x, y) first.")
        return expit(np.asarray(x, dtype=np.float64) @ self.coef_ + self.intercept_)


class Head:
    """A logistic-regression head on one space's features: multinomial for one label per row, one-vs-rest else."""

    def __init__(self, labels: Sequence[frozenset[str]]) -> None:
        self.classes = sorted({c for row in labels for c in row})
        if len(self.classes) < 2:
            raise InputError(f"the labels name {len(self.classes)} class(es); a head needs at least two.")
        self.multilabel = any(len(row) != 1 for row in labels)
        index = {c: j for j, c in enumerate(self.classes)}
        if self.multilabel:
            self.y = np.zeros((len(labels), len(self.classes)), dtype=int)
            for i, row in enumerate(labels):
                self.y[i, [index[c] for c in row]] = 1
        else:
            self.y = np.array([index[next(iter(row))] for row in labels])
        self.models: list[Any] = []

    def fit(self, x: np.ndarray, rows: np.ndarray) -> Head:
        from sklearn.linear_model import LogisticRegression

        y = self.y[rows]
        if not self.multilabel:
            self.models = [LogisticRegression(max_iter=2000).fit(x, y)]
            return self
        self.models = [LogisticHead().fit(x, y)]
        return self

    def score(self, x: np.ndarray, rows: np.ndarray) -> dict[str, Any]:
        from medlens.metrics import auroc_columns

        y = self.y[rows]
        if not self.multilabel:
            model = self.models[0]
            pred = model.classes_[model.predict_proba(x).argmax(1)]
            return {"accuracy": float((pred == y).mean())}
        auc = auroc_columns(y, self.models[0].predict_proba(x))
        return {"macro_auroc": float(np.nanmean(auc)) if np.isfinite(auc).any() else None}
