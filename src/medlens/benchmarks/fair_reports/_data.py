"""Real patient ages for the Indiana University reports of ``cxr-reports``.

torchxrayvision's data folder ships ``nlmcxr_dicom_metadata.csv.gz``: the DICOM header fields of the 7,469 IU
chest X-ray images, ``imageid`` ``CXR<report>_IM-…`` with the patient's birth date and the study date (the sex
field is empty). A report's age is the study date minus the birth date, in years (365.25-day years); the images
of one report agree. The file is read through package metadata, without importing torchxrayvision.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from medlens._validation import InputError

__all__ = ["AGE_GROUPS", "METADATA_NAME", "age_group", "load_report_ages", "locate_metadata"]

METADATA_NAME = "nlmcxr_dicom_metadata.csv.gz"
"""File name of the IU DICOM metadata inside the torchxrayvision wheel."""
AGE_GROUPS = ("<40", "40-59", ">=60")
"""Age groups of the demo, youngest first."""
_MISSING = (
    "the fair-reports benchmark requires 'torchxrayvision' data files, which are not installed. "
    'Install it with: pip install "medlens[data]"'
)
_BIRTH, _STUDY = "Patient's Birth Date", "Study Date"


def locate_metadata() -> Path:
    """Path of ``nlmcxr_dicom_metadata.csv.gz`` in the installed torchxrayvision distribution (never imported)."""
    try:
        dist = metadata.distribution("torchxrayvision")
    except metadata.PackageNotFoundError:
        raise ImportError(_MISSING) from None
    path = Path(str(dist.locate_file(f"torchxrayvision/data/{METADATA_NAME}")))
    if path.is_file():
        return path
    for entry in dist.files or ():
        if PurePosixPath(str(entry)).name == METADATA_NAME:
            candidate = Path(str(dist.locate_file(entry)))
            if candidate.is_file():
                return candidate
    raise ImportError(_MISSING)


def load_report_ages(path: str | Path | None = None) -> pd.DataFrame:
    """One row per report: ``id`` (``CXR<n>``, as in ``cxr-reports``), ``age`` in years, ``n_images``.

    Reports whose images give different ages keep the youngest (none do in the shipped file); images with an
    unreadable date are left out.
    """
    p = Path(path) if path is not None else locate_metadata()
    try:
        df = pd.read_csv(p, usecols=["imageid", _BIRTH, _STUDY], dtype=str)
    except (ValueError, OSError) as exc:
        raise InputError(f"{p} is not the IU DICOM metadata table ({exc}).") from None
    report = df["imageid"].str.extract(r"^(CXR\d+)_", expand=False)
    birth = pd.to_datetime(df[_BIRTH], format="%Y%m%d", errors="coerce")
    study = pd.to_datetime(df[_STUDY], format="%Y%m%d", errors="coerce")
    age = (study - birth).dt.days / 365.25
    ok = report.notna() & age.notna() & (age >= 0)
    frame = pd.DataFrame({"id": report[ok], "age": age[ok]})
    return frame.groupby("id", sort=True).agg(age=("age", "min"), n_images=("age", "size")).reset_index()


def age_group(age: float | np.ndarray) -> np.ndarray:
    """``"<40"``, ``"40-59"`` or ``">=60"`` per age (``None`` for NaN).

    >>> age_group(np.array([17.0, 40.0, 59.9, 60.0, np.nan])).tolist()
    ['<40', '40-59', '40-59', '>=60', None]
    """
    a = np.atleast_1d(np.asarray(age, dtype=np.float64))
    out = np.where(a < 40, AGE_GROUPS[0], np.where(a < 60, AGE_GROUPS[1], AGE_GROUPS[2])).astype(object)
    out[np.isnan(a)] = None
    return out
