"""3-D volumes and masks: NIfTI (nibabel), DICOM series (pydicom), anything SimpleITK reads (optional).

Every reader returns a :class:`Volume`: ``array`` float32 of shape ``(I, J, K)`` and a 4×4 ``affine`` from voxel
indices ``(i, j, k, 1)`` to **RAS+ millimetres** (+x to the patient's right, +y anterior, +z superior): the NIfTI
convention, as nibabel reports it. DICOM and ITK work in LPS; their geometry is converted with
``diag(−1, −1, 1)``. For DICOM and SimpleITK the array axes are ITK's index order: ``i`` along a row (the column
index), ``j`` down the columns (the row index), ``k`` across the slices.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medlens._optional import require
from medlens._validation import InputError

__all__ = ["LPS_TO_RAS", "Volume", "read_mask", "read_volume"]

log = logging.getLogger("medlens.io")

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_NIFTI = (".nii", ".nii.gz", ".hdr", ".img")
READERS = ("auto", "nibabel", "pydicom", "simpleitk")


@dataclass(frozen=True)
class Volume:
    """A 3-D image: ``array`` (float32, ``(I, J, K)``) on the grid of ``affine`` (voxel → RAS+ mm)."""

    array: np.ndarray
    affine: np.ndarray
    path: str
    reader: str

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        return tuple(float(x) for x in np.linalg.norm(self.affine[:3, :3], axis=0))

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.array.shape)


def _to_3d(arr: np.ndarray, path: Path) -> np.ndarray:
    while arr.ndim > 3 and arr.shape[-1] == 1:  # a 4-D file with one time point
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise InputError(f"{path}: expected a 3-D volume; got an image of shape {arr.shape}. Give one 3-D image.")
    return arr


def read_volume(path: str | os.PathLike, *, reader: str = "auto") -> Volume:
    """Read a NIfTI file, a folder holding one DICOM series, or (``reader="simpleitk"``) any image SimpleITK reads.

    ``auto`` picks nibabel for ``.nii``/``.nii.gz``, pydicom for a folder or a ``.dcm`` file, else SimpleITK.
    """
    from medlens._validation import check_option

    check_option(reader, READERS, name="reader")
    p = Path(path)
    if not p.exists():
        raise InputError(f"volume {p} does not exist.")
    if reader == "auto":
        name = p.name.lower()
        if p.is_dir() or name.endswith(".dcm"):
            reader = "pydicom"
        elif name.endswith(_NIFTI):
            reader = "nibabel"
        else:
            reader = "simpleitk"
    if reader == "nibabel":
        array, affine = _read_nifti(p)
    elif reader == "pydicom":
        array, affine = _read_dicom_series(p)
    else:
        array, affine = _read_sitk(p)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise InputError(f"{p}: the image geometry is degenerate (affine {affine.round(4).tolist()}).")
    return Volume(array=array, affine=affine, path=str(p), reader=reader)


def read_mask(path: str | os.PathLike, *, like: Volume, reader: str = "auto", atol_mm: float = 1e-3) -> np.ndarray:
    """Read a mask (non-zero = inside) and check it lies on the grid of ``like``: same shape, same affine to
    ``atol_mm``. A mask on another grid is an error (resample it first); an empty mask is returned as it is
    (the slicer then falls back to the volume centre with a warning)."""
    m = read_volume(path, reader=reader)
    if m.shape != like.shape:
        raise InputError(
            f"mask {m.path} has shape {m.shape} but volume {like.path} has {like.shape}; "
            "resample the mask onto the volume's grid."
        )
    diff = float(np.max(np.abs(m.affine - like.affine)))
    if diff > atol_mm:
        raise InputError(
            f"mask {m.path} is on another grid than volume {like.path} (affines differ by up to {diff:.4g} mm); "
            "resample the mask onto the volume's grid."
        )
    return m.array != 0


def _read_nifti(p: Path) -> tuple[np.ndarray, np.ndarray]:
    nib = require("nibabel", extra="io", purpose="reading NIfTI volumes")
    try:
        img = nib.load(str(p))
        arr = np.asarray(img.get_fdata(dtype=np.float32))
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for broken files
        raise InputError(f"{p}: cannot read as NIfTI ({exc}).") from None
    return _to_3d(arr, p).astype(np.float32, copy=False), np.asarray(img.affine, dtype=float)


def _read_sitk(p: Path) -> tuple[np.ndarray, np.ndarray]:
    sitk = require("SimpleITK", extra="io", purpose="reading images with SimpleITK")
    try:
        if p.is_dir():
            r = sitk.ImageSeriesReader()
            r.SetFileNames(r.GetGDCMSeriesFileNames(str(p)))
            img = r.Execute()
        else:
            img = sitk.ReadImage(str(p))
    except RuntimeError as exc:
        raise InputError(f"{p}: SimpleITK cannot read it ({' '.join(str(exc).split())[:200]}).") from None
    if img.GetDimension() != 3 or img.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{p}: expected a 3-D scalar image; got a {img.GetDimension()}-D image with "
                         f"{img.GetNumberOfComponentsPerPixel()} component(s).")  # fmt: skip
    arr = sitk.GetArrayFromImage(img).transpose(2, 1, 0).astype(np.float32)
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(img.GetDirection()).reshape(3, 3) * np.asarray(img.GetSpacing())
    lps[:3, 3] = img.GetOrigin()
    return np.ascontiguousarray(arr), LPS_TO_RAS @ lps


def _read_dicom_series(p: Path) -> tuple[np.ndarray, np.ndarray]:
    pydicom = require("pydicom", extra="io", purpose="reading DICOM series")
    files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
    slices = []
    for f in files:
        try:
            ds = pydicom.dcmread(str(f))
        except Exception:  # noqa: BLE001 - not a DICOM file (a README, a DICOMDIR index): skip it
            log.debug("skipping %s: not a DICOM file", f)
            continue
        if "PixelData" in ds:
            slices.append((f, ds))
    if not slices:
        raise InputError(f"{p}: no DICOM images found; give a folder holding one DICOM series or a .dcm file.")
    series = {str(ds.get("SeriesInstanceUID", "")) for _, ds in slices}
    if len(series) > 1:
        raise InputError(
            f"{p}: holds {len(series)} DICOM series ({', '.join(sorted(series)[:3])}…); give a folder with one series."
        )
    for f, ds in slices:
        missing = [k for k in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing") if k not in ds]
        if missing:
            raise InputError(f"{f}: the DICOM header lacks {', '.join(missing)}; cannot place the slice in space.")
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise InputError(f"{f}: multi-frame DICOM is not supported; give a series of single-frame files.")
    iop = np.asarray(slices[0][1].ImageOrientationPatient, dtype=float)
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    spacing0 = np.asarray(slices[0][1].PixelSpacing, dtype=float)
    for f, ds in slices:
        if not np.allclose(np.asarray(ds.ImageOrientationPatient, dtype=float), iop, atol=1e-4):
            raise InputError(f"{f}: its ImageOrientationPatient differs from the other slices; not one volume "
                             "(a localiser or another series in the folder?).")  # fmt: skip
        if not np.allclose(np.asarray(ds.PixelSpacing, dtype=float), spacing0, rtol=1e-4, atol=1e-6):
            raise InputError(f"{f}: PixelSpacing {[float(x) for x in ds.PixelSpacing]} differs from "
                             f"{spacing0.tolist()} in {slices[0][0].name}; not one volume.")  # fmt: skip
    slices.sort(key=lambda t: float(np.dot(np.asarray(t[1].ImagePositionPatient, dtype=float), normal)))
    pos = np.array([np.asarray(ds.ImagePositionPatient, dtype=float) for _, ds in slices])
    dr, dc = (float(x) for x in slices[0][1].PixelSpacing)  # between rows, between columns
    if len(slices) > 1:
        steps = np.diff(pos, axis=0)
        step = steps.mean(axis=0)
        gaps = np.linalg.norm(steps, axis=1)
        if gaps.min() < 1e-6:
            raise InputError(f"{p}: two slices share a position ({slices[int(np.argmin(gaps))][0].name}); "
                             "the folder holds duplicates or several series.")  # fmt: skip
        if np.max(np.abs(gaps - gaps.mean())) > 0.01 * gaps.mean() + 1e-3:
            raise InputError(f"{p}: uneven slice spacing ({gaps.min():.3g}–{gaps.max():.3g} mm); slices are missing "
                             "or the series is not one volume.")  # fmt: skip
        off = np.linalg.norm(steps - step, axis=1)
        if off.max() > 0.01 * gaps.mean() + 1e-3:
            k = int(np.argmax(off)) + 1
            raise InputError(f"{slices[k][0]}: its ImagePositionPatient is {off.max():.3g} mm off the line through "
                             "the other slices; the series is not one volume.")  # fmt: skip
    else:
        thick = float(slices[0][1].get("SpacingBetweenSlices", slices[0][1].get("SliceThickness", 1.0)) or 1.0)
        step = normal * thick
    planes = []
    for f, ds in slices:
        try:
            px = ds.pixel_array.astype(np.float32)
        except Exception as exc:  # noqa: BLE001 - missing decoders raise various types
            raise InputError(f"{f}: cannot decode the pixel data ({exc}).") from None
        if px.ndim != 2:
            raise InputError(f"{f}: expected one grey-level 2-D image per file; got pixel data of shape {px.shape}.")
        slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
        intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
        planes.append(px * slope + intercept)
    for (f, _), pl in zip(slices, planes, strict=True):
        if pl.shape != planes[0].shape:
            raise InputError(f"{f}: {pl.shape[0]}×{pl.shape[1]} pixels but {slices[0][0].name} has "
                             f"{planes[0].shape[0]}×{planes[0].shape[1]}; not one volume.")  # fmt: skip
    arr = np.stack([pl.T for pl in planes], axis=2)  # (columns, rows, slices) = ITK index order
    lps = np.eye(4)
    lps[:3, 0] = row_dir * dc  # i: along a row (next column)
    lps[:3, 1] = col_dir * dr  # j: down a column (next row)
    lps[:3, 2] = step
    lps[:3, 3] = pos[0]
    return np.ascontiguousarray(arr, dtype=np.float32), LPS_TO_RAS @ lps
