"""``medlens demo``: the main job on embedded data, one section per benchmark, then the HTML report."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, emit_json, progress_enabled

DEMO_BENCHMARKS = ("cxr-reports", "rare-hpo")


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Run folder (one sub-folder per benchmark)."),
    alpha: float = typer.Option(0.02, "--alpha", help="Target CAE rate of the risk-constrained thresholds."),
    branch_depth: int = typer.Option(1, "--branch-depth", "-k", help="Depth of the branches a CAE crosses."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split and the bootstrap."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run made with another configuration."),
    full: bool = typer.Option(
        False, "--full", help="Also fine-tune MiniLM (radial loss) and report the 2×2 table (a few minutes on CPU)."
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

    Section rare-hpo: 200 simulated rare-disease patients (generator rare-hpo-v1, seed 0) ranked by BM25, dense
    (MiniLM), fused and ontology-aware retrieval over the built-in HPO corpus, with bootstrap CIs
    (OUT/rare-hpo/metrics.json). The HPO index is built once (a few minutes) and cached under $MEDLENS_CACHE.

    Example: medlens demo --out runs/demo [--full]
    """
    from medlens.benchmarks import BENCHMARKS
    from medlens.cli._report import build_report

    summary = {}
    lines: dict[str, list[str]] = {}  # console lines of sections that render their own
    for name in DEMO_BENCHMARKS:
        spec = BENCHMARKS.get(name)
        doc = spec.run(
            out / name,
            alpha=alpha,
            branch_depth=branch_depth,
            seed=seed,
            progress=progress_enabled(as_json),
            overwrite=overwrite,
        )
        if name == "rare-hpo":
            summary[name] = {
                "metrics": str(out / name / "metrics.json"),
                "retrievers": {
                    r: {key: m[key] for key in ("top1", "top5", "mrr", "macro_top1", "macro_top5")}
                    | {"ci95": m["ci95"]}
                    for r, m in doc["retrievers"].items()
                },
                "acceptance": doc["acceptance"],
                "timing_s": doc["timing_s"],
            }
            lines[name] = _rare_hpo_lines(doc)
            continue
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
    if full:
        spec = BENCHMARKS.get("cxr-reports-finetune")
        doc = spec.run(
            out / "cxr-reports-finetune",
            alpha=alpha,
            branch_depth=branch_depth,
            seed=seed,
            epochs=epochs,
            progress=progress_enabled(as_json),
            overwrite=overwrite,
            zero_shot_dir=out / "cxr-reports",
        )
        summary["cxr-reports-finetune"] = {
            "metrics": str(out / "cxr-reports-finetune" / "metrics.json"),
            "table": {
                row: {
                    col: {key: c[key] for key in ("lambda", "hF", "cae_rate", "coverage", "macro_auroc")}
                    for col, c in cols.items()
                }
                for row, cols in doc["table"].items()
            },
            "target": doc["target"],
            "timing_s": doc["timing_s"],
        }
    info = build_report(out, out / "report.html")
    summary["report"] = info["report"]
    if as_json:
        from medlens._provenance import provenance, stamp

        config = {"out": str(out), "alpha": alpha, "branch_depth": branch_depth, "seed": seed, "full": full}
        emit_json(stamp(summary, provenance(command="demo", config=config, seed=seed)))
        return
    c = console()
    for name, s in summary.items():
        if name == "report":
            continue
        if name in lines:
            for line in lines[name]:
                c.print(line, markup=False)
            continue
        if name == "cxr-reports-finetune":
            c.print("[bold]cxr-reports-finetune[/bold]: test split, (model) × (thresholds)")
            for row, cols in s["table"].items():
                for col, v in cols.items():
                    c.print(
                        f"  {row:10s} {col:5s} λ={v['lambda']:.3f}: hF {v['hF']:.3f}, CAE {v['cae_rate']:.4f}, "
                        f"coverage {v['coverage']:.3f}, macro-AUROC {v['macro_auroc']:.3f}",
                        markup=False,
                    )
            t = s["target"]
            c.print(
                f"  target CAE ≤ {t['cae_max']} at coverage ≥ {t['coverage_min']}: {'met' if t['met'] else 'NOT met'}"
            )
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


def _rare_hpo_lines(doc: dict) -> list[str]:
    from medlens.benchmarks.rare_hpo import summary_lines

    return summary_lines(doc)
