"""NOVA evaluation: read prediction rows, then score localisation, captioning and diagnosis with medlens.metrics.

Prediction rows
---------------
One JSON object per line (what ``medlens nova run`` will write and ``medlens nova evaluate`` reads):

- ``filename`` (str): an image of the dataset; unknown names are errors;
- ``task``: ``"localization"``, ``"caption"`` or ``"diagnosis"``; one row per (filename, task);
- localization: ``boxes`` ([[a, b, c, d], ...], may be empty), ``scores`` (one number per box, or null: the
  given order is the ranking) and ``box_format`` (``xyxy_pixel`` | ``xywh_pixel`` | ``xyxy_norm1`` |
  ``xyxy_norm1000``; required, there is no silent default);
- caption: ``caption`` (str; null or blank = a failed generation, counted and not scored);
- diagnosis: ``diagnoses`` (a ranked list of names, may be empty);
- optional: ``raw`` (the model's text, kept and ignored), ``setting`` (``image`` | ``image+history`` |
  ``text``; counted per task); other fields are ignored.

A malformed row raises :class:`~medlens._validation.InputError` naming the file, the line and the field.

Scoring
-------
- localization: :func:`medlens.metrics.detection_report` on pixel ``xyxy`` boxes; ``ap_mode="voc11"``
  (per-image 11-point AP, protocol ``nova-voc11``, the NOVA-compatible default) or ``"coco"`` (pooled
  101-point AP, ``coco101``). Every box-frame conversion and every clip of a predicted box to its image is
  logged as a protocol deviation (summarised in ``deviations``). The human ceiling is the same report between
  the two raters' boxes on the same images (symmetric: the mean of both directions).
- caption: :func:`medlens.metrics.caption_report` against the image's gold caption.
- diagnosis: :func:`medlens.metrics.diagnosis_report` against the case's final diagnosis, one sample per
  image row; optionally a second judge on the same pairs and Cohen's kappa between them.

Images of the dataset without a row for a task are counted as ``n_missing``. With ``missing="skip"`` (default)
the metrics cover the images that have a row; with ``missing="empty"`` a missing localisation row scores as no
boxes and a missing diagnosis row as an empty list (a miss). Captions are never scored empty (a failed
generation is counted, not scored: see :mod:`medlens.metrics._text`).
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from medlens._validation import InputError, check_option, did_you_mean, is_real
from medlens.io import iter_jsonl

if TYPE_CHECKING:  # pragma: no cover
    from medlens.benchmarks.nova._records import NovaDataset
    from medlens.metrics import CaptionOptions
    from medlens.metrics.diagnosis import Judge, JudgeCache

__all__ = [
    "AP_MODES",
    "MISSING_RULES",
    "PREDICTION_TASKS",
    "NovaPredictions",
    "PredictionRow",
    "nova_evaluate",
    "read_nova_predictions",
]

log = logging.getLogger(__name__)

PREDICTION_TASKS = ("localization", "caption", "diagnosis")
"""Tasks of prediction rows, in the order results are reported."""
AP_MODES = {"voc11": "nova-voc11", "coco": "coco101"}
"""``ap_mode`` → the protocol label in outputs."""
MISSING_RULES = ("skip", "empty")
SETTINGS = ("image", "image+history", "text")


# ============================================================================================ reading rows
@dataclass(frozen=True)
class PredictionRow:
    """One checked prediction row (boxes still in their own frame)."""

    filename: str
    task: str
    where: str
    boxes: np.ndarray | None = None
    scores: list[float] | None = None
    box_format: str | None = None
    caption: str | None = None
    diagnoses: list[str] | None = None
    raw: str | None = None
    setting: str | None = None


@dataclass(frozen=True)
class NovaPredictions:
    """Checked prediction rows: ``rows[task][filename]`` → :class:`PredictionRow`, and where they came from."""

    source: str
    rows: dict[str, dict[str, PredictionRow]]
    n_rows: int
    path: Path | None = None
    settings: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def tasks(self) -> list[str]:
        """Tasks with at least one row, in :data:`PREDICTION_TASKS` order."""
        return [t for t in PREDICTION_TASKS if self.rows.get(t)]


def _lines(source: str | os.PathLike | Iterable[Mapping[str, Any]]) -> tuple[str, Path | None, list[tuple[int, Any]]]:
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise InputError(f"{path}: no such predictions file; give a JSONL file (one JSON object per line).")
        return str(path), path, list(iter_jsonl(path, what="predictions file"))
    return "predictions", None, [(i + 1, r) for i, r in enumerate(source)]


def _box_array(value: Any, where: str) -> np.ndarray:
    if not isinstance(value, list):
        raise InputError(
            f"{where}: field 'boxes' must be a list of [x1, y1, x2, y2] boxes; got {type(value).__name__}."
        )
    for i, b in enumerate(value):
        if not (isinstance(b, list) and len(b) == 4 and all(_is_number(v) for v in b)):
            raise InputError(f"{where}: field 'boxes', box {i} must be 4 numbers; got {b!r}.")
    arr = np.asarray(value, dtype=np.float64).reshape(-1, 4)
    if not np.isfinite(arr).all():
        i = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise InputError(f"{where}: field 'boxes', box {i} has a non-finite coordinate: {value[i]!r}.")
    return arr


def _is_number(v: Any) -> bool:
    return is_real(v)  # Python or NumPy numbers, not booleans


def _parse_row(obj: Any, where: str, dataset: NovaDataset, seen: dict[tuple[str, str], str]) -> PredictionRow:
    from medlens.metrics import BOX_FORMATS

    if not isinstance(obj, Mapping):
        raise InputError(f"{where} must be a JSON object; got {type(obj).__name__}.")
    for fld in ("filename", "task"):
        if fld not in obj:
            raise InputError(
                f"{where}: missing field {fld!r}; every row needs filename and task (found {sorted(obj)})."
            )
    fname, task = obj["filename"], obj["task"]
    if not isinstance(fname, str):
        raise InputError(f"{where}: field 'filename' must be a string; got {fname!r}.")
    if task not in PREDICTION_TASKS:
        raise InputError(
            f"{where}: field 'task' must be one of {list(PREDICTION_TASKS)}; got {task!r}.{did_you_mean(str(task), PREDICTION_TASKS)}"
        )
    if fname not in dataset:
        raise InputError(
            f"{where}: filename {fname!r} is not an image of the NOVA data ({len(dataset)} images)."
            f"{did_you_mean(fname, dataset.filenames)}"
        )
    if (fname, task) in seen:
        raise InputError(f"{where}: a second {task} row for {fname!r} (the first is at {seen[(fname, task)]}).")
    seen[(fname, task)] = where
    where = f"{where} (filename {fname!r}, task {task!r})"
    raw = obj.get("raw")
    if raw is not None and not isinstance(raw, str):
        raise InputError(f"{where}: field 'raw' must be a string or null; got {type(raw).__name__}.")
    setting = obj.get("setting")
    if setting is not None and setting not in SETTINGS:
        raise InputError(f"{where}: field 'setting' must be one of {list(SETTINGS)} or absent; got {setting!r}.")
    common = {"filename": fname, "task": task, "where": where, "raw": raw, "setting": setting}
    if task == "localization":
        for fld in ("boxes", "box_format"):
            if fld not in obj:
                raise InputError(
                    f"{where}: missing field {fld!r}; localization rows need boxes, scores and box_format."
                )
        fmt = obj["box_format"]
        if fmt not in BOX_FORMATS:
            raise InputError(
                f"{where}: field 'box_format' must be one of {list(BOX_FORMATS)}; got {fmt!r}.{did_you_mean(str(fmt), BOX_FORMATS)}"
            )
        boxes = _box_array(obj["boxes"], where)
        if fmt == "xywh_pixel":
            bad = (boxes[:, 2] < 0) | (boxes[:, 3] < 0)
            rule = "width and height >= 0"
        else:
            bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
            rule = "x1 <= x2 and y1 <= y2"
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"{where}: field 'boxes', box {i} {obj['boxes'][i]!r} is not a {fmt} box ({rule}).")
        scores = obj.get("scores")
        if scores is not None:
            if not isinstance(scores, list) or not all(_is_number(s) for s in scores):
                raise InputError(f"{where}: field 'scores' must be a list of numbers or null; got {scores!r}.")
            if len(scores) != len(boxes):
                raise InputError(f"{where}: field 'scores' has {len(scores)} values for {len(boxes)} boxes.")
            if not all(math.isfinite(s) for s in scores):
                raise InputError(f"{where}: field 'scores' must be finite; got {scores!r}.")
            scores = [float(s) for s in scores]
        return PredictionRow(**common, boxes=boxes, scores=scores, box_format=fmt)
    if task == "caption":
        if "caption" not in obj:
            raise InputError(f"{where}: missing field 'caption' (a string, or null for a failed generation).")
        cap = obj["caption"]
        if cap is not None and not isinstance(cap, str):
            raise InputError(f"{where}: field 'caption' must be a string or null; got {type(cap).__name__} {cap!r}.")
        return PredictionRow(**common, caption=cap)
    if "diagnoses" not in obj:
        raise InputError(f"{where}: missing field 'diagnoses' (a ranked list of names, [] when none).")
    dx = obj["diagnoses"]
    if not isinstance(dx, list):
        raise InputError(f"{where}: field 'diagnoses' must be a ranked list of names; got {type(dx).__name__} {dx!r}.")
    for i, name in enumerate(dx):
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{where}: field 'diagnoses', item {i} must be a non-empty string; got {name!r}.")
    return PredictionRow(**common, diagnoses=[d.strip() for d in dx])


def read_nova_predictions(
    source: str | os.PathLike | Iterable[Mapping[str, Any]], dataset: NovaDataset
) -> NovaPredictions:
    """Read and check prediction rows (a JSONL path, or an iterable of dicts) against ``dataset``.

    Raises
    ------
    InputError
        Naming the file, the line and the field, for a malformed row, an unknown filename, an unknown task or a
        second row for the same (filename, task).
    """
    name, path, lines = _lines(source)
    rows: dict[str, dict[str, PredictionRow]] = {t: {} for t in PREDICTION_TASKS}
    seen: dict[tuple[str, str], str] = {}
    settings: dict[str, Counter] = defaultdict(Counter)
    for n, obj in lines:
        row = _parse_row(obj, f"{name}: line {n}", dataset, seen)
        rows[row.task][row.filename] = row
        settings[row.task][row.setting or "unspecified"] += 1
    if not lines:
        raise InputError(f"{name}: no prediction rows.")
    return NovaPredictions(
        source=name,
        rows=rows,
        n_rows=len(lines),
        path=path,
        settings={t: dict(c) for t, c in settings.items()},
    )


# ============================================================================================ localisation
def _pixel_boxes(row: PredictionRow, size: tuple[int, int] | None, deviations: list) -> np.ndarray:
    from medlens.metrics import clip_boxes, convert_boxes

    boxes = row.boxes if row.boxes is not None else np.zeros((0, 4))
    fmt = row.box_format or "xyxy_pixel"
    if fmt in ("xyxy_norm1", "xyxy_norm1000") and size is None:
        raise InputError(
            f"{row.where}: {fmt} boxes need the image size to become pixels, and the image file of {row.filename!r} "
            "is missing from this NOVA copy (see `medlens nova validate`); give the images or pixel boxes."
        )
    out, rec = convert_boxes(boxes, fmt, "xyxy_pixel", image_size=size, image=row.filename, check=False)
    if rec.deviation:
        deviations.append(rec)
        log.info("NOVA localization deviation: %s (%s)", rec.message(), row.where)
    if size is not None and len(out):
        out, clip = clip_boxes(out, size, image=row.filename)
        if clip.deviation:
            deviations.append(clip)
            log.info("NOVA localization deviation: %s (%s)", clip.message(), row.where)
    return out


def _summarise_deviations(records: list) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in records:
        key = (r.operation, r.src, r.dst)
        g = groups.setdefault(key, {"operation": r.operation, "src": r.src, "dst": r.dst, "n_images": 0, "n_boxes": 0})
        g["n_images"] += 1
        g["n_boxes"] += r.n_changed
    for g in groups.values():
        if g["operation"] == "clip":
            g["message"] = f"clipped {g['n_boxes']} predicted box(es) in {g['n_images']} image(s) to the image bounds"
        else:
            g["message"] = (
                f"converted {g['n_boxes']} predicted box(es) in {g['n_images']} image(s) from {g['src']} to {g['dst']}"
            )
    return list(groups.values())


_CEILING_KEYS = ("map30", "map50", "map50_95", "acc50", "precision50", "recall50")


def _human_ceiling(dataset: NovaDataset, filenames: list[str], protocol: str, no_gold: str) -> dict[str, Any]:
    from medlens.metrics import inter_rater_report

    if len(dataset.raters) < 2:
        return {
            "available": False,
            "reason": f"needs the boxes of two raters; this copy has {len(dataset.raters)} ({list(dataset.raters)}).",
        }
    a, b = dataset.raters[:2]
    ims = [dataset.image(f) for f in filenames]
    ra = [im.rater_boxes.get(a, np.zeros((0, 4))) for im in ims]
    rb = [im.rater_boxes.get(b, np.zeros((0, 4))) for im in ims]
    rep = inter_rater_report(  # type: ignore[arg-type]
        ra, rb, protocol=protocol, no_gold=no_gold, symmetric=True, image_ids=filenames
    ).to_dict()
    out = {"available": True, "raters": [a, b], **{k: rep[k] for k in _CEILING_KEYS}}
    out["n_images_scored"] = [d["n_images_scored"] for d in rep["directions"]]
    out["note"] = (
        "the same metrics between the two raters' boxes on the evaluated images, averaged over both directions"
        + (f"; raters beyond the first two ignored: {list(dataset.raters[2:])}" if len(dataset.raters) > 2 else "")
    )
    return out


def _localization(
    dataset: NovaDataset,
    preds: NovaPredictions,
    *,
    ap_mode: str,
    no_gold: str,
    missing: str,
    ceiling: bool,
    details: bool,
) -> dict[str, Any]:
    from medlens.metrics import detection_report

    rows = preds.rows["localization"]
    filenames = dataset.filenames if missing == "empty" else [f for f in dataset.filenames if f in rows]
    protocol = AP_MODES[ap_mode]
    deviations: list = []
    gold, pred, scores = [], [], []
    for f in filenames:
        im = dataset.image(f)
        gold.append(im.gold_boxes)
        row = rows.get(f)
        if row is None:
            pred.append(np.zeros((0, 4)))
            scores.append(None)
            continue
        pred.append(_pixel_boxes(row, im.image_size, deviations))
        scores.append(row.scores)
    rep = detection_report(gold, pred, scores=scores, protocol=protocol, no_gold=no_gold, image_ids=filenames)  # type: ignore[arg-type]
    out: dict[str, Any] = {"ap_mode": ap_mode, **rep.to_dict()}
    out.update(
        n_predicted=len(rows),
        n_missing=len(dataset) - len(rows),
        missing=missing,
        n_rows_without_scores=sum(1 for r in rows.values() if r.scores is None and len(r.boxes)),  # type: ignore[arg-type]
        box_formats=dict(Counter(r.box_format for r in rows.values())),
        deviations=_summarise_deviations(deviations),
        input_settings=preds.settings.get("localization", {}),
    )
    if out["n_rows_without_scores"]:
        out["ranking_note"] = "rows without scores are ranked in the order their boxes are listed"
    if ceiling:
        out["human_ceiling"] = _human_ceiling(dataset, filenames, protocol, no_gold)
    if details:
        out["deviation_log"] = [r.to_dict() for r in deviations]
    return out


# ================================================================================================ captions
_CAPTION_SWITCHES = ("bertscore_model", "meteor_wordnet")


def _caption_options(options: Any) -> Any:
    """A CaptionOptions as it is, or one built from the CLI's switches (see ``caption_options`` below)."""
    from medlens.metrics import BertScoreOptions, CaptionOptions, MeteorOptions

    if isinstance(options, CaptionOptions):
        return options
    opts = dict(options or {})
    unknown = sorted(set(opts) - set(_CAPTION_SWITCHES))
    if unknown:
        raise InputError(
            f"unknown caption options {unknown}; a mapping takes {list(_CAPTION_SWITCHES)}, "
            "anything else goes in a medlens.metrics.CaptionOptions."
        )
    model = opts.get("bertscore_model", "minilm")
    wordnet = opts.get("meteor_wordnet")
    return CaptionOptions(
        bertscore=None if model is None else BertScoreOptions(model=model),
        meteor=None if wordnet is False else MeteorOptions(wordnet=None if wordnet is True else wordnet),
    )


def _caption(dataset: NovaDataset, preds: NovaPredictions, *, details: bool, caption_options: Any, mode: str):
    from medlens.metrics import CAPTION_KEYS, caption_report

    rows = preds.rows["caption"]
    ids, refs, cands = [], [], []
    n_empty = n_no_ref = 0
    for f in dataset.filenames:
        row = rows.get(f)
        if row is None:
            continue
        if row.caption is None or not row.caption.strip():
            n_empty += 1
            continue
        ref = dataset.image(f).caption
        if not ref.strip():
            n_no_ref += 1
            continue
        ids.append(f)
        refs.append(ref)
        cands.append(row.caption)
    counts = {
        "n_scored": len(ids),
        "n_predicted": len(rows),
        "n_missing": len(dataset) - len(rows),
        "n_empty": n_empty,
        "n_no_reference": n_no_ref,
        "input_settings": preds.settings.get("caption", {}),
    }
    if not ids:
        return {**dict.fromkeys(CAPTION_KEYS), "mode": mode, **counts, "note": "no caption to score"}
    rep = caption_report(refs, cands, ids=ids, options=caption_options, mode=mode)
    out = {**rep.scores, "mode": rep.mode, **counts, "skipped": rep.skipped, "settings": rep.settings}
    if details:
        out["per_sample"] = rep.to_dict(per_sample=True)["per_sample"]
    return out


# =============================================================================================== diagnosis
def _diagnosis(
    dataset: NovaDataset,
    preds: NovaPredictions,
    *,
    judge: Any,
    judge_options: Mapping[str, Any] | None,
    compare_judge: Any,
    compare_judge_options: Mapping[str, Any] | None,
    cache: JudgeCache | None,
    missing: str,
    details: bool,
) -> dict[str, Any]:
    from medlens.metrics import diagnosis_report, judge_agreement

    rows = preds.rows["diagnosis"]
    ids, lists, golds = [], [], []
    n_no_ref = 0
    for f in dataset.filenames:
        row = rows.get(f)
        if row is None and missing == "skip":
            continue
        gold = dataset.final_diagnosis(f)
        if not gold.strip():
            n_no_ref += 1
            continue
        ids.append(f)
        lists.append(row.diagnoses if row is not None else [])
        golds.append(gold)
    counts = {
        "unit": "image (its case's final diagnosis)",
        "n_predicted": len(rows),
        "n_missing": len(dataset) - len(rows),
        "missing": missing,
        "n_no_reference": n_no_ref,
        "n_cases": len({dataset.image(f).case_id for f in ids}),
        "input_settings": preds.settings.get("diagnosis", {}),
    }
    if not ids:
        return {"top1": None, "top5": None, **counts, "note": "no diagnosis to score"}
    kw = {"ids": ids, "cache": cache}
    rep = diagnosis_report(golds, lists, judge=judge, judge_options=judge_options, **kw)
    out = {**rep.to_dict(per_sample=details), **counts}
    if compare_judge is not None:
        other = diagnosis_report(golds, lists, judge=compare_judge, judge_options=compare_judge_options, **kw)
        flat_a = [j for js in rep.judgements for j in js]
        flat_b = [j for js in other.judgements for j in js]
        agree = judge_agreement(flat_a, flat_b)
        out["agreement"] = {
            "judge_a": rep.judge["judge_id"],
            "judge_b": other.judge["judge_id"],
            **agree,
            "unit": "every judged (prediction, gold) pair: the first max(top_k) predictions of each image",
            "judge_b_scores": {k: other.scores[k] for k in ("top1", "top5", "top1_macro", "top5_macro")},
            "judge_b_analysis_only": other.judge.get("analysis_only", False),
        }
    return out


# ================================================================================================ evaluate
def nova_evaluate(
    dataset: NovaDataset,
    predictions: NovaPredictions | str | os.PathLike | Iterable[Mapping[str, Any]],
    *,
    judge: str | Judge = "exact_synonym",
    judge_options: Mapping[str, Any] | None = None,
    compare_judge: str | Judge | None = None,
    compare_judge_options: Mapping[str, Any] | None = None,
    judge_cache: JudgeCache | str | os.PathLike | None = None,
    ap_mode: Literal["voc11", "coco"] = "voc11",
    no_gold: Literal["skip", "score"] = "skip",
    missing: Literal["skip", "empty"] = "skip",
    human_ceiling: bool = True,
    caption_options: CaptionOptions | Mapping[str, Any] | None = None,
    caption_mode: str = "coco-caption",
    tasks: Sequence[str] | None = None,
    details: bool = False,
) -> dict[str, Any]:
    """Score NOVA prediction rows: one result object per task present.

    Parameters
    ----------
    dataset : NovaDataset
        From :func:`medlens.benchmarks.nova.load_nova`.
    predictions : NovaPredictions, path or iterable of dicts
        Prediction rows (see the module notes).
    judge, judge_options
        Diagnosis judge: a registered name (``"exact_synonym"`` default, ``"embedding"``) with constructor
        options, or a judge object.
    compare_judge, compare_judge_options
        A second judge run on the same pairs; adds ``agreement`` (Cohen's kappa of the two judges' verdicts).
    judge_cache : JudgeCache or folder, optional
        Where judgements are cached (and logged); none by default.
    ap_mode : {"voc11", "coco"}
        ``voc11``: per-image 11-point AP (protocol ``nova-voc11``); ``coco``: pooled 101-point AP (``coco101``).
    no_gold : {"skip", "score"}
        Images without gold boxes (see :mod:`medlens.metrics._images`).
    missing : {"skip", "empty"}
        Images without a row for a task: left out (default) or scored as an empty answer (localisation,
        diagnosis).
    human_ceiling : bool
        Add the inter-rater report to ``localization``.
    caption_options : CaptionOptions or mapping, optional
        Options of :func:`medlens.metrics.caption_report`: a :class:`~medlens.metrics.CaptionOptions`, or a
        mapping of the CLI's switches ``bertscore_model`` (default ``"minilm"``; ``None`` skips BERTScore) and
        ``meteor_wordnet`` (``False`` skips METEOR).
    caption_mode : {"coco-caption", "sacrebleu"}
        The caption metrics' mode (:func:`medlens.metrics.caption_report`): ``coco-caption`` (default) is
        pycocoevalcap's pipeline, the numbers the NOVA paper reports; ``sacrebleu`` the sacrebleu/rouge-score one.
    tasks : sequence of str, optional
        Only these tasks (default: every task with rows).
    details : bool
        Add per-image rows (caption and diagnosis) and the full deviation log (localisation).

    Returns
    -------
    dict
        ``{"tasks": [...], "n_prediction_rows", "data": {...}, "localization": {...}, "caption": {...},
        "diagnosis": {...}}`` with only the tasks present. ``localization`` has ``map30, map50, map50_95, acc50``
        (+ precision/recall at 0.5), ``protocol``, ``deviations`` and ``human_ceiling``; ``caption`` has ``mode``,
        ``bleu1..bleu4, rouge_l, cider, meteor, bertscore_f1, keyword_f1_modality, keyword_f1_findings``; ``diagnosis`` has
        ``top1, top5`` (+ macro), ``judge``, ``coverage`` and ``entropy_bits``. Each carries ``n_predicted``
        and ``n_missing``.
    """
    check_option(ap_mode, tuple(AP_MODES), name="ap_mode")
    check_option(missing, MISSING_RULES, name="missing")
    check_option(no_gold, ("skip", "score"), name="no_gold")
    from medlens.metrics import CAPTION_MODES

    check_option(caption_mode, CAPTION_MODES, name="caption_mode")
    preds = predictions if isinstance(predictions, NovaPredictions) else read_nova_predictions(predictions, dataset)
    present = preds.tasks
    if tasks is not None:
        for t in tasks:
            check_option(t, PREDICTION_TASKS, name="tasks")
        present = [t for t in present if t in tasks]
    cache = None
    if judge_cache is not None:
        from medlens.metrics import JudgeCache

        cache = judge_cache if isinstance(judge_cache, JudgeCache) else JudgeCache(judge_cache)
    out: dict[str, Any] = {
        "tasks": present,
        "n_prediction_rows": preds.n_rows,
        "data": {
            "source": dataset.source,
            "layout": dataset.layout,
            "n_images": len(dataset),
            "n_cases": len(dataset.cases),
            "n_problems": len(dataset.problems),
        },
    }
    if "localization" in present:
        out["localization"] = _localization(
            dataset, preds, ap_mode=ap_mode, no_gold=no_gold, missing=missing, ceiling=human_ceiling, details=details
        )
    if "caption" in present:
        out["caption"] = _caption(
            dataset, preds, details=details, caption_options=_caption_options(caption_options), mode=caption_mode
        )
    if "diagnosis" in present:
        out["diagnosis"] = _diagnosis(
            dataset,
            preds,
            judge=judge,
            judge_options=judge_options,
            compare_judge=compare_judge,
            compare_judge_options=compare_judge_options,
            cache=cache,
            missing=missing,
            details=details,
        )
    return out
