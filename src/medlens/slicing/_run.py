"""``medlens slice``: a volume (and mask) in, ``slices.npz`` + ``views.json`` + ``montage.png`` out."""

from __future__ import annotations

import io as _bytes_io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from medlens._optional import is_available, require
from medlens._provenance import provenance, stamp
from medlens._validation import InputError, check_option
from medlens.io import atomic_write_bytes, atomic_write_json, read_mask, read_volume
from medlens.slicing._directions import normals_quality, plane_normals
from medlens.slicing._geometry import plane_geometry
from medlens.slicing._sampling import Slices, sample_planes
from medlens.slicing._slice import INTENSITY_MODES, normalize_intensity

__all__ = ["montage_png", "run_slice"]


def run_slice(
    volume: str | os.PathLike,
    out: str | os.PathLike,
    *,
    mask: str | os.PathLike | None = None,
    views: int = 12,
    method: str = "thomson",
    seed: int = 0,
    size: int = 224,
    fov_mm: float | None = None,
    offset: str = "centre",
    stack: int = 1,
    spacing_mm: float | None = None,
    order: int = 1,
    intensity: str = "none",
    backend: str = "numpy",
    device: str = "cpu",
    montage: bool = True,
) -> dict[str, Any]:
    """Slice ``volume`` (NIfTI file or DICOM folder) along ``views`` plane orientations into the folder ``out``.

    Writes ``slices.npz`` (``slices`` float32 ``(planes, S, S)``, ``valid`` bool), ``views.json`` (per plane
    ``view``, ``normal``, ``u``, ``v``, ``centre_mm``, ``offset_mm``, ``spacing_mm``; world frame RAS+ mm) and
    ``montage.png`` (when matplotlib, the ``viz`` extra, is installed). Returns the stamped JSON document, which
    is also ``views.json``.
    """
    check_option(intensity, INTENSITY_MODES, name="intensity")
    if stack > 1 and spacing_mm is None:
        raise InputError("--stack needs --spacing-mm (the distance between the parallel planes, in mm).")
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir} is a file; give a folder.")
    t0 = time.perf_counter()
    vol = read_volume(volume)
    m = read_mask(mask, like=vol) if mask is not None else None
    normals = plane_normals(views, method, seed=seed)
    geo = plane_geometry(
        normals,
        vol.affine,
        vol.shape,
        mask=m,
        offset=offset,
        stack=stack,
        spacing_mm=spacing_mm,
        size=size,
        fov_mm=fov_mm,
    )
    data = normalize_intensity(vol.array, intensity, mask=m) if intensity != "none" else vol.array
    t1 = time.perf_counter()
    slices = sample_planes(data, vol.affine, geo, order=order, backend=backend, device=device)
    t2 = time.perf_counter()

    out_dir.mkdir(parents=True, exist_ok=True)
    buf = _bytes_io.BytesIO()
    np.savez_compressed(buf, slices=slices.slices, valid=slices.valid, normals=geo.normals, u=geo.u, v=geo.v,
                        centres_mm=geo.centres_mm)  # fmt: skip
    atomic_write_bytes(out_dir / "slices.npz", buf.getvalue())
    montage_file = None
    if montage and is_available("matplotlib"):
        atomic_write_bytes(out_dir / "montage.png", montage_png(slices, title=Path(volume).name))
        montage_file = str(out_dir / "montage.png")
    config = {
        "views": views, "method": method, "seed": seed, "size": size, "fov_mm": geo.fov_mm, "offset": offset,
        "stack": stack, "spacing_mm": spacing_mm, "order": order, "intensity": intensity, "backend": backend,
    }  # fmt: skip
    inputs = {"volume": volume} | ({"mask": mask} if mask is not None else {})
    q = normals_quality(normals).to_dict() if views > 1 else None
    doc = stamp(
        {
            "volume": {
                "path": vol.path,
                "reader": vol.reader,
                "shape": list(vol.shape),
                "spacing_mm": list(vol.spacing_mm),
                "affine": vol.affine.tolist(),
                "frame": "RAS+ mm",
            },
            "config": config,
            "n_planes": len(geo.normals),
            "size": size,
            "fov_mm": geo.fov_mm,
            "spacing_mm": geo.spacing_mm,
            "directions": q,
            "views": slices.views(),
            "files": {
                "slices": str(out_dir / "slices.npz"),
                "views": str(out_dir / "views.json"),
                "montage": montage_file,
            },
            "timing": {"read_s": round(t1 - t0, 4), "sample_s": round(t2 - t1, 4)},
        },  # fmt: skip
        provenance(command="medlens slice", config=config, seed=seed, inputs=inputs),
    )
    atomic_write_json(out_dir / "views.json", doc)
    return doc


def montage_png(slices: Slices, *, title: str = "", columns: int = 6) -> bytes:
    """A PNG grid of the slices (grey, one shared intensity range; outside the volume dark red), each titled
    with its view and normal."""
    mpl = require("matplotlib", extra="viz", purpose="the slice montage")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    p = len(slices.slices)
    cols = min(columns, p)
    rows = -(-p // cols)
    inside = slices.slices[slices.valid]
    lo, hi = (float(np.percentile(inside, 0.5)), float(np.percentile(inside, 99.5))) if inside.size else (0.0, 1.0)
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.15 * rows + 0.3), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (img, ok) in enumerate(zip(slices.slices, slices.valid, strict=True)):
        ax = axes.ravel()[i]
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
        ax.imshow(np.ma.masked_where(ok, np.ones_like(img)), cmap="Reds", vmin=0, vmax=2, alpha=0.35)
        n = slices.geometry.normals[i]
        ax.set_title(f"v{slices.geometry.view_index[i]} n=({n[0]:.2f},{n[1]:.2f},{n[2]:.2f})", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    buf = _bytes_io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
