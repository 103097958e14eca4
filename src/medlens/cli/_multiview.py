"""``medlens multiview extract | train | evaluate``: multi-view features, a cross-validated head, its evaluation."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import (
    console,
    emit_json,
    executor_option,
    progress_enabled,
    ray_address_option,
    workers_option,
)

app = typer.Typer(help="Multi-view (omnidirectional) features of 3-D volumes, graph heads and their evaluation.",
                  no_args_is_help=True)  # fmt: skip


def _ci(m: dict) -> str:
    if m["value"] is None:
        return "-"
    return f"{m['value']:.3f} [{m['low']:.3f}, {m['high']:.3f}]"


def _show_metrics(title: str, metrics: dict | None) -> None:
    if metrics is None:
        console().print(f"{title}: one class only, no metrics", markup=False)
        return
    console().print(
        f"{title}: AUROC {_ci(metrics['auroc'])}, balanced accuracy {_ci(metrics['balanced_accuracy'])}, "
        f"MCC {_ci(metrics['mcc'])}",
        markup=False,
    )


@app.command("extract")
def extract(
    cases: Path = typer.Argument(..., help="CSV with columns id,volume,mask,label (paths relative to the CSV)."),
    encoder: str = typer.Option(
        "random-cnn", "--encoder", help="random-cnn (seeded, frozen) | a registered name | a local model folder."
    ),
    layout: str = typer.Option("omni", "--layout", help="omni | canonical | axial-stack."),
    views: int = typer.Option(
        12, "--views", min=1, max=512, help="Plane orientations (omni) or stacked planes (axial-stack)."
    ),
    size: int = typer.Option(64, "--size", min=8, max=1024, help="Slices are SIZE x SIZE pixels."),
    fov_mm: float | None = typer.Option(
        None, "--fov-mm", help="Field of view in mm (default: 1.2 x the mask's extent, or the volume)."
    ),
    spacing_mm: float = typer.Option(3.0, "--spacing-mm", help="Distance between axial-stack planes, mm."),
    intensity: str = typer.Option("mr", "--intensity", help="none | ct | mr | minmax (per volume)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Views per encoder batch."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | auto."),
    seed: int = typer.Option(0, "--seed", help="Seed of the plane directions and the random-init encoder."),
    out: Path = typer.Option(..., "--out", help="Run folder (resumable: a rerun skips finished cases)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start again in a folder made with other options."),
    executor: str = executor_option(),
    ray_address: str = ray_address_option(),
    workers: int = workers_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the result document."),
) -> None:
    """Slice and encode every volume of CASES; write OUT/features.npz.

    With --executor ray the cases run on --workers Ray actors, each loading one encoder (one GPU each with
    --device cuda); the features equal a local run and the folder resumes the same way.

    Example: medlens multiview extract cases.csv --views 12 --out runs/mv-features
    """  # fmt: skip
    from medlens.multiview import run_multiview_extract

    doc = run_multiview_extract(cases, out, encoder=encoder, layout=layout, views=views, size=size, fov_mm=fov_mm,
                                spacing_mm=spacing_mm, intensity=intensity, seed=seed, batch_size=batch_size,
                                device=device, overwrite=overwrite, progress=progress_enabled(as_json),
                                executor=executor, ray_address=ray_address, workers=workers)  # fmt: skip
    if as_json:
        emit_json(doc)
        return
    console().print(f"encoded {doc['n_cases']} cases ({doc['n_resumed']} resumed) x {doc['planes']} planes "
                    f"({doc['dim']}-d, {doc['encoder']}, {doc['executor']['name']} executor) into "
                    f"{doc['files']['features']}", markup=False)  # fmt: skip


@app.command("train")
def train(
    features: Path = typer.Argument(..., help="A folder written by `multiview extract`."),
    head: str = typer.Option("graph", "--head", help="graph | mlp | mean | attention."),
    neighbours: int = typer.Option(
        4, "--neighbours", min=0, help="Nearest planes per view in the graph (0: complete graph)."
    ),
    folds: int = typer.Option(5, "--folds", min=2, help="Patient-level stratified folds."),
    epochs: int = typer.Option(100, "--epochs", min=1, help="Most epochs per fold (early stopping on validation)."),
    patience: int = typer.Option(15, "--patience", min=1, help="Epochs without validation gain before stopping."),
    lr: float = typer.Option(1e-3, "--lr", help="AdamW learning rate."),
    batch_size: int = typer.Option(16, "--batch-size", min=2, help="Cases per batch."),
    seed: int = typer.Option(0, "--seed", help="Seed of folds and initialisation."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=1, help="Bootstrap resamples for the CIs."),
    ci: float = typer.Option(0.95, "--ci", help="Confidence level of the intervals."),
    out: Path = typer.Option(..., "--out", help="Run folder: metrics.json, cv_predictions.csv, head.safetensors."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start again in a folder made with other options."),
    as_json: bool = typer.Option(False, "--json", help="Print the result document."),
) -> None:
    """Cross-validate a head on extracted features, then fit it on every case and save it.

    Example: medlens multiview train runs/mv-features --head graph --out runs/mv-graph
    """  # fmt: skip
    from medlens.multiview import run_multiview_train

    doc = run_multiview_train(features, out, head=head, k=neighbours or None, folds=folds, epochs=epochs,
                              patience=patience, lr=lr, batch_size=batch_size, seed=seed, bootstrap=bootstrap, ci=ci,
                              overwrite=overwrite)  # fmt: skip
    if as_json:
        emit_json(doc)
        return
    _show_metrics(f"{doc['head']} head, {len(doc['cv']['folds'])}-fold CV on {doc['n_cases']} cases",
                  doc["cv"]["metrics"])  # fmt: skip
    console().print(f"head saved to {doc['files']['head']}", markup=False)


@app.command("evaluate")
def evaluate(
    features: Path = typer.Argument(..., help="A folder written by `multiview extract` (the cases to score)."),
    model_path: Path = typer.Option(..., "--model-path", help="A `multiview train` folder or its head.safetensors."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=1, help="Bootstrap resamples for the CIs."),
    ci: float = typer.Option(0.95, "--ci", help="Confidence level of the intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    out: Path = typer.Option(..., "--out", help="Folder for predictions.csv and metrics.json."),
    as_json: bool = typer.Option(False, "--json", help="Print the result document."),
) -> None:
    """Score extracted features with a trained head.

    Example: medlens multiview evaluate runs/mv-test --model-path runs/mv-graph --out runs/mv-eval
    """  # fmt: skip
    from medlens.multiview import run_multiview_evaluate

    doc = run_multiview_evaluate(model_path, features, out, bootstrap=bootstrap, ci=ci, seed=seed)
    if as_json:
        emit_json(doc)
        return
    _show_metrics(f"{doc['n_cases']} cases", doc["metrics"])
