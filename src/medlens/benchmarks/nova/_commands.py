"""The pipelines behind ``nova validate``, ``nova run`` and ``nova evaluate``: load a NOVA copy, check it, run a
model over it or score it, and return the document stamped with its provenance (the command's configuration,
the data files, the models and judges), written to ``out`` when given. The commands only parse options, call
one of these and print.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from medlens._provenance import provenance, stamp
from medlens._validation import InputError, check_option
from medlens.benchmarks.nova._eval import AP_MODES, MISSING_RULES, nova_evaluate, read_nova_predictions
from medlens.benchmarks.nova._loader import load_nova
from medlens.benchmarks.nova._prompts import REQUEST_BOX_FORMATS, RUN_SETTINGS, RUN_TASKS, load_template
from medlens.benchmarks.nova._records import NovaDataset
from medlens.benchmarks.nova._run import nova_run
from medlens.io import atomic_write_json

__all__ = ["nova_data_inputs", "nova_judge", "run_nova_evaluate", "run_nova_run", "run_nova_validate"]


def nova_data_inputs(dataset: NovaDataset) -> dict[str, Path]:
    """The data files of a loaded NOVA copy, as provenance inputs (``data:<file name>``)."""
    return {f"data:{Path(f).name}": Path(f) for f in dataset.files}


def nova_judge(
    name: str | None,
    synonyms: str | os.PathLike | None = None,
    threshold: float | None = None,
    llm: dict[str, Any] | None = None,
) -> Any:
    """The diagnosis judge named ``name`` (``None``: none) built from the commands' options."""
    from medlens.metrics import JUDGES, EmbeddingJudge, ExactSynonymJudge, LLMJudge

    if name is None:
        return None
    canonical = JUDGES.resolve_name(name)  # did-you-mean KeyError
    if canonical == "exact_synonym":
        return ExactSynonymJudge(synonyms)
    if canonical == "embedding":
        return EmbeddingJudge(threshold=0.8 if threshold is None else threshold)
    if canonical == "llm":
        return LLMJudge(**(llm or {}))
    return JUDGES.get(canonical)()


def run_nova_validate(
    data: str,
    *,
    layout: str = "auto",
    images: str | os.PathLike | None = None,
    require_images: bool = True,
    out: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Check a NOVA copy (layout, counts, every problem found); return its summary stamped with provenance
    (``nova validate --json``), also written to ``out``. ``n_problems`` > 0 means the copy has problems."""
    ds = load_nova(data, layout=layout, image_root=images, require_images=require_images, strict=False)  # type: ignore[arg-type]
    config = {"layout": layout, "images": str(images) if images else None, "require_images": require_images}
    payload = stamp(ds.summary(), provenance(command="nova validate", config=config, inputs=nova_data_inputs(ds)))
    if out is not None:
        atomic_write_json(out, payload)
    return payload


def run_nova_run(
    data: str,
    out: str | os.PathLike,
    *,
    task: str,
    setting: str = "image",
    llm_url: str | None = None,
    model: str | None = None,
    allow_remote: bool = False,
    model_path: str | os.PathLike | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    template: str | os.PathLike | None = None,
    box_format: str = "xyxy_norm1000",
    temperature: float = 0.0,
    seed: int = 0,
    max_tokens: int | None = None,
    repair: bool = True,
    limit: int | None = None,
    images: str | os.PathLike | None = None,
    allow_problems: bool = False,
    no_cache: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    workers: int = 1,
    rate_limit: float | None = None,
    executor: str = "local",
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Run the model the options name (``llm_url`` + ``model``, or ``model_path``: a VLM, or for the text
    setting either kind) over a NOVA copy for one task (``nova run``); prediction rows go to the run folder
    ``out`` (:func:`nova_run`). Returns the run summary stamped with the provenance of the run's manifest;
    ``counts["parse_failures"]`` counts replies written as empty predictions. ``workers`` images at once and
    ``rate_limit`` requests per second apply to an ``llm_url`` endpoint.

    ``executor="ray"`` (a ``model_path`` model; ``ray_address`` the cluster) runs the images still to do in
    fixed blocks on ``workers`` Ray actors, each loading its own copy of the model (one GPU each with a CUDA
    ``device``); the rows equal an in-process run's and the same run folder resumes either way. Every option is
    checked, and a missing Ray reported, before the data or any model loads."""
    from medlens.executors import check_item_options, make_executor
    from medlens.llm import ClientFactory, client_from_options, closing_client

    check_option(task, RUN_TASKS, name="task")
    check_option(setting, RUN_SETTINGS[task], name=f"setting (for task {task})")
    check_option(box_format, REQUEST_BOX_FORMATS, name="box-format")
    check_item_options(executor, ray_address, workers, rate_limit, endpoint=bool(llm_url))
    runner = (
        make_executor(executor, ray_address=ray_address, workers=workers, device=device) if executor == "ray" else None
    )
    tmpl = load_template(template, task, setting) if template is not None else None
    ds = load_nova(data, layout="auto", image_root=images, require_images=setting != "text", strict=not allow_problems)
    options = {  # image settings need a VLM; --setting text takes either kind of folder
        "llm_url": llm_url,
        "model": model,
        "model_path": model_path,
        "allow_remote": allow_remote,
        "vision": True if setting != "text" else "auto",
        "device": device,
        "dtype": dtype,
        "cache": not no_cache,
        "required": True,
        "rate_limit": rate_limit,
    }
    client = client_from_options(**options)  # here too: the run's configuration names the model it describes
    with closing_client(client):
        summary = nova_run(
            ds,
            client,
            out,
            task=task,
            setting=setting,
            template=tmpl,
            box_format=box_format,
            temperature=temperature,
            seed=seed,
            max_tokens=max_tokens,
            repair=repair,
            limit=limit,
            overwrite=overwrite,
            progress=progress,
            workers=1 if runner is not None else workers,
            executor=runner,
            client_factory=ClientFactory(**options) if runner is not None else None,
        )
    manifest = json.loads(Path(summary["manifest"]).read_text(encoding="utf-8"))
    return stamp(summary, manifest["provenance"])


def _tasks_in(path: Path) -> set[str]:
    """Tasks named in a predictions file (a cheap first pass; the real reader reports malformed rows)."""
    tasks = set()
    if not path.is_file():
        return tasks
    with path.open(encoding="utf-8", errors="replace") as fh:  # the real reader names undecodable bytes
        for line in fh:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict) and isinstance(obj.get("task"), str):
                tasks.add(obj["task"])
    return tasks


def run_nova_evaluate(
    data: str,
    predictions: str | os.PathLike,
    *,
    judge: str = "exact_synonym",
    compare_judge: str | None = None,
    synonyms: str | os.PathLike | None = None,
    embedding_threshold: float | None = None,
    llm_url: str | None = None,
    model: str | None = None,
    model_path: str | os.PathLike | None = None,
    votes: int = 3,
    allow_remote: bool = False,
    ap_mode: str = "voc11",
    no_gold: str = "skip",
    missing: str = "skip",
    bertscore_model: str = "minilm",
    meteor_wordnet: str | None = None,
    caption_mode: str = "coco-caption",
    images: str | os.PathLike | None = None,
    allow_problems: bool = False,
    no_cache: bool = False,
    details: bool = False,
    out: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Score the prediction rows in ``predictions`` on a NOVA copy (``nova evaluate``); return the result stamped
    with provenance, also written to ``out``. The options are the command's (``bertscore_model`` and
    ``meteor_wordnet`` take ``"none"`` to turn the metric off); see :func:`nova_evaluate` for the scores."""
    from medlens.metrics import JUDGES, JudgeCache

    predictions = Path(predictions)
    check_option(ap_mode, tuple(AP_MODES), name="ap-mode")
    check_option(missing, MISSING_RULES, name="missing")
    check_option(no_gold, ("skip", "score"), name="no-gold")
    check_option(caption_mode, ("coco-caption", "sacrebleu"), name="caption-mode")
    cache = None if no_cache else JudgeCache()
    uses_llm = "llm" in {JUDGES.resolve_name(n) for n in (judge, compare_judge) if n is not None}
    if not uses_llm and (llm_url is not None or model is not None or model_path is not None):
        raise InputError(
            "--llm-url, --model and --model-path configure the llm judge; add --judge llm or --compare-judge llm."
        )
    llm = {
        "llm_url": llm_url,
        "model": model,
        "model_path": model_path,
        "allow_remote": allow_remote,
        "votes": votes,
        "vote_cache": cache,
        "cache": not no_cache,
    }
    j = nova_judge(judge, synonyms, embedding_threshold, llm)
    cj = nova_judge(compare_judge, synonyms, embedding_threshold, llm)
    need_images = "localization" in _tasks_in(predictions)
    ds = load_nova(data, layout="auto", image_root=images, require_images=need_images, strict=not allow_problems)
    preds = read_nova_predictions(predictions, ds)
    bs = None if bertscore_model.lower() == "none" else bertscore_model
    wn: Any = None if meteor_wordnet is None else (False if meteor_wordnet.lower() == "none" else meteor_wordnet)
    result = nova_evaluate(
        ds,
        preds,
        judge=j,
        compare_judge=cj,
        judge_cache=cache,
        ap_mode=ap_mode,  # type: ignore[arg-type]
        no_gold=no_gold,  # type: ignore[arg-type]
        missing=missing,  # type: ignore[arg-type]
        caption_options={"bertscore_model": bs, "meteor_wordnet": wn},
        caption_mode=caption_mode,
        details=details,
    )
    if ds.problems:
        result["data"]["problems"] = [p.to_dict() for p in ds.problems]
    models = {"diagnosis_judge": result.get("diagnosis", {}).get("judge_id", j.judge_id)}
    if "caption" in result and bs is not None:
        models["bertscore"] = bs
    if cj is not None:
        models["compare_judge"] = cj.judge_id
    config = {
        "judge": j.judge_id,
        "compare_judge": cj.judge_id if cj is not None else None,
        "llm_endpoint": llm_url if uses_llm else None,
        "ap_mode": ap_mode,
        "no_gold": no_gold,
        "missing": missing,
        "bertscore_model": bs,
        "meteor_wordnet": meteor_wordnet,
        "caption_mode": caption_mode,
        "images": str(images) if images else None,
        "allow_problems": allow_problems,
        "details": details,
    }
    if uses_llm and model_path is not None:
        config["llm_model_path"] = str(model_path)
    inputs = {"predictions": predictions, **nova_data_inputs(ds)}
    payload = stamp(result, provenance(command="nova evaluate", config=config, inputs=inputs, models=models))
    if out is not None:
        atomic_write_json(out, payload)
    return payload
