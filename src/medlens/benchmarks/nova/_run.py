"""``medlens nova run``: run any chat model (a VLM, or an LLM for the text setting) over NOVA into prediction rows.

Output
------
``DIR/predictions.jsonl`` holds one JSON object per image, appended and flushed as each answer arrives, in the
row format :func:`~medlens.benchmarks.nova.read_nova_predictions` reads (``medlens nova evaluate``):

- every row: ``filename``, ``task``, ``setting``, ``raw`` (the model's last reply), ``parse_error`` (``null`` or
  why the reply could not be used), ``repaired`` (whether the one JSON repair request was made), ``finish_reason``
  and ``cached`` (answered from the response cache); ``raw_first`` when a repair was made; ``warnings`` when
  part of a usable answer was dropped;
- localization: ``boxes`` ([[x1, y1, x2, y2], ...] in the requested frame), ``scores`` (one per box, or
  ``null`` when the model gave none or a wrong number) and ``box_format`` (``xyxy_norm1000`` or ``xyxy_pixel``);
- caption: ``caption`` (the reply without a leading ``<think>`` block; ``null`` when empty);
- diagnosis: ``diagnoses`` (primary first, then the differentials; duplicates dropped, at most 5).

A reply that cannot be used is a *parse failure*: never fatal, counted in the manifest, and written with an
empty prediction and its ``parse_error``. ``nova evaluate`` then scores it as a wrong answer: a localisation
row with ``boxes: []`` has no boxes (AP 0 on an image with gold boxes), a diagnosis row with ``diagnoses: []``
is a miss at top-1 and top-5, and a caption row with ``caption: null`` is counted as ``n_empty`` and left out
of the caption metrics (they have no defined value for a missing text).

A request the model refuses for this item alone (HTTP 400, 413 or 422 from an endpoint, e.g. a prompt longer
than its context; :class:`~medlens.llm.LLMContextLengthError` from a local model) is a *request failure*:
written like a parse failure with ``request_failed: true`` and ``parse_error: "request failed: ..."``, counted
as ``request_failures``, and the run goes on. Other endpoint errors stop the run (see Resume).

``DIR/manifest.json`` (written atomically after every item) holds the configuration and its hash (task,
setting, model and endpoint — never an API key —, prompt template and its SHA-256, box frame, generation
parameters, the data files' SHA-256), provenance (medlens version), the counts (``n_items``, ``done``,
``parse_failures``, ``repaired``, ``cached``) and ``status`` (``running``, ``complete`` or ``interrupted``).

Resume
------
``DIR`` is a :class:`~medlens.io.RunFolder`. Re-running into the same ``DIR`` skips the file names already in
``predictions.jsonl`` (a half-written last line from a killed process is dropped). A folder made with another
configuration is refused (exit 2) unless ``overwrite=True`` (``--overwrite``), which discards the predictions and
starts again; a second run into a folder that a running one holds is refused (exit 2, naming its PID). An
endpoint failure (after the client's retries)
stops the run with what was done so far kept; rerun the same command to resume. With the response cache on
(the default), answers already obtained cost nothing when asked again. The images may run on an executor
(``--executor ray``: :mod:`medlens.benchmarks.nova._run_task`), whose rows this process appends block by block:
a run resumes on either executor.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medlens._progress import progress_bar
from medlens._provenance import provenance
from medlens._validation import InputError, check_option
from medlens.benchmarks.nova._prompts import (
    N_DIAGNOSES,
    PROMPTS_VERSION,
    REQUEST_BOX_FORMATS,
    RUN_SETTINGS,
    RUN_TASKS,
    PromptTemplate,
    builtin_template,
    prompt_values,
)
from medlens.benchmarks.nova._run_task import NovaTask, image_payload
from medlens.executors import check_fan_out_options, fan_out, item_block_size, plan_blocks, stream_records
from medlens.io import RunFolder, RunLog, file_sha256
from medlens.llm import LLMContextLengthError, LLMHTTPError

if TYPE_CHECKING:  # pragma: no cover
    from medlens.benchmarks.nova._records import NovaDataset, NovaImage
    from medlens.llm import ChatClient, JSONAnswer

__all__ = ["BOX_SCHEMA", "DIAGNOSIS_SCHEMA", "nova_run", "parse_caption", "parse_diagnosis", "parse_localization"]

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.jsonl"
ITEM_HTTP_FAILURES = (400, 413, 422)
"""HTTP statuses that fail one item (the server refused this request, e.g. too long) rather than the run."""

_BOX = {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}}
BOX_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "type": "object",
            "required": ["boxes"],
            "properties": {
                "boxes": {"type": "array", "items": _BOX},
                "scores": {"type": ["array", "null"], "items": {"type": "number"}},
            },
        },
        {"type": "array", "items": _BOX},
    ]
}
"""What a localisation reply must hold: ``{"boxes": [...], "scores": [...]}`` (or a bare list of boxes)."""
DIAGNOSIS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["primary"],
    "properties": {
        "primary": {"type": "string", "minLength": 1},
        "differentials": {"type": ["array", "null"], "items": {"type": "string"}},
    },
}
"""What a diagnosis reply must hold: ``{"primary": str, "differentials": [str, ...]}``."""

_THINK = re.compile(r"^\s*<think>.*?</think>\s*", re.DOTALL | re.IGNORECASE)


def _no_prediction(task: str) -> dict[str, Any]:
    """The prediction fields of a row whose reply could not be used (``nova evaluate`` scores them as a miss)."""
    if task == "localization":
        return {"boxes": [], "scores": None}
    return {"diagnoses": []} if task == "diagnosis" else {"caption": None}


# ================================================================================================ parsing
def parse_localization(value: Any) -> tuple[dict[str, Any], list[str], str | None]:
    """(fields, warnings, error) from a reply that matched :data:`BOX_SCHEMA`.

    Boxes must be finite with ``x1 <= x2`` and ``y1 <= y2`` (anything else is a parse failure: the frame the
    model used is then unknown); scores of the wrong length are dropped with a warning.

    >>> parse_localization({"boxes": [[1, 2, 3, 4]], "scores": [0.9]})
    ({'boxes': [[1.0, 2.0, 3.0, 4.0]], 'scores': [0.9]}, [], None)
    >>> parse_localization([[5, 5, 1, 1]])[2]
    'box 0 [5, 5, 1, 1] has x1 > x2 or y1 > y2'
    """
    boxes_in = value if isinstance(value, list) else value.get("boxes") or []
    scores_in = None if isinstance(value, list) else value.get("scores")
    warnings: list[str] = []
    boxes = []
    for i, b in enumerate(boxes_in):
        f = [float(v) for v in b]
        if not all(v == v and abs(v) != float("inf") for v in f):
            return _no_prediction("localization"), warnings, f"box {i} {b!r} has a non-finite coordinate"
        if f[2] < f[0] or f[3] < f[1]:
            return _no_prediction("localization"), warnings, f"box {i} {b!r} has x1 > x2 or y1 > y2"
        boxes.append(f)
    scores = None
    if scores_in is not None:
        if len(scores_in) != len(boxes):
            warnings.append(f"scores ignored: {len(scores_in)} score(s) for {len(boxes)} box(es)")
        elif not all(s == s and abs(s) != float("inf") for s in scores_in):
            warnings.append("scores ignored: a score is not finite")
        else:
            scores = [float(s) for s in scores_in]
    return {"boxes": boxes, "scores": scores}, warnings, None


def parse_diagnosis(value: Mapping[str, Any], n: int = N_DIAGNOSES) -> tuple[dict[str, Any], list[str], str | None]:
    """(fields, warnings, error) from a reply that matched :data:`DIAGNOSIS_SCHEMA`: primary first, then the
    differentials, blanks and repeats (case-insensitive) dropped, at most ``n`` names.

    >>> parse_diagnosis({"primary": "Glioma", "differentials": ["glioma", " Abscess ", ""]})
    ({'diagnoses': ['Glioma', 'Abscess']}, ['dropped 2 blank or repeated name(s)'], None)
    """
    names = [value["primary"], *(value.get("differentials") or [])]
    out: list[str] = []
    seen: set[str] = set()
    for name in names:
        key = " ".join(name.split()).lower()
        if key and key not in seen:
            seen.add(key)
            out.append(" ".join(name.split()))
    warnings = []
    if len(out) < len(names):
        warnings.append(f"dropped {len(names) - len(out)} blank or repeated name(s)")
    if len(out) > n:
        warnings.append(f"kept the first {n} of {len(out)} names")
        out = out[:n]
    if not out:
        return _no_prediction("diagnosis"), warnings, "no diagnosis name in the reply"
    return {"diagnoses": out}, warnings, None


def parse_caption(text: str) -> tuple[dict[str, Any], list[str], str | None]:
    """(fields, warnings, error) from a caption reply: a leading ``<think>...</think>`` block and surrounding
    whitespace are removed; an empty caption is a parse failure.

    >>> parse_caption("<think>hmm</think> Axial FLAIR shows a lesion. ")
    ({'caption': 'Axial FLAIR shows a lesion.'}, [], None)
    """
    low = text.lower().lstrip()
    if low.startswith("<think>") and "</think>" not in low:
        return _no_prediction("caption"), [], "the reply stops inside its <think> block (no caption)"
    cap = _THINK.sub("", text).strip()
    if not cap:
        return _no_prediction("caption"), [], "empty caption"
    return {"caption": cap}, [], None


# ================================================================================================= runner
def _image_of(im: NovaImage) -> Any:
    return im.image_bytes if im.image_bytes is not None else im.image_path


def _check_images(items: list[NovaImage]) -> None:
    missing = [im for im in items if (im.image_bytes is None and im.image_path is None) or im.image_size is None]
    if missing:
        names = ", ".join(repr(im.filename) for im in missing[:3])
        raise InputError(
            f"{len(missing)} of {len(items)} image(s) have no readable image file in this NOVA copy (e.g. {names}); "
            "an image setting needs them. Give the images (--images FOLDER; see `medlens nova validate`) or use "
            "--setting text for diagnosis."
        )


def _executor_info(executor: Any) -> dict[str, Any]:
    """What ran the items (``runner.info()``; in this process without an executor)."""
    return executor.info() if executor is not None else {"name": "local"}


def _describe_client(client: ChatClient) -> dict[str, Any]:
    describe = getattr(client, "describe", None)
    d = dict(describe()) if callable(describe) else {"kind": client.kind, "model": client.model}
    d.pop("recording_to", None)  # where a fixture is recorded does not change the answers
    return d


def _answer(
    client: ChatClient,
    template: PromptTemplate,
    *,
    caption: str,
    history: str,
    size: tuple[int, int] | None,
    image: Any,
    box_format: str,
    generation: Mapping[str, Any],
    repair: bool,
) -> dict[str, Any]:
    from medlens.llm import chat_json

    values = prompt_values(template, history=history, caption=caption, size=size, box_format=box_format)
    messages = template.render(values)
    images = [image] if template.setting != "text" else None
    task = template.task
    if task == "caption":
        resp = client.chat(messages, images=images, **generation)
        fields, warnings, error = parse_caption(resp.text)
        row: dict[str, Any] = {**fields, "raw": resp.text, "repaired": False}
        responses = [resp]
    else:
        schema = BOX_SCHEMA if task == "localization" else DIAGNOSIS_SCHEMA
        ans: JSONAnswer = chat_json(client, messages, schema, repair=repair, images=images, **generation)
        responses = list(ans.responses)
        if ans.ok:
            parse = parse_localization if task == "localization" else parse_diagnosis
            fields, warnings, error = parse(ans.value)
        else:
            fields = _no_prediction(task)
            warnings, error = [], ans.error
        row = {**fields, "raw": ans.text, "repaired": ans.repaired}
        if ans.repaired:
            row["raw_first"] = ans.responses[0].text
    if task == "localization":
        row["box_format"] = box_format
    last = responses[-1]
    if last.finish_reason == "length":
        warnings = [*warnings, "the reply was cut off at max_tokens"]
    row.update(
        parse_error=error,
        finish_reason=last.finish_reason,
        cached=all(r.cached for r in responses),
    )
    if warnings:
        row["warnings"] = warnings
    return row


def _request_failure(task: str, box_format: str, exc: Exception) -> dict[str, Any]:
    """The row of an item whose request the model refused (e.g. its prompt does not fit the context)."""
    fields = _no_prediction(task)
    status = f"HTTP {exc.status}: " if isinstance(exc, LLMHTTPError) else ""
    server = getattr(exc, "server_message", "") or str(exc)
    row = {**fields, "raw": "", "repaired": False, "request_failed": True}
    if task == "localization":
        row["box_format"] = box_format
    return {**row, "parse_error": f"request failed: {status}{server}", "finish_reason": None, "cached": False}


def prediction_row(
    client: ChatClient,
    template: PromptTemplate,
    *,
    filename: str,
    caption: str,
    history: str,
    size: tuple[int, int] | None,
    image: Any,
    box_format: str,
    generation: Mapping[str, Any],
    repair: bool,
) -> dict[str, Any]:
    """The prediction row of one image (see the module notes); a request the model refuses for this image alone
    gives a request-failure row, any other endpoint error raises. The one function every executor runs."""
    try:
        answer = _answer(
            client, template, caption=caption, history=history, size=size, image=image, box_format=box_format,
            generation=generation, repair=repair,
        )  # fmt: skip
    except (LLMHTTPError, LLMContextLengthError) as exc:
        if isinstance(exc, LLMHTTPError) and exc.status not in ITEM_HTTP_FAILURES:
            raise
        answer = _request_failure(template.task, box_format, exc)
    return {"filename": filename, "task": template.task, "setting": template.setting, **answer}


def nova_run(
    dataset: NovaDataset,
    client: ChatClient,
    out_dir: str | Path,
    *,
    task: str,
    setting: str = "image",
    template: PromptTemplate | None = None,
    box_format: str = "xyxy_norm1000",
    temperature: float = 0.0,
    seed: int | None = 0,
    max_tokens: int | None = None,
    repair: bool = True,
    limit: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
    workers: int = 1,
    executor: Any = None,
    client_factory: Callable[[], ChatClient] | None = None,
    block_size: int | None = None,
) -> dict[str, Any]:
    """Ask ``client`` every image of ``dataset`` for one task; append prediction rows to ``out_dir``.

    Parameters
    ----------
    dataset : NovaDataset
        From :func:`~medlens.benchmarks.nova.load_nova` (image settings need the image files).
    client : ChatClient
        An :class:`~medlens.llm.OpenAIClient` (vision endpoint), a
        :class:`~medlens.llm.TransformersVLMClient`, a :class:`~medlens.llm.TransformersClient` (text setting)
        or any object with ``kind``, ``model`` and ``chat``.
    out_dir : path
        The run folder (``predictions.jsonl`` + ``manifest.json``); see the module notes for resume rules.
    task : {"localization", "caption", "diagnosis"}
    setting : {"image", "image+history", "text"}
        ``text`` (clinical history + radiologist caption, no image) for diagnosis only.
    template : PromptTemplate, optional
        Default: the built-in template of (task, setting) (:mod:`medlens.benchmarks.nova._prompts`).
    box_format : {"xyxy_norm1000", "xyxy_pixel"}
        The frame localisation boxes are requested (and recorded) in.
    temperature, seed, max_tokens
        Generation parameters (greedy by default).
    repair : bool
        One repair request when a JSON reply (localisation, diagnosis) is unusable.
    limit : int, optional
        Only the first ``limit`` images (in data order); a later run with a larger limit continues.
    overwrite : bool
        Discard a run folder made with another configuration instead of refusing it.
    progress : bool
        Show a progress bar.
    workers : int
        Images whose requests are in flight at once (:func:`~medlens.executors.fan_out`; for an endpoint). Rows
        are the same whatever the value; they are appended in the order requests finish. Not part of the
        configuration, so a run may be resumed with another value.
    executor : LocalExecutor or RayExecutor, optional
        Run the images still to do as fixed blocks of ``block_size`` on this executor
        (:func:`~medlens.executors.make_executor`; ``--executor ray``: Ray actors, each with its own copy of the
        model built by ``client_factory``, e.g. :class:`~medlens.llm.ClientFactory`). Each block's rows come back
        as it finishes and this thread alone appends them, so resume works as without an executor (rows follow
        block completion). The rows equal those of an in-process run; the executor is not part of the
        configuration (a run may be resumed on another) and is reported as ``executor`` in the summary and the
        manifest. ``None`` (default): in this process, ``workers`` images at a time.
    client_factory : callable, optional
        Builds the client in each worker of a non-local ``executor`` (``client`` itself then only names the
        model in the configuration).
    block_size : int, optional
        Images per block on an ``executor`` (default: enough blocks for every worker, at most
        :data:`~medlens.executors.ITEM_BLOCK` images each); the results do not depend on it.

    Returns
    -------
    dict
        ``{"out_dir", "predictions", "manifest", "task", "setting", "model", "executor", "status", "counts"}``.
    """
    check_option(task, RUN_TASKS, name="task")
    check_option(setting, RUN_SETTINGS[task], name=f"setting (for task {task})")
    check_fan_out_options(workers)
    check_option(box_format, REQUEST_BOX_FORMATS, name="box_format")
    if executor is not None:
        if workers != 1:
            raise InputError(f"workers (threads in this process) and an executor exclude each other; got {workers}.")
        if executor.name != "local" and client_factory is None:
            raise InputError(
                f"the {executor.name} executor loads the model in each worker; give client_factory (e.g. "
                "medlens.llm.ClientFactory(model_path=...))."
            )
        item_block_size(0, 1, block_size)  # checked now
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"limit must be a positive int or None; got {limit!r}.")
    template = template or builtin_template(task, setting)
    if (template.task, template.setting) != (task, setting):
        raise InputError(
            f"the prompt template is for task {template.task!r}, setting {template.setting!r}; this run is "
            f"{task!r}, {setting!r}."
        )
    items = list(dataset.images[:limit] if limit else dataset.images)
    if setting != "text":
        _check_images(items)
    from medlens.llm import normalize_params

    params = normalize_params(temperature, seed, max_tokens, None)
    generation = {k: params[k] for k in ("temperature", "seed", "max_tokens")}
    model = _describe_client(client)
    config = {
        "benchmark": "nova",
        "command": "nova run",
        "task": task,
        "setting": setting,
        "model": model,
        "template": {"name": template.name, "sha256": template.sha256, "prompts_version": PROMPTS_VERSION},
        "box_format": box_format if task == "localization" else None,
        "generation": {**generation, "json_repair": repair if task != "caption" else None},
        "data": {Path(f).name: file_sha256(f) for f in dataset.files},
    }
    out = Path(out_dir)
    prov = provenance(
        command="nova run",
        config=config,
        seed=seed,
        inputs={f"data:{Path(f).name}": Path(f) for f in dataset.files},
        models={"model": model.get("model", "")},
    )
    with RunFolder(out, config, overwrite=overwrite, provenance=prov, outputs=(PREDICTIONS,)) as folder:
        log_ = folder.log(PREDICTIONS, key="filename")
        item_task = None
        if executor is not None:
            local = executor.name == "local"
            item_task = NovaTask(
                client_factory, template, box_format=box_format, generation=generation, repair=repair,
                client=client if local else None,
            )  # fmt: skip
        status, counts, remaining = _predict(
            folder, log_, dataset, items, client, template, box_format=box_format, generation=generation, repair=repair,
            progress=progress, workers=workers, executor=executor, task=item_task, block_size=block_size,
        )  # fmt: skip
    return {
        "out_dir": str(out),
        "predictions": str(log_.path),
        "manifest": str(folder.manifest_path),
        "task": task,
        "setting": setting,
        "model": model,
        "template": {"name": template.name, "sha256": template.sha256},
        "executor": _executor_info(executor),
        "status": status,
        "counts": {**counts, "remaining": remaining},
    }


def _predict(
    folder: RunFolder,
    log_: RunLog,
    dataset: NovaDataset,
    items: list[NovaImage],
    client: ChatClient,
    template: PromptTemplate,
    *,
    box_format: str,
    generation: Mapping[str, Any],
    repair: bool,
    progress: bool,
    workers: int = 1,
    executor: Any = None,
    task: NovaTask | None = None,
    block_size: int | None = None,
) -> tuple[str, dict[str, int], int]:
    """Answer the items not yet in ``log_``, keeping the manifest's counts current; (status, counts, remaining)."""
    setting, out = template.setting, folder.path
    counts = {
        "n_items": len(items),
        "done": 0,
        "parse_failures": 0,
        "request_failures": 0,
        "repaired": 0,
        "cached": 0,
    }
    done: set[str] = set()
    for r in log_.records():
        done.add(r["filename"])
        counts["done"] += 1
        counts["parse_failures"] += bool(r.get("parse_error")) and not r.get("request_failed")
        counts["repaired"] += bool(r.get("repaired"))
        counts["cached"] += bool(r.get("cached"))
        counts["request_failures"] += bool(r.get("request_failed"))
    unknown = done - set(dataset.filenames)
    if unknown:
        raise InputError(
            f"{log_.path} holds rows of {len(unknown)} file name(s) that are not in this NOVA copy (e.g. "
            f"{sorted(unknown)[0]!r}); use another --out folder."
        )
    todo = [im for im in items if im.filename not in done]

    def remaining() -> int:
        return sum(1 for im in items if im.filename not in done)

    def write_manifest(status: str) -> None:
        folder.write_manifest(
            predictions=PREDICTIONS,
            template=template.to_dict(),
            status=status,
            counts={**counts, "remaining": remaining()},
            executor=_executor_info(executor),
        )

    def work(im: NovaImage) -> dict[str, Any]:
        return prediction_row(
            client, template, filename=im.filename, caption=im.caption,
            history=dataset.case_of(im.filename).clinical_history, size=im.image_size, image=_image_of(im),
            box_format=box_format, generation=generation, repair=repair,
        )  # fmt: skip

    def rows() -> Iterator[dict[str, Any]]:
        """Each finished row: from threads in this process, or block by block from the executor."""
        if executor is None:
            for _im, row in fan_out(todo, work, workers=workers):
                yield row
            return
        payloads = [image_payload(dataset, im, setting) for im in todo]
        size = item_block_size(len(todo), executor.info().get("workers", 1), block_size)
        blocks = plan_blocks(len(todo), block_size=size)
        for idx, block_rows in stream_records(executor, task, payloads, blocks):
            for i, row in zip(idx, block_rows, strict=True):
                if not isinstance(row, dict) or row.get("filename") != todo[int(i)].filename:
                    raise RuntimeError(f"the {executor.name} executor returned a row for another image than {i}.")
                yield row

    if done:
        log.info("NOVA run %s: resuming, %d of %d done", out, counts["done"], len(items))
    write_manifest("running")
    status = "interrupted"
    t0 = time.perf_counter()
    try:
        with (
            progress_bar(
                len(todo), progress and bool(todo), f"nova run {template.task} ({setting})", transient=True
            ) as advance,
            contextlib.closing(rows()) as finished,
        ):
            for row in finished:
                log_.append(row)
                done.add(row["filename"])
                counts["done"] += 1
                counts["request_failures"] += bool(row.get("request_failed"))
                counts["parse_failures"] += row["parse_error"] is not None and not row.get("request_failed")
                counts["repaired"] += bool(row["repaired"])
                counts["cached"] += bool(row["cached"])
                if row["parse_error"] is not None:
                    log.debug("NOVA run: parse failure on %s: %s", row["filename"], row["parse_error"])
                write_manifest("running")
                advance(1)
        status = "complete"
    finally:
        log_.close()
        write_manifest(status)
        if status == "interrupted":
            log.warning(
                "NOVA run stopped after %d of %d image(s); rerun the same command to resume (%s)",
                counts["done"],
                len(items),
                out,
            )
    log.info(
        "NOVA run %s: %d image(s) in %.1f s, %d parse failure(s)",
        out,
        len(todo),
        time.perf_counter() - t0,
        counts["parse_failures"],
    )
    return status, counts, remaining()
