"""``medlens fair score`` and ``medlens fair report``: per-sample text scores, then group reports with FAP."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from medlens.cli._common import (
    console,
    emit_result,
    executor_option,
    fan_out_workers_option,
    human_float,
    rate_limit_option,
    ray_address_option,
)

app = typer.Typer(
    help="Fairness: per-sample scores, then per-group scores with CIs, gaps, ES-metric and FAP.",
    no_args_is_help=True,
)


def _split(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


@app.command("score")
def score_cmd(
    predictions: Path = typer.Option(
        ..., "--predictions", help="JSONL: one object per sample with id and prediction (or text), plus attributes."
    ),
    references: Path = typer.Option(
        ..., "--references", help="JSONL: id and reference (a string or a list; or text), plus attributes."
    ),
    metrics: str = typer.Option(
        "bleu4,rouge_l,cider", "--metrics", help="Comma list of bleu1..bleu4, rouge_l, cider, meteor."
    ),
    caption_mode: str = typer.Option(
        "coco-caption", "--caption-mode", help="coco-caption (pycocoevalcap's pipeline; default) | sacrebleu."
    ),
    out: Path = typer.Option(..., "--out", help="Scores CSV to write: id, one column per metric, attributes."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Score every prediction once against its reference; write one row per sample.

    All samples are scored together (CIDEr-D's IDF over the whole set); group scores are means of these values.

    Example: medlens fair score --predictions P.jsonl --references R.jsonl --metrics bleu4,rouge_l,cider --out S.csv
    """
    from medlens.fairness import run_fair_score

    doc = run_fair_score(predictions, references, metrics=_split(metrics), out=out, caption_mode=caption_mode)
    emit_result(doc, out=None, as_json=as_json, show=_print_score)


def _print_score(d: dict[str, Any]) -> None:
    means = ", ".join(f"{m} {human_float(d['mean'][m])}" for m in d["metrics"])
    console().print(
        f"scored {d['n']} samples ({d['caption_mode']}): mean {means}; attributes: "
        f"{', '.join(d['attributes']) or 'none'} → {d['out']}"
    )


@app.command("report")
def report_cmd(
    scores: Path = typer.Option(..., "--scores", help="Scores CSV: id, metric columns, attribute columns."),
    attributes: str = typer.Option(..., "--attributes", help="Comma list of attribute columns (race,gender)."),
    metric: str | None = typer.Option(
        None, "--metric", help="Score column(s), comma-separated (default: the one column besides id/attributes)."
    ),
    groups: Path | None = typer.Option(None, "--groups", help="CSV with id and attribute columns, joined by id."),
    lam: float = typer.Option(1.0, "--lambda", min=0.0, help="FAP's λ: weight of the dispersion penalty."),
    weights: str = typer.Option("size", "--weights", help="FAP group weights: size | uniform."),
    dispersion: str = typer.Option("mad", "--dispersion", help="FAP dispersion: mad | std | range."),
    alpha: float = typer.Option(1.0, "--alpha", min=0.0, help="ES-metric's α (FairCLIP: 1)."),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, max=100_000, help="Bootstrap resamples (0: no CIs)."),
    ci: float = typer.Option(0.95, "--ci", min=0.5, max=0.999, help="Confidence level of the intervals."),
    stratify: bool = typer.Option(False, "--stratify", help="Resample within each attribute's groups."),
    min_group_size: int = typer.Option(
        30, "--min-group-size", min=1, help="Smaller groups are shown but left out of gaps, ES and FAP."
    ),
    missing: str = typer.Option("drop", "--missing", help="Missing attribute values: drop | group ('unknown')."),
    unknown: str | None = typer.Option(None, "--unknown", help="Comma list of values that mean missing (-1,Unknown)."),
    intersect: list[str] = typer.Option(
        [], "--intersect", help="Also report the crossing of attributes, e.g. race,gender (repeatable)."
    ),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    out: Path | None = typer.Option(None, "--out", help="Also write the JSON to this file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Per attribute: groups (n, score, CI, excluded), pooled mean, gaps, ES-metric, FAP with its parts, worst group.

    Example: medlens fair report --scores S.csv --attributes race,gender,language --metric cider --lambda 1 --json
    """
    from medlens.fairness import run_fair_report

    doc = run_fair_report(
        scores,
        attributes=_split(attributes),
        metrics=_split(metric) or None,
        groups=groups,
        lam=lam,
        weights=weights,
        dispersion=dispersion,
        alpha=alpha,
        n_bootstrap=bootstrap,
        confidence=ci,
        min_group_size=min_group_size,
        missing=missing,
        unknown=_split(unknown),
        intersections=[_split(x) for x in intersect],
        stratify=stratify,
        seed=seed,
        out=out,
    )
    for note in doc["warnings"]:
        sys.stderr.write(f"medlens: warning: {note}\n")
    emit_result(doc, out=None, as_json=as_json, show=_print_report)


def _print_report(d: dict[str, Any]) -> None:
    from rich.table import Table

    c = console()
    for m, per_attr in d["results"].items():
        for a, r in per_attr.items():
            t = Table(title=f"{m} by {a} (n {r['n']}, missing {r['n_missing']})", show_header=True)
            for col in ("group", "n", "score", "CI", "excluded"):
                t.add_column(col, justify="left" if col == "group" else "right")
            for g in r["groups"]:
                ci = "-" if g["ci_low"] is None else f"{g['ci_low']:.4f}–{g['ci_high']:.4f}"
                t.add_row(g["name"], str(g["n"]), human_float(g["score"]), ci, "yes" if g["excluded"] else "")
            c.print(t)
            f = r["fap"]
            if f is None:
                c.print(f"  pooled {human_float(r['pooled'])}; fewer than two groups large enough for FAP/ES/gaps")
                continue
            c.print(
                f"  pooled {human_float(r['pooled'])}  FAP {human_float(f['value'])} = {human_float(f['performance'])}"
                f" − {f['lambda']:g}·{human_float(f['dispersion'])} ({f['weights']}/{f['dispersion_kind']})  "
                f"ES {human_float(r['es'])}  gap {human_float(r['gap_max_min'])}  worst {r['worst_group']}"
            )


# ================================================================================================ vqa and run
def _llm_options():
    return {
        "llm_url": typer.Option(None, "--llm-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1."),
        "model": typer.Option(None, "--model", help="Model name the --llm-url server expects."),
        "allow_remote": typer.Option(
            False, "--allow-remote", help="Allow an --llm-url that is not this machine (patient data leaves it)."
        ),
        "model_path": typer.Option(None, "--model-path", help="Local weights: a transformers folder, GGUF or name."),
        "device": typer.Option("cpu", "--device", help="--model-path: cpu | cuda | cuda:N | mps | auto."),
    }


_LLM = _llm_options()


@app.command("vqa")
def vqa_cmd(
    data: Path = typer.Option(..., "--data", help="Harvard-FairVLMed folder (data_summary.csv + Test/)."),
    out: Path = typer.Option(..., "--out", help="Items JSONL to write (the --data of `fair run --task vqa`)."),
    split: str = typer.Option("test", "--split", help="train | val | test."),
    unknown: str = typer.Option("drop", "--unknown", help="drop (FairCLIP) | keep records with unknown attributes."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N records."),
    no_self_check: bool = typer.Option(False, "--no-self-check", help="Keep every generated pair unchecked."),
    llm_url: str | None = _LLM["llm_url"],
    model: str | None = _LLM["model"],
    allow_remote: bool = _LLM["allow_remote"],
    model_path: Path | None = _LLM["model_path"],
    device: str = _LLM["device"],
    seed: int = typer.Option(0, "--seed", min=0, help="Generation seed (temperature 0)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write $MEDLENS_CACHE/llm."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Generate VQA items (diagnosis, tests/treatment, condition) from the clinical notes, self-checked by the LLM.

    Example: medlens fair vqa --data ~/data/FairVLMed --llm-url http://127.0.0.1:8000/v1 --model llama-3.1-70b
    --out vqa.jsonl
    """
    from medlens.fairness import run_fair_vqa

    doc = run_fair_vqa(
        data,
        llm_url=llm_url,
        model=model,
        model_path=model_path,
        allow_remote=allow_remote,
        device=device,
        cache=not no_cache,
        out=out,
        split=split,
        unknown=unknown,
        limit=limit,
        self_check=not no_self_check,
        seed=seed,
    )
    c = doc["counts"]
    emit_result(
        doc,
        out=None,
        as_json=as_json,
        show=lambda d: console().print(
            f"{d['n_items']} VQA item(s) from {c['records']} record(s) → {d['out']} (proposed {c['proposed']}, "
            f"rejected {c['rejected']}, fixed {c['fixed']}, unusable replies {c['generation_failures']} + "
            f"{c['check_failures']})"
        ),
    )


@app.command("run")
def run_cmd(
    data: Path = typer.Option(..., "--data", help="FairVLMed folder (--task report) or an items JSONL (vqa/report)."),
    task: str = typer.Option(..., "--task", help="vqa | report."),
    out: Path = typer.Option(..., "--out", help="Run folder: predictions.jsonl, scores.csv, summary.json (resumable)."),
    llm_url: str | None = _LLM["llm_url"],
    model: str | None = _LLM["model"],
    allow_remote: bool = _LLM["allow_remote"],
    model_path: Path | None = _LLM["model_path"],
    device: str = _LLM["device"],
    text_only: bool = typer.Option(False, "--text-only", help="Send no image (a blind, text-only baseline)."),
    split: str = typer.Option("test", "--split", help="FairVLMed folder: train | val | test."),
    reference: str = typer.Option("summary", "--reference", help="FairVLMed report reference: summary | note."),
    unknown: str = typer.Option("drop", "--unknown", help="FairVLMed folder: drop | keep unknown attributes."),
    metrics: str = typer.Option(
        "bleu4,rouge_l,cider", "--metrics", help="Comma list of bleu1..bleu4, rouge_l, cider, meteor."
    ),
    caption_mode: str = typer.Option("coco-caption", "--caption-mode", help="coco-caption (default) | sacrebleu."),
    temperature: float = typer.Option(0.0, "--temperature", help="0 = greedy (default)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Sampling seed passed to the model."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=1, help="Reply length limit."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N items (a later run continues)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write $MEDLENS_CACHE/llm."),
    workers: int = fan_out_workers_option(ray=True),
    rate_limit: float | None = rate_limit_option(),
    executor: str = executor_option(),
    ray_address: str | None = ray_address_option(),
    overwrite: bool = typer.Option(False, "--overwrite", help="Discard a run folder of another configuration."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Run a VLM (or LLM) over a fairness benchmark, one appended row per item, then score every answer.

    Rerunning the same command resumes; a refused request is recorded and scores 0. Next: `fair report --scores
    OUT/scores.csv --attributes race,gender,ethnicity,language`.

    With --model-path, --executor ray --workers N answers the items on N Ray actors, each loading the model: the
    same rows, appended to the same run folder (a run started here resumes on Ray and back).

    Example: medlens fair run --data ~/data/FairVLMed --task report --llm-url http://127.0.0.1:8000/v1 --model
    qwen2.5-vl-7b --out runs/fair-report
    """
    from medlens.cli._common import progress_enabled
    from medlens.fairness import run_fair_run

    doc = run_fair_run(
        data,
        llm_url=llm_url,
        model=model,
        model_path=model_path,
        allow_remote=allow_remote,
        device=device,
        cache=not no_cache,
        task=task,
        out=out,
        split=split,
        reference=reference,
        unknown=unknown,
        images=not text_only,
        metrics=_split(metrics),
        caption_mode=caption_mode,
        temperature=temperature,
        seed=seed,
        max_tokens=max_tokens,
        limit=limit,
        overwrite=overwrite,
        progress=progress_enabled(as_json),
        workers=workers,
        rate_limit=rate_limit,
        executor=executor,
        ray_address=ray_address,
    )
    if doc["n_empty"]:
        sys.stderr.write(
            f"medlens: warning: {doc['n_empty']} item(s) have an empty answer (scored 0; see {doc['predictions']})\n"
        )
    emit_result(doc, out=None, as_json=as_json, show=_print_run)


def _print_run(d: dict[str, Any]) -> None:
    c = d["counts"]
    means = ", ".join(f"{m} {human_float(d['mean'][m])}" for m in d["metrics"])
    console().print(
        f"{c['done']} of {c['n_items']} item(s) answered ({c['resumed']} from an earlier run, {c['cached']} cached, "
        f"{c['request_failures']} refused); mean {means} → {d['scores']}\nNext: {d['next']}"
    )


# ==================================================================================================== risk
@app.command("risk")
def risk_cmd(
    taxonomy: str = typer.Option("cxr_anatomic_v1", "--taxonomy", "-t", help="Built-in name or taxonomy file."),
    scores: Path = typer.Option(..., "--scores", help="Calibration scores CSV (node or leaf columns)."),
    truth: Path = typer.Option(..., "--truth", help="Calibration truth CSV."),
    groups: Path = typer.Option(..., "--groups", help="CSV with id and the attribute column, for every id."),
    attribute: str = typer.Option(..., "--attribute", help="The groups column (one threshold per value)."),
    test_scores: Path | None = typer.Option(None, "--test-scores", help="Test scores: compare the guarantees."),
    test_truth: Path | None = typer.Option(None, "--test-truth", help="Test truth (with --test-scores)."),
    alpha: float = typer.Option(0.02, "--alpha", help="Target CAE rate within each group."),
    method: str = typer.Option("crc", "--method", help="crc | ltt | empirical."),
    rule: str | None = typer.Option(None, "--rule", help="climb | multilabel (default: from the truth)."),
    delta: float = typer.Option(0.1, "--delta", help="LTT: allowed probability that the risk exceeds alpha."),
    branch_depth: int = typer.Option(1, "--branch-depth", "-k", help="Depth of the branches a CAE crosses."),
    from_leaves: str | None = typer.Option(None, "--from-leaves", help="sum | max | noisy_or for leaf scores."),
    out: Path = typer.Option(..., "--out", help="Group thresholds JSON to write (marginal + one per group)."),
    allow_infeasible: bool = typer.Option(
        False, "--allow-infeasible", help="Exit 0 when a group cannot meet alpha (default: exit code 3)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Per-group (Mondrian) risk control: one threshold per group so the CAE rate is ≤ alpha within each group.

    With --test-scores/--test-truth the report shows, per group, CAE rate and coverage under the marginal
    threshold and under the group's own: the marginal one bounds only the average; coverage is the price.

    Example: medlens fair risk --scores cal.csv --truth cal_truth.csv --groups ages.csv --attribute age_group
    --test-scores test.csv --test-truth test_truth.csv --alpha 0.05 --out group_thresholds.json
    """
    from medlens.risk import run_group_calibrate

    doc = run_group_calibrate(
        taxonomy,
        scores,
        truth,
        groups,
        attribute=attribute,
        out=out,
        test_scores=test_scores,
        test_truth=test_truth,
        alpha=alpha,
        method=method,
        rule=rule,
        delta=delta,
        branch_depth=branch_depth,
        from_leaves=from_leaves,
    )
    emit_result(doc, out=None, as_json=as_json, show=_print_risk)
    if not doc["feasible"]:
        bad = ", ".join(doc["infeasible_groups"]) or "the marginal threshold"
        msg = f"alpha {doc['alpha']:g} cannot be met for {bad} ({out} holds the strictest thresholds, feasible: false)"
        if allow_infeasible:
            sys.stderr.write(f"medlens: warning: infeasible: {msg}\n")
            return
        sys.stderr.write(f"medlens: error: infeasible: {msg}; pass --allow-infeasible to accept it with exit code 0.\n")
        raise typer.Exit(3)


def _print_risk(d: dict[str, Any]) -> None:
    from rich.table import Table

    c = console()
    m = d["marginal"]
    c.print(f"marginal λ̂ {m['lambda']:.4f} (calibration CAE {m['calibration_risk']:.4f}, coverage {m['coverage']:.3f})")
    t = Table(title=f"per {d['attribute']} ({d['method']}, α {d['alpha']:g})")
    for col in ("group", "n cal", "λ̂", "cal CAE", "coverage", "feasible"):
        t.add_column(col, justify="left" if col == "group" else "right")
    for name, r in d["groups"].items():
        t.add_row(name, str(r["n_calibration"]), f"{r['lambda']:.4f}", f"{r['calibration_risk']:.4f}",
                  f"{r['coverage']:.3f}", str(r["feasible"]))  # fmt: skip
    c.print(t)
    if d["test"]:
        for name, r in d["test"]["groups"].items():
            mg, gg = r["marginal"], r["group"]
            c.print(
                f"  test {name} (n {r['n']}): CAE {mg['cae_rate']:.4f} → {gg['cae_rate']:.4f}, coverage "
                f"{mg['coverage']:.3f} → {gg['coverage']:.3f} (marginal → per-group λ̂)"
            )


# =============================================================================================== judges
@app.command("judge")
def judge_cmd(
    predictions: Path = typer.Option(..., "--predictions", help="JSONL: id and prediction (a fair run's predictions)."),
    references: Path = typer.Option(
        ..., "--references", help="JSONL: id, reference, optional question (fair vqa's items), attributes."
    ),
    judge: str = typer.Option("rubric", "--judge", help="rubric (integer grade) | green (GREEN error counts)."),
    out: Path = typer.Option(..., "--out", help="Scores CSV to write: id, the judge column, attributes."),
    llm_url: str | None = _LLM["llm_url"],
    model: str | None = _LLM["model"],
    allow_remote: bool = _LLM["allow_remote"],
    model_path: Path | None = _LLM["model_path"],
    device: str = _LLM["device"],
    rubric: Path | None = typer.Option(None, "--rubric", help="Text file with your rubric (default: ours)."),
    scale: str = typer.Option("1,5", "--scale", help="Rubric: lowest,highest grade."),
    pass_mark: int | None = typer.Option(None, "--pass-mark", help="Rubric: grade that counts as a match (top)."),
    column: str | None = typer.Option(None, "--column", help="Name of the score column (default: the judge)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed passed to the judge model (temperature 0)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the LLM and judgement caches."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Grade every prediction with an LLM judge (GREEN or a rubric); unreadable replies are empty cells, counted.

    The raw replies go to OUT.judgements.jsonl. Then: `fair report --scores OUT --metric rubric --attributes ...`,
    or `fair agreement` between two judges' columns.

    Example: medlens fair judge --predictions runs/vqa/predictions.jsonl --references vqa.jsonl --judge rubric
    --llm-url http://127.0.0.1:8000/v1 --model llama-3.1-70b --out judged.csv
    """
    from medlens._validation import InputError, read_text_file
    from medlens.fairness import run_fair_judge

    parts = _split(scale)
    try:
        low, high = (int(x) for x in parts)
    except ValueError:
        raise InputError(f"--scale must be two integers 'low,high' (e.g. 1,5); got {scale!r}.") from None
    doc = run_fair_judge(
        predictions,
        references,
        judge=judge,
        out=out,
        llm_url=llm_url,
        model=model,
        model_path=model_path,
        allow_remote=allow_remote,
        device=device,
        cache=not no_cache,
        rubric=read_text_file(rubric, what="rubric file") if rubric is not None else None,
        scale=(low, high),
        pass_mark=pass_mark,
        column=column,
        seed=seed,
    )
    if doc["n_failed"]:
        sys.stderr.write(
            f"medlens: warning: {doc['n_failed']} of {doc['n']} judge repl(ies) could not be read (empty cells; raw "
            f"text in {doc['judgements']})\n"
        )
    emit_result(
        doc,
        out=None,
        as_json=as_json,
        show=lambda d: console().print(
            f"{d['column']}: mean {human_float(d['mean'])} over {d['n'] - d['n_failed']} of {d['n']} graded → {d['out']}"
        ),
    )


@app.command("agreement")
def agreement_cmd(
    scores: list[Path] = typer.Option(..., "--scores", help="Scores CSV(s) holding the judge columns (repeatable)."),
    metric: str = typer.Option(..., "--metric", help="Comma list of at least two judge columns."),
    weights: str = typer.Option("quadratic", "--weights", help="Kappa weights: none | linear | quadratic."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Cohen's kappa (weighted for ordinal grades) between every pair of judge columns, on the ids both graded.

    Example: medlens fair agreement --scores judge70b.csv --scores judge8b.csv --metric rubric70b,rubric8b
    """
    from medlens.fairness import run_fair_agreement

    doc = run_fair_agreement(scores, columns=_split(metric), weights=weights)

    def show(d: dict[str, Any]) -> None:
        for p in d["pairs"]:
            k = "-" if p["kappa"] is None else f"{p['kappa']:.3f}"
            console().print(
                f"{p['a']} vs {p['b']}: kappa ({d['weights']}) {k} on {p['n']} item(s), {p['n_missing']} missing"
            )

    emit_result(doc, out=None, as_json=as_json, show=show)
