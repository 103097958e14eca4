"""``medlens stitch fit | apply | zeroshot | sweep``: latent-space translation between encoders with anchors."""

from __future__ import annotations

from pathlib import Path

import typer

from medlens.cli._common import console, emit_json, human_float

app = typer.Typer(
    help="Latent-space stitching: translate one encoder's features into another's space from paired anchors "
    "(reuse its heads, or score a vision encoder against text prompts).",
    no_args_is_help=True,
)

SOURCE_OPT = typer.Option(..., "--source", help="Source features S.npy (+ S.ids.txt to pair by id).")
TARGET_OPT = typer.Option(..., "--target", help="Target features T.npy (+ T.ids.txt), same items as --source.")
SEED_OPT = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Seed of anchor sampling (and of affine's init).")
PRE_OPT = typer.Option("standard", "--pre", help="Pre-transform of both spaces: standard | center | l2 | none.")


def _anchor_counts(value: str) -> list[int]:
    from medlens._validation import InputError

    try:
        counts = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--anchors must be comma-separated integers such as 16,64,256; got {value!r}.") from None
    if not counts:
        raise InputError("--anchors needs at least one count, e.g. 16,64,256,1024.")
    return counts


@app.command("fit")
def fit(
    source: Path = SOURCE_OPT,
    target: Path = TARGET_OPT,
    method: str = typer.Option("ortho", "--method", help="absolute | ortho | sim | linear | lortho | ridge | affine."),
    anchors: int | None = typer.Option(
        None, "--anchors", help="Use this many random rows as anchors; the rest are held out (default: all rows)."
    ),
    pre: str = PRE_OPT,
    ridge_alpha: float = typer.Option(1.0, "--ridge-alpha", help="Penalty of --method ridge (> 0)."),
    seed: int = SEED_OPT,
    out: Path = typer.Option(..., "--out", help="Translator file TR.npz."),
    as_json: bool = typer.Option(False, "--json", help="Print the fit diagnostics as one JSON document."),
) -> None:
    """Fit a translator from paired anchors (rows of --source and --target describe the same items).

    Example: medlens stitch fit --source lsa.npy --target minilm.npy --method ortho --anchors 512 --out tr.npz --json
    """
    from medlens.stitching import run_stitch_fit

    doc = run_stitch_fit(
        source, target, out, method=method, anchors=anchors, pre=pre, ridge_alpha=ridge_alpha, seed=seed
    )
    if as_json:
        emit_json(doc)
        return
    fit_, held = doc["anchor_fit"], doc["held_out"]
    line = (
        f"wrote {out}: {method} {doc['source_dim']}→{doc['target_dim']} dims on {doc['n_anchors']} anchors "
        f"(paired by {doc['paired_by']}); anchor pair cosine {human_float(fit_['pair_cosine'])}"
    )
    if held:
        line += (
            f"; held-out ({held['n']}) pair cosine {human_float(held['pair_cosine'])}, "
            f"top-1 {human_float(held['top1'])}, MRR {human_float(held['mrr'])}"
        )
    console().print(line, markup=False)


@app.command("apply")
def apply(
    translator: Path = typer.Option(..., "--translator", help="Translator file written by `stitch fit`."),
    features: Path = typer.Option(..., "--features", help="Source-space features X.npy (+ X.ids.txt)."),
    out: Path = typer.Option(..., "--out", help="Translated features Y.npy (+ Y.ids.txt)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Translate features into the target space with a fitted translator.

    Example: medlens stitch apply --translator tr.npz --features lsa_test.npy --out lsa_in_minilm.npy
    """
    from medlens.stitching import run_stitch_apply

    doc = run_stitch_apply(translator, features, out)
    if as_json:
        emit_json(doc)
        return
    console().print(
        f"wrote {doc['n']} rows, {doc['source_dim']}→{doc['target_dim']} dims ({doc['method']}) to {out}",
        markup=False,
    )


@app.command("zeroshot")
def zeroshot(
    features: Path = typer.Option(..., "--features", help="Source-space features X.npy (+ X.ids.txt)."),
    translator: Path = typer.Option(..., "--translator", help="Translator into the text encoder's space."),
    taxonomy: str = typer.Option(..., "--taxonomy", "-t", help="Built-in name or taxonomy file."),
    encoder: str = typer.Option(
        ..., "--encoder", help="The text encoder whose features were the translator's target (name or path)."
    ),
    method: str = typer.Option(
        "contrast", "--method", help="contrast (positive vs negative prompts) | sigmoid | softmax."
    ),
    temperature: float | None = typer.Option(None, "--temperature", help="Scale = 1/temperature (default 100)."),
    batch_size: int = typer.Option(64, "--batch-size", max=65536, help="Prompts per encoder batch."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda | auto."),
    out: Path = typer.Option(..., "--out", help="Scores CSV (one column per node) for `hier evaluate/calibrate`."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary (also written to SCORES.meta.json)."),
) -> None:
    """Zero-shot node probabilities for features of an encoder without a text tower, through a translator.

    Example: medlens stitch zeroshot --features img.npy --translator tr.npz --taxonomy cxr_anatomic_v1
    --encoder minilm --out scores.csv --json
    """
    from medlens._validation import InputError, check_option

    if check_option(method, ("contrast", "sigmoid", "softmax", "platt"), name="--method") == "platt":
        raise InputError("--method platt needs labelled data; use `hier calibrate` on the contrast scores instead.")
    from medlens.stitching import run_stitch_zeroshot

    doc = run_stitch_zeroshot(
        features,
        translator,
        taxonomy,
        encoder,
        out,
        method=method,
        temperature=temperature,
        batch_size=batch_size,
        device=device,
    )
    if as_json:
        emit_json(doc)
        return
    console().print(
        f"wrote {doc['n']} x {doc['n_nodes']} node probabilities to {out} ({method}; metadata in {doc['meta']})",
        markup=False,
    )


@app.command("sweep")
def sweep(
    source: Path = SOURCE_OPT,
    target: Path = TARGET_OPT,
    labels: Path | None = typer.Option(
        None, "--labels", help="CSV id,label (several labels joined by ';'): stratifies anchors, scores a head."
    ),
    anchors: str = typer.Option("16,64,256,1024", "--anchors", help="Comma-separated anchor counts."),
    seeds: int = typer.Option(5, "--seeds", min=1, max=1000, help="Anchor draws per count."),
    method: list[str] | None = typer.Option(None, "--method", help="Methods to compare (repeatable; default all)."),
    pre: str = PRE_OPT,
    seed: int = SEED_OPT,
    ci: float = typer.Option(0.95, "--ci", min=0.5, max=0.999, help="Confidence level of the t-interval over seeds."),
    out: Path | None = typer.Option(None, "--out", help="Also write the JSON document to this file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document."),
) -> None:
    """How many anchors does each method need? Anchor counts × seeds × methods on a held-out evaluation set.

    Example: medlens stitch sweep --source lsa.npy --target minilm.npy --labels labels.csv --anchors 16,64,256,1024
    --seeds 5 --json
    """
    from medlens.stitching import run_stitch_sweep

    doc = run_stitch_sweep(
        source,
        target,
        labels=labels,
        anchors=_anchor_counts(anchors),
        seeds=seeds,
        methods=method or None,
        pre=pre,
        seed=seed,
        ci=ci,
    )
    if out is not None:
        from medlens.io import atomic_write_json

        atomic_write_json(out, doc)
    if as_json:
        emit_json(doc)
        return
    from rich.table import Table

    metric = "accuracy" if "accuracy" in doc["metrics"] else "macro_auroc" if "macro_auroc" in doc["metrics"] else "mrr"
    t = Table(title=f"{metric} on {doc['eval_rows']} held-out rows (mean over {doc['seeds']} seeds)")
    t.add_column("method")
    for c in doc["anchors"]:
        t.add_column(f"{c} anchors", justify="right")
    for m in doc["methods"]:
        cells = []
        for c in doc["anchors"]:
            row = next(r for r in doc["table"] if r["method"] == m and r["anchors"] == c)
            cells.append("underdetermined" if row["underdetermined"] else human_float(row["metrics"][metric]["mean"]))
        t.add_row(m, *cells)
    console().print(t)
    if doc["reference"]:
        console().print(f"reference (head on the true target features): {doc['reference']}", markup=False)
