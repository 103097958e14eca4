"""``medlens slice``: cut a 3-D volume along many plane orientations (omnidirectional slicing)."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, emit_json


def slice_(
    volume: Path = typer.Argument(..., help="NIfTI file (.nii, .nii.gz) or a folder holding one DICOM series."),
    mask: Path | None = typer.Option(None, "--mask", help="Lesion/ROI mask on the volume's grid (centres the planes)."),
    views: int = typer.Option(12, "--views", min=1, max=512, help="Number of plane orientations."),
    method: str = typer.Option("thomson", "--method", help="thomson | fibonacci | canonical (plane directions)."),
    size: int = typer.Option(224, "--size", min=1, max=4096, help="Output slices are SIZE x SIZE pixels."),
    fov_mm: float | None = typer.Option(
        None,
        "--fov-mm",
        help="Side of the square field of view in mm (default: the whole volume, or 1.2 x the mask's extent).",
    ),  # fmt: skip
    offset: str = typer.Option("centre", "--offset", help="centre | max-area (largest mask cross-section)."),
    stack: int = typer.Option(1, "--stack", min=1, max=64, help="Parallel planes per view (2.5-D stack)."),
    spacing_mm: float | None = typer.Option(None, "--spacing-mm", help="Distance between stacked planes, mm."),
    order: int = typer.Option(1, "--order", help="Interpolation: 0 nearest, 1 linear, 3 cubic (numpy only)."),
    intensity: str = typer.Option(
        "none",
        "--intensity",
        help="none | ct (window -1000..1000 HU) | mr (0.5-99.5 percentiles) | minmax, per volume.",
    ),  # fmt: skip
    backend: str = typer.Option("numpy", "--backend", help="numpy (one map_coordinates call) | torch (grid_sample)."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | auto (torch backend)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the plane directions."),
    out: Path = typer.Option(..., "--out", help="Folder for slices.npz, views.json and montage.png."),
    as_json: bool = typer.Option(False, "--json", help="Print the views.json document on stdout."),
) -> None:
    """Cut a volume along VIEWS plane orientations spread over all directions, in millimetres through the image
    affine (any spacing and orientation); write slices.npz (slices, valid), views.json and montage.png.

    Example: medlens slice brain.nii.gz --views 12 --size 224 --out runs/brain-slices --json
    """
    from medlens.slicing import run_slice

    doc = run_slice(
        volume,
        out,
        mask=mask,
        views=views,
        method=method,
        seed=seed,
        size=size,
        fov_mm=fov_mm,
        offset=offset,
        stack=stack,
        spacing_mm=spacing_mm,
        order=order,
        intensity=intensity,
        backend=backend,
        device=device,
    )
    if as_json:
        emit_json(doc)
        return
    d = doc["directions"]
    angle = f", nearest-plane angle min {d['min_angle_deg']:.1f}° mean {d['mean_nearest_angle_deg']:.1f}°" if d else ""
    console().print(
        f"wrote {doc['n_planes']} slices of {doc['size']}x{doc['size']} ({doc['spacing_mm']:.3g} mm pixels{angle}) "
        f"to {Path(doc['files']['slices']).parent} in {doc['timing']['sample_s']:.2f} s",
        markup=False,
    )
