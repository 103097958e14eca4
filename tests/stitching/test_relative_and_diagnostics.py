"""Relative projections keep their invariances; diagnostics equal hand-computed values; anchors are stratified."""

from __future__ import annotations

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.stitching import (
    cross_covariance_rank,
    linear_cka,
    relative_projection,
    sample_anchors,
    summarize_values,
    translation_report,
    zero_shot_metrics,
)


def _orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    return np.linalg.qr(rng.normal(size=(d, d)))[0]


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    return rng, rng.normal(size=(30, 6)), rng.normal(size=(8, 6))


@pytest.mark.parametrize("method", ["cosine", "angular"])
def test_angle_projections_are_invariant_to_rotation_and_isotropic_scale(data, method):
    rng, x, a = data
    q = _orthogonal(6, rng)
    base = relative_projection(x, a, method)
    assert np.allclose(relative_projection(3.7 * x @ q, 3.7 * a @ q, method), base, atol=1e-12)


def test_distance_projections_are_rotation_invariant_and_scale_linearly(data):
    rng, x, a = data
    q = _orthogonal(6, rng)
    base = relative_projection(x, a, "euclidean")
    assert np.allclose(relative_projection(x @ q, a @ q, "euclidean"), base)
    assert np.allclose(relative_projection(2 * x, 2 * a, "euclidean"), 2 * base)
    l1 = relative_projection(x, a, "l1")
    assert np.allclose(l1, np.abs(x[:, None, :] - a[None, :, :]).sum(-1))
    assert np.allclose(relative_projection(x + 5, a + 5, "l1"), l1)


def test_change_of_basis_is_invariant_to_any_invertible_linear_map(data):
    rng, x, a = data
    m = rng.normal(size=(6, 6)) + 3 * np.eye(6)
    square = a[:6]  # a basis: coefficients are exact
    assert np.allclose(relative_projection(x @ m, square @ m, "cob"), relative_projection(x, square, "cob"))
    assert np.allclose(relative_projection(x, square, "cob") @ square, x)


def test_projection_values_by_hand():
    x = np.array([[1.0, 0.0]])
    a = np.array([[0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]])
    assert np.allclose(relative_projection(x, a, "cosine"), [[0.0, -1.0, np.sqrt(0.5)]])
    assert np.allclose(relative_projection(x, a, "angular"), [[0.5, 1.0, 0.25]])
    assert np.allclose(relative_projection(x, a, "euclidean"), [[np.sqrt(2), 2.0, 1.0]])
    assert np.allclose(relative_projection(x, a, "l1"), [[2.0, 2.0, 1.0]])


def test_projection_errors():
    with pytest.raises(InputError, match="both must live in one space"):
        relative_projection(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(InputError, match="method"):
        relative_projection(np.zeros((2, 3)), np.zeros((2, 3)), "dot")


def test_translation_report_by_hand():
    target = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # row 0 is exact; row 1 points at row 2's target and is as close to target 0 as to its own: rank 3 (ties
    # count against it); row 2 is exact
    translated = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    r = translation_report(translated, target)
    assert r["top1"] == pytest.approx(2 / 3)
    assert r["mrr"] == pytest.approx((1 + 1 / 3 + 1) / 3)
    assert r["pair_cosine"] == pytest.approx((1 + np.sqrt(0.5) + 1) / 3)
    assert r["mse"] == pytest.approx(1 / 6)


def test_linear_cka_properties():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(100, 5))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 4 * x @ _orthogonal(5, rng) + 2) == pytest.approx(1.0)
    assert linear_cka(x, rng.normal(size=(100, 7))) < 0.2
    # the Gram form (fewer rows than dimensions) gives the same value as the feature form
    small = rng.normal(size=(6, 10))
    other = small @ rng.normal(size=(10, 12))
    a, b = small - small.mean(0), other - other.mean(0)
    feature_form = np.linalg.norm(b.T @ a) ** 2 / (np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b))
    assert linear_cka(small, other) == pytest.approx(feature_form)


def test_cross_covariance_rank_counts_shared_directions():
    rng = np.random.default_rng(3)
    shared = rng.normal(size=(500, 3))
    x = np.hstack([shared, rng.normal(size=(500, 5))])
    y = np.hstack([shared @ _orthogonal(3, rng), rng.normal(size=(500, 4))])
    out = cross_covariance_rank(x, y, tol=0.5)
    assert out["rank"] == 3


def test_sample_anchors_is_stratified_deterministic_and_disjoint():
    strata = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    pool = np.arange(100)
    idx = sample_anchors(20, pool=pool, strata=strata, seed=0)
    keys = [strata[i] for i in idx]
    assert (keys.count("a"), keys.count("b"), keys.count("c")) == (12, 6, 2)
    assert np.array_equal(idx, sample_anchors(20, pool=pool, strata=strata, seed=0))
    assert len(set(idx)) == 20
    sub = sample_anchors(5, pool=np.arange(50, 100), seed=1)
    assert sub.min() >= 50
    with pytest.raises(InputError, match="cannot draw 101 anchors"):
        sample_anchors(101, pool=pool)


def test_summarize_values_and_zero_shot_metrics():
    s = summarize_values([0.5])
    assert s["mean"] == 0.5
    assert s["ci"] is None
    scores = np.array([[0.9, 0.2], [0.1, 0.8], [0.7, 0.6], [0.3, 0.1]])
    truth = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    m = zero_shot_metrics(scores, truth, classes=["x", "y"])
    assert m["auroc"] == {"x": 1.0, "y": 1.0}
    assert m["macro_auroc"] == 1.0
    m = zero_shot_metrics(scores, np.array([[1, 0], [0, 0], [1, 0], [0, 0]]))
    assert m["skipped"] == ["1"]


def test_logistic_head_equals_sklearn_per_column():
    from sklearn.linear_model import LogisticRegression

    from medlens.stitching import LogisticHead

    rng = np.random.default_rng(4)
    x = rng.normal(size=(300, 6))
    y = (x @ rng.normal(size=(6, 3)) + rng.normal(size=(300, 3)) > 0.3).astype(int)
    y = np.column_stack([y, np.zeros(300, dtype=int)])  # one single-class column
    head = LogisticHead(C=0.5, tol=1e-10).fit(x, y)
    p = head.predict_proba(x)
    for j in range(3):
        ref = LogisticRegression(C=0.5, tol=1e-12, max_iter=100_000).fit(x, y[:, j])
        assert np.allclose(head.coef_[:, j], ref.coef_[0], atol=1e-5)
        assert np.allclose(p[:, j], ref.predict_proba(x)[:, 1], atol=1e-6)
    assert np.allclose(p[:, 3], 0.5 / 301)
