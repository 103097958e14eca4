"""Group-conditional (Mondrian) risk control: the per-group guarantee in a simulation, and the plumbing."""

from __future__ import annotations

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.hierarchy import node_scores_from_leaves
from medlens.risk import GroupRiskThresholder, RiskConstrainedThresholder
from medlens.taxonomy import Taxonomy

TAX = Taxonomy({"root": ["Lung", "Pleura"], "Lung": ["Pneumonia", "Edema"], "Pleura": ["Effusion"]})
LEAVES = np.array(["Pneumonia", "Edema", "Effusion"])


def draw(rng, n_easy: int, n_hard: int):
    """Scores p for every sample; labels drawn from p (easy, calibrated) or from a mix with uniform (hard)."""
    n = n_easy + n_hard
    p = rng.dirichlet(np.full(3, 0.4), size=n)
    q = p.copy()
    q[n_easy:] = 0.55 * p[n_easy:] + 0.45 / 3  # the model is over-confident on the hard group
    y = LEAVES[(rng.random(n)[:, None] > np.cumsum(q, axis=1)).sum(axis=1)]
    s = node_scores_from_leaves(p, taxonomy=TAX, leaves=list(LEAVES))
    g = np.array(["easy"] * n_easy + ["hard"] * n_hard)
    return s, y, g


@pytest.mark.slow
def test_per_group_guarantee_holds_where_the_marginal_one_fails():
    """CRC bounds E[CAE] per group with Mondrian thresholds; the marginal λ leaves the hard group above α."""
    rng = np.random.default_rng(0)
    alpha, reps = 0.1, 60
    marg, mond = {"easy": [], "hard": []}, {"easy": [], "hard": []}
    for _ in range(reps):
        s, y, g = draw(rng, 300, 150)
        th = GroupRiskThresholder(TAX, rule="climb", alpha=alpha, method="crc").fit(s, y, g)
        st, yt, gt = draw(rng, 3000, 3000)
        cmp_ = th.compare(st, yt, gt)
        for name in ("easy", "hard"):
            marg[name].append(cmp_.groups[name]["marginal"]["cae_rate"])
            mond[name].append(cmp_.groups[name]["group"]["cae_rate"])
    for name in ("easy", "hard"):
        m, se = np.mean(mond[name]), np.std(mond[name]) / np.sqrt(reps)
        assert m <= alpha + 2 * se, (name, m, se)  # E[risk] <= alpha within each group
    assert np.mean(marg["hard"]) > alpha + 0.02  # the marginal guarantee does not hold in the hard group
    assert np.mean(marg["easy"]) < alpha


def test_group_thresholds_equal_separate_fits_and_predict_uses_them():
    rng = np.random.default_rng(1)
    s, y, g = draw(rng, 200, 200)
    th = GroupRiskThresholder(TAX, rule="climb", alpha=0.1, method="crc").fit(s, y, g)
    for name in ("easy", "hard"):
        idx = np.flatnonzero(g == name)
        alone = RiskConstrainedThresholder(TAX, rule="climb", alpha=0.1, method="crc").fit(s[idx], y[idx])
        assert th.lambdas_[name] == alone.lambda_
    assert th.lambdas_["hard"] >= th.lambdas_["easy"]
    pred = th.predict(s, g)
    idx = np.flatnonzero(g == "hard")
    alone = RiskConstrainedThresholder(TAX, rule="climb", alpha=0.1, method="crc").fit(s[idx], y[idx])
    assert [pred[i] for i in idx] == alone.predict(s[idx])
    cmp_ = th.compare(s, y, g).to_dict()
    assert cmp_["groups"]["hard"]["group"]["cae_rate"] == pytest.approx(th.reports()["hard"].calibration_risk)
    assert cmp_["overall"]["n"] == 400


def test_unseen_groups_and_missing_labels():
    rng = np.random.default_rng(2)
    s, y, g = draw(rng, 100, 100)
    th = GroupRiskThresholder(TAX, alpha=0.2).fit(s, y, g)
    other = np.array(["new"] * len(g))
    with pytest.raises(InputError, match="group 'new' was not in the calibration data"):
        th.predict(s, other)
    lenient = GroupRiskThresholder(TAX, alpha=0.2, unseen="marginal").fit(s, y, g)
    assert lenient.predict(s[:3], other[:3]) == lenient.marginal.predict(s[:3])
    with pytest.raises(InputError, match="missing at sample 0"):
        th.fit(s, y, [None] + list(g[1:]))
