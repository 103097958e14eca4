"""``medlens fair score`` and ``medlens fair report``: per-sample text scores, then group reports with FAP."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from medlens.cli._common import console, emit_result, human_float

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
