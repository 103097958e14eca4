"""``medlens hier evaluate | calibrate | predict | zeroshot | map-answers``.

Taxonomy-aware evaluation, risk-constrained thresholds, zero-shot node scores from an encoder, and the mapping
of generative models' free-text answers to nodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from medlens.cli._common import (
    console,
    emit_json,
    emit_result,
    executor_option,
    human_float,
    metric_table,
    ray_address_option,
    workers_option,
)

app = typer.Typer(
    help="Hierarchical (taxonomy-aware) evaluation, risk-constrained thresholds, zero-shot node scores and "
    "answer mapping.",
    no_args_is_help=True,
)

TAXONOMY_OPT = typer.Option("cxr_anatomic_v1", "--taxonomy", "-t", help="Built-in name or taxonomy file.")


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
    bootstrap: int = typer.Option(1000, "--bootstrap", min=1, max=100_000, help="Bootstrap resamples for --ci."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Seed of the bootstrap."),
    out: Path | None = typer.Option(None, "--out", help="Also write the JSON to this file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Hierarchical P/R/F, CAE rate, error breakdown and severity of predictions against a truth file.

    Example: medlens hier evaluate --taxonomy cxr_anatomic_v1 --truth truth.csv --pred pred.csv --ci 0.95 --json
    """
    from medlens.hierarchy import run_evaluate

    payload = run_evaluate(
        taxonomy,
        truth,
        pred,
        branch_depth=branch_depth,
        average=average,
        beta=beta,
        scores=scores,
        from_leaves=from_leaves,
        ci=ci,
        bootstrap=bootstrap,
        seed=seed,
        out=out,
    )
    emit_result(payload, out=None, as_json=as_json, show=_print_eval)


def _print_eval(d: dict[str, Any]) -> None:
    t = metric_table(
        f"taxonomy {d['taxonomy']['name']} (v{d['taxonomy']['version']}), branch depth {d['branch_depth']}, n={d['n']}"
    )
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
    grid: int = typer.Option(1001, "--grid", max=1_000_000, help="Number of candidate thresholds in [0, 1]."),
    out: Path = typer.Option(..., "--out", help="THRESHOLDS.json to write (everything predict needs)."),
    allow_infeasible: bool = typer.Option(
        False,
        "--allow-infeasible",
        help="Exit 0 when no threshold meets alpha (the file, marked feasible: false, holds the strictest one); "
        "without it such a target exits with code 3.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Fit a threshold so that the CAE rate stays under alpha (CRC, Learn-then-Test, or empirical).

    When alpha cannot be met (alpha < 1/(n+1) for CRC, or no threshold passes) the thresholds are still written,
    marked "feasible": false with the strictest threshold, and the command exits with code 3 unless
    --allow-infeasible.

    Example: medlens hier calibrate --scores cal_scores.csv --truth cal_truth.csv --alpha 0.02 --method crc
    --out thresholds.json --json
    """
    import sys

    from medlens.risk import run_calibrate

    rep = run_calibrate(
        taxonomy,
        scores,
        truth,
        out,
        alpha=alpha,
        method=method,
        rule=rule,
        delta=delta,
        branch_depth=branch_depth,
        from_leaves=from_leaves,
        p_value=p_value,
        grid=grid,
    )
    if as_json:
        emit_json(rep)
    else:
        console().print(
            f"λ̂ = {rep['lambda']:.4f} ({rep['method']}, rule {rep['rule']}, α={rep['alpha']}): calibration CAE "
            f"{rep['calibration_risk']:.4f}, coverage {rep['coverage']:.3f}, hF {rep['hF']:.4f}, "
            f"feasible={rep['feasible']} → {out}",
            markup=False,
        )
    if not rep["feasible"]:
        msg = " ".join(str(rep["message"]).split())
        if allow_infeasible:
            sys.stderr.write(f"medlens: warning: infeasible: {msg}\n")
            return
        sys.stderr.write(
            f"medlens: error: infeasible: {msg} {out} was written with feasible: false and the strictest threshold "
            f"(λ={rep['lambda']:g}); pass --allow-infeasible to accept it with exit code 0.\n"
        )
        raise typer.Exit(3)


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
    from medlens.risk import run_predict

    doc = run_predict(thresholds, scores, out)
    if as_json:
        emit_json(doc)
    else:
        console().print(f"wrote {doc['n']} predictions to {out} (coverage {doc['coverage']:.3f})", markup=False)


# ------------------------------------------------------------------------------------------------ hier zeroshot
@app.command("zeroshot")
def zeroshot_cmd(
    encoder: str = typer.Option(
        ..., "--encoder", help="Registered encoder name (e.g. minilm) or a local model folder."
    ),
    images: Path | None = typer.Option(None, "--images", help="Folder of images (ids = paths relative to it)."),
    texts: Path | None = typer.Option(None, "--texts", help="Texts: .txt (one per line) or .csv/.jsonl with id,text."),
    taxonomy: str = TAXONOMY_OPT,
    out: Path = typer.Option(
        ..., "--out", help="Scores CSV to write (id + one probability column per node); SCORES.meta.json beside it."
    ),
    templates: Path | None = typer.Option(
        None,
        "--templates",
        help="Prompt templates: a .txt with one template per line holding '{}', or a .json list of templates, "
        "or a .json {node: \\[prompts]} override.",
    ),
    prompt_source: str | None = typer.Option(
        None,
        "--prompt-source",
        help="auto (taxonomy prompts where present, else templates x names) | taxonomy | templates | both. "
        "Default: templates when --templates gives templates, else auto.",
    ),
    method: str = typer.Option(
        "softmax", "--method", help="softmax | sigmoid | platt | contrast (positive vs negative prompts)."
    ),
    internal: str | None = typer.Option(
        None, "--internal", help="prompt | sum | max | noisy_or (default: sum for softmax, prompt otherwise)."
    ),
    temperature: float | None = typer.Option(
        None, "--temperature", help="Scale = 1/temperature (default: the encoder's logit_scale, else 100)."
    ),
    bias: float | None = typer.Option(
        None, "--bias", help="sigmoid: logit bias (default: the encoder's logit_bias, else 0)."
    ),
    calibration_truth: Path | None = typer.Option(
        None, "--calibration-truth", help="platt: truth CSV of some inputs (ids must be among the inputs)."
    ),
    batch_size: int = typer.Option(32, "--batch-size", max=65536, help="Inputs per encoder batch."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | auto."),
    executor: str = executor_option(),
    ray_address: str | None = ray_address_option(),
    workers: int | None = workers_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the summary (also written to SCORES.meta.json)."),
) -> None:
    """Zero-shot node probabilities of images or texts from an encoder and the taxonomy's prompts.

    Example: medlens hier zeroshot --encoder minilm --texts reports.csv --taxonomy cxr_anatomic_v1
    --out scores.csv --json
    """
    from medlens.cli._common import progress_enabled
    from medlens.hierarchy import run_zeroshot

    doc = run_zeroshot(
        encoder,
        taxonomy,
        out,
        images=images,
        texts=texts,
        templates=templates,
        prompt_source=prompt_source,
        method=method,
        internal=internal,
        temperature=temperature,
        bias=bias,
        calibration_truth=calibration_truth,
        batch_size=batch_size,
        device=device,
        progress=progress_enabled(as_json),
        executor=executor,
        ray_address=ray_address,
        workers=workers,
    )
    if as_json:
        emit_json(doc)
        return
    m = doc["method"]
    console().print(
        f"wrote {doc['n']} x {doc['n_nodes']} node probabilities to {out} ({method}, internal {m['internal']}, "
        f"{m['n_prompts']} prompts; metadata in {doc['meta']})",
        markup=False,
    )


# --------------------------------------------------------------------------------------------- hier map-answers
@app.command("map-answers")
def map_answers_cmd(
    answers: Path = typer.Option(..., "--answers", help="Model answers: .txt (one per line) or .csv/.jsonl id,text."),
    taxonomy: str = TAXONOMY_OPT,
    method: str = typer.Option(..., "--method", help="exact | synonym | embedding."),
    synonyms: Path | None = typer.Option(None, "--synonyms", help="JSON {node: \\[phrases]} added to the labels."),
    min_similarity: float | None = typer.Option(
        None, "--embedding-threshold", help="embedding: abstain below this cosine (default 0.5)."
    ),
    negation: bool = typer.Option(True, "--negation/--no-negation", help="Ignore negated mentions ('no effusion')."),
    encoder: str | None = typer.Option(None, "--encoder", help="embedding: text encoder (default minilm)."),
    device: str = typer.Option("cpu", "--device", help="embedding: cpu | cuda | auto."),
    out: Path = typer.Option(
        ..., "--out", help="Prediction CSV to write (id,label; the root = no match); PRED.matches.jsonl beside it."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Map free-text answers of generative models to taxonomy nodes (a prediction CSV for hier evaluate).

    Example: medlens hier map-answers --answers answers.jsonl --taxonomy cxr_anatomic_v1 --method synonym
    --out pred.csv --json
    """
    from medlens.hierarchy import run_map_answers

    doc = run_map_answers(
        answers,
        taxonomy,
        out,
        method=method,
        synonyms=synonyms,
        min_similarity=min_similarity,
        negation=negation,
        encoder=encoder,
        device=device,
    )
    if as_json:
        emit_json(doc)
        return
    status_counts = doc["status_counts"]
    console().print(
        f"mapped {doc['n']} answers to {out}: {status_counts['matched']} matched, {status_counts['unmatched']} "
        f"unmatched, {status_counts['negated']} negated only, {status_counts['abstained']} abstained, "
        f"{status_counts['empty']} empty (details in {doc['matches']})",
        markup=False,
    )
