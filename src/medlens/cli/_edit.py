"""``medlens edit``: counterfactual lesion editing (MedEdit, naive RePaint, SDEdit, Palette) of one image or a
folder (thin over :func:`medlens.diffusion.edit.run_edit`)."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, emit_json, human_float


def edit(
    model_path: Path = typer.Option(..., "--model-path", help="model.safetensors (or its run folder)."),
    image: Path | None = typer.Option(None, "--image", help="One healthy .png/.npy image (with --lesion-mask)."),
    lesion_mask: Path | None = typer.Option(None, "--lesion-mask", help="Mask of the lesion to insert (non-zero)."),
    brain_mask: Path | None = typer.Option(None, "--brain-mask", help="Brain mask bounding the edit region."),
    images: Path | None = typer.Option(None, "--images", help="Folder of healthy images (with --lesion-masks)."),
    lesion_masks: Path | None = typer.Option(None, "--lesion-masks", help="Folder of lesion masks, one per image id."),
    brain_masks: Path | None = typer.Option(None, "--brain-masks", help="Folder of brain masks, one per image id."),
    method: str = typer.Option(
        "mededit",
        "--method",
        help="mededit | repaint | sdedit | palette (palette needs its own model: anomaly train --conditioned palette).",
    ),
    dilate: int | None = typer.Option(
        None, "--dilate", min=0, max=255, help="Side k of the square dilating the lesion mask (mededit 25, repaint 1)."
    ),
    steps: int = typer.Option(50, "--steps", min=1, max=1000, help="DDIM-respaced denoising steps."),
    strength: float | None = typer.Option(
        None, "--strength", min=0.0, max=1.0, help="Start at round(strength*(T-1)) (sdedit 0.1; others 1)."
    ),
    resample: int | None = typer.Option(None, "--resample", min=1, max=20, help="RePaint resamplings (repaint 2)."),
    eta: float = typer.Option(1.0, "--eta", min=0.0, max=1.0, help="DDIM eta (1: the DDPM posterior's spread)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the noise."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, max=4096, help="Images per network call."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | auto."),
    out: Path = typer.Option(..., "--out", help="Edited image (.npy/.png) or, with --images, a run folder."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Discard a folder run of another configuration."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Insert a lesion into a healthy image with a diffusion model. MedEdit inpaints the lesion mask dilated by
    --dilate (inside --brain-mask) and keeps every other pixel exactly; a re-run of a folder resumes.

    Example: medlens edit --model-path runs/brain-mask-ddpm --image slice.png --lesion-mask lesion.png --out edit.png
    """
    from medlens.diffusion.edit import run_edit

    doc = run_edit(model_path, out, image=image, lesion_mask=lesion_mask, brain_mask=brain_mask, images=images,
                   lesion_masks=lesion_masks, brain_masks=brain_masks, method=method, dilate=dilate, steps=steps,
                   strength=strength, resample=resample, eta=eta, seed=seed, batch_size=batch_size, device=device,
                   overwrite=overwrite)  # fmt: skip
    if as_json:
        emit_json(doc)
        return
    console().print(
        f"wrote {doc['n_images']} edit(s) to {doc.get('edits', doc['out'])} ({method}): {doc['nfe']} network "
        f"evaluations, {human_float(doc['seconds'])} s per image, preservation MAE outside the edit region "
        f"{human_float(doc['preservation_mae'])}, segmenter Dice {human_float(doc['segmenter_dice'])}",
        markup=False,
    )
