"""The compiled sampler (numba) against the one ``map_coordinates`` call it stands in for.

Random oblique, anisotropic affines, volume shapes down to one voxel per axis, planes partly outside the volume,
float32/float64/integer volumes: order 0 is identical, order 1 equal to float32 rounding, the validity masks
identical. ``MEDLENS_SLICING_KERNEL=0`` turns the kernel off (the reference path).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("numba")

from medlens.slicing import plane_geometry, plane_normals, sample_planes  # noqa: E402
from medlens.slicing._kernel import kernel_available  # noqa: E402


def _affine(rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    aff = np.eye(4)
    aff[:3, :3] = q @ np.diag(rng.uniform(0.5, 3.0, 3))
    aff[:3, 3] = rng.uniform(-50, 50, 3)
    return aff


def _both(vol, aff, geo, order, monkeypatch, fill=0.0):
    monkeypatch.setenv("MEDLENS_SLICING_KERNEL", "1")
    fast = sample_planes(vol, aff, geo, order=order, fill=fill)
    monkeypatch.setenv("MEDLENS_SLICING_KERNEL", "0")
    ref = sample_planes(vol, aff, geo, order=order, fill=fill)
    return fast, ref


@settings(max_examples=40, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9)),
    views=st.integers(1, 5),
    size=st.integers(1, 12),
    fov=st.floats(1.0, 60.0),
    dtype=st.sampled_from(["float32", "float64", "int16"]),
    seed=st.integers(0, 10_000),
)
def test_kernel_equals_map_coordinates(shape, views, size, fov, dtype, seed):
    with pytest.MonkeyPatch.context() as mp:
        rng = np.random.default_rng(seed)
        vol = (rng.standard_normal(shape) * 100).astype(dtype)
        aff = _affine(rng)
        geo = plane_geometry(plane_normals(views, seed=seed % 7), aff, shape, size=size, fov_mm=fov)
        for order in (0, 1):
            fast, ref = _both(vol, aff, geo, order, mp, fill=-7.0)
            np.testing.assert_array_equal(fast.valid, ref.valid)
            assert fast.slices.dtype == ref.slices.dtype == np.float32
            if order == 0:
                np.testing.assert_array_equal(fast.slices, ref.slices)
            else:
                np.testing.assert_allclose(fast.slices, ref.slices, rtol=1e-6, atol=1e-6 * float(np.abs(vol).max()))
            assert (fast.slices[~fast.valid] == -7.0).all()


def test_canonical_planes_through_voxel_centres_are_exact(monkeypatch):
    """Unit spacing, canonical normals: order 1 lands on voxel centres, so both paths give the array's values."""
    vol = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    aff = np.eye(4)
    geo = plane_geometry(plane_normals(3, method="canonical"), aff, vol.shape, size=5, fov_mm=5.0)
    fast, ref = _both(vol, aff, geo, 1, monkeypatch)
    np.testing.assert_array_equal(fast.slices, ref.slices)


def test_the_switch(monkeypatch):
    monkeypatch.setenv("MEDLENS_SLICING_KERNEL", "0")
    assert not kernel_available()
    monkeypatch.setenv("MEDLENS_SLICING_KERNEL", "1")
    assert kernel_available()
