"""``medlens demo``: the main job on embedded data, one section per benchmark, then the HTML report."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, emit_json, progress_enabled

DEMO_BENCHMARKS = ("cxr-reports",)


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Run folder (one sub-folder per benchmark)."),
    alpha: float = typer.Option(0.02, "--alpha", help="Target CAE rate of the risk-constrained thresholds."),
    branch_depth: int = typer.Option(1, "--branch-depth", "-k", help="Depth of the branches a CAE crosses."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split and the bootstrap."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run made with another configuration."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Run the embedded demo (real data shipped in installed packages; nothing is downloaded).

    Section cxr-reports: 3,955 Indiana University chest X-ray reports, zero-shot MiniLM scoring against the
    cxr_anatomic_v1 taxonomy, flat vs hierarchical metrics and CAE, thresholds fitted on the calibration
    split (CRC, LTT, empirical) and checked on the test split. Writes OUT/cxr-reports/metrics.json and
    OUT/report.html.

    Example: medlens demo --out runs/demo
    """
    from medlens.benchmarks import BENCHMARKS
    from medlens.cli._report import build_report

    summary = {}
    for name in DEMO_BENCHMARKS:
        spec = BENCHMARKS.get(name)
        doc = spec.run(
            out / name, alpha=alpha, k=branch_depth, seed=seed, progress=progress_enabled(as_json), overwrite=overwrite
        )
        b = doc["baseline_test"]
        summary[name] = {
            "metrics": str(out / name / "metrics.json"),
            "baseline_test": {key: b[key] for key in ("hF", "cae_rate", "coverage")}
            | {"flat_accuracy": b["flat"]["accuracy"]},
            "thresholds": {
                m: {key: r[key] for key in ("test_cae_rate", "test_coverage", "test_hF", "test_cae_within_alpha")}
                | {"lambda": r["calibration"]["lambda"], "feasible": r["calibration"]["feasible"]}
                for m, r in doc["thresholds"].items()
            },
        }
    info = build_report(out, out / "report.html")
    summary["report"] = info["report"]
    if as_json:
        from medlens._provenance import provenance, stamp

        config = {"out": str(out), "alpha": alpha, "branch_depth": branch_depth, "seed": seed}
        emit_json(stamp(summary, provenance(command="demo", config=config, seed=seed)))
        return
    c = console()
    for name, s in summary.items():
        if name == "report":
            continue
        b = s["baseline_test"]
        c.print(
            f"[bold]{name}[/bold]: test at threshold 0.5: flat accuracy {b['flat_accuracy']:.3f}, "
            f"hF {b['hF']:.3f}, CAE {b['cae_rate']:.3f}"
        )
        for m, r in s["thresholds"].items():
            c.print(
                f"  {m:9s} λ̂={r['lambda']:.3f}: test CAE {r['test_cae_rate']:.4f} (≤ α: "
                f"{r['test_cae_within_alpha']}), coverage {r['test_coverage']:.3f}, hF {r['test_hF']:.3f}",
                markup=False,
            )
    c.print(f"report: {summary['report']}", markup=False)
