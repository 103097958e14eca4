"""Parity with fairlearn (MetricFrame by_group / difference / ratio; demographic parity; equalised odds).

Random binary data with imbalanced groups (one or two sensitive features, with and without sample weights), and
per-sample scores averaged per group (fairlearn's trick of a metric that averages ``y_pred``): our values equal
fairlearn's to 1e-12. fairlearn lists empty cells of a feature product as NaN; ours lists observed groups only, so
the comparison drops fairlearn's NaN rows.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score

from medlens.fairness import (
    COMPARE_METHODS,
    demographic_parity_difference,
    demographic_parity_ratio,
    disaggregate,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_positive_rate,
    group_report,
    selection_rate,
    true_positive_rate,
)

fl = pytest.importorskip("fairlearn.metrics", reason='fairlearn not installed (pip install "medlens[reference]")')

pytestmark = pytest.mark.reference


def data(seed: int, weighted: bool):
    rng = np.random.default_rng(seed)
    n = 400
    race = rng.choice(["Asian", "Black", "White"], n, p=[0.15, 0.1, 0.75])
    lang = rng.choice(["English", "Spanish", "Other"], n, p=[0.8, 0.15, 0.05])
    y_true = rng.integers(0, 2, n)
    y_pred = np.where(rng.random(n) < 0.7, y_true, 1 - y_true)
    w = rng.uniform(0.2, 3.0, n) if weighted else None
    return y_true, y_pred, race, lang, w


def close(a, b):
    assert a == pytest.approx(b, abs=1e-12, nan_ok=True)


def accuracy(y_true, y_pred, *, sample_weight=None):
    return accuracy_score(y_true, y_pred, sample_weight=sample_weight)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("two_features", [False, True])
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (selection_rate, fl.selection_rate),
        (true_positive_rate, fl.true_positive_rate),
        (false_positive_rate, fl.false_positive_rate),
        (accuracy, accuracy_score),
    ],
    ids=["selection", "tpr", "fpr", "accuracy"],
)
def test_metric_frame_parity(seed, weighted, two_features, ours, theirs):
    y_true, y_pred, race, lang, w = data(seed, weighted)
    sf = {"race": race, "lang": lang} if two_features else race
    import pandas as pd

    fl_sf = pd.DataFrame(sf) if two_features else race
    params = {"sample_weight": w} if weighted else None
    mf = fl.MetricFrame(metrics=theirs, y_true=y_true, y_pred=y_pred, sensitive_features=fl_sf, sample_params=params)
    d = disaggregate(ours, y_true, y_pred, sensitive_features=sf, sample_weight=w)
    close(d.overall, mf.overall)
    theirs_by = mf.by_group.dropna().to_dict()
    assert set(theirs_by) == set(d.by_group)
    for g, v in theirs_by.items():
        close(d.by_group[g], v)
    close(d.group_min(), mf.group_min())
    close(d.group_max(), mf.group_max())
    for m in COMPARE_METHODS:
        close(d.difference(m), mf.difference(method=m))
        close(d.ratio(m), mf.ratio(method=m))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("method", COMPARE_METHODS)
def test_named_measures_parity(seed, weighted, method):
    y_true, y_pred, race, _, w = data(seed, weighted)
    kw = {"sensitive_features": race, "method": method, "sample_weight": w}
    close(demographic_parity_difference(y_true, y_pred, **kw), fl.demographic_parity_difference(y_true, y_pred, **kw))
    close(demographic_parity_ratio(y_true, y_pred, **kw), fl.demographic_parity_ratio(y_true, y_pred, **kw))
    for agg in ("worst_case", "mean"):
        close(
            equalized_odds_difference(y_true, y_pred, agg=agg, **kw),
            fl.equalized_odds_difference(y_true, y_pred, agg=agg, **kw),
        )
        close(
            equalized_odds_ratio(y_true, y_pred, agg=agg, **kw),
            fl.equalized_odds_ratio(y_true, y_pred, agg=agg, **kw),
        )


def test_group_without_positives_has_zero_tpr_as_fairlearn():
    y_true = np.array([1, 1, 0, 0, 0, 0])
    y_pred = np.array([1, 0, 1, 0, 0, 1])
    sf = ["a", "a", "a", "b", "b", "b"]
    kw = {"sensitive_features": sf}
    close(equalized_odds_difference(y_true, y_pred, **kw), fl.equalized_odds_difference(y_true, y_pred, **kw))


@pytest.mark.parametrize("seed", [0, 1])
def test_group_report_point_estimates_equal_metric_frame_of_scores(seed):
    """Per-sample scores averaged per group: group_report's P_g, pooled and max−min gap equal MetricFrame's."""
    rng = np.random.default_rng(seed)
    n = 500
    scores = rng.beta(2, 3, n)
    race = rng.choice(["Asian", "Black", "White"], n, p=[0.2, 0.1, 0.7])

    def mean_score(y_true, y_pred):
        return float(np.mean(y_pred))

    mf = fl.MetricFrame(metrics=mean_score, y_true=np.zeros(n), y_pred=scores, sensitive_features=race)
    r = group_report(scores, {"race": race}, n_bootstrap=0)["race"]
    for g in r.groups:
        close(g.score, mf.by_group[g.name])
    close(r.pooled, mf.overall)
    close(r.gap_max_min, mf.difference())
