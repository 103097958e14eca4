"""p-values for Learn-then-Test: H0: R(λ) > α, tested with the empirical risk of n calibration samples."""

from __future__ import annotations

import numpy as np

__all__ = ["binomial_pvalue", "hoeffding_bentkus_pvalue"]


def _counts(risk_hat: np.ndarray, n: int) -> np.ndarray:
    return np.floor(np.asarray(risk_hat, dtype=float) * n + 1e-9)


def binomial_pvalue(risk_hat: np.ndarray | float, n: int, alpha: float) -> np.ndarray:
    """Exact binomial p-value ``P(Bin(n, α) <= n·R̂)`` for 0/1 losses.

    Examples
    --------
    >>> round(float(binomial_pvalue(0.0, 114, 0.02)), 4)  # (1 - 0.02) ** 114
    0.0999
    """
    from scipy.stats import binom

    return np.asarray(binom.cdf(_counts(risk_hat, n), n, alpha), dtype=float)


def _h1(a: np.ndarray, b: float) -> np.ndarray:
    a = np.clip(a, 1e-300, 1 - 1e-16)
    return a * np.log(a / b) + (1 - a) * np.log((1 - a) / (1 - b))


def hoeffding_bentkus_pvalue(risk_hat: np.ndarray | float, n: int, alpha: float) -> np.ndarray:
    """Hoeffding–Bentkus p-value (Bates et al. 2021; Angelopoulos et al. 2021), valid for losses in [0, 1].

    ``p = min(exp(-n·h1(min(R̂, α), α)), e·P(Bin(n, α) <= ⌈n·R̂⌉))`` with ``h1`` the binary KL divergence.
    """
    from scipy.stats import binom

    r = np.asarray(risk_hat, dtype=float)
    hoeffding = np.exp(-n * _h1(np.minimum(r, alpha), alpha))
    hoeffding = np.where(r >= alpha, 1.0, hoeffding)
    bentkus = np.e * binom.cdf(np.ceil(r * n - 1e-9), n, alpha)
    return np.minimum(np.minimum(hoeffding, bentkus), 1.0)
