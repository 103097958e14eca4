"""Volume readers: NIfTI (nibabel's T1), a DICOM series built from pydicom's CT slice, SimpleITK parity, masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.io import LPS_TO_RAS, read_mask, read_volume

nib = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")

ANATOMICAL = Path(nib.__file__).parent / "tests" / "data" / "anatomical.nii"


def test_nifti_t1_brain_as_nibabel_reads_it():
    v = read_volume(ANATOMICAL)
    img = nib.load(str(ANATOMICAL))
    assert v.shape == (33, 41, 25)
    assert v.spacing_mm == (2.0, 2.0, 2.0)
    assert v.array.dtype == np.float32
    assert v.reader == "nibabel"
    np.testing.assert_array_equal(v.array, img.get_fdata(dtype=np.float32))
    np.testing.assert_array_equal(v.affine, img.affine)


@pytest.mark.reference
def test_simpleitk_reader_gives_the_same_volume_in_ras():
    pytest.importorskip("SimpleITK")
    a = read_volume(ANATOMICAL)
    b = read_volume(ANATOMICAL, reader="simpleitk")
    np.testing.assert_array_equal(a.array, b.array)
    np.testing.assert_allclose(a.affine, b.affine, atol=1e-5)


def _oblique_nifti(path, shape=(6, 7, 8), data=None):
    aff = np.array([[0.0, -1.5, 0.3, 10.0], [0.9, 0.0, 0.0, -20.0], [0.0, 0.2, 2.9, 5.0], [0, 0, 0, 1]])
    data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape) if data is None else data
    nib.save(nib.Nifti1Image(data, aff), str(path))
    return aff, data


def test_oblique_nifti_roundtrip_and_4d_with_one_timepoint(tmp_path):
    aff, data = _oblique_nifti(tmp_path / "v.nii.gz")
    v = read_volume(tmp_path / "v.nii.gz")
    np.testing.assert_allclose(v.affine, aff, atol=1e-5)
    np.testing.assert_array_equal(v.array, data)
    _oblique_nifti(tmp_path / "t1.nii", shape=(6, 7, 8, 1), data=np.ones((6, 7, 8, 1), np.float32))
    assert read_volume(tmp_path / "t1.nii").shape == (6, 7, 8)


def test_non_3d_inputs_are_refused(tmp_path):
    _oblique_nifti(tmp_path / "t2.nii", shape=(6, 7, 8, 2), data=np.ones((6, 7, 8, 2), np.float32))
    with pytest.raises(InputError, match=r"expected a 3-D volume; got an image of shape \(6, 7, 8, 2\)"):
        read_volume(tmp_path / "t2.nii")
    nib.save(nib.Nifti1Image(np.ones((5, 5), np.float32), np.eye(4)), str(tmp_path / "flat.nii"))
    with pytest.raises(InputError, match="expected a 3-D volume"):
        read_volume(tmp_path / "flat.nii")
    with pytest.raises(InputError, match="does not exist"):
        read_volume(tmp_path / "nope.nii")
    (tmp_path / "bad.nii").write_bytes(b"not a nifti")
    with pytest.raises(InputError, match="cannot read as NIfTI"):
        read_volume(tmp_path / "bad.nii")


def test_masks_must_share_the_volume_grid(tmp_path):
    aff, data = _oblique_nifti(tmp_path / "v.nii")
    vol = read_volume(tmp_path / "v.nii")
    m = np.zeros(data.shape, np.uint8)
    m[2:4, 3, 4] = 2
    nib.save(nib.Nifti1Image(m, aff), str(tmp_path / "m.nii"))
    mask = read_mask(tmp_path / "m.nii", like=vol)
    assert mask.dtype == bool
    assert mask.sum() == 2
    nib.save(nib.Nifti1Image(m[:, :, :-1], aff), str(tmp_path / "short.nii"))
    with pytest.raises(InputError, match=r"has shape \(6, 7, 7\) but volume .* has \(6, 7, 8\)"):
        read_mask(tmp_path / "short.nii", like=vol)
    moved = aff.copy()
    moved[0, 3] += 1.0
    nib.save(nib.Nifti1Image(m, moved), str(tmp_path / "moved.nii"))
    with pytest.raises(InputError, match="on another grid.*differ by up to 1 mm"):
        read_mask(tmp_path / "moved.nii", like=vol)


# --- DICOM: a series of pydicom's real CT slice, re-positioned as an oblique stack ------------------------------

ROW = np.array([0.96, 0.28, 0.0])
COL = np.array([0.0, 0.0, -1.0])


def _write_series(folder: Path, n=5, gap=2.5, skip=(), uid="1.2.3.4"):
    src = pydicom.data.get_testdata_file("CT_small.dcm")
    folder.mkdir(exist_ok=True)
    normal = np.cross(ROW, COL)
    origin = np.array([-30.0, 12.0, 40.0])
    for k in range(n):
        if k in skip:
            continue
        ds = pydicom.dcmread(src)
        ds.ImageOrientationPatient = [*ROW.tolist(), *COL.tolist()]
        ds.ImagePositionPatient = (origin + k * gap * normal).tolist()
        ds.InstanceNumber = k + 1
        ds.SeriesInstanceUID = uid
        ds.SOPInstanceUID = f"{uid}.{k + 1}"
        arr = ds.pixel_array.copy()
        arr[0, 0] = k  # mark the slice
        ds.PixelData = arr.tobytes()
        ds.save_as(str(folder / f"img_{uid}_{(7 * k) % n:03d}.dcm"))  # file names out of slice order
    return origin, normal


def test_dicom_series_geometry_and_values(tmp_path):
    origin, normal = _write_series(tmp_path / "s")
    (tmp_path / "s" / "README.txt").write_text("not DICOM")
    v = read_volume(tmp_path / "s")
    assert v.reader == "pydicom"
    assert v.shape == (128, 128, 5)
    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    hu = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(v.array[1:, :, 2], hu.T[1:, :])  # i = column, j = row
    assert [v.array[0, 0, k] for k in range(5)] == [
        k * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for k in range(5)
    ]
    lps = LPS_TO_RAS @ v.affine  # LPS_TO_RAS is its own inverse
    dc, dr = 0.661468, 0.661468
    np.testing.assert_allclose(lps[:3, 0], ROW * dc, atol=1e-6)
    np.testing.assert_allclose(lps[:3, 1], COL * dr, atol=1e-6)
    np.testing.assert_allclose(lps[:3, 2], 2.5 * normal, atol=1e-6)
    np.testing.assert_allclose(lps[:3, 3], origin, atol=1e-6)


@pytest.mark.reference
def test_dicom_series_matches_simpleitk_series_reader(tmp_path):
    pytest.importorskip("SimpleITK")
    _write_series(tmp_path / "s")
    ours = read_volume(tmp_path / "s")
    ref = read_volume(tmp_path / "s", reader="simpleitk")
    np.testing.assert_array_equal(ours.array, ref.array)
    np.testing.assert_allclose(ours.affine, ref.affine, atol=1e-4)


def test_dicom_series_errors(tmp_path):
    _write_series(tmp_path / "gap", skip=(2,))
    with pytest.raises(InputError, match="uneven slice spacing"):
        read_volume(tmp_path / "gap")
    _write_series(tmp_path / "two", n=2, uid="1.2.3.4")
    _write_series(tmp_path / "two", n=3, uid="1.2.3.5")
    with pytest.raises(InputError, match="holds 2 DICOM series"):
        read_volume(tmp_path / "two")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.txt").write_text("x")
    with pytest.raises(InputError, match="no DICOM images found"):
        read_volume(tmp_path / "empty")


def test_a_single_ct_file_is_a_one_slice_volume():
    v = read_volume(pydicom.data.get_testdata_file("CT_small.dcm"))
    assert v.shape == (128, 128, 1)
    assert v.spacing_mm[2] == pytest.approx(5.0)  # SliceThickness


def _edit(folder: Path, k: int, **changes):
    """Change slice ``k`` (InstanceNumber k + 1) of a series written by :func:`_write_series`."""
    for f in folder.iterdir():
        ds = pydicom.dcmread(f)
        if int(ds.InstanceNumber) == k + 1:
            for key, value in changes.items():
                if key == "pixels":
                    ds.Rows, ds.Columns = value.shape
                    ds.PixelData = value.astype(ds.pixel_array.dtype).tobytes()
                else:
                    setattr(ds, key, value)
            ds.save_as(str(f))
            return f.name
    raise AssertionError(k)


def test_inconsistent_dicom_series_name_the_file(tmp_path):
    origin, normal = _write_series(tmp_path / "spacing")
    name = _edit(tmp_path / "spacing", 3, PixelSpacing=[0.7, 0.7])
    with pytest.raises(InputError, match=rf"{name}: PixelSpacing \[0.7, 0.7\] differs from"):
        read_volume(tmp_path / "spacing")
    _write_series(tmp_path / "line")
    for k in (1, 3):  # a zigzag: every gap is the same length, but the steps change direction
        _edit(tmp_path / "line", k, ImagePositionPatient=(origin + k * 2.5 * normal + 1.5 * ROW).tolist())
    with pytest.raises(InputError, match="off the line through the other slices"):
        read_volume(tmp_path / "line")
    _write_series(tmp_path / "size")
    name = _edit(tmp_path / "size", 4, pixels=np.zeros((64, 64), np.int16))
    with pytest.raises(InputError, match=rf"{name}: 64×64 pixels but .* has 128×128"):
        read_volume(tmp_path / "size")
    _write_series(tmp_path / "tilt")
    name = _edit(tmp_path / "tilt", 1, ImageOrientationPatient=[1.0, 0.0, 0.0, 0.0, 0.0, -1.0])
    with pytest.raises(InputError, match=rf"{name}: its ImageOrientationPatient differs"):
        read_volume(tmp_path / "tilt")
    _write_series(tmp_path / "dup")
    _edit(tmp_path / "dup", 4, ImagePositionPatient=(origin + 3 * 2.5 * normal).tolist())
    with pytest.raises(InputError, match="share a position"):
        read_volume(tmp_path / "dup")


def _pydicom_series(*parts):
    path = Path(pydicom.__file__).parent.joinpath("data", "test_files", "dicomdirtests", *parts)
    if not path.is_dir():
        pytest.skip(f"this pydicom has no {path}")
    return path


def test_real_pydicom_ct_series_and_its_inconsistent_neighbours():
    v = read_volume(_pydicom_series("98892001", "CT5N"))  # 5 slices of a downsampled head CT, files out of order
    assert v.shape == (16, 16, 5)
    np.testing.assert_allclose(v.spacing_mm, (0.488281, 0.488281, 2.5), atol=1e-6)
    z = [float(pydicom.dcmread(f).ImagePositionPatient[2]) for f in _pydicom_series("98892001", "CT5N").iterdir()]
    assert v.affine[2, 3] == pytest.approx(min(z))  # sorted along the slice normal, first slice at the origin
    assert v.array.min() < -800  # air in Hounsfield units (rescale applied)
    with pytest.raises(InputError, match="uneven slice spacing"):  # a scout 200 mm away from 3 slices
        read_volume(_pydicom_series("77654033", "CT2"))
    with pytest.raises(InputError, match="ImageOrientationPatient differs"):  # two localisers
        read_volume(_pydicom_series("98892001", "CT2N"))
    with pytest.raises(InputError, match="holds 3 DICOM series"):
        read_volume(_pydicom_series("98892003", "MR1"))
