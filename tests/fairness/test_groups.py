"""Group reports: hand-computed cases, FAP/ES identities, bootstrap intervals, small groups and missing values."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medlens._validation import InputError
from medlens.fairness import (
    DISPERSIONS,
    FAP_WEIGHTS,
    SmallGroupWarning,
    encode_attribute,
    es_metric,
    fap,
    group_report,
)
from medlens.fairness._bootstrap import resampled_group_sums

group_scores = st.dictionaries(
    st.text("abcdefgh", min_size=1, max_size=3),
    st.floats(0, 1, allow_nan=False),
    min_size=2,
    max_size=6,
)


def sizes_for(groups: dict, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {g: int(rng.integers(1, 500)) for g in groups}


# ------------------------------------------------------------------------------------------------ FAP and ES
def test_fap_hand_computed_variants():
    P, n = {"a": 0.8, "b": 0.5}, {"a": 30, "b": 10}
    r = fap(P, n)
    assert (r.performance, r.dispersion, r.value) == pytest.approx((0.725, 0.1125, 0.6125))
    assert r.worst_group == "b"
    assert r.min_group_score == 0.5
    std = fap(P, n, dispersion="std")  # sqrt(.75 * .075² + .25 * .225²)
    assert std.dispersion == pytest.approx(np.sqrt(0.75 * 0.075**2 + 0.25 * 0.225**2))
    rng_ = fap(P, n, dispersion="range", lam=2.0)
    assert rng_.value == pytest.approx(0.725 - 2 * 0.3)
    uni = fap(P, n, weights="uniform")
    assert (uni.performance, uni.dispersion, uni.value) == pytest.approx((0.65, 0.15, 0.5))
    assert set(r.variants) == {f"{w}/{d}" for w in FAP_WEIGHTS for d in DISPERSIONS}
    assert r.variants["uniform/mad"] == pytest.approx(0.5)
    assert r.to_dict()["lambda"] == 1.0
    assert "lam" not in r.to_dict()


@given(st.floats(0, 1, allow_nan=False), st.integers(2, 6), st.sampled_from(FAP_WEIGHTS), st.sampled_from(DISPERSIONS))
def test_fap_equal_groups_is_the_mean(p, k, weights, dispersion):
    P = {f"g{i}": p for i in range(k)}
    r = fap(P, sizes_for(P), weights=weights, dispersion=dispersion, lam=3.0)
    assert r.value == pytest.approx(p)
    assert r.dispersion == pytest.approx(0.0, abs=1e-12)


@given(group_scores, st.sampled_from(FAP_WEIGHTS), st.sampled_from(DISPERSIONS))
@settings(max_examples=60)
def test_fap_monotone_in_lambda_and_order_invariant(P, weights, dispersion):
    n = sizes_for(P)
    values = [fap(P, n, lam=lam, weights=weights, dispersion=dispersion).value for lam in (0, 0.5, 1, 2, 5)]
    assert all(a >= b - 1e-12 for a, b in zip(values, values[1:], strict=False))
    assert values[0] == pytest.approx(fap(P, n, weights=weights).performance)
    rev = dict(reversed(list(P.items())))
    assert fap(rev, n, weights=weights, dispersion=dispersion).value == pytest.approx(values[2])


@given(group_scores, st.sampled_from(DISPERSIONS))
@settings(max_examples=40)
def test_uniform_weights_ignore_sizes(P, dispersion):
    a = fap(P, sizes_for(P, 0), weights="uniform", dispersion=dispersion)
    b = fap(P, sizes_for(P, 1), weights="uniform", dispersion=dispersion)
    assert a.value == pytest.approx(b.value)
    assert a.performance == pytest.approx(np.mean(list(P.values())))


def test_fap_lower_is_better_penalises_upwards():
    r = fap({"a": 0.1, "b": 0.3}, weights="uniform", higher_is_better=False)
    assert r.value == pytest.approx(0.2 + 0.1)
    assert r.worst_group == "b"


def test_fap_rejects_bad_options():
    with pytest.raises(InputError, match="group_sizes"):
        fap({"a": 1.0, "b": 0.0})
    with pytest.raises(InputError, match="'dispersion' parameter"):
        fap({"a": 1.0}, weights="uniform", dispersion="var")
    with pytest.raises(InputError, match="range"):
        fap({"a": 1.0}, weights="uniform", lam=-1)


@given(st.floats(0.01, 1), st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=6), st.floats(0, 3))
def test_es_identities(p, groups, alpha):
    assert es_metric(p, [p] * len(groups), alpha=alpha) == pytest.approx(p)
    es = es_metric(p, groups, alpha=alpha)
    assert es <= p + 1e-12
    assert es == pytest.approx(p / (1 + alpha * sum(abs(g - p) for g in groups)))
    assert es_metric(p, groups, alpha=0) == pytest.approx(p)


# ------------------------------------------------------------------------------------------------ reports
def toy(n_small: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    groups = np.array(["A"] * 200 + ["B"] * 100 + ["C"] * n_small)
    mean = {"A": 0.7, "B": 0.5, "C": 0.1}
    scores = np.array([rng.normal(mean[g], 0.1) for g in groups])
    return scores, groups


def test_report_matches_hand_computation():
    scores, groups = toy()
    with pytest.warns(SmallGroupWarning, match="'C' has 5 sample"):
        rep = group_report(scores, {"site": groups}, n_bootstrap=200, seed=1)
    r = rep["site"]
    P = {g: scores[groups == g].mean() for g in "ABC"}
    assert [g.name for g in r.groups] == ["A", "B", "C"]
    assert [g.n for g in r.groups] == [200, 100, 5]
    assert [g.excluded for g in r.groups] == [False, False, True]
    assert r.group("B").score == pytest.approx(P["B"])
    assert r.pooled == pytest.approx(scores.mean())
    ref = (200 * P["A"] + 100 * P["B"]) / 300  # included groups only
    assert r.fap.performance == pytest.approx(ref)
    assert r.fap.dispersion == pytest.approx((200 * abs(P["A"] - ref) + 100 * abs(P["B"] - ref)) / 300)
    assert r.gap_max_min == pytest.approx(P["A"] - P["B"])
    assert r.gap_max_abs == pytest.approx(max(abs(P["A"] - ref), abs(P["B"] - ref)))
    assert r.gap_std == pytest.approx(np.std([P["A"], P["B"]]))
    assert r.es == pytest.approx(ref / (1 + abs(P["A"] - ref) + abs(P["B"] - ref)))
    assert r.worst_group == "B"
    assert r.fap.worst_group == "B"
    for g in r.groups:  # every group, excluded ones too, has an interval around its estimate
        assert g.ci_low <= g.score <= g.ci_high
    for key in ("pooled", "gap_max_min", "es"):
        lo, hi = r.ci[key]
        assert lo <= (r.pooled if key == "pooled" else getattr(r, key)) <= hi
    assert r.fap.ci_low <= r.fap.value <= r.fap.ci_high
    doc = json.loads(json.dumps(rep.to_dict()))
    assert doc["attributes"]["site"]["groups"][2] == {
        "name": "C",
        "n": 5,
        "score": pytest.approx(P["C"]),
        "ci_low": pytest.approx(r.groups[2].ci_low),
        "ci_high": pytest.approx(r.groups[2].ci_high),
        "excluded": True,
    }


def test_report_is_seeded_and_order_invariant():
    scores, groups = toy(40)
    a = group_report(scores, {"g": groups}, n_bootstrap=100, seed=3)["g"]
    b = group_report(scores, {"g": groups}, n_bootstrap=100, seed=3)["g"]
    assert a.to_dict() == b.to_dict()
    relabel = {"A": "z", "B": "y", "C": "x"}  # other names, other sort order: same numbers per group
    c = group_report(scores, {"g": [relabel[g] for g in groups]}, n_bootstrap=0)["g"]
    a0 = group_report(scores, {"g": groups}, n_bootstrap=0)["g"]
    assert c.fap.value == pytest.approx(a0.fap.value)
    assert c.es == pytest.approx(a0.es)
    assert c.group("y").score == pytest.approx(a0.group("B").score)


def test_equal_groups_give_fap_equal_to_mean():
    groups = np.repeat(["a", "b", "c"], 39)
    scores = np.tile([0.2, 0.4, 0.9], 39)  # each group holds the same values
    r = group_report(scores, {"g": groups}, n_bootstrap=0)["g"]
    assert all(g.score == pytest.approx(scores.mean()) for g in r.groups)
    assert r.fap.value == pytest.approx(scores.mean())
    assert r.gap_max_min == pytest.approx(0, abs=1e-12)
    assert r.es == pytest.approx(scores.mean())


def test_missing_policy_and_counts():
    scores = np.arange(10, dtype=float)
    attr = ["a", "a", "b", None, "b", float("nan"), "", "Unknown", "a", "b"]
    drop = group_report(scores, {"x": attr}, min_group_size=1, n_bootstrap=0, unknown=["Unknown"])["x"]
    assert drop.n_missing == 4
    assert drop.n == 6
    assert [g.name for g in drop.groups] == ["a", "b"]
    assert drop.pooled == pytest.approx(np.mean([0, 1, 2, 4, 8, 9]))
    own = group_report(scores, {"x": attr}, min_group_size=1, n_bootstrap=0, unknown=["Unknown"], missing="group")
    r = own["x"]
    assert r.n_missing == 4
    assert r.n == 10
    assert r.group("unknown").n == 4
    assert r.group("unknown").score == pytest.approx(np.mean([3, 5, 6, 7]))
    codes, names, n_missing = encode_attribute([2, 1, None, 2.0], missing="group")
    assert names == ["1", "2", "unknown"]
    assert codes.tolist() == [1, 0, 2, 1]
    assert n_missing == 1


def test_nan_scores_are_counted_and_left_out():
    rep = group_report([1.0, np.nan, 0.0, 1.0], {"x": ["a", "a", "b", "b"]}, min_group_size=1, n_bootstrap=0)
    assert rep.n_nan_scores == 1
    assert rep.n == 3
    assert rep["x"].group("a").n == 1


def test_intersections_are_opt_in():
    scores = np.arange(8, dtype=float)
    attrs = {"r": ["x", "x", "y", "y", "x", "x", "y", None], "s": ["F", "M", "F", "M", "F", "M", "F", "M"]}
    plain = group_report(scores, attrs, min_group_size=1, n_bootstrap=0)
    assert set(plain.attributes) == {"r", "s"}
    rep = group_report(scores, attrs, min_group_size=1, n_bootstrap=0, intersections=[("r", "s")])
    r = rep["r&s"]
    assert [(g.name, g.n) for g in r.groups] == [("x&F", 2), ("x&M", 2), ("y&F", 2), ("y&M", 1)]
    assert r.n_missing == 1
    assert r.group("y&F").score == pytest.approx(4.0)
    with pytest.raises(InputError, match="unknown: \\['q'\\]"):
        group_report(scores, attrs, intersections=[("r", "q")])


def test_small_groups_everywhere_leave_no_summary():
    with pytest.warns(SmallGroupWarning) as caught:
        r = group_report(np.arange(10.0), {"x": ["a"] * 5 + ["b"] * 5}, n_bootstrap=10)["x"]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 3
    assert "gaps, ES and FAP need two" in messages[-1]
    assert r.fap is None
    assert r.es is None
    assert r.worst_group is None
    assert all(g.excluded for g in r.groups)
    assert r.ci["pooled"] is not None
    assert r.ci["es"] is None


@pytest.mark.parametrize(
    ("scores", "attrs", "match"),
    [
        ([1.0, 2.0], {"x": ["a", "a"]}, "'x' has 1 distinct value"),
        ([1.0, 2.0], {"x": ["a"]}, "has 1 values for 2 scores"),
        (["a", "b"], {"x": ["a", "b"]}, "scores must be numbers"),
        ([1.0, np.inf], {"x": ["a", "b"]}, "finite or NaN"),
        ([1.0, 2.0], {}, "attributes is empty"),
    ],
)
def test_bad_input(scores, attrs, match):
    with pytest.raises(InputError, match=match):
        group_report(scores, attrs, min_group_size=1, n_bootstrap=0)


# ------------------------------------------------------------------------------------------------ bootstrap
def test_resampled_sums_preserve_totals_and_stratify_fixes_sizes():
    rng = np.random.default_rng(0)
    s = rng.random(300)
    codes = [rng.integers(0, 3, 300), np.where(rng.random(300) < 0.2, -1, rng.integers(0, 2, 300))]
    joint = resampled_group_sums(s, codes, [3, 2], n_bootstrap=50, seed=0)
    assert np.allclose(joint[0][1].sum(axis=1), 300)  # every draw lands in a group of attribute 0
    assert (joint[1][1].sum(axis=1) < 300).all()  # attribute 1 does not count its missing rows
    strat = resampled_group_sums(s, codes, [3, 2], n_bootstrap=50, seed=0, stratify=True)
    assert np.allclose(strat[0][1], np.bincount(codes[0], minlength=3))
    assert np.allclose(strat[1][1], np.bincount(codes[1][codes[1] >= 0], minlength=2))
    means = strat[0][0] / strat[0][1]
    for g in range(3):  # resampled means scatter around the group mean
        assert abs(means[:, g].mean() - s[codes[0] == g].mean()) < 0.02


@pytest.mark.parametrize("stratify", [False, True])
def test_bootstrap_interval_coverage(stratify):
    """Near-nominal coverage of the 90% group-mean interval: 200 simulated data sets of known mean."""
    rng = np.random.default_rng(7)
    hits, trials = 0, 200
    for t in range(trials):
        groups = np.array(["a"] * 60 + ["b"] * 40)
        s = rng.exponential(1.0, 100)  # skewed, true group mean 1
        rep = group_report(s, {"g": groups}, n_bootstrap=200, confidence=0.9, seed=t, stratify=stratify)
        g = rep["g"].group("b")
        hits += g.ci_low <= 1.0 <= g.ci_high
    assert 0.8 <= hits / trials <= 0.97


def test_no_deep_warning_flood():
    scores, groups = toy(40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        group_report(scores, {"g": groups}, n_bootstrap=50)
