"""``medlens anomaly train | score | evaluate``: diffusion anomaly localisation on image folders (thin over
:mod:`medlens.diffusion`'s ``run_anomaly_*`` documents)."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import (
    console,
    emit_json,
    emit_result,
    executor_option,
    human_float,
    progress_enabled,
    ray_address_option,
    workers_option,
)

app = typer.Typer(
    help="Unsupervised anomaly localisation with diffusion models: train on healthy images, score maps by "
    "AnoDDPM / simplex / patched / THOR reconstruction, evaluate them against lesion masks.",
    no_args_is_help=True,
)


@app.command("train")
def train(
    images: Path | None = typer.Option(None, "--images", help="Folder of healthy .png/.npy images."),
    generator: str | None = typer.Option(None, "--generator", help="A registered data generator: brain-anomaly."),
    n_images: int = typer.Option(256, "--n-images", min=1, max=100_000, help="Images drawn from --generator."),
    size: int = typer.Option(64, "--size", min=16, max=512, help="Generated images are SIZE x SIZE pixels."),
    steps: int = typer.Option(1000, "--steps", min=1, help="Optimiser steps in all."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, max=4096, help="Images per step."),
    noise: str = typer.Option("gaussian", "--noise", help="gaussian | simplex (training noise)."),
    unet: str | None = typer.Option(
        None, "--unet", help="UNet size: small | default | paper, or a .json file of UNet keys (channels, ...)."
    ),
    conditioned: str | None = typer.Option(
        None,
        "--conditioned",
        help="class: healthy/ and anomalous/ images, for --method classifier and cfg | mask: images/ and masks/ "
        "sub-folders (or the generator's lesions), an inpainting model for `medlens edit` | palette: the same data, "
        "the separately trained model of `medlens edit --method palette`.",
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of data, initialisation and noise."),
    out: Path = typer.Option(..., "--out", help="Run folder (model.safetensors, checkpoint, history)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a stopped run of the same configuration."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start again, discarding the folder's run."),
    as_json: bool = typer.Option(False, "--json", help="Print the training summary as JSON."),
) -> None:
    """Train a denoiser (epsilon prediction, L2) on healthy images.

    Example: medlens anomaly train --generator brain-anomaly --steps 2000 --out runs/brain-ddpm
    """
    from medlens.diffusion import run_anomaly_train

    doc = run_anomaly_train(out, images=images, generator=generator, n_images=n_images, size=size, steps=steps,
                            batch_size=batch_size, noise=noise, unet=unet, conditioned=conditioned, seed=seed, resume=resume, overwrite=overwrite,
                            progress=progress_enabled(as_json))  # fmt: skip
    if as_json:
        emit_json(doc)
        return
    console().print(
        f"wrote {doc['model_path']}: {doc['steps']} steps, loss {human_float(doc['first_loss'])} → "
        f"{human_float(doc['last_loss'])}",
        markup=False,
    )


@app.command("score")
def score(
    model_path: Path = typer.Option(..., "--model-path", help="model.safetensors (or its run folder)."),
    images: Path = typer.Option(
        ..., "--images", help="Folder of .png/.npy images or NIfTI volumes (slices of the checkpoint's size)."
    ),
    method: str = typer.Option("anoddpm", "--method", help="anoddpm | simplex | patched | thor | classifier | cfg."),
    t0: int = typer.Option(250, "--t0", min=0, help="Forward noising steps (0 returns the input)."),
    steps: int | None = typer.Option(25, "--steps", min=1, help="Respaced denoising steps (network evaluations)."),
    scale: float = typer.Option(10.0, "--scale", help="Classifier-guidance gradient scale s (--method classifier)."),
    weight: float = typer.Option(3.0, "--weight", help="Classifier-free guidance weight w (--method cfg)."),
    perceptual: str = typer.Option(
        "none",
        "--perceptual",
        help="Feature extractor weighting the maps: none | random | a torch.export .pt2 file | a TorchScript .pt file.",
    ),
    batch_size: int = typer.Option(16, "--batch-size", min=1, max=4096, help="Images per network call."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the noise."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | auto."),
    out: Path = typer.Option(..., "--out", help="Run folder: maps/<id>.npy (float32), results.jsonl."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Discard a run of another configuration."),
    executor: str = executor_option(),
    ray_address: str = ray_address_option(),
    workers: int = workers_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Write one anomaly map per image (same ids); a re-run with the same --out resumes.

    With --executor ray the chunks of --batch-size images run on --workers Ray actors, each loading the model and
    reading --images itself (a path every node sees); the maps equal a local run's.

    Example: medlens anomaly score --model-path runs/brain-ddpm --images test/ --method thor --t0 250 --out runs/maps
    """
    from medlens.diffusion import run_anomaly_score

    doc = run_anomaly_score(model_path, images, out, method=method, t0=t0, steps=steps, scale=scale, weight=weight,
                            perceptual=perceptual, batch_size=batch_size, seed=seed, device=device, overwrite=overwrite,
                            executor=executor, ray_address=ray_address, workers=workers)  # fmt: skip
    if as_json:
        emit_json(doc)
        return
    console().print(
        f"wrote {doc['n_images']} maps to {doc['maps']} ({method}, t0={t0}): {doc['nfe_per_image']} network "
        f"evaluations and {human_float(doc['seconds_per_image'])} s per image",
        markup=False,
    )


@app.command("evaluate")
def evaluate(
    maps: Path = typer.Option(..., "--maps", help="Folder of maps (.npy), e.g. `anomaly score`'s maps/."),
    masks: Path = typer.Option(..., "--masks", help="Folder of lesion masks (.png/.npy), one per map id."),
    healthy: Path | None = typer.Option(None, "--healthy", help="Maps of healthy images: fit the FPR threshold."),
    fpr: float = typer.Option(0.05, "--fpr", min=0.0, max=1.0, help="Pixel FPR allowed on --healthy maps."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=1, help="Bootstrap resamples of test images."),
    ci: float = typer.Option(0.95, "--ci", min=0.5, max=0.999, help="Confidence level of the intervals."),
    seed: int = typer.Option(0, "--seed", min=0, help="Bootstrap seed."),
    images: Path | None = typer.Option(None, "--images", help="The scored images (for RQI, CACI, AHI)."),
    reconstructions: Path | None = typer.Option(
        None, "--reconstructions", help="Their reconstructions: `anomaly score`'s reconstructions/ folder."
    ),
    reference: Path | None = typer.Option(None, "--reference", help="Healthy reference images (for AHI)."),
    out: Path | None = typer.Option(None, "--out", help="Write the JSON document to this file."),
    as_json: bool = typer.Option(False, "--json", help="Print auprc, auroc, dice, image_auroc, threshold, fpr."),
) -> None:
    """Pixel AUPRC/AUROC, Dice at the healthy-FPR threshold (oracle threshold, labelled, without --healthy),
    image AUROC and lesion-size strata, with bootstrap intervals; with --images and --reconstructions also RQI,
    CACI (and AHI with --reference).

    Example: medlens anomaly evaluate --maps runs/maps/maps --masks masks/ --healthy runs/healthy/maps --fpr 0.05 --json
    """
    from medlens.diffusion import run_anomaly_evaluate

    doc = run_anomaly_evaluate(maps, masks, healthy=healthy, fpr=fpr, n_bootstrap=bootstrap, ci=ci, seed=seed,
                               images=images, reconstructions=reconstructions, reference=reference)  # fmt: skip

    def show(d: dict) -> None:
        parts = [f"{k} {human_float(d[k]['value'])} [{human_float(d[k]['ci'][0])}, {human_float(d[k]['ci'][1])}]"
                 for k in ("auprc", "auroc", "dice", "image_auroc", "fpr")]  # fmt: skip
        console().print(
            f"{d['n_images']} maps ({d['n_lesion_images']} with lesions), threshold {human_float(d['threshold'])} "
            f"({d['threshold_method']}): " + "; ".join(parts),
            markup=False,
        )
        if "per_volume" in d:
            pv = d["per_volume"]
            console().print(f"{pv['n_volumes']} volumes: mean Dice {human_float(pv['dice_mean'])}, volume AUROC "
                            f"{human_float(pv['volume_auroc'])}", markup=False)  # fmt: skip
        n = d.get("normative", {})
        if "rqi" in n:
            console().print(
                f"RQI (healthy images): MAE {human_float(n['rqi']['mae'])}, SSIM {human_float(n['rqi']['ssim'])}"
            )
        if "caci" in n:
            c = n["caci"]
            console().print(f"CACI: MAE inside lesions {human_float(c['inside']['mae'])}, outside "
                            f"{human_float(c['outside']['mae'])} (ratio {human_float(c['mae_ratio'])})")  # fmt: skip
        if "ahi" in n:
            console().print(f"AHI {human_float(n['ahi']['ahi'])}")

    emit_result(doc, out=out, as_json=as_json, show=show)
