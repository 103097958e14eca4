"""Image folders for ``medlens anomaly``: 2-D ``.png``/``.npy`` files and NIfTI volumes (``.nii``, ``.nii.gz``)
read slice by slice.

Ids are paths relative to the folder without the suffix (a map ``a/b.npy`` pairs with a mask ``a/b.png``); a
volume ``case.nii.gz`` contributes its slices along the third axis as ``case/z0000``, ``case/z0001``, … so
maps written per slice pair with the slices of a mask volume of the same name, and the evaluation can regroup
them per volume (:func:`volume_groups`). Intensities: an ``.npy`` float array is taken as already in [−1, 1]
(values outside are an error); an integer array or PNG is scaled from its type's range (8-bit ``v/127.5 − 1``,
16-bit ``v/32767.5 − 1``); a NIfTI image volume is scaled per volume from [min, 99th percentile] to [−1, 1]
(clipped above). Masks: non-zero is a lesion pixel.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._validation import InputError

__all__ = ["NIFTI", "SUFFIXES", "check_mask_volumes", "read_image_folder", "volume_groups"]

SUFFIXES = (".png", ".npy")
NIFTI = (".nii", ".nii.gz")


def read_image_file(path: Path, *, kind: str) -> np.ndarray:
    """One 2-D .png or .npy file: an image in [-1, 1] (float32), a mask in {0, 1} (uint8) or a map; named errors."""
    return _convert(_load_2d(path), path, kind)


def _load_2d(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except Exception as e:  # noqa: BLE001 - numpy raises several types for broken files
            raise InputError(f"{path}: cannot read as a .npy array ({type(e).__name__}).") from None
    else:
        pil = require("PIL.Image", extra="vision", purpose="reading PNG images")
        try:
            with pil.open(path) as img:
                a = np.asarray(img)
        except Exception as e:  # noqa: BLE001 - PIL raises many types
            raise InputError(f"{path}: cannot read as an image ({type(e).__name__}).") from None
    a = np.squeeze(a) if a.ndim == 3 and 1 in (a.shape[0], a.shape[-1]) else a
    if a.ndim != 2:
        raise InputError(f"{path}: expected one grey 2-D image (H, W); got shape {a.shape}. Convert it to grey.")
    return a


def _convert(a: np.ndarray, path: Path, kind: str) -> np.ndarray:
    if kind == "mask":
        return (a > 0).astype(np.uint8)
    if kind == "map":
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise InputError(f"{path}: the map holds NaN or infinite values.")
        return a
    if a.dtype.kind in "ui":
        top = 255.0 if a.dtype.itemsize == 1 else 65535.0
        return (a.astype(np.float32) / (top / 2) - 1.0).astype(np.float32)
    a = a.astype(np.float32)
    if not np.isfinite(a).all() or a.min() < -1 or a.max() > 1:
        raise InputError(
            f"{path}: float images must be finite and scaled to [-1, 1]; got [{a.min():.3g}, {a.max():.3g}]."
        )
    return a


def _is_nifti(p: Path) -> bool:
    return p.name.lower().endswith(NIFTI)


def _stem(p: Path, root: Path) -> str:
    rel = p.relative_to(root).as_posix()
    for suffix in (".nii.gz", *SUFFIXES):
        if rel.lower().endswith(suffix):
            return rel[: -len(suffix)]
    return rel


def _volume_slices(v: np.ndarray, path: Path, kind: str) -> list[np.ndarray]:
    """The 2-D slices along the volume's third axis, converted like a 2-D file of ``kind``; an ``image``
    volume is scaled from [min, 99th percentile] to [−1, 1] (clipped above), per volume."""
    if not np.isfinite(v).all():
        raise InputError(f"{path}: the volume holds NaN or infinite values.")
    if kind == "image":
        lo, hi = float(v.min()), float(np.percentile(v, 99))
        v = np.clip((v - lo) / (hi - lo), 0, 1) * 2 - 1 if hi > lo else np.full_like(v, -1.0)
        return [v[..., k].astype(np.float32) for k in range(v.shape[-1])]
    return [_convert(v[..., k], path, kind) for k in range(v.shape[-1])]


def volume_groups(ids: list[str]) -> dict[str, list[int]]:
    """Slice ids ``<volume>/z<k>`` grouped by volume id: ``{volume: [row indices]}`` (ids of 2-D files are
    left out)."""
    groups: dict[str, list[int]] = {}
    for n, i in enumerate(ids):
        head, _, tail = i.rpartition("/z")
        if head and tail.isdigit() and len(tail) == 4:
            groups.setdefault(head, []).append(n)
    return groups


def read_image_folder(folder: str | os.PathLike, *, kind: str = "image", what: str = "--images") -> dict[str, Any]:
    """``{"ids", "paths", "array" (N, 1, H, W), "volumes"}`` for every .png/.npy image and every NIfTI volume
    under ``folder`` (recursive, sorted); ``kind`` ``image`` (scaled to [−1, 1]), ``mask`` (0/1) or ``map``
    (finite floats as they are). A volume ``case.nii.gz`` of shape (I, J, K) gives K slices ``case/z0000`` …
    (its third axis: axial for RAS- or LPS-oriented scans) and ``volumes`` maps ``case`` to its shape and
    affine (for :func:`check_mask_volumes`)."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{what} {root}: not a folder; give a folder of .png or .npy images or NIfTI volumes.")
    paths = sorted(
        (p for p in root.rglob("*")
         if p.is_file() and (p.suffix.lower() in SUFFIXES or _is_nifti(p)) and not p.name.startswith(".")),
        key=lambda p: p.relative_to(root).as_posix(),
    )  # fmt: skip
    if not paths:
        raise InputError(f"{what} {root}: no .png or .npy images or NIfTI volumes in this folder.")
    ids: list[str] = []
    arrays: list[np.ndarray] = []
    sources: list[Path] = []
    volumes: dict[str, Any] = {}
    for p in paths:
        stem = _stem(p, root)
        if _is_nifti(p):
            from medlens.io import read_volume

            vol = read_volume(p, reader="nibabel")
            slices = _volume_slices(vol.array, p, kind)
            volumes[stem] = {"path": str(p), "shape": vol.shape, "affine": vol.affine}
            ids += [f"{stem}/z{k:04d}" for k in range(len(slices))]
            arrays += slices
            sources += [p] * len(slices)
        else:
            ids.append(stem)
            arrays.append(read_image_file(p, kind=kind))
            sources.append(p)
    order = sorted(range(len(ids)), key=lambda n: ids[n])
    ids, arrays, sources = [ids[n] for n in order], [arrays[n] for n in order], [sources[n] for n in order]
    dup = next((i for i, j in zip(ids, ids[1:], strict=False) if i == j), None)
    if dup:
        raise InputError(f"{what} {root}: two files share the id {dup!r} (.png, .npy or a volume slice); keep one.")
    shape = arrays[0].shape
    bad = next((n for n, a in enumerate(arrays) if a.shape != shape), None)
    if bad is not None:
        raise InputError(f"{sources[bad]}: shape {arrays[bad].shape} differs from {sources[0].name}'s {shape}.")
    return {"ids": ids, "paths": sources, "array": np.stack(arrays)[:, None], "volumes": volumes}


def check_mask_volumes(images: dict[str, Any], masks: dict[str, Any], *, atol_mm: float = 1e-3) -> None:
    """A clean error when a mask volume does not match its image volume (same id): shape or grid."""
    for vid, img in images.get("volumes", {}).items():
        m = masks.get("volumes", {}).get(vid)
        if m is None:
            continue
        if m["shape"] != img["shape"]:
            raise InputError(f"mask {m['path']} has shape {m['shape']} but image {img['path']} has {img['shape']}; "
                             "resample the mask onto the image's grid.")  # fmt: skip
        diff = float(np.max(np.abs(np.asarray(m["affine"]) - np.asarray(img["affine"]))))
        if diff > atol_mm:
            raise InputError(f"mask {m['path']} is on another grid than image {img['path']} (affines differ by up "
                             f"to {diff:.4g} mm); resample the mask onto the image's grid.")  # fmt: skip
