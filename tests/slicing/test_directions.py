"""Plane directions on RP²: distinct planes, exact canonical normals, determinism, quality report."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medlens._validation import InputError
from medlens.slicing import (
    CANONICAL_NORMALS,
    canonicalize_normals,
    in_plane_axes,
    normals_quality,
    plane_angles,
    plane_normals,
)


@pytest.mark.parametrize("method", ["thomson", "fibonacci"])
@pytest.mark.parametrize("n", [4, 8, 12, 24])
@pytest.mark.parametrize("include_canonical", [True, False])
def test_n_unit_normals_that_are_distinct_planes(method, n, include_canonical):
    normals = plane_normals(n, method, include_canonical=include_canonical)
    assert normals.shape == (n, 3)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-12)
    ang = plane_angles(normals)
    assert ang[~np.eye(n, dtype=bool)].min() > 1.0  # no plane repeats, not even as its own negative
    first = normals[np.arange(n), np.argmax(np.abs(normals) > 1e-12, axis=1)]
    assert np.all(first > 0)  # sign-canonicalised


def test_canonical_first_and_exact():
    for method in ("thomson", "fibonacci"):
        normals = plane_normals(12, method, include_canonical=True)
        assert normals[:3].tolist() == CANONICAL_NORMALS.tolist()  # bit-exact: axial, coronal, sagittal
        assert normals_quality(normals).canonical == ("axial", "coronal", "sagittal")
    assert plane_normals(2, "thomson").tolist() == [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]


def test_three_canonical_planes_are_90_degrees_apart():
    q = normals_quality(plane_normals(3, method="canonical"))
    assert q.min_angle_deg == 90.0
    assert q.mean_nearest_angle_deg == 90.0
    assert q.n == 3


@pytest.mark.parametrize(
    ("n", "best"),
    [(4, 70.5287793655), (6, 63.4349488229)],  # cube diagonals; icosahedron axes (best known line packings)
)
def test_thomson_finds_the_known_optimal_line_packings(n, best):
    q = normals_quality(plane_normals(n, include_canonical=False))
    assert q.min_angle_deg == pytest.approx(best, abs=0.01)


@pytest.mark.parametrize("n", [12, 24])
@pytest.mark.parametrize("include_canonical", [True, False])
def test_thomson_beats_fibonacci_on_min_angle(n, include_canonical):
    t = normals_quality(plane_normals(n, "thomson", include_canonical=include_canonical))
    f = normals_quality(plane_normals(n, "fibonacci", include_canonical=include_canonical))
    assert t.min_angle_deg > f.min_angle_deg + 5
    assert t.mean_nearest_angle_deg > f.mean_nearest_angle_deg


def test_rp2_repulsion_not_sphere_repulsion():
    """On the sphere, 12 points can sit as 6 antipodal pairs (one plane each); on RP² they must not."""
    normals = plane_normals(12, include_canonical=False)
    cos = np.abs(normals @ normals.T)[~np.eye(12, dtype=bool)]
    assert cos.max() < np.cos(np.radians(30))


def test_same_seed_same_views_and_copies_are_returned():
    a = plane_normals(16, seed=3)
    a[:] = 0.0  # the cache hands out copies
    b, c = plane_normals(16, seed=3), plane_normals(16, seed=3)
    np.testing.assert_array_equal(b, c)
    assert np.abs(b).sum() > 0
    d = plane_normals(16, seed=4)
    assert not np.allclose(b, d)
    np.testing.assert_array_equal(b[:3], d[:3])  # the fixed canonical planes do not depend on the seed


def test_fibonacci_is_the_golden_angle_hemisphere_lattice():
    normals = plane_normals(5, "fibonacci", include_canonical=False)
    z = 1 - (np.arange(5) + 0.5) / 5
    np.testing.assert_allclose(np.sort(np.abs(normals[:, 2]))[::-1], z, atol=1e-12)


def test_bad_arguments():
    with pytest.raises(InputError, match="positive integer"):
        plane_normals(0)
    with pytest.raises(InputError, match="Did you mean"):
        plane_normals(4, "thompson")
    with pytest.raises(InputError, match="at most 3"):
        plane_normals(4, "canonical")
    with pytest.raises(InputError, match="at least 2"):
        normals_quality(np.array([[0.0, 0.0, 1.0]]))
    with pytest.raises(InputError, match="non-zero"):
        canonicalize_normals(np.zeros((1, 3)))


unit = st.tuples(*[st.floats(-1, 1, allow_nan=False)] * 3).filter(lambda t: np.linalg.norm(t) > 1e-3)


@settings(max_examples=60, deadline=None)
@given(unit)
def test_in_plane_axes_are_right_handed_orthonormal(t):
    n = canonicalize_normals(np.array([t]))
    u, v = in_plane_axes(n)
    frame = np.stack([u[0], v[0], n[0]], axis=1)
    np.testing.assert_allclose(frame.T @ frame, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(np.cross(u[0], v[0]), n[0], atol=1e-12)


def test_canonical_in_plane_axes_follow_the_viewer_convention():
    u, v = in_plane_axes(CANONICAL_NORMALS)
    # axial: anterior at the top (rows run posterior), patient's right on the right
    assert u[0].tolist() == [0.0, -1.0, 0.0]
    assert v[0].tolist() == [1.0, 0.0, 0.0]
    # coronal and sagittal: head at the top
    assert u[1].tolist() == [0.0, 0.0, -1.0]
    assert v[1].tolist() == [-1.0, 0.0, 0.0]
    assert u[2].tolist() == [0.0, 0.0, -1.0]
    assert v[2].tolist() == [0.0, 1.0, 0.0]
