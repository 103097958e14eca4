"""Per-volume intensity normalisation: CT windows and MR percentile clipping, float32 in [0, 1]."""

from __future__ import annotations

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.slicing import normalize_intensity


def test_ct_window_by_hand():
    v = np.array([-1500.0, -1000.0, 0.0, 400.0, 1000.0, 3000.0]).reshape(1, 2, 3)
    out = normalize_intensity(v, "ct")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.ravel(), [0.0, 0.0, 0.5, 0.7, 1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(normalize_intensity(v, "ct", window=(-160, 240)).ravel()[2], 0.4)


def test_mr_percentiles_over_the_foreground_and_whole_volume_not_per_slice():
    rng = np.random.default_rng(0)
    v = np.zeros((4, 50, 50))
    v[:, 10:40, 10:40] = rng.uniform(100, 200, size=(4, 30, 30))
    v[0, 20, 20] = 1e6  # one outlier
    out = normalize_intensity(v, "mr", percentiles=(1, 99))
    fg = v[v != 0]
    lo, hi = np.percentile(fg, [1, 99])
    np.testing.assert_allclose(out[1, 15, 15], np.clip((v[1, 15, 15] - lo) / (hi - lo), 0, 1), rtol=1e-6)
    assert out.max() == 1.0
    assert out[0, 0, 0] == 0.0
    mask = np.zeros(v.shape, bool)
    mask[2] = True
    lo2, hi2 = np.percentile(v[2], [1, 99])
    np.testing.assert_allclose(
        normalize_intensity(v, "mr", percentiles=(1, 99), mask=mask)[2, 12, 12], (v[2, 12, 12] - lo2) / (hi2 - lo2),
        rtol=1e-5,
    )  # fmt: skip


def test_constant_volume_and_bad_options():
    assert not normalize_intensity(np.full((2, 2, 2), 5.0), "minmax").any()
    with pytest.raises(InputError, match="low < high"):
        normalize_intensity(np.zeros((2, 2, 2)), "ct", window=(10, 10))
    with pytest.raises(InputError, match="percentiles"):
        normalize_intensity(np.ones((2, 2, 2)), "mr", percentiles=(50, 10))
    with pytest.raises(InputError, match="'intensity' parameter"):
        normalize_intensity(np.ones((2, 2, 2)), "pet")
