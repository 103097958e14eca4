"""Plane sampling in physical space: array slices, SimpleITK parity, equivariance, plane fits, backends."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.slicing import (
    CANONICAL_NORMALS,
    plane_geometry,
    plane_normals,
    sample_planes,
    sample_planes_torch,
    slice_volume,
)


def _rotation(axis, deg):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    t = np.radians(deg)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


def _oblique_affine():
    """Anisotropic voxels (0.8, 1.3, 2.5 mm) on a rotated, translated grid."""
    a = np.eye(4)
    a[:3, :3] = _rotation([1, 2, 3], 27) @ np.diag([0.8, 1.3, 2.5])
    a[:3, 3] = [-12.0, 7.5, 30.0]
    return a


def _smooth_volume(shape=(31, 27, 19), seed=0):
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(0, 1, s) for s in shape], indexing="ij")
    vol = sum(np.sin(2 * np.pi * (rng.uniform(0.5, 2) * g + rng.uniform())) for g in grids)
    return (vol + 0.1 * rng.standard_normal(shape)).astype(np.float64)


# --- canonical planes, unit spacing: exactly the array's slices ----------------------------------------------


@pytest.mark.parametrize("order", [0, 1, 3])
def test_canonical_planes_reproduce_array_slices(order):
    vol = np.random.default_rng(1).random((9, 11, 13))
    affine = np.eye(4)
    affine[:3, 3] = [5.0, -3.0, 2.0]  # unit spacing, any origin
    s = slice_volume(vol, affine, views=3, method="canonical", size=9, fov_mm=9.0, order=order)
    c = (4, 5, 6)  # the volume centre in voxels
    r = np.arange(9) - 4
    # axial (n = +z): u = -y, v = +x  -> pixel (a, b) = V[c0 + b', c1 - a', c2]
    axial = vol[c[0] + r[None, :], c[1] - r[:, None], c[2]]
    # coronal (n = +y): u = -z, v = -x -> V[c0 - b', c1, c2 - a']
    coronal = vol[c[0] - r[None, :], c[1], c[2] - r[:, None]]
    # sagittal (n = +x): u = -z, v = +y -> V[c0, c1 + b', c2 - a']
    sagittal = vol[c[0], c[1] + r[None, :], c[2] - r[:, None]]
    tol = 1e-6 if order == 3 else 0.0  # the cubic spline interpolates its samples up to float32 rounding
    for got, want in zip(s.slices, [axial, coronal, sagittal], strict=True):
        np.testing.assert_allclose(got, want.astype(np.float32), atol=tol, rtol=0)
    assert s.valid.all()


def test_a_stack_gives_neighbouring_array_slices():
    vol = np.random.default_rng(2).random((9, 9, 9))
    s = slice_volume(vol, np.eye(4), views=1, method="canonical", size=9, fov_mm=9.0, stack=3, spacing_mm=1.0)
    assert s.slices.shape == (3, 9, 9)
    assert s.geometry.offsets_mm.tolist() == [-1.0, 0.0, 1.0]
    for p, k in enumerate([3, 4, 5]):
        np.testing.assert_array_equal(s.slices[p], vol[:, ::-1, k].T.astype(np.float32))


# --- SimpleITK parity: an oblique plane, anisotropic voxels, a rotated direction matrix -------------------------


@pytest.mark.reference
@pytest.mark.parametrize("order", [0, 1])
def test_matches_simpleitk_resample_image_filter(order):
    sitk = pytest.importorskip("SimpleITK")
    vol, affine = _smooth_volume(), _oblique_affine()
    normals = np.array([[0.3, -0.5, 0.81], [1.0, 0.0, 0.0], [0.2, 0.9, -0.1]])
    geo = plane_geometry(normals, affine, vol.shape, size=48, fov_mm=50.0, centre=np.array([-2.0, 20.0, 45.0]))
    ours = sample_planes(vol, affine, geo, order=order, fill=-7.0)

    # our world frame is the affine's (RAS for NIfTI); ITK's physical space is LPS: flip x and y
    flip = np.diag([-1.0, -1.0, 1.0])
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    img = sitk.GetImageFromArray(vol.transpose(2, 1, 0))  # ITK index (x, y, z) = our (i, j, k)
    img.SetSpacing(spacing.tolist())
    img.SetDirection((flip @ affine[:3, :3] / spacing).ravel().tolist())
    img.SetOrigin((flip @ affine[:3, 3]).tolist())
    interp = sitk.sitkNearestNeighbor if order == 0 else sitk.sitkLinear
    d = geo.spacing_mm
    half = (geo.size - 1) / 2
    for p in range(len(normals)):
        u, v, n = geo.u[p], geo.v[p], geo.normals[p]
        # output index (x, y) = our (column b, row a): x runs along v, y along u; z (one slice) along -n
        direction = flip @ np.stack([v, u, -n], axis=1)
        origin = flip @ (geo.centres_mm[p] - half * d * (u + v))
        out = sitk.Resample(
            img, [geo.size, geo.size, 1], sitk.Transform(), interp, origin.tolist(), [d, d, 1.0],
            direction.ravel().tolist(), -7.0, sitk.sitkFloat64,
        )  # fmt: skip
        ref = sitk.GetArrayFromImage(out)[0]
        valid = ours.valid[p]
        assert valid.mean() > 0.3
        if order == 0:  # nearest neighbour: ties aside (none here: an oblique grid), the same voxel
            assert np.mean(np.abs(ours.slices[p][valid] - ref[valid]) < 1e-5) > 0.999
        else:
            np.testing.assert_allclose(ours.slices[p][valid], ref[valid], atol=1e-5, rtol=0)
        assert np.all(ours.slices[p][~valid] == -7.0)


# --- geometry properties ------------------------------------------------------------------------------------


def test_rotating_volume_and_planes_together_leaves_slices_unchanged():
    """V'(x') = V(Q x' + t) for a 90° rotation Q of the array; planes mapped by x' = Qᵀ(x − t) sample the same."""
    vol = _smooth_volume((13, 17, 11))
    rot = np.rot90(vol, k=1, axes=(0, 1))  # rot[i', j', k] = vol[j', 16 - i', k]
    q = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    t = np.array([0.0, 16.0, 0.0])
    np.testing.assert_array_equal(rot[3, 5, 7], vol[tuple((q @ [3, 5, 7] + t).astype(int))])
    geo = plane_geometry(plane_normals(8), np.eye(4), vol.shape, size=24, fov_mm=20.0)
    moved = dataclasses.replace(
        geo,
        normals=geo.normals @ q,  # rows: Qᵀ n
        u=geo.u @ q,
        v=geo.v @ q,
        centres_mm=(geo.centres_mm - t) @ q,
    )
    for order in (0, 1, 3):
        a = sample_planes(vol, np.eye(4), geo, order=order)
        b = sample_planes(rot, np.eye(4), moved, order=order)
        np.testing.assert_array_equal(a.valid, b.valid)
        np.testing.assert_allclose(a.slices, b.slices, atol=1e-5)


def test_world_rotation_of_the_affine_and_the_planes_is_invisible():
    vol, affine = _smooth_volume(), _oblique_affine()
    r = np.eye(4)
    r[:3, :3] = _rotation([2, -1, 0.5], 71)
    r[:3, 3] = [4.0, -9.0, 1.0]
    geo = plane_geometry(plane_normals(6), affine, vol.shape, size=20)
    moved = dataclasses.replace(
        geo,
        normals=geo.normals @ r[:3, :3].T,
        u=geo.u @ r[:3, :3].T,
        v=geo.v @ r[:3, :3].T,
        centres_mm=geo.centres_mm @ r[:3, :3].T + r[:3, 3],
    )
    a = sample_planes(vol, affine, geo)
    b = sample_planes(vol, r @ affine, moved)
    np.testing.assert_allclose(a.slices, b.slices, atol=1e-5)


def test_plane_fitted_to_sampled_coordinates_has_the_requested_normal():
    """Sample three volumes holding their own world x, y, z (linear, so order 1 is exact), then fit planes."""
    affine = _oblique_affine()
    shape = (31, 27, 19)
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1).astype(float)
    world = idx @ affine[:3, :3].T + affine[:3, 3]
    normals = plane_normals(12, seed=5)
    geo = plane_geometry(normals, affine, shape, size=32, fov_mm=40.0)
    coords = np.stack([sample_planes(world[..., d], affine, geo).slices for d in range(3)], axis=-1)
    for p in range(len(normals)):
        pts = coords[p][geo_valid := sample_planes(world[..., 0], affine, geo).valid[p]].astype(float)
        assert geo_valid.sum() > 100
        centred = pts - pts.mean(axis=0)
        fitted = np.linalg.svd(centred, full_matrices=False)[2][2]
        angle = np.degrees(np.arccos(min(1.0, abs(float(fitted @ normals[p])))))
        assert angle < 0.1
        # and the plane passes through the requested centre
        assert abs(float((pts.mean(axis=0) - geo.centres_mm[p]) @ normals[p])) < 1e-3


def test_max_area_offset_finds_the_largest_cross_section():
    """A square-based pyramid: the largest axial cross-section is its base, at k = 3."""
    mask = np.zeros((21, 21, 21), dtype=bool)
    for k in range(3, 13):
        h = 12 - k  # half-width shrinks upwards
        mask[10 - h : 11 + h, 10 - h : 11 + h, k] = True
    affine = np.diag([1.0, 1.0, 2.0, 1.0])  # 2 mm slices
    geo = plane_geometry(CANONICAL_NORMALS[:1], affine, mask.shape, mask=mask, offset="max-area", size=8, fov_mm=8.0)
    centroid = (np.argwhere(mask) @ affine[:3, :3].T).mean(axis=0)
    np.testing.assert_allclose(geo.centres_mm[0], [10.0, 10.0, 6.0], atol=1e-9)  # k = 3 at 2 mm
    assert geo.offsets_mm[0] == pytest.approx(6.0 - centroid[2])
    s = sample_planes(mask.astype(float), affine, geo, order=0)
    assert s.slices.sum() == pytest.approx(min(8, 19) ** 2)  # the 19×19 base fills the 8×8 window


def test_centre_choices_and_mask_errors():
    vol = np.zeros((10, 12, 14))
    mask = np.zeros(vol.shape, dtype=bool)
    mask[2:4, 3:5, 6:8] = True
    n = CANONICAL_NORMALS
    assert plane_geometry(n, np.eye(4), vol.shape, mask=mask).centres_mm[0].tolist() == [2.5, 3.5, 6.5]
    assert plane_geometry(n, np.eye(4), vol.shape, mask=mask, centre="volume").centres_mm[0].tolist() == [
        4.5,
        5.5,
        6.5,
    ]
    given = plane_geometry(n, np.eye(4), vol.shape, centre=np.array([1.0, 2.0, 3.0]))
    assert given.centres_mm[1].tolist() == [1.0, 2.0, 3.0]
    with pytest.warns(UserWarning, match="mask is empty; using the volume centre"):
        empty = plane_geometry(n, np.eye(4), vol.shape, mask=np.zeros(vol.shape, bool))
    assert empty.centres_mm[0].tolist() == [4.5, 5.5, 6.5]
    with pytest.raises(InputError, match="mask has shape"):
        plane_geometry(n, np.eye(4), vol.shape, mask=np.zeros((10, 12, 13), bool))
    with pytest.raises(InputError, match="needs a non-empty mask"), pytest.warns(UserWarning, match="empty"):
        plane_geometry(n, np.eye(4), vol.shape, mask=np.zeros(vol.shape, bool), offset="max-area")
    with pytest.raises(InputError, match="needs spacing_mm"):
        plane_geometry(n, np.eye(4), vol.shape, stack=3)
    with pytest.raises(InputError, match="singular"):
        plane_geometry(n, np.diag([1.0, 0.0, 1.0, 1.0]), vol.shape)
    with pytest.raises(InputError, match="3-D volume"):
        slice_volume(np.zeros((4, 4)), np.eye(4))
    with pytest.raises(InputError, match="not available with the torch backend"):
        slice_volume(vol, np.eye(4), views=3, size=4, order=3, backend="torch")


def test_default_fov_holds_the_whole_volume_and_outside_is_fill():
    vol = np.ones((8, 8, 8))
    s = slice_volume(vol, np.diag([2.0, 2.0, 2.0, 1.0]), views=12, size=32, fill=-1.0)
    assert np.all(s.valid[0][12:20, 12:20])  # the middle is inside
    assert not s.valid[:, 0, 0].any()  # the corners of the square see beyond the volume
    assert np.all(s.slices[~s.valid] == -1.0)
    assert np.all(s.slices[s.valid] == 1.0)
    assert s.geometry.fov_mm == pytest.approx(2 * np.sqrt(3) * 7.0)


# --- backends ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_backend_agrees_with_numpy(order, dtype):
    pytest.importorskip("torch")
    vol, affine = _smooth_volume(), _oblique_affine()
    geo = plane_geometry(plane_normals(12), affine, vol.shape, size=40, stack=2, spacing_mm=1.5)
    ref = sample_planes(vol, affine, geo, order=order, fill=-3.0)
    got, valid = sample_planes_torch(vol[None], affine[None], [geo], order=order, fill=-3.0, dtype=dtype)
    np.testing.assert_array_equal(valid[0], ref.valid)
    np.testing.assert_allclose(got[0], ref.slices, atol=1e-5, rtol=0)


def test_torch_batches_volumes_with_their_own_affines_and_planes():
    pytest.importorskip("torch")
    vols = np.stack([_smooth_volume(seed=s) for s in range(3)])
    affines = np.stack([_oblique_affine(), np.eye(4), np.diag([1.5, 1.0, 0.5, 1.0])])
    geos = [
        plane_geometry(plane_normals(5, seed=s), a, vols.shape[1:], size=16)
        for s, a in zip(range(3), affines, strict=True)
    ]
    got, valid = sample_planes_torch(vols, affines, geos, order=1, dtype="float64")
    assert got.shape == (3, 5, 16, 16)
    for b in range(3):
        ref = sample_planes(vols[b], affines[b], geos[b])
        np.testing.assert_allclose(got[b], ref.slices, atol=1e-5)
        np.testing.assert_array_equal(valid[b], ref.valid)
    s = slice_volume(vols[0], affines[0], views=5, size=16, backend="torch")
    np.testing.assert_allclose(s.slices, sample_planes(vols[0], affines[0], s.geometry).slices, atol=1e-5)


def test_same_seed_same_slices_and_views_metadata():
    vol, affine = _smooth_volume(), _oblique_affine()
    a = slice_volume(vol, affine, views=8, size=16, seed=2)
    b = slice_volume(vol, affine, views=8, size=16, seed=2)
    np.testing.assert_array_equal(a.slices, b.slices)
    assert a.slices.dtype == np.float32
    views = a.views()
    assert len(views) == 8
    assert views[0]["normal"] == [0.0, 0.0, 1.0]
    assert {"view", "normal", "u", "v", "centre_mm", "offset_mm", "spacing_mm", "valid_fraction"} <= set(views[0])
