"""Runner of the ``cxr-reports`` benchmark: zero-shot MiniLM scoring, CAE, risk-constrained thresholds.

Steps (each recorded in ``metrics.json``):

1. Load the 3,955 IU chest X-ray reports and their ``cxr_anatomic_v1`` labels with the fixed seeded
   50/25/25 split (:func:`medlens.benchmarks.cxr_reports.load_cxr_reports`).
2. Zero-shot node similarity: every report sentence is embedded with the packaged MiniLM; a node's raw
   score is the highest cosine similarity of a sentence to the node's prompts (negated sentences are
   ignored for finding nodes). See :mod:`medlens.hierarchy._zeroshot`.
3. Probabilities: per-node Platt scaling fitted on the train split (the only use of train labels).
4. Baseline: every node with probability >= 0.5 is predicted (multi-label); evaluated on the test split.
5. Risk control: thresholds fitted on the calibration split with CRC, LTT and the empirical rule
   (rule ``multilabel``, CAE at branch depth ``branch_depth``), then checked on the untouched test split.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from medlens._progress import progress_bar
from medlens._provenance import config_hash, provenance, stamp
from medlens.benchmarks._spec import BenchmarkSpec
from medlens.hierarchy import write_label_table, write_node_scores
from medlens.io import atomic_write_json, prepare_run_dir

log = logging.getLogger(__name__)

__all__ = ["run", "report_section", "explain", "SPEC"]

BASELINE_THRESHOLD = 0.5
LOW_COVERAGE = 0.1
"""Below this test coverage a threshold is flagged: it abstains on almost every report."""


def run(
    out_dir: str | Path,
    *,
    alpha: float = 0.02,
    delta: float = 0.1,
    branch_depth: int = 1,
    seed: int = 0,
    encoder: str = "minilm",
    ci: float | None = 0.95,
    n_bootstrap: int = 1000,
    progress: bool = False,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Run the benchmark into ``out_dir`` and return the ``metrics.json`` document.

    ``out_dir`` gets a ``manifest.json`` with the config hash; a folder made with another config is refused
    unless ``overwrite``.
    """
    from medlens.benchmarks.cxr_reports._data import load_cxr_reports
    from medlens.encoders import load_encoder
    from medlens.hierarchy import PlattScaler, encode_labels, evaluate, prompt_node_similarity
    from medlens.risk import RiskConstrainedThresholder, loss_curve, predict_labels
    from medlens.taxonomy import load_taxonomy

    t0 = time.perf_counter()
    out = Path(out_dir)
    config = {
        "benchmark": "cxr-reports",
        "alpha": alpha,
        "delta": delta,
        "branch_depth": branch_depth,
        "seed": seed,
        "encoder": encoder,
        "ci": ci,
        "n_bootstrap": n_bootstrap,
        "baseline_threshold": BASELINE_THRESHOLD,
    }
    prepare_run_dir(out, config, overwrite=overwrite)
    with progress_bar(2, progress, "cxr-reports: reading the reports, loading the encoder", transient=True) as advance:
        data = load_cxr_reports(seed=seed)
        tax = load_taxonomy(data.taxonomy)
        frame = data.frame
        advance(1)
        enc = load_encoder(encoder)
        advance(1)
    t_enc = time.perf_counter()
    sim, nodes = prompt_node_similarity(
        list(frame["text"]),
        taxonomy=tax,
        embed=lambda texts: enc.encode_texts(texts, batch_size=64, progress=progress),
    )
    t_enc = time.perf_counter() - t_enc

    def fit_and_test(rule: str, method: str) -> dict[str, Any]:
        th = RiskConstrainedThresholder(
            tax, rule=rule, alpha=alpha, delta=delta, method=method, branch_depth=branch_depth
        )
        th.fit(scores[cal], y_cal)
        pred = predict_labels(scores[te], tax, rule=rule, lam=th.lambda_)
        test = evaluate(
            y_te, pred, taxonomy=tax, branch_depth=branch_depth, ci=ci, n_bootstrap=n_bootstrap, seed=seed
        ).to_dict()
        suffix = "" if rule == "multilabel" else f"_{rule}"
        doc = th.to_dict()
        doc["provenance"] = provenance(
            command=f"demo cxr-reports ({rule}, {method})",
            config=config,
            seed=seed,
            taxonomy=tax,
            models={"text_encoder": enc.model_id},
        )
        atomic_write_json(out / f"thresholds_{method}{suffix}.json", doc)
        return {
            "calibration": th.report().to_dict(),
            "test": test,
            "test_cae_rate": test["cae_rate"],
            "test_cae_se": float(np.sqrt(test["cae_rate"] * (1 - test["cae_rate"]) / max(1, test["n"]))),
            "test_coverage": test["coverage"],
            "test_hF": test["hF"],
            "test_cae_within_alpha": bool(test["cae_rate"] <= alpha),
        }

    # after the encoder's own bar: Platt scaling, the baseline, 6 threshold fits (each with a bootstrap)
    with progress_bar(8, progress, "cxr-reports: calibration, thresholds, bootstrap", transient=True) as advance:
        labels = encode_labels([list(x) for x in frame["labels"]], tax, name="cxr-reports labels")
        closed = labels.closure[:, 1:].toarray()  # nodes order = tax.nodes[1:]
        split = frame["split"].to_numpy()
        tr, cal, te = (np.flatnonzero(split == s) for s in ("train", "calibration", "test"))
        scaler = PlattScaler().fit(sim[tr], closed[tr])
        probs = scaler.transform(sim)
        advance(1)
        scores = np.ones((len(frame), len(tax)))
        scores[:, 1:] = probs
        ids = list(frame["id"])
        for name, rows in (("calibration", cal), ("test", te)):
            write_node_scores(out / f"scores_{name}.csv", [ids[i] for i in rows], tax, scores[rows])
            write_label_table(
                out / f"truth_{name}.csv", [ids[i] for i in rows], [frame["labels"].iloc[i] for i in rows]
            )

        y_cal, y_te = labels.subset(cal), labels.subset(te)
        # Baseline: a fixed 0.5 threshold on every node.
        base_pred = predict_labels(scores[te], tax, rule="multilabel", lam=BASELINE_THRESHOLD)
        baseline = evaluate(
            y_te,
            base_pred,
            taxonomy=tax,
            branch_depth=branch_depth,
            node_scores=scores[te],
            ci=ci,
            n_bootstrap=n_bootstrap,
            seed=seed,
        ).to_dict()
        advance(1)
        test_curve = loss_curve(scores[te], y_te, rule="multilabel", branch_depth=branch_depth)
        grid_idx = np.unique(np.linspace(0, 1000, 101).round().astype(int))
        grid = np.linspace(0, 1, 1001)[grid_idx]

        methods, back_off = {}, {}
        for m in ("crc", "ltt", "empirical"):
            methods[m] = fit_and_test("multilabel", m)
            advance(1)
        for m in ("crc", "ltt", "empirical"):
            back_off[m] = fit_and_test("climb", m)
            advance(1)
    prov = provenance(
        command="demo cxr-reports",
        config=config,
        seed=seed,
        taxonomy=tax,
        models={"text_encoder": enc.model_id},
        extra={
            "archive_sha256": data.stats.get("archive_sha256"),
            "mesh_map_sha256": data.stats.get("mesh_map_sha256"),
        },
    )
    doc = stamp(
        {
            "benchmark": "cxr-reports",
            "config_hash": config_hash(config),
            "dataset": data.stats,
            "method": {
                "scoring": "zero-shot: highest cosine similarity between a report sentence and a node's averaged "
                "prompt embeddings (packaged all-MiniLM-L6-v2); sentences with a negation trigger are ignored for "
                "finding nodes",
                "probabilities": "per-node Platt scaling fitted on the train split",
                "baseline_rule": f"multilabel, every node with probability >= {BASELINE_THRESHOLD}",
                "risk_rule": "multilabel: every node with probability >= λ; λ chosen on the calibration split",
                "back_off_rule": "climb: one node per report, from the most probable leaf up through the most "
                "probable parents until a node reaches λ (the root = abstain)",
                "encoder": enc.config.__dict__,
            },
            "alpha": alpha,
            "delta": delta,
            "branch_depth": branch_depth,
            "splits": {"train": len(tr), "calibration": len(cal), "test": len(te)},
            "baseline_test": baseline,
            "thresholds": methods,
            "thresholds_climb": back_off,
            "test_curve": {
                "lambda": grid.tolist(),
                "risk": test_curve.risk(grid).tolist(),
                "coverage": test_curve.coverage(grid).tolist(),
            },
            "timing_s": {"encode": round(t_enc, 2), "total": round(time.perf_counter() - t0, 2)},
        },
        prov,
    )
    atomic_write_json(out / "metrics.json", doc)
    return doc


def summarize(doc: dict[str, Any]) -> dict[str, Any]:
    """Headline numbers: the test split at threshold 0.5 and under each fitted threshold."""
    b = doc["baseline_test"]
    return {
        "baseline_test": {key: b[key] for key in ("hF", "cae_rate", "coverage")}
        | {"flat_accuracy": b["flat"]["accuracy"]},
        "thresholds": {
            m: {key: r[key] for key in ("test_cae_rate", "test_coverage", "test_hF", "test_cae_within_alpha")}
            | {"lambda": r["calibration"]["lambda"], "feasible": r["calibration"]["feasible"]}
            for m, r in doc["thresholds"].items()
        },
    }


def threshold_readings(
    label: str, rows: dict[str, Any], *, alpha: float, delta: float, n_test: int, n_calibration: int
) -> list[str]:
    """One line per fitted threshold that a newcomer could misread, for ``rows`` = ``{method: result}``.

    CRC (or LTT) above α on the test split is sampling noise, not a broken guarantee; the empirical rule has
    none; an LTT coverage under :data:`LOW_COVERAGE` means it abstains on almost everything; an infeasible fit
    says so.
    """
    lines = []
    for m, r in rows.items():
        c = r["calibration"]
        lam, cae, cov = c["lambda"], r["test_cae_rate"], r["test_coverage"]
        head = f"{label}{m} λ̂={lam:.3f}"
        if not c.get("feasible", True):
            lines.append(
                f"{head}: infeasible — no threshold keeps the calibration CAE under α={alpha}; the result is "
                "written with feasible = no (exit code 3 on the CLI)."
            )
        elif m == "crc":
            verdict = "above" if cae > alpha else "within"
            lines.append(
                f"{head}: test CAE {cae:.4f} {verdict} α={alpha}. CRC bounds the expected CAE rate over calibration "
                f"draws (n={n_calibration}), not the rate of one test split (n={n_test}), which may exceed α by "
                f"sampling noise (SE {r.get('test_cae_se', float('nan')):.4f})."
            )
        elif m == "ltt" and cov < LOW_COVERAGE:
            lines.append(
                f"{head}: coverage {cov:.3f} — it abstains on {100 * (1 - cov):.1f} % of reports. LTT guarantees "
                f"P(CAE rate > α) ≤ δ={delta}; with a score this weak that is met only by predicting almost nothing."
            )
        elif m == "ltt" and cae > alpha:
            lines.append(
                f"{head}: test CAE {cae:.4f} above α={alpha}. LTT bounds the chance that the true rate exceeds α "
                f"by δ={delta}; one test split (n={n_test}) may still land above α by sampling noise."
            )
        elif m == "empirical" and cae > alpha:
            lines.append(
                f"{head}: test CAE {cae:.4f} above α={alpha}. The empirical rule only matches α on the calibration "
                "split and has no guarantee on new reports."
            )
    return lines


def explain(doc: dict[str, Any]) -> list[str]:
    """One-line readings of the fitted thresholds (CRC above α, LTT abstaining on almost everything)."""
    kw = {
        "alpha": doc["alpha"],
        "delta": doc.get("delta", float("nan")),
        "n_test": doc["splits"]["test"],
        "n_calibration": doc["splits"]["calibration"],
    }
    return threshold_readings("cxr-reports ", doc["thresholds"], **kw)


def summary_lines(doc: dict[str, Any]) -> list[str]:
    """Console lines of the demo's cxr-reports section, then :func:`explain`'s readings."""
    from medlens.report import yes_no

    s = summarize(doc)
    b = s["baseline_test"]
    lines = [
        f"cxr-reports: test at threshold 0.5: flat accuracy {b['flat_accuracy']:.3f}, hF {b['hF']:.3f}, "
        f"CAE {b['cae_rate']:.3f}"
    ]
    for m, r in s["thresholds"].items():
        lines.append(
            f"  {m:9s} λ̂={r['lambda']:.3f}: test CAE {r['test_cae_rate']:.4f} (≤ α: "
            f"{yes_no(r['test_cae_within_alpha'])}), coverage {r['test_coverage']:.3f}, hF {r['test_hF']:.3f}"
        )
    lines.extend(f"  note: {line.removeprefix('cxr-reports ')}" for line in explain(doc))
    return lines


def report_section(metrics: dict[str, Any]) -> Any:
    """The report section of a ``cxr-reports`` run."""
    from medlens.report import Section, figure_html, table_html

    ds = metrics["dataset"]
    model = metrics["provenance"].get("model_ids", {}).get("text_encoder", "MiniLM")
    s = Section(
        "cxr-reports: taxonomy-aware evaluation of a zero-shot report classifier",
        data=f"Indiana University chest X-ray reports (torchxrayvision's NLMCXR archive), {ds.get('n_used')} "
        f"reports, labels = MeSH headings mapped onto {metrics['provenance']['taxonomy']['name']}",
        model=f"zero-shot sentence encoder {model} against node prompts, Platt-scaled on the train split",
    )
    s.paragraph(
        f"{ds.get('n_used')} of {ds.get('n_reports_total')} Indiana University chest X-ray reports with mapped MeSH "
        f"labels ({100 * ds.get('share_multilabel', 0):.1f} % multi-label); split "
        f"{metrics['splits']['train']}/{metrics['splits']['calibration']}/{metrics['splits']['test']} "
        f"(train/calibration/test, seed {ds.get('seed')}). Taxonomy {metrics['provenance']['taxonomy']['name']} "
        f"v{metrics['provenance']['taxonomy']['version']}, branch depth {metrics['branch_depth']}."
    )
    s.paragraph(
        f"Scoring: {metrics['method']['scoring']}. Probabilities: {metrics['method']['probabilities']}.", cls="note"
    )
    b = metrics["baseline_test"]
    rows = [
        ["flat accuracy (exact label set)", b["flat"]["accuracy"]],
        ["flat macro-F1", b["flat"]["macro_f1"]],
        ["flat macro-AUROC", b["flat"].get("macro_auroc")],
        ["hierarchical F1 (micro)", b["hF"]],
        ["CAE rate", b["cae_rate"]],
        ["CAE share of errors", b["cae_share"]],
        ["coverage", b["coverage"]],
        ["mistake severity (LCA height)", b["mistake_severity"]],
    ]
    if b.get("consistency"):
        rows.append(["hierarchy-consistency violations", b["consistency"]["rate"]])
    s.add(table_html(["test split, threshold 0.5", "value"], rows, caption="Flat vs hierarchical metrics"))
    alpha = metrics["alpha"]
    trows = []
    for label, key in (("all nodes >= λ", "thresholds"), ("climb (back off)", "thresholds_climb")):
        for m, r in metrics.get(key, {}).items():
            c = r["calibration"]
            se = r.get("test_cae_se", float("nan"))
            trows.append(
                [
                    f"{label}: {m}",
                    c["lambda"],
                    c["feasible"],
                    c["calibration_risk"],
                    f"{r['test_cae_rate']:.4f} ± {se:.4f}",
                    r["test_coverage"],
                    r["test_hF"],
                    "yes" if r["test_cae_within_alpha"] else "no",
                ]
            )
    header = [
        "rule: method",
        "λ̂",
        "feasible",
        "calibration CAE",
        "test CAE ± SE",
        "test coverage",
        "test hF",
        f"test CAE ≤ α={alpha}",
    ]
    s.add(table_html(header, trows, caption="Risk-constrained thresholds (fitted on calibration, checked on test)"))
    s.paragraph(
        "CRC bounds the expected CAE rate of a new report (over calibration draws), so one test split can land "
        "above α by sampling noise; LTT bounds the probability that the true rate exceeds α by δ and is therefore "
        "more conservative; the empirical rule has no guarantee.",
        cls="note",
    )
    for line in explain(metrics):
        s.paragraph(line, cls="warn" if "abstains" in line or "infeasible" in line else "note")
    try:
        from medlens.report import branch_confusion_figure, risk_coverage_figure

        crc = metrics["thresholds"]["crc"]["calibration"]
        curves = [
            {"label": "calibration", **crc["curve"], "lambda_hat": crc["lambda"]},
            {"label": "test", **metrics["test_curve"]},
        ]
        s.add(
            figure_html(
                risk_coverage_figure(curves, alpha=alpha, rule="multilabel (every node ≥ λ)"),
                "Risk–coverage of the multilabel rule: CAE rate (log scale, left axis) and coverage (dashed, right "
                "axis) as the threshold λ rises, on the calibration and test splits (dotted: CRC λ̂; dash-dot: α).",
            )
        )
        bc = b["branch_confusion"]
        s.add(
            figure_html(
                branch_confusion_figure(
                    bc["true_branches"],
                    bc["predicted_branches"],
                    bc["counts"],
                    title="test split, threshold 0.5 (row-normalised)",
                    normalize="row",
                ),
                "Branch confusion: for every report, each (true branch, predicted branch) pair is counted, and "
                "'(none)' counts reports with no prediction in any branch. For single-label data the off-diagonal "
                "cells are the CAEs; for label sets a report is a CAE only when a predicted branch holds no true "
                "finding, so off-diagonal counts exceed the number of CAEs. Cells show the share of the true branch's "
                "reports and, in brackets, the count.",
            )
        )
        crc_bc = metrics["thresholds"]["crc"]["test"]["branch_confusion"]
        s.add(
            figure_html(
                branch_confusion_figure(
                    crc_bc["true_branches"],
                    crc_bc["predicted_branches"],
                    crc_bc["counts"],
                    title="test split, CRC threshold (row-normalised)",
                    normalize="row",
                ),
                "Branch confusion after conformal risk control (share of each true branch's reports, count in "
                "brackets).",
            )
        )
    except ImportError as exc:
        s.paragraph(f"Plots skipped: {exc}", cls="warn")
    return s


SPEC = BenchmarkSpec(
    name="cxr-reports",
    description="Indiana University chest X-ray reports, zero-shot MiniLM, CAE and risk-constrained thresholds",
    run=run,
    report_section=report_section,
    extras=("hf", "data", "viz"),
    summarize=summarize,
    summary_lines=summary_lines,
    explain=explain,
)
