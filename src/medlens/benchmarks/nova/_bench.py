"""The ``nova`` benchmark: evaluate a predictions file against your local copy of NOVA into a run folder.

``run(out_dir, data=..., predictions=...)`` loads the data (:func:`~medlens.benchmarks.nova.load_nova`), scores the
prediction rows (:func:`~medlens.benchmarks.nova.nova_evaluate`) and writes ``out_dir/metrics.json`` (with
``benchmark: "nova"``, provenance and the config hash) plus ``manifest.json``; ``report_section`` renders that
document in ``medlens report``. When the predictions come from ``medlens nova run``, the run's manifest next to
them (model, prompt template, parse failures) is summarised in the metrics too.

NOVA is the user's own data (CC BY-NC-SA 4.0, never shipped or downloaded), so this benchmark is not part of
``medlens demo``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medlens._provenance import config_hash, provenance, stamp
from medlens.benchmarks._spec import BenchmarkSpec
from medlens.benchmarks.nova._keys import SUMMARY_KEYS
from medlens.io import atomic_write_json, file_sha256, iter_jsonl, prepare_run_dir

log = logging.getLogger(__name__)

__all__ = ["SPEC", "report_section", "run"]


def _run_manifest(predictions: Path) -> dict[str, Any] | None:
    """What ``medlens nova run`` recorded next to ``predictions`` (model, template, counts), if it did."""
    path = predictions.parent / "manifest.json"
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    cfg = m.get("config") if isinstance(m, dict) else None
    if not isinstance(cfg, dict) or cfg.get("command") != "nova run" or m.get("predictions") != predictions.name:
        return None
    return {
        "manifest": str(path),
        "config_hash": m.get("config_hash"),
        "task": cfg.get("task"),
        "setting": cfg.get("setting"),
        "model": cfg.get("model"),
        "template": cfg.get("template"),
        "generation": cfg.get("generation"),
        "status": m.get("status"),
        "counts": m.get("counts"),
    }


def run(
    out_dir: str | Path,
    *,
    data: str | Path,
    predictions: str | Path,
    judge: Any = "exact_synonym",
    judge_options: Mapping[str, Any] | None = None,
    compare_judge: Any = None,
    ap_mode: str = "voc11",
    no_gold: str = "skip",
    missing: str = "skip",
    caption_options: Mapping[str, Any] | None = None,
    images: str | Path | None = None,
    allow_problems: bool = False,
    judge_cache: Any = True,
    overwrite: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate ``predictions`` on the NOVA copy at ``data`` and write ``out_dir/metrics.json``.

    Parameters
    ----------
    out_dir : path
        The benchmark folder (``medlens report --run PARENT`` finds ``PARENT/*/metrics.json``). A folder made
        with another configuration is refused unless ``overwrite``.
    data, predictions : path
        Your NOVA copy (see :func:`~medlens.benchmarks.nova.load_nova`) and a JSONL file of prediction rows
        (e.g. ``medlens nova run``'s ``predictions.jsonl``).
    judge, judge_options, compare_judge, ap_mode, no_gold, missing, caption_options
        As for :func:`~medlens.benchmarks.nova.nova_evaluate`; ``caption_options`` defaults to MiniLM BERTScore.
    images : path, optional
        Folder to look for the image files in first.
    allow_problems : bool
        Evaluate even when the data has content problems (they are listed in the metrics).
    judge_cache : bool, path or JudgeCache
        ``True`` (default): ``$MEDLENS_CACHE/judgements``; ``False``: none.
    overwrite : bool
    progress : bool
        Unused (evaluation is quick); accepted for the common runner signature.

    Returns
    -------
    dict
        The ``metrics.json`` document.
    """
    from medlens.benchmarks.nova._eval import nova_evaluate, read_nova_predictions
    from medlens.benchmarks.nova._loader import load_nova
    from medlens.metrics import JudgeCache, make_judge

    t0 = time.perf_counter()
    out = Path(out_dir)
    pred_path = Path(predictions)
    if not pred_path.is_file():
        from medlens._validation import InputError

        raise InputError(f"{pred_path}: no such predictions file; give a JSONL file of NOVA prediction rows.")
    j = make_judge(judge, **dict(judge_options or {}))
    cj = make_judge(compare_judge) if compare_judge is not None else None
    tasks = {obj.get("task") for _, obj in iter_jsonl(pred_path, what="predictions file") if isinstance(obj, dict)}
    ds = load_nova(data, image_root=images, require_images="localization" in tasks, strict=not allow_problems)
    config = {
        "benchmark": "nova",
        "predictions_sha256": file_sha256(pred_path),
        "data": {Path(f).name: file_sha256(f) for f in ds.files},
        "judge": j.judge_id,
        "compare_judge": cj.judge_id if cj is not None else None,
        "ap_mode": ap_mode,
        "no_gold": no_gold,
        "missing": missing,
        "caption_options": {k: str(v) for k, v in (caption_options or {}).items()},
    }
    prepare_run_dir(out, config, overwrite=overwrite)
    cache = None
    if judge_cache is True:
        cache = JudgeCache()
    elif judge_cache not in (False, None):
        cache = judge_cache if isinstance(judge_cache, JudgeCache) else JudgeCache(judge_cache)
    result = nova_evaluate(
        ds,
        read_nova_predictions(pred_path, ds),
        judge=j,
        compare_judge=cj,
        judge_cache=cache,
        ap_mode=ap_mode,  # type: ignore[arg-type]
        no_gold=no_gold,  # type: ignore[arg-type]
        missing=missing,  # type: ignore[arg-type]
        caption_options=caption_options,
    )
    if ds.problems:
        result["data"]["problems"] = [p.to_dict() for p in ds.problems]
    models = {"diagnosis_judge": j.judge_id}
    run_info = _run_manifest(pred_path)
    if run_info and isinstance(run_info.get("model"), dict):
        models["predictions_model"] = str(run_info["model"].get("model", ""))
    prov = provenance(
        command="benchmark nova",
        config=config,
        inputs={"predictions": pred_path, **{f"data:{Path(f).name}": Path(f) for f in ds.files}},
        models=models,
    )
    doc = stamp(
        {
            "benchmark": "nova",
            "config_hash": config_hash(config),
            "predictions": str(pred_path),
            "predictions_run": run_info,
            **result,
            "timing_s": {"total": round(time.perf_counter() - t0, 2)},
        },
        prov,
    )
    atomic_write_json(out / "metrics.json", doc)
    return doc


def summarize(doc: dict[str, Any]) -> dict[str, Any]:
    """Headline numbers of each evaluated task (the rows of the report's tables)."""
    return {task: {key: (doc.get(task) or {}).get(key) for key in SUMMARY_KEYS[task]} for task in doc.get("tasks", [])}


def summary_lines(doc: dict[str, Any]) -> list[str]:
    """Console lines: one per task with its headline numbers."""

    def shown(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = [f"nova: {doc.get('n_prediction_rows')} prediction rows from {doc.get('predictions')}"]
    for task, values in summarize(doc).items():
        lines.append(f"  {task}: " + ", ".join(f"{k} {shown(v)}" for k, v in values.items()))
    return lines


def report_section(metrics: dict[str, Any]) -> Any:
    """The report section of a ``nova`` evaluation."""
    from medlens.report import Section, table_html

    d = metrics.get("data", {})
    run = metrics.get("predictions_run") or {}
    who = (run.get("model") or {}).get("model")
    s = Section(
        "NOVA: anomaly localisation, captioning and diagnosis on rare brain-MRI findings",
        data=f"NOVA, your local copy {d.get('source')} ({d.get('n_images')} images of {d.get('n_cases')} cases)",
        model=f"{who} (predictions run by medlens nova run)"
        if who
        else f"the model behind the predictions file {metrics.get('predictions')} (not recorded in it)",
    )
    s.paragraph(
        f"{d.get('n_images')} images of {d.get('n_cases')} cases from the local copy {d.get('source')} "
        f"({d.get('layout')} layout); {metrics.get('n_prediction_rows')} prediction rows from "
        f"{metrics.get('predictions')}."
    )
    run = metrics.get("predictions_run")
    if run:
        model = run.get("model") or {}
        counts = run.get("counts") or {}
        s.paragraph(
            f"Predictions by {model.get('model')} ({model.get('kind')}), task {run.get('task')}, input setting "
            f"{run.get('setting')}, prompt {((run.get('template') or {}).get('name'))} "
            f"(sha256 {str((run.get('template') or {}).get('sha256'))[:12]}); {counts.get('done')} of "
            f"{counts.get('n_items')} images answered, {counts.get('parse_failures')} replies could not be parsed "
            "(scored as wrong answers; failed captions are not scored).",
            cls="note",
        )
    for task in metrics.get("tasks", []):
        r = metrics.get(task) or {}
        ceiling = task == "localization" and (r.get("human_ceiling") or {}).get("available")
        header = ["metric", "value", *(["human ceiling (rater vs rater)"] if ceiling else [])]
        rows = []
        for key in SUMMARY_KEYS[task]:
            row = [key, r.get(key)]
            if ceiling:
                row.append(r["human_ceiling"].get(key))
            rows.append(row)
        caption = f"{task}: {r.get('n_predicted')} predicted, {r.get('n_missing')} missing"
        if task == "localization":
            caption += f", protocol {r.get('protocol')}"
        if task == "diagnosis":
            caption += f", judge {r.get('judge_id') or r.get('judge')}"
        s.add(table_html(header, rows, caption=caption))
        for dev in r.get("deviations", []):
            s.paragraph(f"Protocol deviation: {dev.get('message')}.", cls="note")
        if task == "diagnosis" and r.get("analysis_only"):
            s.paragraph("This judge is for analysis only; its numbers are not comparable to NOVA's.", cls="warn")
        if task == "diagnosis" and "agreement" in r:
            a = r["agreement"]
            k = a.get("kappa")
            shown = f"{k:.3f}" if isinstance(k, float) and k == k else "undefined"
            s.paragraph(f"Cohen's kappa between {a.get('judge_a')} and {a.get('judge_b')}: {shown}.")
        if task == "caption" and r.get("n_empty"):
            s.paragraph(f"{r['n_empty']} empty or failed caption(s) are counted and not scored.", cls="note")
    return s


SPEC = BenchmarkSpec(
    name="nova",
    description="NOVA (your local copy): score a predictions file for localisation, captioning and diagnosis",
    run=run,
    report_section=report_section,
    extras=("io", "vision"),
    summarize=summarize,
    summary_lines=summary_lines,
)
