"""``medlens nova``: validate a local copy of NOVA, run a model over it, and evaluate prediction rows on it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from medlens.cli._common import (
    console,
    emit_json,
    executor_option,
    fan_out_workers_option,
    human_float,
    progress_enabled,
    rate_limit_option,
    ray_address_option,
)

app = typer.Typer(
    help="NOVA (rare brain-MRI findings): validate your local copy, run a VLM over it, evaluate prediction rows. "
    "medlens never "
    "downloads NOVA (CC BY-NC-SA 4.0): point --data at your copy or at an id already in the Hugging Face cache.",
    no_args_is_help=True,
)

DATA_HELP = (
    "Your NOVA copy: a folder (data/nova-v1.parquet, one .parquet, or captions.csv + case_metadata.csv + "
    "bboxes_gold.csv), a .parquet file, or a Hugging Face id already in the local cache (c-i-ber/Nova)."
)


# ================================================================================================ validate
@app.command("validate")
def validate_cmd(
    data: str = typer.Option(..., "--data", help=DATA_HELP),
    layout: str = typer.Option("auto", "--layout", help="auto | parquet_v1 | parquet_struct | csv."),
    images: Path | None = typer.Option(None, "--images", help="Folder to look for the image files in first."),
    no_images: bool = typer.Option(False, "--no-images", help="Do not require image files (text-only copies)."),
    out: Path | None = typer.Option(None, "--out", help="Also write the JSON report to this file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Check a NOVA copy: layout, counts (images, cases, boxes, raters) and every problem found.

    Problems: boxes with non-positive size or outside their image, case fields that differ between the images of
    a case, missing or unreadable images, empty captions or diagnoses, boxes of unknown files. Exit code 0 when
    the copy is clean, 2 when it has problems (the report is printed either way).

    Example: medlens nova validate --data ~/data/Nova --json
    """
    from medlens.benchmarks.nova import run_nova_validate

    payload = run_nova_validate(data, layout=layout, images=images, require_images=not no_images, out=out)
    if as_json:
        emit_json(payload)
    else:
        _print_validate(payload)
    if payload["n_problems"]:
        sys.stderr.write(f"medlens: {payload['n_problems']} problem(s) in the NOVA data at {data}\n")
        raise typer.Exit(code=2)


def _print_validate(s: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(title=f"NOVA at {s['source']} ({s['layout']}, {s['encoding']})", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    for key in ("n_images", "n_cases", "n_diagnoses", "n_gold_boxes", "n_images_without_gold", "n_rater_boxes"):
        t.add_row(key, str(s[key]))
    for rater, n in s["raters"].items():
        t.add_row(f"boxes of {rater}", str(n))
    t.add_row("images with a readable file", f"{s['n_images_with_size']} / {s['n_images']}")
    t.add_row("problems", str(s["n_problems"]))
    con = console()
    con.print(t)
    for p in s["problems"][:50]:
        con.print(f"  [{p['kind']}] {p['message']}", markup=False)
    if s["n_problems"] > 50:
        con.print(f"  ... and {s['n_problems'] - 50} more (use --json for all)")


# ===================================================================================================== run
@app.command("run")
def run_cmd(
    data: str = typer.Option(..., "--data", help=DATA_HELP),
    task: str = typer.Option(..., "--task", help="localization | caption | diagnosis."),
    setting: str = typer.Option(
        "image",
        "--setting",
        help="image (default) | image+history (add the clinical history) | text (diagnosis only: clinical "
        "history + radiologist caption, no image).",
    ),
    out: Path = typer.Option(..., "--out", help="Run folder: predictions.jsonl + manifest.json (resumable)."),
    llm_url: str | None = typer.Option(
        None, "--llm-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (vLLM, llama.cpp, Ollama)."
    ),
    model: str | None = typer.Option(None, "--model", help="Model name the --llm-url server expects."),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="Allow an --llm-url that is not this machine (patient data leaves it)."
    ),
    model_path: Path | None = typer.Option(
        None,
        "--model-path",
        help="Local model: a transformers folder (a VLM; a causal LM for --setting text), or for --setting text a GGUF "
        "file or a registered name (smollm2-135m; medlens llm list).",
    ),
    device: str = typer.Option("cpu", "--device", help="--model-path: cpu | cuda | cuda:N | mps | auto."),
    dtype: str = typer.Option("float32", "--dtype", help="--model-path: float32 | bfloat16 | float16."),
    template: Path | None = typer.Option(
        None, "--template", help="Your prompt template (JSON/YAML: user, system, name); default: the built-in one."
    ),
    box_format: str = typer.Option(
        "xyxy_norm1000", "--box-format", help="Box frame asked for and recorded: xyxy_norm1000 (default) | xyxy_pixel."
    ),
    temperature: float = typer.Option(0.0, "--temperature", help="0 = greedy (default)."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Sampling seed passed to the model."),
    max_tokens: int | None = typer.Option(
        None, "--max-tokens", help="Reply length limit (default: the server's; 512 for --model-path)."
    ),
    no_repair: bool = typer.Option(False, "--no-repair", help="No repair request after an unusable JSON reply."),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N images (a later run continues)."),
    images: Path | None = typer.Option(None, "--images", help="Folder to look for the image files in first."),
    allow_problems: bool = typer.Option(
        False, "--allow-problems", help="Run even when `nova validate` finds problems in the data."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write $MEDLENS_CACHE/llm."),
    workers: int = fan_out_workers_option(ray=True),
    rate_limit: float | None = rate_limit_option(),
    executor: str = executor_option(),
    ray_address: str | None = ray_address_option(),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Discard a run folder made with another configuration (default: refuse)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Run a VLM (or, for --setting text, an LLM) over NOVA and write prediction rows for `nova evaluate`.

    One row per image is appended to OUT/predictions.jsonl as each answer arrives: filename, task, setting, the
    prediction (boxes + scores + box_format | caption | diagnoses), the raw reply and parse_error. A reply that
    cannot be parsed is counted (manifest.json) and written as an empty prediction, never fatal. Rerunning the
    same command resumes; a folder made with another configuration is refused unless --overwrite. Replies are
    cached, so a rerun into a new folder is free. Prompts: medlens.benchmarks.nova._prompts (or --template).

    With --model-path, --executor ray --workers N runs the images on N Ray actors, each loading the model: the
    same rows, appended to the same run folder (a run started here resumes on Ray and back).

    Example: medlens nova run --data ~/data/Nova --task diagnosis --setting image+history --llm-url
    http://127.0.0.1:8000/v1 --model qwen2.5-vl-7b --out runs/nova-dx
    """
    from medlens.benchmarks.nova import run_nova_run

    summary = run_nova_run(
        data,
        out,
        task=task,
        setting=setting,
        llm_url=llm_url,
        model=model,
        allow_remote=allow_remote,
        model_path=model_path,
        device=device,
        dtype=dtype,
        template=template,
        box_format=box_format,
        temperature=temperature,
        seed=seed,
        max_tokens=max_tokens,
        repair=not no_repair,
        limit=limit,
        images=images,
        allow_problems=allow_problems,
        no_cache=no_cache,
        overwrite=overwrite,
        progress=progress_enabled(as_json),
        workers=workers,
        rate_limit=rate_limit,
        executor=executor,
        ray_address=ray_address,
    )
    c = summary["counts"]
    if c["parse_failures"]:
        sys.stderr.write(
            f"medlens: warning: {c['parse_failures']} of {c['done']} repl(ies) could not be parsed (written as empty "
            f"predictions with parse_error; see {summary['predictions']})\n"
        )
    if as_json:
        emit_json(summary)
        return
    console().print(
        f"{summary['status']}: {c['done']} of {c['n_items']} image(s) in {summary['predictions']} "
        f"({c['parse_failures']} parse failure(s), {c['cached']} from cache). Next: medlens nova evaluate --data "
        f"{data} --predictions {summary['predictions']}",
        markup=False,
    )


# ================================================================================================ evaluate
@app.command("evaluate")
def evaluate_cmd(
    data: str = typer.Option(..., "--data", help=DATA_HELP),
    predictions: Path = typer.Option(
        ...,
        "--predictions",
        help="JSONL prediction rows: {filename, task: localization|caption|diagnosis, boxes + scores + box_format "
        "| caption | diagnoses, raw}.",
    ),
    judge: str = typer.Option(
        "exact_synonym",
        "--judge",
        help="Diagnosis judge: exact_synonym (default) | embedding (analysis only) | llm (--llm-url, --model).",
    ),
    compare_judge: str | None = typer.Option(
        None, "--compare-judge", help="Run a second judge on the same pairs and report Cohen's kappa between them."
    ),
    synonyms: Path | None = typer.Option(
        None, "--synonyms", help="exact_synonym: a synonym table (JSON, the layout of the built-in one)."
    ),
    embedding_threshold: float | None = typer.Option(
        None, "--embedding-threshold", help="embedding: cosine threshold (default 0.8)."
    ),
    llm_url: str | None = typer.Option(
        None, "--llm-url", help="llm judge: OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1."
    ),
    model: str | None = typer.Option(None, "--model", help="llm judge: the model name the server expects."),
    model_path: Path | None = typer.Option(
        None,
        "--model-path",
        help="llm judge: local weights instead of --llm-url (a folder, a GGUF file or a registered name).",
    ),
    votes: int = typer.Option(3, "--votes", help="llm judge: votes per pair (temperature 0, seeds 0..votes-1)."),
    allow_remote: bool = typer.Option(
        False, "--allow-remote", help="llm judge: allow an endpoint that is not this machine."
    ),
    ap_mode: str = typer.Option(
        "voc11", "--ap-mode", help="voc11: per-image 11-point AP (nova-voc11, default) | coco: pooled 101-point AP."
    ),
    no_gold: str = typer.Option(
        "skip", "--no-gold", help="Images without gold boxes: skip (default) | score (AP 1 if no box, else 0)."
    ),
    missing: str = typer.Option(
        "skip",
        "--missing",
        help="Images without a row for a task: skip (default; counted) | empty (scored as no boxes / no diagnosis).",
    ),
    bertscore_model: str = typer.Option(
        "minilm",
        "--encoder",
        help="Text encoder of BERTScore: minilm (default) | a local sentence-transformers folder | none (skip it).",
    ),
    meteor_wordnet: str | None = typer.Option(
        None, "--meteor-wordnet", help="WordNet folder for METEOR (default: NLTK paths, $MEDLENS_WORDNET) | none."
    ),
    caption_mode: str = typer.Option(
        "coco-caption",
        "--caption-mode",
        help="Caption metrics: coco-caption (pycocoevalcap's pipeline, the papers' numbers; default) | sacrebleu.",
    ),
    images: Path | None = typer.Option(None, "--images", help="Folder to look for the image files in first."),
    allow_problems: bool = typer.Option(
        False, "--allow-problems", help="Evaluate even when `nova validate` finds problems (they are reported)."
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write $MEDLENS_CACHE/judgements."),
    details: bool = typer.Option(False, "--details", help="Add per-image rows and the full deviation log."),
    out: Path | None = typer.Option(None, "--out", help="Also write the JSON result to this file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Score prediction rows on NOVA: one object per task present.

    localization: map30, map50, map50_95, acc50 (protocol nova-voc11 or coco101; box-frame conversions and clips
    listed as deviations; the two raters' agreement as human ceiling). caption (--caption-mode coco-caption, the
    papers' pycocoevalcap numbers, or sacrebleu): bleu1..bleu4, rouge_l, cider, meteor, bertscore_f1,
    keyword_f1_modality, keyword_f1_findings. diagnosis: top1, top5 (+ macro) under the judge, with
    coverage and entropy of the predicted labels; --compare-judge adds Cohen's kappa between two judges. The llm
    judge asks --model at --llm-url --votes times per pair and takes the majority (votes and decisions cached).
    Every task reports n_predicted and n_missing.

    Example: medlens nova evaluate --data ~/data/Nova --predictions run/predictions.jsonl --judge exact_synonym --json
    """
    from medlens.benchmarks.nova import PREDICTION_TASKS, run_nova_evaluate

    payload = run_nova_evaluate(
        data,
        predictions,
        judge=judge,
        compare_judge=compare_judge,
        synonyms=synonyms,
        embedding_threshold=embedding_threshold,
        llm_url=llm_url,
        model=model,
        model_path=model_path,
        votes=votes,
        allow_remote=allow_remote,
        ap_mode=ap_mode,
        no_gold=no_gold,
        missing=missing,
        bertscore_model=bertscore_model,
        meteor_wordnet=meteor_wordnet,
        caption_mode=caption_mode,
        images=images,
        allow_problems=allow_problems,
        no_cache=no_cache,
        details=details,
        out=out,
    )
    for task in PREDICTION_TASKS:
        r = payload.get(task)
        if r and r.get("n_missing"):
            rule = "skipped" if task == "caption" or missing == "skip" else "scored as empty answers"
            sys.stderr.write(
                f"medlens: warning: {r['n_missing']} of {payload['data']['n_images']} image(s) have no {task} row "
                f"({rule}; see --missing)\n"
            )
    if as_json:
        emit_json(payload)
        return
    _print_evaluate(payload)


def _print_evaluate(r: dict[str, Any]) -> None:
    from rich.table import Table

    con = console()
    from medlens.benchmarks.nova import SUMMARY_KEYS as rows

    for task in r["tasks"]:
        d = r[task]
        title = f"{task}: {d['n_predicted']} predicted, {d['n_missing']} missing"
        if task == "localization":
            title += f" ({d['protocol']})"
        if task == "diagnosis":
            title += f" (judge {d.get('judge')}{', analysis only' if d.get('analysis_only') else ''})"
        t = Table(title=title, show_header=True)
        t.add_column("metric")
        t.add_column("value", justify="right")
        if task == "localization" and d.get("human_ceiling", {}).get("available"):
            t.add_column("human ceiling", justify="right")
        for key in rows[task]:
            cells = [key, human_float(d.get(key))]
            if len(t.columns) == 3:
                cells.append(human_float(d["human_ceiling"].get(key)))
            t.add_row(*cells)
        con.print(t)
        for dev in d.get("deviations", []):
            con.print(f"  deviation: {dev['message']}", markup=False)
        if task == "diagnosis" and "agreement" in d:
            a = d["agreement"]
            con.print(
                f"  Cohen's kappa {human_float(a['kappa'])} between {a['judge_a']} and {a['judge_b']}", markup=False
            )
