"""Pixel localisation metrics: parity with scikit-learn on random cases, hand-computed Dice and thresholds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medlens._validation import InputError
from medlens.metrics import (
    PixelCurve,
    best_dice_threshold,
    dice_per_image,
    dice_score,
    lesion_size_strata,
    pixel_auprc,
    pixel_auroc,
    threshold_at_fpr,
)

skm = pytest.importorskip("sklearn.metrics")


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 200), ties=st.booleans(), weighted=st.booleans())
def test_auprc_and_auroc_equal_scikit_learn(seed: int, n: int, ties: bool, weighted: bool) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[0], y[1] = 0, 1  # both classes
    s = rng.integers(0, 5, n).astype(float) if ties else rng.normal(size=n)
    w = rng.uniform(0, 3, n) if weighted else None
    assert pixel_auprc(y, s, sample_weight=w) == pytest.approx(skm.average_precision_score(y, s, sample_weight=w))
    assert pixel_auroc(y, s, sample_weight=w) == pytest.approx(skm.roc_auc_score(y, s, sample_weight=w))


def test_image_shaped_inputs_pool_all_pixels() -> None:
    rng = np.random.default_rng(1)
    masks = rng.random((4, 1, 8, 8)) < 0.1
    maps = rng.random((4, 1, 8, 8)) + masks
    assert pixel_auprc(masks, maps) == pytest.approx(skm.average_precision_score(masks.ravel(), maps.ravel()))
    curve = PixelCurve(masks, maps)
    w = np.repeat(rng.integers(0, 3, 4), 64).astype(float)
    assert curve.auroc(w) == pytest.approx(skm.roc_auc_score(masks.ravel(), maps.ravel(), sample_weight=w))


def test_dice_pooled_per_image_and_f1_parity() -> None:
    t = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]])
    p = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
    # pooled: TP 1, |P| 2, |G| 3 → 2/5
    assert dice_score(t, p) == pytest.approx(0.4)
    assert dice_score(t, p) == pytest.approx(skm.f1_score(t.ravel(), p.ravel()))
    per = dice_per_image(t, p)
    assert per[0] == pytest.approx(2 / 3)
    assert per[1] == 0.0  # a false positive on a healthy image
    assert per[2] == 0.0
    assert np.isnan(dice_per_image(np.zeros((1, 3)), np.zeros((1, 3)))[0])
    assert dice_score(np.zeros(3), np.zeros(3)) == 1.0


def test_threshold_at_fpr_bounds_the_healthy_fpr() -> None:
    rng = np.random.default_rng(2)
    h = rng.normal(size=10_000)
    for fpr in (0.01, 0.05, 0.1):
        tau = threshold_at_fpr(h, fpr)
        assert (h > tau).mean() <= fpr
        assert (h >= tau).mean() > fpr - 1e-4  # the smallest such threshold
    ties = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1.0])
    tau = threshold_at_fpr(ties, 0.5)
    assert tau == 1.0  # 0.5 of the pixels may exceed; '> 0' would flag 70 %
    assert threshold_at_fpr(ties, 0.0) == 1.0


def test_best_dice_threshold_is_the_brute_force_optimum() -> None:
    rng = np.random.default_rng(3)
    t = rng.random(300) < 0.2
    s = rng.random(300) + 0.5 * t
    tau, d = best_dice_threshold(t, s)
    brute = max(dice_score(t, s > c) for c in np.r_[s.min() - 1, s])
    assert d == pytest.approx(brute)
    assert dice_score(t, s > tau) == pytest.approx(d)
    tau_g, d_g = best_dice_threshold(t, s, thresholds=np.linspace(0, 1.5, 16))
    assert d_g <= d + 1e-12
    assert dice_score(t, s > tau_g) == pytest.approx(d_g)


def test_lesion_size_strata_use_quartiles_of_lesion_areas() -> None:
    masks = np.zeros((6, 10, 10), bool)
    for i, a in enumerate([0, 4, 10, 20, 30, 80]):
        masks[i].flat[:a] = True
    out = lesion_size_strata(masks)
    assert out["edges"] == [10.0, 30.0]
    assert out["strata"] == ["", "small", "small", "medium", "medium", "large"]


def test_bad_inputs() -> None:
    with pytest.raises(InputError, match="same shape"):
        pixel_auprc([0, 1], [0.1])
    with pytest.raises(InputError, match="NaN"):
        pixel_auroc([0, 1], [np.nan, 0.2])
    with pytest.raises(InputError, match="empty"):
        pixel_auprc([], [])
    with pytest.raises(InputError, match="healthy"):
        threshold_at_fpr([], 0.05)
    with pytest.raises(InputError, match="no image has a lesion"):
        lesion_size_strata(np.zeros((2, 3, 3)))
    assert np.isnan(pixel_auprc([0, 0], [0.1, 0.2]))
