"""RQI, CACI and AHI (medlens.metrics.normative): hand-computed cases, SSIM parity with scikit-image, the Fréchet
distance against its closed form."""

from __future__ import annotations

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.metrics import (
    anomaly_to_healthy_index,
    frechet_distance,
    masked_fidelity,
    pooled_pixel_features,
    restoration_quality,
    ssim_map,
)


def _pair(seed: int = 0, n: int = 3, size: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.clip(rng.normal(0, 0.5, (n, size, size)), -1, 1)
    return x, np.clip(x + rng.normal(0, 0.2, x.shape), -1, 1)


def test_ssim_equals_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    x, r = _pair()
    s = ssim_map(x, r, data_range=2.0)
    for i in range(len(x)):
        mean, full = metrics.structural_similarity(
            x[i], r[i], data_range=2.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, full=True
        )
        np.testing.assert_allclose(s[i], full, atol=1e-12)
        np.testing.assert_allclose(s[i][5:-5, 5:-5].mean(), mean, atol=1e-12)  # skimage crops the window's radius


def test_rqi_identical_and_hand_computed():
    x, _ = _pair()
    same = restoration_quality(x, x)
    assert same["mae"] == 0
    assert same["ssim"] == pytest.approx(1.0)
    # two images: |diff| means 0.5 and 0.1; weights 1 and 3 give (0.5 + 0.3) / 4
    a = np.zeros((2, 8, 8))
    b = a.copy()
    b[0] += 0.5
    b[1] -= 0.1
    assert restoration_quality(a, b)["mae"] == pytest.approx(0.3)
    assert restoration_quality(a, b, sample_weight=[1, 3])["mae"] == pytest.approx(0.2)
    per = restoration_quality(a, b, perceptual=lambda u, v: np.array([1.0, 3.0]))
    assert per["perceptual"] == pytest.approx(2.0)


def test_rqi_weight_two_equals_duplication():
    x, r = _pair(1)
    dup = restoration_quality(np.concatenate([x, x[:1]]), np.concatenate([r, r[:1]]))
    w = restoration_quality(x, r, sample_weight=[2, 1, 1])
    assert w["mae"] == pytest.approx(dup["mae"])
    assert w["ssim"] == pytest.approx(dup["ssim"])


def test_caci_inside_and_outside_hand_computed():
    x = np.zeros((1, 8, 8))
    r = x.copy()
    mask = np.zeros((1, 8, 8), dtype=int)
    mask[0, 2:4, 2:4] = 1  # 4 lesion pixels changed by 1.0
    r[0, 2:4, 2:4] = 1.0
    r[0, 6, 6] = 0.6  # one context pixel changed by 0.6 (60 context pixels)
    d = masked_fidelity(x, r, masks=mask)
    assert d["inside"]["mae"] == pytest.approx(1.0)
    assert d["inside"]["mse"] == pytest.approx(1.0)
    assert d["outside"]["mae"] == pytest.approx(0.6 / 60)
    assert d["outside"]["mse"] == pytest.approx(0.36 / 60)
    assert d["mae_ratio"] == pytest.approx(100.0)
    assert d["inside"]["n_pixels"] == 4
    assert d["outside"]["n_pixels"] == 60
    region = np.zeros_like(mask)
    region[0, :5, :5] = 1  # the context limited to a brain region that leaves out the changed context pixel
    d = masked_fidelity(x, r, masks=mask, region=region)
    assert d["outside"]["mae"] == 0
    assert d["outside"]["n_pixels"] == 21
    assert d["mae_ratio"] == float("inf")
    with pytest.raises(InputError, match="masks"):
        masked_fidelity(x, r, masks=mask[:, :4])


def test_frechet_distance_closed_form():
    assert frechet_distance([[0.0], [2.0]], [[1.0], [5.0]]) == pytest.approx(6.0)
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(40, 3)), rng.normal(1.0, 2.0, size=(30, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    from scipy import linalg

    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca + cb - 2 * linalg.sqrtm(ca @ cb).real)
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-8)


def test_ahi_hand_computed():
    def first_pixel(images):
        return np.asarray(images).reshape(len(images), -1)[:, :1]

    def imgs(values):
        return np.array(values, dtype=float)[:, None, None] * np.ones((1, 2, 2))

    # N and U_N: mean 1, var 2; P: mean 5 (FID 16); R_P: mean 3 (FID 4): AHI = 1 - 4/16
    doc = anomaly_to_healthy_index(imgs([4, 6]), imgs([2, 4]), healthy_reference=imgs([0, 2]),
                                   healthy_unseen=imgs([0, 2]), features=first_pixel)  # fmt: skip
    assert (doc["fid_pathological"], doc["fid_restored"], doc["fid_unseen_healthy"]) == pytest.approx((16, 4, 0))
    assert doc["ahi"] == pytest.approx(0.75)
    flat = anomaly_to_healthy_index(imgs([0, 2]), imgs([0, 2]), healthy_reference=imgs([0, 2]),
                                    healthy_unseen=imgs([0, 2]), features=first_pixel)  # fmt: skip
    assert np.isnan(flat["ahi"])  # no visible pathology: undefined, not 0 or 1
    with pytest.raises(InputError, match="sample_weight"):
        anomaly_to_healthy_index(imgs([4, 6]), imgs([2, 4]), healthy_reference=imgs([0, 2]),
                                 healthy_unseen=imgs([0, 2]), sample_weight=[1, 1])  # fmt: skip


def test_pooled_pixel_features():
    x = np.arange(16, dtype=float).reshape(1, 4, 4)
    np.testing.assert_allclose(pooled_pixel_features(x, grid=2), [[2.5, 4.5, 10.5, 12.5]])
    with pytest.raises(InputError, match="grid"):
        pooled_pixel_features(x, grid=3)
