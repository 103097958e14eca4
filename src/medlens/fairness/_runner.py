"""``medlens fair run``: a model answers a fairness benchmark item by item (resumable), then every answer is scored.

Items come from a FairVLMed folder (report generation: the model writes a report for each SLO fundus image;
the reference is the GPT-4 summary of the note, or the note) or from an items JSONL (``id``, ``reference``,
``question`` for VQA, optional ``image`` path relative to the file, and attribute fields), such as the one
``medlens fair vqa`` writes. The model is any :mod:`medlens.llm` client (an OpenAI-compatible server or local
weights), at temperature 0 by default.

The run folder (:class:`~medlens.io.RunFolder`) holds ``manifest.json``, ``predictions.jsonl`` (one row per
item, flushed as it is answered: a killed run resumes where it stopped; a request the server refuses, e.g. too
long, is recorded as an empty answer with its error and scores 0 on every metric, counted in ``n_empty``), then ``scores.csv`` (the per-sample text metrics of all
items in one pass, with the attributes: the input of ``medlens fair report``) and ``summary.json``.

The items still to do run in this process (``workers`` requests in flight, for an endpoint) or, with an executor
(``--executor ray`` and a ``--model-path`` model), as fixed blocks on workers that each load their own copy of the
model (:mod:`medlens.fairness._run_task`); either way this thread alone appends the rows, made by the same
:func:`answer_row`, so resume and the rows are the same (a run started in one resumes on the other).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from medlens._progress import progress_bar
from medlens._provenance import provenance, stamp
from medlens._validation import InputError, check_option, shorten
from medlens.executors import (
    check_executor_options,
    check_fan_out_options,
    check_item_options,
    fan_out,
    item_block_size,
    make_executor,
    plan_blocks,
    stream_records,
)
from medlens.fairness._fairvlmed import FAIRVLMED_ATTRIBUTES, load_fairvlmed, load_slo_image
from medlens.fairness._judges import _client
from medlens.fairness._run import SCORE_METRICS, write_scores_csv
from medlens.fairness._run_task import FairTask, item_payload
from medlens.io import RunFolder, atomic_write_json, file_sha256, iter_jsonl

__all__ = ["RUN_TASKS", "answer_row", "read_items", "run_fair_run"]

log = logging.getLogger(__name__)

RUN_TASKS = ("vqa", "report")
PREDICTIONS = "predictions.jsonl"
SCORES = "scores.csv"
SUMMARY = "summary.json"
SYSTEM = "You are an ophthalmologist reading a scanning laser ophthalmoscopy (SLO) fundus image."
REPORT_PROMPT = (
    "Write a concise clinical report for this SLO fundus image: the findings (optic disc, cup-to-disc ratio, rim, "
    "retina) and the assessment (glaucoma or not)."
)
VQA_PROMPT = "{question}\nAnswer briefly."
_ITEM_KEYS = {"id", "task", "question", "reference", "image", "record", "self_check"}
ITEM_HTTP_FAILURES = (400, 413, 422)


def read_items(path: str | os.PathLike, task: str) -> list[dict[str, Any]]:
    """Items of an items JSONL (checked row by row); ``image`` paths resolved against the file's folder."""
    p = Path(path)
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for lineno, obj in iter_jsonl(p, what="items file"):
        where = f"{p}: line {lineno}"
        if not isinstance(obj, dict):
            raise InputError(f"{where} must be a JSON object; got {type(obj).__name__}.")
        sid = str(obj.get("id") or "").strip()
        if not sid:
            raise InputError(f"{where} has no 'id'.")
        if sid in seen:
            raise InputError(f"{where}: id {sid!r} appears more than once.")
        seen.add(sid)
        ref = obj.get("reference")
        if not isinstance(ref, str) or not ref.strip():
            raise InputError(f"{where} (id {sid!r}): field 'reference' must be a non-empty text; got {shorten(ref)}.")
        q = obj.get("question")
        if task == "vqa" and (not isinstance(q, str) or not q.strip()):
            raise InputError(f"{where} (id {sid!r}): field 'question' must be a non-empty text for --task vqa.")
        if obj.get("task") not in (None, task):
            raise InputError(f"{where} (id {sid!r}) is a {obj['task']!r} item; this run is --task {task}.")
        img = obj.get("image")
        if img is not None and not isinstance(img, str):
            raise InputError(f"{where} (id {sid!r}): field 'image' must be a path or null.")
        image = None if not img else (p.parent / img if not Path(img).is_absolute() else Path(img))
        attrs = {
            k: v
            for k, v in obj.items()
            if k not in _ITEM_KEYS and (v is None or isinstance(v, str | int | float | bool))
        }
        items.append(
            {"id": sid, "question": q if task == "vqa" else None, "reference": ref, "image": image, "attributes": attrs}
        )
    if not items:
        raise InputError(f"items file {p} has no rows.")
    return items


def _items(data: Path, task: str, split: str, reference: str, unknown: str) -> tuple[list[dict], dict, dict]:
    """(items, data counts, data hashes) of a FairVLMed folder or an items JSONL."""
    if data.is_dir():
        if task == "vqa":
            raise InputError(
                f"{data} is a FairVLMed folder: it gives report items. For VQA generate the questions first "
                "(medlens fair vqa --data DIR --out Q.jsonl ...), then run --task vqa --data Q.jsonl."
            )
        ds = load_fairvlmed(data, split=split, unknown=unknown)
        items = [
            {"id": r.id, "question": None, "reference": r.reference(reference), "image": r.image_path,
             "attributes": dict(r.attributes)}
            for r in ds.records
        ]  # fmt: skip
        return items, ds.counts, {f.name: file_sha256(f) for f in ds.files}
    if not data.is_file():
        raise InputError(f"--data {data} does not exist; give a FairVLMed folder or an items JSONL file.")
    items = read_items(data, task)
    return items, {"records": len(items)}, {data.name: file_sha256(data)}


def _describe(client: Any) -> dict[str, Any]:
    d = getattr(client, "describe", None)
    return d() if callable(d) else {"kind": getattr(client, "kind", "?"), "model": getattr(client, "model", "?")}


def answer_row(
    client: Any, item: Mapping[str, Any], *, task: str, images: bool, generation: Mapping[str, Any]
) -> dict[str, Any]:
    """The prediction row of one item (``id``, ``question``, ``image``): ``id``, ``task``, ``prediction``,
    ``cached``, ``finish_reason``, ``error``. A request the model refuses for this item alone (HTTP 400, 413, 422,
    or a prompt longer than a local model's context) gives an empty prediction with its error; any other endpoint
    error raises. The one function every executor runs."""
    from medlens.llm import LLMContextLengthError, LLMHTTPError

    text = REPORT_PROMPT if task == "report" else VQA_PROMPT.format(question=item["question"].strip())
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]
    imgs = [load_slo_image(item["image"])] if images else None
    row: dict[str, Any] = {"id": item["id"], "task": task}
    try:
        resp = client.chat(msgs, images=imgs, **generation)
        row.update(prediction=resp.text.strip(), cached=resp.cached, finish_reason=resp.finish_reason, error=None)
    except (LLMHTTPError, LLMContextLengthError) as exc:
        if isinstance(exc, LLMHTTPError) and exc.status not in ITEM_HTTP_FAILURES:
            raise
        row.update(prediction="", cached=False, finish_reason=None, error=str(exc)[:300])
    return row


def run_fair_run(
    data: str | os.PathLike,
    client: Any = None,
    *,
    llm_url: str | None = None,
    model: str | None = None,
    model_path: str | os.PathLike | None = None,
    allow_remote: bool = False,
    device: str = "cpu",
    dtype: str = "float32",
    cache: Any = True,
    task: str,
    out: str | os.PathLike,
    split: str = "test",
    reference: str = "summary",
    unknown: str = "drop",
    images: bool = True,
    metrics: list[str] | tuple[str, ...] = ("bleu4", "rouge_l", "cider"),
    caption_mode: str = "coco-caption",
    temperature: float = 0.0,
    seed: int = 0,
    max_tokens: int | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
    workers: int = 1,
    rate_limit: float | None = None,
    executor: Any = "local",
    ray_address: str | None = None,
    client_factory: Callable[[], Any] | None = None,
    block_size: int | None = None,
) -> dict[str, Any]:
    """Answer every item with ``client`` (appending to ``out/predictions.jsonl``; resumes), then score them all.

    Returns the stamped summary (also written to ``out/summary.json``): counts (done, answered now, from an
    earlier run, refused requests, cached replies), the mean and corpus value of each metric, and the paths.
    ``limit`` answers only the first items (a later call with a larger limit continues the same run).
    ``workers`` items at once and ``rate_limit`` requests per second apply to an ``llm_url`` endpoint
    (:func:`~medlens.executors.fan_out`; neither enters the configuration).

    ``executor="ray"`` (a ``model_path`` model; ``ray_address`` the cluster) answers the items still to do in
    fixed blocks on ``workers`` Ray actors, each loading its own copy of the model (one GPU each with a CUDA
    ``device``); ``executor`` may also be an executor object (:func:`~medlens.executors.make_executor`), whose
    workers build their client with ``client_factory`` (default: a :class:`~medlens.llm.ClientFactory` of the
    LLM options), ``block_size`` items per block (default: enough blocks for every worker, at most
    :data:`~medlens.executors.ITEM_BLOCK` each). This thread appends each block's rows as it finishes; they equal
    an in-process run's, the executor does not enter the configuration (a run resumes on another) and is
    reported as ``executor`` in the summary and the manifest. Every option is checked, and a missing Ray
    reported, before the data or any model loads.
    """
    check_option(task, RUN_TASKS, name="task")
    check_option(reference, ("summary", "note"), name="reference")
    metrics = [m.strip() for m in metrics if m.strip()]
    if not metrics:
        raise InputError(f"give at least one metric among {', '.join(SCORE_METRICS)}.")
    for m in metrics:
        check_option(m, SCORE_METRICS, name="metrics")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"limit must be a positive int; got {limit!r}.")
    from medlens.llm import normalize_params
    from medlens.metrics import CAPTION_MODES

    check_option(caption_mode, CAPTION_MODES, name="caption-mode")
    check_option(split, ("train", "val", "test"), name="split")
    check_option(unknown, ("drop", "keep"), name="unknown")
    runner = _runner(executor, ray_address, workers, rate_limit, device=device, block_size=block_size,
                     endpoint=bool(llm_url) if client is None else None)  # fmt: skip
    if runner is not None and runner.name != "local" and client_factory is None and client is not None:
        raise InputError(
            f"the {runner.name} executor loads the model in each worker; give client_factory (e.g. "
            "medlens.llm.ClientFactory(model_path=...)) or the LLM options instead of a client."
        )
    params = normalize_params(temperature, seed, max_tokens, None)
    generation = {k: params[k] for k in ("temperature", "seed", "max_tokens")}
    items, data_counts, hashes = _items(Path(data), task, split, reference, unknown)
    items = items[:limit] if limit else items
    if images:
        lost = next((it for it in items if it["image"] is None or not Path(it["image"]).is_file()), None)
        if lost is not None:
            raise InputError(
                f"item {lost['id']!r} has no image file ({lost['image'] or 'none given'}); run text-only with "
                "images=False (--text-only), or supply the images."
            )
    from medlens.llm import ClientFactory, closing_client

    owned = client is None
    if runner is not None and runner.name != "local" and client_factory is None:
        client_factory = ClientFactory(
            llm_url=llm_url, model=model, model_path=model_path, allow_remote=allow_remote, vision=images,
            device=device, dtype=dtype, cache=cache, required=True, rate_limit=rate_limit,
        )  # fmt: skip
    # the model loads here too, last (with Ray as well: the run's configuration names the model it describes)
    client = _client(
        client,
        llm_url,
        model,
        model_path,
        allow_remote,
        device,
        cache,
        vision=images,
        dtype=dtype,
        rate_limit=rate_limit,
    )
    with closing_client(client if owned else None):
        return _answer_and_score(
            data, client, items, data_counts, hashes, task=task, out=out, split=split, reference=reference,
            unknown=unknown, images=images, metrics=metrics, caption_mode=caption_mode, generation=generation,
            seed=seed, overwrite=overwrite, progress=progress, workers=1 if runner is not None else workers,
            executor=runner, client_factory=client_factory, block_size=block_size,
        )  # fmt: skip


def _runner(
    executor: Any, ray_address: str | None, workers: int, rate_limit: float | None, *, device: str,
    block_size: int | None, endpoint: bool | None,
) -> Any:  # fmt: skip
    """The executor a run uses (``None``: threads in this process), its options checked before anything loads.

    A name (``"local"``, ``"ray"``) goes with the CLI's options (:func:`~medlens.executors.check_item_options`;
    ``endpoint=None``: the caller gave its own client, whose requests may overlap in this process whatever it is);
    an executor object runs every item in blocks."""
    if isinstance(executor, str):
        if executor == "ray" or endpoint is not None:
            check_item_options(executor, ray_address, workers, rate_limit, endpoint=bool(endpoint))
        else:
            check_executor_options(executor, ray_address)
            check_fan_out_options(workers, rate_limit)
        if executor != "ray":
            return None
        item_block_size(0, 1, block_size)  # checked now
        return make_executor(executor, ray_address=ray_address, workers=workers, device=device)
    if ray_address is not None:
        raise InputError("ray_address goes with executor='ray'; an executor object is already placed.")
    if workers != 1:
        raise InputError(f"workers (threads in this process) and an executor exclude each other; got {workers}.")
    if rate_limit is not None and getattr(executor, "name", None) != "local":
        raise InputError("rate_limit spaces the requests sent to llm_url; an executor's workers send none.")
    item_block_size(0, 1, block_size)  # checked now
    return executor


def _answer_and_score(
    data: Any, client: Any, items: list[dict], data_counts: dict, hashes: dict, *, task: str, out: Any, split: str,
    reference: str, unknown: str, images: bool, metrics: list[str], caption_mode: str, generation: dict, seed: int,
    overwrite: bool, progress: bool, workers: int = 1, executor: Any = None,
    client_factory: Callable[[], Any] | None = None, block_size: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The run proper (see :func:`run_fair_run`)."""
    info = executor.info() if executor is not None else {"name": "local"}
    prompts = {"system": SYSTEM, "report": REPORT_PROMPT, "vqa": VQA_PROMPT}
    config = {
        "command": "fair run",
        "task": task,
        "model": _describe(client),
        "data": hashes,
        "split": split if Path(data).is_dir() else None,
        "reference": reference if Path(data).is_dir() else None,
        "unknown": unknown if Path(data).is_dir() else None,
        "images": images,
        "generation": generation,
        "prompts_sha256": hashlib.sha256(json.dumps(prompts, sort_keys=True).encode()).hexdigest(),
    }
    prov = provenance(command="fair run", config=config, seed=seed, inputs={"data": Path(data)} if Path(data).is_file() else {},
                      models={"model": str(config["model"].get("model", ""))})  # fmt: skip
    counts = {"n_items": len(items), "done": 0, "answered": 0, "resumed": 0, "request_failures": 0, "cached": 0}
    with RunFolder(out, config, overwrite=overwrite, provenance=prov, outputs=(PREDICTIONS, SCORES, SUMMARY)) as run:
        answers = run.log(PREDICTIONS, key="id")
        done = {r["id"]: r for r in answers.records()}
        counts["resumed"] = sum(1 for it in items if it["id"] in done)
        todo = [it for it in items if it["id"] not in done]
        run.write_manifest(status="running", counts=counts, executor=info)
        status = "interrupted"
        try:
            finished = _rows(client, todo, task=task, images=images, generation=generation, workers=workers,
                             executor=executor, client_factory=client_factory, block_size=block_size)  # fmt: skip
            with (
                progress_bar(len(todo), progress and bool(todo), f"fair run {task}", transient=True) as advance,
                contextlib.closing(finished),
            ):
                for row in finished:
                    counts["cached"] += bool(row["cached"])
                    counts["request_failures"] += row["error"] is not None
                    answers.append(row)
                    done[row["id"]] = row
                    counts["answered"] += 1
                    advance(1)
            status = "answered"
        finally:
            counts["done"] = sum(1 for it in items if it["id"] in done)
            run.write_manifest(status=status, counts=counts, executor=info)
        ids = [it["id"] for it in items]
        counts["request_failures"] = sum(1 for i in ids if done[i].get("error"))
        fields = list(dict.fromkeys(k for it in items for k in it["attributes"]))
        clash = set(SCORE_METRICS) & set(fields)
        if clash:
            raise InputError(f"items carry a field named like a metric ({sorted(clash)[0]!r}); rename it.")
        rows = {it["id"]: it["attributes"] for it in items}
        part = write_scores_csv(
            ids, [done[i]["prediction"] for i in ids], [it["reference"] for it in items], rows, fields, metrics,
            caption_mode, run / SCORES, empty_zero=True,
        )  # fmt: skip
        doc = {
            "out_dir": str(run.path),
            "task": task,
            "model": config["model"],
            "executor": info,
            "n": len(ids),
            "metrics": metrics,
            "attributes": fields,
            "caption_mode": caption_mode,
            "counts": counts,
            "data_counts": data_counts,
            **part,
            "predictions": str(run / PREDICTIONS),
            "scores": str(run / SCORES),
            "next": f"medlens fair report --scores {run / SCORES} --metric {metrics[0]} --attributes "
            f"{','.join(f for f in fields if f in FAIRVLMED_ATTRIBUTES) or ','.join(fields[:4]) or 'ATTR'}",
        }
        doc = stamp(doc, prov)
        atomic_write_json(run / SUMMARY, doc)
        run.write_manifest(status="complete", counts=counts, executor=info)
    return doc


def _rows(
    client: Any, todo: list[dict[str, Any]], *, task: str, images: bool, generation: Mapping[str, Any], workers: int,
    executor: Any, client_factory: Callable[[], Any] | None, block_size: int | None,
) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Each finished item's row: from threads in this process, or block by block from the executor."""
    if executor is None:
        for _it, row in fan_out(
            todo, lambda it: answer_row(client, it, task=task, images=images, generation=generation), workers=workers
        ):
            yield row
        return
    local = executor.name == "local"
    item_task = FairTask(
        client_factory, task=task, images=images, generation=generation, client=client if local else None
    )
    payloads = [item_payload(it, images) for it in todo]
    size = item_block_size(len(todo), executor.info().get("workers", 1), block_size)
    for idx, rows in stream_records(executor, item_task, payloads, plan_blocks(len(todo), block_size=size)):
        for i, row in zip(idx, rows, strict=True):
            if not isinstance(row, dict) or row.get("id") != todo[int(i)]["id"]:
                raise RuntimeError(
                    f"the {executor.name} executor returned a row for another item than {todo[int(i)]['id']!r}."
                )
            yield row
