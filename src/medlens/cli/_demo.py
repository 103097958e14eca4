"""``medlens demo``: the main job on embedded data, one section per benchmark, then the HTML report."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import print_sections, progress_enabled


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Run folder (one sub-folder per benchmark)."),
    alpha: float = typer.Option(0.02, "--alpha", help="Target CAE rate of the risk-constrained thresholds."),
    branch_depth: int = typer.Option(1, "--branch-depth", "-k", help="Depth of the branches a CAE crosses."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Seed of the split and the bootstrap."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run made with another configuration."),
    full: bool = typer.Option(
        False,
        "--full",
        help="Also fine-tune MiniLM (radial loss), train the brain-anomaly UNet from scratch with the guidance "
        "methods, and run omni-phantoms' view-count ablation (tens of minutes on CPU).",
    ),
    epochs: int = typer.Option(5, "--epochs", help="Fine-tuning epochs of --full."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Run the embedded demo (real data shipped in installed packages; nothing is downloaded).

    Section cxr-reports: 3,955 Indiana University chest X-ray reports, zero-shot MiniLM scoring against the
    cxr_anatomic_v1 taxonomy, flat vs hierarchical metrics and CAE, thresholds fitted on the calibration
    split (CRC, LTT, empirical) and checked on the test split. Writes OUT/cxr-reports/metrics.json and
    OUT/report.html.

    With --full, section cxr-reports-finetune: MiniLM fine-tuned with the radial taxonomy loss on the train
    split, thresholds fitted on the calibration split, and the 2×2 table (zero-shot vs fine-tuned) × (threshold
    0.5 vs CRC) on the test split (OUT/cxr-reports-finetune/metrics.json).
    Section brain-anomaly in full mode: a small diffusion UNet trained from scratch on brain-anomaly-v1
    healthy slices, plus a class-conditioned UNet and a noise-aware classifier, adding classifier and
    classifier-free guidance maps.

    Section rare-hpo: 200 simulated rare-disease patients (generator rare-hpo-v1, seed 0) ranked by BM25, dense
    (MiniLM), fused and ontology-aware retrieval over the built-in HPO corpus, with bootstrap CIs, then 200
    paraphrased ones (rare-hpo-v2, test split) with concept-recognition precision / recall
    (OUT/rare-hpo/metrics.json). The HPO index (about 1 min on 2 idle cores) and the HPO label vectors are
    built once and cached under $MEDLENS_CACHE.

    Section brain-anomaly: 48 test slices (24 with synthetic lesions) and 48 healthy slices of brain-anomaly-v1
    scored by AnoDDPM (Gaussian, simplex), patched and THOR with the shipped 0.6 M-parameter denoiser (10 DDIM
    steps from t0 = 250); AUPRC, Dice at a healthy-FPR threshold and image AUROC with CIs, RQI, CACI and AHI
    (OUT/brain-anomaly/).

    Sections stitch-reports, fair-reports, grounding and omni-phantoms (omnidirectional slicing of 3-D phantoms,
    graph head vs mean pooling; --full adds the view-count ablation) are described in the README.

    Each section is a registered benchmark (`medlens bench list`); `medlens bench run NAME` runs one alone.

    Example: medlens demo --out runs/demo [--full]
    """
    from medlens.benchmarks import run_demo

    doc = run_demo(
        out,
        full=full,
        shared={"alpha": alpha, "branch_depth": branch_depth, "seed": seed},
        # --epochs is the fine-tune's alone: a shared option would reach every benchmark with an `epochs` parameter
        options={"cxr-reports-finetune": {"epochs": epochs}},
        progress=progress_enabled(as_json),
        overwrite=overwrite,
    )
    print_sections(doc, as_json, footer=f"report: {doc['report']}")
