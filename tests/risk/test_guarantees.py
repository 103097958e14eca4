"""The statistical guarantees, checked by simulation (hierarchical-eval.md §5, the acceptance criterion).

A synthetic softmax-over-leaves model (noisy logits) on a built-in taxonomy. One large pool of samples is drawn
once; every split draws a calibration set of ``N_CAL`` and uses ``N_TEST`` other samples as the test set, so the
test risk is close to the risk of a fresh sample. Per-sample losses do not depend on the other samples, so the
test risk of any λ comes from the pool's loss curve.

* CRC: E[test CAE] <= α, checked as mean test CAE <= α + 3·SE over the splits.
* LTT: P(test CAE > α) <= δ, checked as the share of splits with test CAE > α <= δ + 3·sqrt(δ(1-δ)/n_splits).
"""

from __future__ import annotations

import numpy as np
import pytest

from medlens.hierarchy import cae_rate, encode_labels
from medlens.risk import RiskConstrainedThresholder, loss_curve
from medlens.risk._rules import LossCurve
from medlens.taxonomy import load_taxonomy

pytestmark = pytest.mark.slow

N_SPLITS = 500
N_CAL = 800
N_TEST = 5000
POOL = 30_000


@pytest.fixture(scope="module")
def pools(synthetic):
    """{(taxonomy, rule): (node scores, truth, per-sample CAE critical values)} for the whole pool."""
    out = {}
    for name in ("chexpert_pham", "cihmlc"):
        tax = load_taxonomy(name)
        s, y = synthetic(tax, POOL, np.random.default_rng(20240501), signal=2.0, noise=1.0)
        enc = encode_labels(y, tax)
        for rule in ("climb", "multilabel"):
            out[name, rule] = (s, y, loss_curve(s, enc, rule=rule, branch_depth=1).cae_critical)
    return out


def _simulate(pools, name, rule, method, alpha, delta=0.1, p_value="binomial", seed=0):
    s, y, crit = pools[name, rule]
    tax = load_taxonomy(name)
    rng = np.random.default_rng(seed)
    risks, lams, feasible = [], [], []
    for _ in range(N_SPLITS):
        idx = rng.permutation(POOL)[: N_CAL + N_TEST]
        cal, test = idx[:N_CAL], idx[N_CAL:]
        th = RiskConstrainedThresholder(tax, rule=rule, alpha=alpha, delta=delta, method=method, p_value=p_value)
        th.fit(s[cal], y[cal])
        lam = th.lambda_
        risks.append(LossCurve(crit[test], crit[test]).risk(np.array([lam]))[0])
        lams.append(lam)
        feasible.append(th.report().feasible)
    return np.array(risks), np.array(lams), np.array(feasible)


@pytest.mark.parametrize(
    ("name", "rule"), [("chexpert_pham", "climb"), ("chexpert_pham", "multilabel"), ("cihmlc", "climb")]
)
def test_crc_controls_expected_cae(pools, name, rule):
    alpha = 0.05
    risks, lams, feasible = _simulate(pools, name, rule, "crc", alpha, seed=1)
    assert feasible.all()
    se = risks.std(ddof=1) / np.sqrt(N_SPLITS)
    assert risks.mean() <= alpha + 3 * se, (risks.mean(), se)
    # not vacuous: the threshold is informative (neither "predict everything" nor "always abstain")
    assert 0.0 < np.median(lams) < 1.0
    assert risks.mean() > alpha / 2


@pytest.mark.parametrize(
    ("name", "rule", "p_value"),
    [("chexpert_pham", "climb", "binomial"), ("chexpert_pham", "multilabel", "binomial"), ("cihmlc", "climb", "hb")],
)
def test_ltt_controls_probability_of_exceeding_alpha(pools, name, rule, p_value):
    alpha, delta = 0.05, 0.1
    risks, lams, feasible = _simulate(pools, name, rule, "ltt", alpha, delta, p_value=p_value, seed=2)
    assert feasible.all()
    share = float(np.mean(risks > alpha))
    se = np.sqrt(delta * (1 - delta) / N_SPLITS)
    assert share <= delta + 3 * se, share
    assert 0.0 < np.median(lams) < 1.0


def test_empirical_has_no_guarantee_but_tracks_alpha(pools):
    """The empirical baseline sits near α on average and exceeds it in about half the splits."""
    alpha = 0.05
    risks, _, _ = _simulate(pools, "chexpert_pham", "climb", "empirical", alpha, seed=3)
    assert abs(risks.mean() - alpha) < 0.01
    assert np.mean(risks > alpha) > 0.2


def test_fast_test_risk_equals_evaluated_predictions(pools):
    """The loss-curve shortcut used above equals evaluating the written predictions with hierarchy.cae_rate."""
    s, y, crit = pools["cihmlc", "climb"]
    tax = load_taxonomy("cihmlc")
    th = RiskConstrainedThresholder(tax, alpha=0.05).fit(s[:N_CAL], y[:N_CAL])
    test = slice(N_CAL, N_CAL + N_TEST)
    fast = LossCurve(crit[test], crit[test]).risk(np.array([th.lambda_]))[0]
    assert fast == pytest.approx(cae_rate(y[test], th.predict(s[test]), taxonomy=tax, branch_depth=1).rate)
