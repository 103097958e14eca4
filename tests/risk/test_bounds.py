"""Learn-then-Test p-values: the exact binomial tail and Hoeffding–Bentkus."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from medlens.risk import binomial_pvalue, hoeffding_bentkus_pvalue


@pytest.mark.parametrize(
    ("risk_hat", "n", "alpha"),
    [(0.0, 114, 0.02), (0.01, 500, 0.02), (0.03, 200, 0.05), (0.1, 50, 0.1), (0.25, 40, 0.1), (1.0, 10, 0.3)],
)
def test_binomial_pvalue_is_the_binomial_cdf(risk_hat, n, alpha):
    count = round(risk_hat * n)
    assert float(binomial_pvalue(risk_hat, n, alpha)) == pytest.approx(binom.cdf(count, n, alpha), rel=1e-12)
    # by hand: sum_{j <= count} C(n, j) α^j (1 - α)^(n - j)
    by_hand = sum(math.comb(n, j) * alpha**j * (1 - alpha) ** (n - j) for j in range(count + 1))
    assert float(binomial_pvalue(risk_hat, n, alpha)) == pytest.approx(by_hand, rel=1e-9)


def test_binomial_pvalue_examples_and_vectorisation():
    assert float(binomial_pvalue(0.0, 114, 0.02)) == pytest.approx(0.98**114)
    r = np.arange(0, 21) / 20  # counts 0..20 of n = 20, as float risks that are not exact binary fractions
    np.testing.assert_allclose(binomial_pvalue(r, 20, 0.1), binom.cdf(np.arange(21), 20, 0.1), rtol=1e-12)
    assert binomial_pvalue(r, 20, 0.1).shape == (21,)
    # 3/7 is not exactly representable: the count must still be 3, not 2
    assert float(binomial_pvalue(3 / 7, 7, 0.5)) == pytest.approx(binom.cdf(3, 7, 0.5))


def _kl(a: float, b: float) -> float:
    a = min(max(a, 1e-300), 1 - 1e-16)
    return a * math.log(a / b) + (1 - a) * math.log((1 - a) / (1 - b))


@pytest.mark.parametrize(("risk_hat", "n", "alpha"), [(0.01, 500, 0.02), (0.05, 200, 0.1), (0.0, 60, 0.05)])
def test_hoeffding_bentkus_formula(risk_hat, n, alpha):
    hoeffding = math.exp(-n * _kl(min(risk_hat, alpha), alpha))
    bentkus = math.e * binom.cdf(math.ceil(n * risk_hat), n, alpha)
    assert float(hoeffding_bentkus_pvalue(risk_hat, n, alpha)) == pytest.approx(min(hoeffding, bentkus, 1.0))


def test_hoeffding_bentkus_sanity():
    alpha = 0.05
    r = np.linspace(0, 0.2, 81)
    for n in (20, 100, 1000):
        hb = hoeffding_bentkus_pvalue(r, n, alpha)
        assert np.all((hb > 0) & (hb <= 1))
        # never below the exact binomial p-value of a 0/1 loss (HB is valid for any loss in [0, 1])
        assert np.all(hb >= binomial_pvalue(r, n, alpha) - 1e-12)
        # no evidence against H0 once the empirical risk reaches alpha
        np.testing.assert_array_equal(hb[r >= alpha], 1.0)
        # more observed risk, less evidence
        assert np.all(np.diff(hb) >= -1e-12)
    # zero observed losses: the Hoeffding term (1 - α)^n is the binomial p-value itself
    assert float(hoeffding_bentkus_pvalue(0.0, 100, alpha)) == pytest.approx(0.95**100)


def test_hoeffding_bentkus_decreases_with_n_below_alpha():
    for risk_hat in (0.0, 0.01, 0.025):
        ns = [200, 400, 800, 1600, 3200]  # n·R̂ integral for every n
        p = [float(hoeffding_bentkus_pvalue(risk_hat, n, 0.05)) for n in ns]
        assert all(a > b for a, b in zip(p, p[1:], strict=False)), p
        assert p[-1] < 1e-3


def test_hoeffding_bentkus_is_one_at_or_above_alpha():
    for n in (10, 100, 1000):
        for risk_hat in (0.05, 0.051, 0.2, 1.0):
            assert float(hoeffding_bentkus_pvalue(risk_hat, n, 0.05)) == 1.0
