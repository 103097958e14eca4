"""``medlens ground kb list | show [NAME] | validate FILE`` (finding knowledge bases), ``ground prompt | train |
predict | evaluate`` (prompts, fine-tuning, grounding, evaluation) and ``ground ceiling`` (the human ceiling)."""

from __future__ import annotations

import typer

from medlens.cli._common import console, emit_json

app = typer.Typer(help="Knowledge-decomposed abnormality grounding (K2Sight).", no_args_is_help=True)
kb_app = typer.Typer(help="Finding knowledge bases: list, show, validate.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")


@kb_app.command("list")
def kb_list(as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout.")) -> None:
    """List the built-in finding knowledge bases.

    Example: medlens ground kb list --json
    """
    from medlens.grounding import knowledge_list_document

    doc = knowledge_list_document()
    if as_json:
        emit_json(doc)
        return
    from rich.table import Table

    t = Table("name", "version", "dataset", "findings", "seen", "unseen", "with box statistics")
    for k in doc["knowledge_bases"]:
        t.add_row(
            k["name"], k["version"], k["dataset"], str(k["n_findings"]), str(k["n_seen"]), str(k["n_unseen"]),
            str(k["n_with_box_statistics"]),
        )  # fmt: skip
    console().print(t)


@kb_app.command("show")
def kb_show(
    name: str = typer.Argument("vindr-cxr", help="Built-in name (vindr-cxr, padchest-gr) or a YAML file."),
    finding: str = typer.Option(None, "--finding", help="Show one finding and its prompt in every mode."),
    attributes: str = typer.Option(
        None, "--attributes", help="Attribute subset of the 'attributes' prompt, e.g. shape,location."
    ),
    measured: bool = typer.Option(
        False, "--measured", help="Add size/location measured on the NIH and VinDr boxes (needs medlens\\[data])."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Show a knowledge base, or one finding with its rendered prompts.

    Example: medlens ground kb show vindr-cxr --finding pneumothorax --attributes shape,location
    """
    from medlens.grounding import knowledge_show_document

    doc = knowledge_show_document(name, finding=finding, attributes=attributes, measured=measured)
    if as_json:
        emit_json(doc)
        return
    c = console()
    if finding is None:
        c.print(
            f"{doc['name']} {doc['version']} ({doc['dataset']}): {doc['n_findings']} findings, "
            f"{doc['n_seen']} seen, {doc['n_unseen']} unseen",
            markup=False,
        )
        for f in doc["findings"]:
            c.print(f"  {f['name']} [{f['split']}]: {f['definition']}", markup=False)
        return
    f = doc["finding"]
    c.print(f"{f['name']} [{f['split']}] in {doc['knowledge']}", markup=False)
    for mode, text in doc["prompts"].items():
        c.print(f"  {mode}: {text}", markup=False)


@kb_app.command("validate")
def kb_validate(
    file: str = typer.Argument(..., help="Knowledge base YAML file."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Check a knowledge base file (fields, attributes, splits, unique names, box-table labels); exit 2 if invalid.

    Example: medlens ground kb validate my_findings.yaml
    """
    from medlens.grounding import knowledge_validate_document

    doc = knowledge_validate_document(file)
    if as_json:
        emit_json(doc)
    else:
        console().print(f"{file}: valid ({doc['n_findings']} findings, version {doc['version']})", markup=False)


@app.command("ceiling")
def ceiling(
    truth: str = typer.Option("vindr", "--truth", help="'vindr' (the shipped VinDr-CXR training boxes) or a CSV."),
    iou: float = typer.Option(0.55, "--iou", help="Fusion IoU: boxes of the other readers join above it."),
    min_readers: int = typer.Option(1, "--min-readers", help="Keep fused boxes marked by at least this many."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Each reader against the weighted box fusion of the image's other readers (F1@0.5, mean best IoU).

    Example: medlens ground ceiling --truth vindr --json
    """
    from medlens.grounding import ceiling_document

    doc = ceiling_document(truth, iou=iou, min_readers=min_readers)
    if as_json:
        emit_json(doc)
        return
    from rich.table import Table

    t = Table("finding", "queries with gold", "P@0.5", "R@0.5", "F1@0.5", "mean best IoU", "hallucination")
    rows = {**doc["by_finding"], "all": doc["overall"]}
    for f, v in rows.items():
        t.add_row(f, str(v["n_positive"]), *(f"{v[k]:.3f}" if v[k] is not None else "-"
                                              for k in ("precision50", "recall50", "f1_50", "miou",
                                                        "hallucination_rate")))  # fmt: skip
    console().print(t)


_KNOWLEDGE_HELP = "Knowledge base: vindr-cxr, padchest-gr (short: vindr, padchest) or a YAML file."


@app.command("prompt")
def prompt(
    finding: str = typer.Option(..., "--finding", help="Finding name or synonym, e.g. 'pleural effusion'."),
    attributes: str = typer.Option(
        None, "--attributes", help="Attribute subset of the 'attributes' prompt, e.g. shape,location."
    ),
    knowledge: str = typer.Option("vindr-cxr", "--knowledge", help=_KNOWLEDGE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Render a finding's grounding prompt in every mode (name only, definition, attributes).

    Example: medlens ground prompt --finding "pleural effusion" --attributes shape,location --knowledge vindr
    """
    from medlens.grounding import prompt_document

    doc = prompt_document(finding, attributes=attributes, knowledge=knowledge)
    if as_json:
        emit_json(doc)
        return
    c = console()
    c.print(f"{doc['finding']} [{doc['split']}] in {doc['knowledge']}", markup=False)
    for mode, text in doc["model_inputs"].items():
        c.print(f"  {mode}: {text}", markup=False)


@app.command("train")
def train(
    data: str = typer.Option(..., "--data", help="Boxes: a VinDr-CXR CSV (readers fused) or a COCO .json."),
    images: str = typer.Option(..., "--images", help="Folder of the images, named <image_id>.png (or .jpg, ...)."),
    model_path: str = typer.Option(..., "--model-path", help="Local Florence-2 folder (transformers layout)."),
    out: str = typer.Option(..., "--out", help="Run folder: checkpoints, history, best weights, OUT/model."),
    split_file: str = typer.Option(
        None, "--split-file", help="CSV image_id,split[,patient_id] (train|val|test); default: val carved from train."
    ),
    knowledge: str = typer.Option("vindr-cxr", "--knowledge", help=_KNOWLEDGE_HELP),
    prompt_mode: str = typer.Option(
        "definition", "--prompt-mode", help="Caption of each query: name_only, definition or attributes."
    ),
    epochs: int = typer.Option(3, "--epochs", min=1, help="Training epochs."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Queries per step."),
    lr: float = typer.Option(1e-4, "--lr", help="AdamW learning rate."),
    seed: int = typer.Option(0, "--seed", help="Seed of the order, the val split and the weights' updates."),
    device: str = typer.Option(None, "--device", help="cpu, cuda, cuda:1, mps (default: the best available)."),
    augment: bool = typer.Option(
        False, "--augment", help="Shift/scale/rotate each training image with its boxes, jitter brightness/contrast."
    ),
    lora: bool = typer.Option(False, "--lora", help="Train LoRA adapters (rank 8, peft) instead of the text model."),
    select: str = typer.Option(
        "val_f1", "--select", help="Epoch selection on the val split: val_f1 (F1@0.5 of the predictions) or val_loss."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from the run folder's checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Discard a finished or different run in --out."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Fine-tune a Florence-2 grounder on (image, finding) queries; the epoch is chosen on the val split
    (default: the highest F1@0.5 of its decoded predictions, as ground evaluate scores them; never on test).

    Example: medlens ground train --data boxes.csv --images imgs/ --model-path florence2 --out runs/g1
    """
    from medlens.cli._common import progress_enabled
    from medlens.grounding import run_ground_train

    doc = run_ground_train(
        data, images, model_path, out, knowledge=knowledge, split_file=split_file, prompt_mode=prompt_mode,
        epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device, resume=resume, overwrite=overwrite,
        progress=progress_enabled(as_json), augment=augment, lora=lora, select=select,
    )  # fmt: skip
    if as_json:
        emit_json(doc)
        return
    c = console()

    def scores(row: dict) -> str:
        f1 = f", val F1@0.5 {row['val_f1']:.4f}" if row.get("val_f1") is not None else ""
        return f"val loss {row['val_loss']:.4f}{f1}"

    for row in doc["history"]:
        c.print(f"epoch {row['epoch']}: {scores(row)}", markup=False)
    chosen = {"val_loss": doc["selected_val_loss"], "val_f1": doc["selected_val_f1"]}
    c.print(f"selected epoch {doc['selected_epoch']} on {doc['select']} ({scores(chosen)}); model: "
            f"{doc['model_path']}", markup=False)  # fmt: skip


@app.command("predict")
def predict(
    model_path: str = typer.Option(..., "--model-path", help="Local Florence-2 folder (e.g. OUT/model of train)."),
    image: str = typer.Option(..., "--image", help="Image file."),
    finding: str = typer.Option(..., "--finding", help="Finding name or synonym to ground."),
    knowledge: str = typer.Option("vindr-cxr", "--knowledge", help=_KNOWLEDGE_HELP),
    prompt_mode: str = typer.Option("definition", "--prompt-mode", help="name_only, definition or attributes."),
    attributes: str = typer.Option(None, "--attributes", help="Attribute subset with --prompt-mode attributes."),
    device: str = typer.Option(None, "--device", help="cpu, cuda, cuda:1, mps (default: the best available)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """Ground one finding on one image: boxes (pixels, x1 y1 x2 y2), labels and per-box scores.

    Example: medlens ground predict --model-path runs/g1/model --image p1.png --finding pneumothorax --json
    """
    from medlens.grounding import predict_document

    doc = predict_document(
        model_path, image, finding, knowledge=knowledge, prompt_mode=prompt_mode, attributes=attributes,
        device=device,
    )  # fmt: skip
    if as_json:
        emit_json(doc)
        return
    c = console()
    c.print(f"{doc['image']} ({doc['width']}×{doc['height']}), {doc['finding']}: {len(doc['boxes'])} box(es)",
            markup=False)  # fmt: skip
    for b, lab, s in zip(doc["boxes"], doc["labels"], doc["scores"] or [None] * len(doc["boxes"]), strict=True):
        score = "-" if s is None else f"{s:.3f}"
        c.print(f"  {lab}: [{', '.join(f'{v:.1f}' for v in b)}] score {score}", markup=False)


@app.command("evaluate")
def evaluate(
    predictions: str = typer.Option(
        ..., "--predictions", help="JSONL: one line per query {image_id, finding, boxes, scores}."
    ),
    truth: str = typer.Option(..., "--truth", help="Gold boxes: a VinDr-CXR CSV (readers fused) or a COCO .json."),
    knowledge: str = typer.Option("vindr-cxr", "--knowledge", help=_KNOWLEDGE_HELP),
    iou: float = typer.Option(0.55, "--iou", help="Fusion IoU of the truth CSV's readers."),
    min_readers: int = typer.Option(1, "--min-readers", help="Keep fused truth boxes marked by at least this many."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """P/R/F1@0.5, Acc@0.5, mean best IoU, mAP (real scores only), hallucination rate, RoDeO, strata.

    Example: medlens ground evaluate --predictions preds.jsonl --truth boxes.csv --json
    """
    from medlens.grounding import evaluate_document

    doc = evaluate_document(predictions, truth, knowledge=knowledge, fusion_iou=iou, min_readers=min_readers)
    if as_json:
        emit_json(doc)
        return
    from rich.table import Table

    t = Table("stratum", "queries", "P@0.5", "R@0.5", "F1@0.5", "mean best IoU", "mAP50", "hallucination", "RoDeO")
    rows = {"all": doc, **{f"split {k}": v for k, v in doc.get("by_split", {}).items()},
            **{f"size {k}": v for k, v in doc["by_size"].items()}, **doc["by_finding"]}  # fmt: skip

    def fmt(x: object) -> str:
        return "-" if x is None else f"{x:.3f}"

    for name, v in rows.items():
        t.add_row(name, str(v["n_queries"]), *(fmt(v[k]) for k in ("precision50", "recall50", "f1_50", "miou",
                  "map50", "hallucination_rate")), fmt((v["rodeo"] or {}).get("total")))  # fmt: skip
    console().print(t)
    console().print(f"scores: {doc['score_status']}; missing predictions: {doc['n_missing_predictions']}",
                    markup=False)  # fmt: skip
    if doc["by_size"]:
        strata = doc["size_strata"]
        cuts = strata.get("bins") or strata.get("bins_px2")
        console().print(f"size strata: {strata['basis']}; cuts {cuts[0]:.4g}, {cuts[1]:.4g}", markup=False)
