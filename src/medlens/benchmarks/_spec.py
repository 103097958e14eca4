"""What every benchmark module provides, and the lazy registry of benchmarks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from medlens._registry import Registry

__all__ = ["BenchmarkSpec", "BENCHMARKS"]


@dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark: how to run it into a folder, summarise it and render its report section.

    ``run(out_dir, *, seed=..., progress=..., overwrite=..., **options)`` writes ``out_dir/metrics.json`` and
    returns that document; its keyword arguments are the benchmark's options (``medlens bench run NAME --set
    KEY=VALUE``). ``summarize(doc)`` picks the headline numbers for a JSON summary and ``summary_lines(doc)``
    the console lines; ``report_section(doc)`` renders the HTML section of ``medlens report``. ``explain(doc)``
    gives one-line readings of results a newcomer could misread (e.g. a test CAE above α under CRC); the report
    opens with them and ``summary_lines`` may print them too.
    """

    name: str
    description: str
    run: Callable[..., dict[str, Any]]
    report_section: Callable[[dict[str, Any]], Any]
    extras: tuple[str, ...] = ()
    summarize: Callable[[dict[str, Any]], dict[str, Any]] = lambda doc: {}  # noqa: E731
    summary_lines: Callable[[dict[str, Any]], list[str]] = lambda doc: []  # noqa: E731
    explain: Callable[[dict[str, Any]], list[str]] = lambda doc: []  # noqa: E731


BENCHMARKS: Registry[BenchmarkSpec] = Registry("benchmark")
BENCHMARKS.register(
    "cxr-reports",
    "medlens.benchmarks.cxr_reports._run:SPEC",
    description="3,955 Indiana University chest X-ray reports (MeSH → cxr_anatomic_v1), zero-shot MiniLM, CAE "
    "and risk-constrained thresholds",
    extras=("hf", "data", "viz"),
)
BENCHMARKS.register(
    "cxr-reports-finetune",
    "medlens.benchmarks.cxr_reports._finetune:SPEC",
    description="MiniLM fine-tuned with the radial taxonomy loss on cxr-reports; (zero-shot, fine-tuned) × "
    "(threshold 0.5, CRC) on the test split",
    extras=("torch", "hf", "data", "viz"),
)
BENCHMARKS.register(
    "stitch-reports",
    "medlens.benchmarks.stitch_reports._run:SPEC",
    description="Latent-space stitching LSA → MiniLM on cxr-reports: a MiniLM head on translated LSA features, "
    "zero-shot via translation, anchor sweep",
    extras=("hf", "data", "viz"),
)
BENCHMARKS.register(
    "grounding",
    "medlens.benchmarks.grounding:SPEC",
    description="Finding knowledge bases (VinDr-CXR 22, PadChest-GR 24), rendered prompts, VinDr-CXR inter-reader "
    "agreement (the human ceiling of grounding)",
    extras=("data",),
)
BENCHMARKS.register(
    "fair-reports",
    "medlens.benchmarks.fair_reports._run:SPEC",
    description="IU chest X-ray impressions by real patient age (<40, 40-59, >=60): nearest-neighbour baseline, "
    "BLEU-4/ROUGE-L/CIDEr-D per age group with CIs, gaps, ES and FAP",
    extras=("hf", "data"),
)
BENCHMARKS.register(
    "brain-anomaly",
    "medlens.benchmarks.brain_anomaly._run:SPEC",
    description="Diffusion anomaly localisation on brain-anomaly-v1 (MNI152 slices, synthetic lesions) with the "
    "shipped demo denoiser: AnoDDPM Gaussian/simplex, patched, THOR (full: trained from scratch, + guidance)",
    extras=("diffusion", "data", "io", "viz"),
)
BENCHMARKS.register(
    "brain-edit",
    "medlens.benchmarks.brain_edit._run:SPEC",
    description="Counterfactual lesion insertion on brain-anomaly-v1 slices (MedEdit, naive RePaint, SDEdit) with "
    "the shipped mask-conditioned denoiser: preservation, segmenter Dice, FID/KID with CIs",
    extras=("diffusion", "data", "io", "viz"),
)
BENCHMARKS.register(
    "nova",
    "medlens.benchmarks.nova._bench:SPEC",
    description="NOVA rare brain-MRI findings (your local copy; never downloaded): score a predictions file for "
    "localisation, captioning and diagnosis (not part of `medlens demo`)",
    extras=("io", "vision"),
)
BENCHMARKS.register(
    "omni-phantoms",
    "medlens.benchmarks.omni_phantoms._run:SPEC",
    description="200 generated brain volumes (MNI152, oblique anisotropic grids) with a rod or disc lesion: "
    "omnidirectional vs canonical vs axial-stack views, frozen random-init CNN, graph and mean heads, AUROC with CIs",
    extras=("torch", "graph", "data", "io", "viz"),
)
BENCHMARKS.register(
    "rare-hpo",
    "medlens.benchmarks.rare_hpo._run:SPEC",
    description="200 simulated rare-disease patients (generators rare-hpo-v1 and v2, seed 0) from HPO annotations; BM25, "
    "dense, fused and ontology-aware retrieval-only rankers with bootstrap CIs",
    extras=("hf", "retrieval", "rare"),
)
