"""``medlens hier evaluate | calibrate | predict``: taxonomy-aware evaluation and risk-constrained thresholds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from medlens.cli._common import console, emit_json, human_float

app = typer.Typer(
    help="Hierarchical (taxonomy-aware) evaluation and risk-constrained thresholds.", no_args_is_help=True
)

TAXONOMY_OPT = typer.Option("cxr_anatomic_v1", "--taxonomy", "-t", help="Built-in name or taxonomy file.")


def _evaluate_payload(
    taxonomy: str,
    truth: Path,
    pred: Path,
    branch_depth: int,
    average: str,
    beta: float,
    scores: Path | None,
    from_leaves: str | None,
    ci: float | None,
    bootstrap: int,
    seed: int,
) -> dict[str, Any]:
    from medlens._provenance import provenance, stamp
    from medlens.hierarchy import evaluate
    from medlens.io._tables import align_ids, read_label_table, read_score_table
    from medlens.taxonomy import load_taxonomy

    tax = load_taxonomy(taxonomy)
    t = read_label_table(truth, tax, what="truth")
    p = read_label_table(pred, tax, what="prediction")
    order = align_ids(t.ids, p.ids, ref_name=str(truth), other_name=str(pred))
    node_scores = None
    inputs = {"truth": truth, "pred": pred}
    if scores is not None:
        st = read_score_table(scores, tax, from_leaves=from_leaves)
        node_scores = st.scores[align_ids(t.ids, st.ids, ref_name=str(truth), other_name=str(scores))]
        inputs["scores"] = scores
    rep = evaluate(
        t.labels,
        p.labels.subset(order),
        taxonomy=tax,
        k=branch_depth,
        average=average,
        beta=beta,
        node_scores=node_scores,
        ci=ci,
        n_bootstrap=bootstrap,
        seed=seed,
    )
    config = {
        "taxonomy": tax.name,
        "branch_depth": branch_depth,
        "average": average,
        "beta": beta,
        "ci": ci,
        "bootstrap": bootstrap,
        "from_leaves": from_leaves,
    }
    prov = provenance(command="hier evaluate", config=config, seed=seed, inputs=inputs, taxonomy=tax)
    return stamp(rep.to_dict(), prov)


@app.command("evaluate")
def evaluate_cmd(
    taxonomy: str = TAXONOMY_OPT,
    truth: Path = typer.Option(..., "--truth", help="Truth CSV: id,label or id + 0/1 node columns."),
    pred: Path = typer.Option(..., "--pred", help="Prediction CSV, same format; the root id = abstained."),
    branch_depth: int = typer.Option(1, "--branch-depth", "-k", help="Depth of the branches a CAE crosses."),
    average: str = typer.Option("micro", "--average", help="micro | macro averaging of hP/hR/hF."),
    beta: float = typer.Option(1.0, "--beta", help="F-beta weight of recall."),
    scores: Path | None = typer.Option(None, "--scores", help="Optional scores CSV for AUROC and consistency."),
    from_leaves: str | None = typer.Option(None, "--from-leaves", help="sum | max | noisy_or for leaf scores."),
    ci: float | None = typer.Option(None, "--ci", help="Bootstrap confidence level, e.g. 0.95."),
    bootstrap: int = typer.Option(1000, "--bootstrap", help="Bootstrap resamples for --ci."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    out: Path | None = typer.Option(None, "--out", help="Also write the JSON to this file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Hierarchical P/R/F, CAE rate, error breakdown and severity of predictions against a truth file.

    Example: medlens hier evaluate --taxonomy cxr_anatomic_v1 --truth truth.csv --pred pred.csv --ci 0.95 --json
    """
    from medlens.io._atomic import atomic_write_json

    payload = _evaluate_payload(
        taxonomy, truth, pred, branch_depth, average, beta, scores, from_leaves, ci, bootstrap, seed
    )
    if out is not None:
        atomic_write_json(out, payload)
    if as_json:
        emit_json(payload)
        return
    _print_eval(payload)


def _print_eval(d: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(
        title=f"taxonomy {d['taxonomy']['name']} (v{d['taxonomy']['version']}), branch depth "
        f"{d['branch_depth']}, n={d['n']}",
        show_header=True,
    )
    t.add_column("metric")
    t.add_column("value", justify="right")
    ci = d.get("ci") or {}
    for key in ("hP", "hR", "hF", "cae_rate", "cae_share", "coverage", "mistake_severity", "mean_tree_distance"):
        v = human_float(d[key])
        if key in ci:
            v += f"  [{human_float(ci[key][0])}, {human_float(ci[key][1])}]"
        t.add_row(key, v)
    for key, v in d["error_breakdown"].items():
        t.add_row(f"errors: {key}", human_float(v))
    t.add_row("flat accuracy", human_float(d["flat"]["accuracy"]))
    t.add_row("flat macro-F1", human_float(d["flat"]["macro_f1"]))
    console().print(t)


@app.command("calibrate")
def calibrate_cmd(
    taxonomy: str = TAXONOMY_OPT,
    scores: Path = typer.Option(..., "--scores", help="Calibration scores CSV (node or leaf columns)."),
    truth: Path = typer.Option(..., "--truth", help="Calibration truth CSV."),
    alpha: float = typer.Option(0.02, "--alpha", help="Target CAE rate."),
    method: str = typer.Option("crc", "--method", help="crc | ltt | empirical."),
    rule: str | None = typer.Option(
        None, "--rule", help="climb | multilabel (default: climb for single-label truth, multilabel otherwise)."
    ),
    delta: float = typer.Option(0.1, "--delta", help="LTT: allowed probability that the risk exceeds alpha."),
    branch_depth: int = typer.Option(1, "--branch-depth", "-k", help="Depth of the branches a CAE crosses."),
    from_leaves: str | None = typer.Option(None, "--from-leaves", help="sum | max | noisy_or for leaf scores."),
    p_value: str = typer.Option("binomial", "--p-value", help="LTT p-value: binomial | hb (Hoeffding-Bentkus)."),
    grid: int = typer.Option(1001, "--grid", help="Number of candidate thresholds in [0, 1]."),
    out: Path = typer.Option(..., "--out", help="THRESHOLDS.json to write (everything predict needs)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Fit a threshold so that the CAE rate stays under alpha (CRC, Learn-then-Test, or empirical).

    Example: medlens hier calibrate --scores cal_scores.csv --truth cal_truth.csv --alpha 0.02 --method crc
    --out thresholds.json --json
    """
    import sys

    from medlens._provenance import provenance, stamp
    from medlens.io._atomic import atomic_write_json
    from medlens.io._tables import align_ids, read_label_table, read_score_table
    from medlens.risk import RiskConstrainedThresholder
    from medlens.taxonomy import load_taxonomy

    tax = load_taxonomy(taxonomy)
    st = read_score_table(scores, tax, from_leaves=from_leaves)
    t = read_label_table(truth, tax, what="truth")
    order = align_ids(t.ids, st.ids, ref_name=str(truth), other_name=str(scores))
    rule = rule or ("multilabel" if t.multilabel else "climb")
    th = RiskConstrainedThresholder(
        tax, rule=rule, alpha=alpha, delta=delta, method=method, k=branch_depth, grid=grid, p_value=p_value
    ).fit(st.scores[order], t.labels)
    config = {
        "taxonomy": tax.name,
        "alpha": alpha,
        "delta": delta,
        "method": method,
        "rule": rule,
        "branch_depth": branch_depth,
        "from_leaves": from_leaves,
        "p_value": p_value,
        "grid": grid,
    }
    prov = provenance(command="hier calibrate", config=config, inputs={"scores": scores, "truth": truth}, taxonomy=tax)
    doc = th.to_dict(aggregator=st.aggregator)
    doc["provenance"] = prov
    atomic_write_json(out, doc)
    rep = stamp(th.report().to_dict(), prov)
    if not rep["feasible"]:
        sys.stderr.write(f"medlens: warning: infeasible: {rep['message']}\n")
    if as_json:
        emit_json(rep)
        return
    console().print(
        f"λ̂ = {rep['lambda']:.4f} ({method}, rule {rule}, α={alpha}): calibration CAE {rep['calibration_risk']:.4f}, "
        f"coverage {rep['coverage']:.3f}, hF {rep['hF']:.4f}, feasible={rep['feasible']} → {out}",
        markup=False,
    )


@app.command("predict")
def predict_cmd(
    thresholds: Path = typer.Option(..., "--thresholds", help="THRESHOLDS.json written by `hier calibrate`."),
    scores: Path = typer.Option(..., "--scores", help="Scores CSV in the same column layout as at calibration."),
    out: Path = typer.Option(..., "--out", help="Prediction CSV to write (id,label; the root = abstained)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Apply fitted thresholds to new scores and write predictions.

    Example: medlens hier predict --thresholds thresholds.json --scores test_scores.csv --out pred.csv
    """
    import json

    from medlens._provenance import provenance, stamp
    from medlens._validation import InputError
    from medlens.io._tables import read_score_table, write_label_table
    from medlens.risk import RiskConstrainedThresholder

    th = RiskConstrainedThresholder.load(thresholds)
    aggregator = json.loads(Path(thresholds).read_text(encoding="utf-8")).get("aggregator")
    try:
        st = read_score_table(scores, th.taxonomy, from_leaves=aggregator)
    except InputError as exc:
        layout = f"one column per leaf, aggregated with {aggregator!r}" if aggregator else "one column per node"
        raise InputError(
            f"{exc} The thresholds in {thresholds} were fitted on scores with {layout}; give --scores in that layout."
        ) from None
    labels = th.predict(st.scores)
    write_label_table(out, st.ids, labels)
    root = th.taxonomy.root
    abstained = sum(1 for lab in labels if (lab == root or lab == [root]))
    summary = {
        "n": len(labels),
        "abstained": abstained,
        "coverage": 1 - abstained / max(1, len(labels)),
        "lambda": th.lambda_,
        "rule": th.rule,
        "out": str(out),
    }
    prov = provenance(
        command="hier predict",
        config={"thresholds": str(thresholds)},
        inputs={"thresholds": thresholds, "scores": scores},
        taxonomy=th.taxonomy,
    )
    if as_json:
        emit_json(stamp(summary, prov))
    else:
        console().print(f"wrote {len(labels)} predictions to {out} (coverage {summary['coverage']:.3f})", markup=False)
