"""Editing metrics (issue 15 §2): FID parity with the scipy.linalg.sqrtm formula, KID by hand and unbiased,
bootstrap intervals, preservation MAE, segmenter Dice."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from medlens._validation import InputError
from medlens.diffusion.edit import (
    bootstrap_fid_kid,
    dice_per_edit,
    fid,
    kid,
    preservation_mae,
    segmenter_dice,
    threshold_segmenter,
)


def _fid_scipy(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fid_equals_the_sqrtm_formula(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(loc=0.3, size=(150, 6)) @ rng.normal(size=(6, 6))
    assert fid(a, b) == pytest.approx(_fid_scipy(a, b), rel=1e-7, abs=1e-8)


def test_fid_of_identical_sets_is_zero_and_of_a_shift_is_its_square() -> None:
    f = np.random.default_rng(0).normal(size=(64, 10))
    assert abs(fid(f, f)) < 1e-8
    shift = np.arange(10) / 10
    assert fid(f, f + shift) == pytest.approx(float(shift @ shift), abs=1e-8)


def test_kid_by_hand_and_unbiased() -> None:
    # d = 1, k(a, b) = (ab + 1)^3: within a {0, 1}: 1; within b {2, 3}: 343; across: 1, 1, 27, 64
    assert kid([[0.0], [1.0]], [[2.0], [3.0]]) == pytest.approx(1 + 343 - 2 * 93 / 4)
    assert kid([[0.0], [1.0]], [[0.0], [1.0]]) == pytest.approx(1 + 1 - 2 * (1 + 1 + 1 + 8) / 4)
    rng = np.random.default_rng(0)
    vals = [kid(rng.normal(size=(12, 3)), rng.normal(size=(12, 3))) for _ in range(400)]
    assert abs(np.mean(vals)) < 3 * np.std(vals) / np.sqrt(len(vals))  # same distribution: mean 0
    assert kid(rng.normal(size=(50, 3)), rng.normal(loc=1.0, size=(50, 3))) > 0.1


def test_bootstrap_intervals_cover_the_point_estimate() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(40, 4)), rng.normal(loc=0.5, size=(40, 4))
    out = bootstrap_fid_kid(a, b, n_bootstrap=50, seed=0)
    assert out["fid"]["value"] == pytest.approx(fid(a, b))
    assert out["fid"]["ci"][0] < out["fid"]["ci"][1]
    assert out["kid"]["ci"][0] < out["kid"]["ci"][1]
    assert out == bootstrap_fid_kid(a, b, n_bootstrap=50, seed=0)
    with pytest.raises(InputError, match="same d"):
        fid(a, b[:, :3])
    with pytest.raises(InputError, match="at least 2 rows"):
        fid(a[:1], b)


def test_preservation_and_dice_by_hand() -> None:
    x = np.zeros((1, 1, 2, 2))
    e = np.array([[[[1.0, 0.5], [0.0, -0.25]]]])
    region = np.array([[[[1, 0], [0, 0]]]])
    assert preservation_mae(e, x, region).tolist() == [0.25]  # (0.5 + 0 + 0.25) / 3
    assert np.isnan(preservation_mae(e, x, np.ones_like(region))[0])
    s = np.array([[[1, 1, 0, 0]], [[0, 0, 0, 0]]])
    p = np.array([[[1, 0, 1, 0]], [[0, 0, 0, 0]]])
    assert dice_per_edit(s, p).tolist() == [0.5, 1.0]


def test_threshold_segmenter_finds_a_bright_blob_inside_the_brain() -> None:
    rng = np.random.default_rng(0)
    img = np.full((1, 1, 32, 32), -1.0)
    img[0, 0, 4:28, 4:28] = 0.1 + 0.02 * rng.normal(size=(24, 24))
    lesion = np.zeros((1, 1, 32, 32), np.uint8)
    lesion[0, 0, 10:14, 12:17] = 1
    img[lesion > 0] = 0.9
    seg = threshold_segmenter(img)
    assert seg[0, 0, :4].sum() == 0  # the background is not brain
    assert segmenter_dice(img, lesion)[0] > 0.9  # a few noise pixels pass |z| > 3 too
    assert seg[lesion > 0].all()
    assert segmenter_dice(img, lesion, segmenter=lambda x, b: np.zeros_like(lesion))[0] == 0.0
