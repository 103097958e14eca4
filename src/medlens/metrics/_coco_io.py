"""Reading COCO annotation files and COCO result lists into flat arrays, with errors that name the entry.

Ground truth: ``{"images": [{"id", ...}], "annotations": [{"image_id", "category_id", "bbox": [x, y, w, h],
"area"?, "iscrowd"?, "id"?}], "categories": [{"id", "name"?}]}``. ``area`` defaults to ``w * h`` and
``iscrowd`` to 0 when absent (pycocotools would fail on them); the ``ignore`` field is not used (pycocotools
overwrites it with ``iscrowd``). Predictions: ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]``.
Ids are integers or strings (one kind per file). Numbers may be of any real type, Python's or NumPy's
(``np.int64`` ids, ``np.float32`` scores, ``np.float64`` coordinates, a 1-D array as a box), as pycocotools
takes them; NumPy integer ids become Python ints. Booleans are refused where pycocotools would read them as
0 and 1 (``true`` in a box or id is a bug, not a coordinate), except in ``iscrowd``. Widths and heights must be >= 0; a zero-size box matches
nothing. A prediction on an image absent from the ground truth is an error (pycocotools asserts); one whose
category is not in ``categories`` is dropped and counted (pycocotools drops it silently). An annotation of an
unknown image or category, duplicate image, category or annotation ids are errors (pycocotools would drop or
silently double such entries).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medlens._validation import InputError, is_real, is_real_type, read_text_file

__all__ = ["CocoGroundTruth", "CocoPredictions", "load_coco_ground_truth", "load_coco_predictions"]


@dataclass(frozen=True)
class CocoGroundTruth:
    """A COCO annotation file as flat arrays (boxes ``xywh``; images and categories as positions in sorted-id order)."""

    image_ids: tuple[Any, ...]
    category_ids: tuple[Any, ...]
    category_names: tuple[str, ...]
    boxes: np.ndarray  # (G, 4) xywh
    image: np.ndarray  # (G,) position in image_ids
    category: np.ndarray  # (G,) position in category_ids
    area: np.ndarray  # (G,)
    crowd: np.ndarray  # (G,) bool
    source: str = "<ground truth>"


@dataclass(frozen=True)
class CocoPredictions:
    """A COCO result list as flat arrays, aligned to a :class:`CocoGroundTruth` (unknown categories dropped)."""

    boxes: np.ndarray  # (D, 4) xywh
    score: np.ndarray  # (D,)
    image: np.ndarray  # (D,)
    category: np.ndarray  # (D,)
    n_unknown_category: int
    source: str = "<predictions>"


def _read_json(obj: Any, what: str) -> tuple[Any, str]:
    if isinstance(obj, str | os.PathLike):
        path = Path(obj)
        if not path.is_file():
            raise FileNotFoundError(f"{what} file not found: {path}")
        try:
            return json.loads(read_text_file(path, what=f"{what} file")), str(path)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).") from None
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a UTF-8 text file; expected COCO JSON.") from None
    return obj, f"<{what}>"


def _all_real(values: Any) -> bool:
    return all(is_real_type(t) for t in {type(v) for v in values})


def _is_number(v: Any) -> bool:
    return is_real(v) and math.isfinite(v)


def _is_flag(v: Any) -> bool:
    """0 or 1 as any number type, or a boolean (``iscrowd``)."""
    return (isinstance(v, bool | np.bool_) or is_real(v)) and v in (0, 1)


def _is_box(b: Any) -> bool:
    return (isinstance(b, list | tuple) or (isinstance(b, np.ndarray) and b.ndim == 1)) and len(b) == 4


def _entry(entries: Sequence[Any], i: int, src: str, where: str, required: Sequence[str]) -> Mapping[str, Any]:
    e = entries[i]
    if not isinstance(e, Mapping):
        raise InputError(f"{src}: {where}: expected a JSON object; got {type(e).__name__} {e!r:.60}.")
    for f in required:
        if f not in e:
            raise InputError(f"{src}: {where}: missing field '{f}' (required: {', '.join(required)}).")
    return e


# Every reader below takes a fast vectorised path for well-formed input and, only when that fails, scans the
# entries one by one to name the first bad one (file, section and index, field).


def _columns(entries: Sequence[Any], src: str, where: str, required: Sequence[str]) -> list[list[Any]]:
    """The values of each required field, in entry order."""
    try:
        return [[e[f] for e in entries] for f in required]
    except (KeyError, TypeError, IndexError):
        for i in range(len(entries)):
            _entry(entries, i, src, where.format(i), required)
        raise  # pragma: no cover - the scan raises first


def _check_ids(values: list[Any], src: str, where: str, fld: str) -> list[Any]:
    """``values`` with NumPy integers and strings as Python ``int``/``str``; one kind per file."""
    kinds = {type(v) for v in values}
    if kinds <= {int} or kinds <= {str}:
        return values
    if all(issubclass(t, np.integer) or t is int for t in kinds):
        return [int(v) for v in values]
    if all(issubclass(t, str) for t in kinds):
        return [str(v) for v in values]
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int | np.integer | str):
            raise InputError(f"{src}: {where.format(i)}: field '{fld}' must be an integer or a string; got {v!r}.")
    raise InputError(f"{src}: field '{fld}' mixes integers and strings; use one kind.")


def _numbers(values: list[Any], src: str, where: str, fld: str, what: str = "a finite number") -> np.ndarray:
    if _all_real(values):
        arr = np.array(values, dtype=np.float64)
        if np.isfinite(arr).all():
            return arr
    for i, v in enumerate(values):
        if not _is_number(v):
            raise InputError(f"{src}: {where.format(i)}: field '{fld}' must be {what}; got {v!r}.")
    raise AssertionError("unreachable")  # pragma: no cover


MAX_COORD = 1e7
"""No image is ten million pixels wide: a larger coordinate is an error (and its area would overflow)."""


def _bboxes(values: list[Any], src: str, where: str) -> np.ndarray:
    """``(n, 4)`` float boxes ``[x, y, w, h]`` with finite numbers and ``w, h >= 0``."""
    try:
        if _all_real(v for b in values for v in b):
            arr = np.array(values, dtype=np.float64) if values else np.zeros((0, 4))
            if (
                arr.ndim == 2
                and arr.shape[1] == 4
                and np.isfinite(arr).all()
                and (np.abs(arr) <= MAX_COORD).all()
                and (arr[:, 2:] >= 0).all()
            ):
                return arr
    except (TypeError, ValueError):
        pass
    for i, bb in enumerate(values):
        ok = _is_box(bb) and all(_is_number(v) for v in bb)
        if not ok or bb[2] < 0 or bb[3] < 0 or max(abs(v) for v in bb) > MAX_COORD:
            note = (
                " (a boolean is not a coordinate)"
                if _is_box(bb) and any(isinstance(v, bool | np.bool_) for v in bb)
                else ""
            )
            raise InputError(
                f"{src}: {where.format(i)}: field 'bbox' must be 4 finite numbers [x, y, width, height] with "
                f"width, height >= 0 and no coordinate beyond {MAX_COORD:g} pixels; got {bb!r}{note}."
            )
    raise AssertionError("unreachable")  # pragma: no cover


def _unique(values: list[Any], src: str, section: str) -> None:
    if len(set(values)) == len(values):
        return
    seen: dict[Any, int] = {}
    for i, v in enumerate(values):
        if v in seen:
            raise InputError(f"{src}: {section}[{i}]: duplicate id {v!r} (first at {section}[{seen[v]}]).")
        seen[v] = i


def _id_list(entries: Sequence[Any], src: str, section: str) -> list[Any]:
    (ids,) = _columns(entries, src, section + "[{}]", ("id",))
    ids = _check_ids(ids, src, section + "[{}]", "id")
    _unique(ids, src, section)
    return ids


def _positions(values: list[Any], sorted_ids: Sequence[Any]) -> np.ndarray:
    """Position of each value in ``sorted_ids`` (-1 when absent)."""
    if sorted_ids and type(sorted_ids[0]) is int and {type(v) for v in values} <= {int}:
        ref = np.array(sorted_ids, dtype=np.int64)
        arr = np.array(values, dtype=np.int64)
        idx = np.minimum(np.searchsorted(ref, arr), len(ref) - 1)
        return np.where(ref[idx] == arr, idx, -1)
    index = {v: i for i, v in enumerate(sorted_ids)}
    return np.fromiter((index.get(v, -1) for v in values), dtype=np.int64, count=len(values))


def load_coco_ground_truth(gt: str | os.PathLike | Mapping[str, Any]) -> CocoGroundTruth:
    """Read a COCO annotation file (path or already-parsed dict) and validate it.

    Errors name the file, the section and entry index, and the field, e.g.
    ``GT.json: annotations[12]: field 'bbox' must be 4 finite numbers [x, y, width, height] ...``.
    """
    data, src = _read_json(gt, "ground truth")
    if not isinstance(data, Mapping):
        raise InputError(
            f"{src}: a COCO annotation file is a JSON object with images, annotations, categories; got {type(data).__name__}."
        )
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise InputError(
                f"{src}: missing top-level field '{key}' (a COCO file has images, annotations, categories)."
            )
        if not isinstance(data[key], list):
            raise InputError(f"{src}: top-level field '{key}' must be a list; got {type(data[key]).__name__}.")
    image_ids = sorted(_id_list(data["images"], src, "images"))
    cats = data["categories"]
    cat_ids = sorted(_id_list(cats, src, "categories"))
    names = {c["id"]: str(c.get("name", c["id"])) for c in cats}
    anns = data["annotations"]
    where = "annotations[{}]"
    img_col, cat_col, bbox_col = _columns(anns, src, where, ("image_id", "category_id", "bbox"))
    img_col = _check_ids(img_col, src, where, "image_id")
    cat_col = _check_ids(cat_col, src, where, "category_id")
    boxes = _bboxes(bbox_col, src, where)
    image, category = _positions(img_col, image_ids), _positions(cat_col, cat_ids)
    for arr, col, fld, known in (
        (image, img_col, "image_id", "images"),
        (category, cat_col, "category_id", "categories"),
    ):
        if (arr < 0).any():
            i = int(np.flatnonzero(arr < 0)[0])
            raise InputError(f"{src}: annotations[{i}]: field '{fld}' {col[i]!r} is not among the '{known}' ids.")
    area = boxes[:, 2] * boxes[:, 3]
    has_area = [i for i, a in enumerate(anns) if "area" in a]
    if has_area:
        area[has_area] = _numbers([anns[i]["area"] for i in has_area], src, "annotations[{}]", "area")
    crowd_col = [a.get("iscrowd", 0) for a in anns]
    fast = {type(v) for v in crowd_col} <= {int, float, bool} and set(crowd_col) <= {0, 1}
    bad = None if fast else next((i for i, v in enumerate(crowd_col) if not _is_flag(v)), None)
    if bad is not None:
        raise InputError(f"{src}: annotations[{bad}]: field 'iscrowd' must be 0 or 1; got {crowd_col[bad]!r}.")
    crowd = np.array(crowd_col, dtype=bool) if anns else np.zeros(0, dtype=bool)
    ann_ids = [a["id"] for a in anns if "id" in a]
    if len(set(ann_ids)) != len(ann_ids):  # duplicates: name the entry (ids themselves are otherwise unused)
        _unique([a.get("id", ("<no id>", i)) for i, a in enumerate(anns)], src, "annotations")
    return CocoGroundTruth(
        image_ids=tuple(image_ids),
        category_ids=tuple(cat_ids),
        category_names=tuple(names[c] for c in cat_ids),
        boxes=boxes,
        image=image,
        category=category,
        area=area,
        crowd=crowd,
        source=src,
    )


def load_coco_predictions(pred: str | os.PathLike | Sequence[Any], gt: CocoGroundTruth) -> CocoPredictions:
    """Read a COCO result list (path or already-parsed list) against ``gt``.

    Every entry needs ``image_id`` (an image of ``gt``), ``category_id``, ``bbox`` (``[x, y, w, h]``) and a finite
    ``score``. Errors name the file, the entry index and the field.
    """
    data, src = _read_json(pred, "predictions")
    if isinstance(data, Mapping):
        raise InputError(
            f"{src}: COCO results are a JSON list of {{image_id, category_id, bbox, score}} objects; got an object"
            + (" (found 'annotations': pass that list instead)." if "annotations" in data else ".")
        )
    if not isinstance(data, list):
        raise InputError(f"{src}: COCO results must be a JSON list; got {type(data).__name__}.")
    where = "entry {}"
    img_col, cat_col, bbox_col, score_col = _columns(data, src, where, ("image_id", "category_id", "bbox", "score"))
    img_col = _check_ids(img_col, src, where, "image_id")
    cat_col = _check_ids(cat_col, src, where, "category_id")
    boxes = _bboxes(bbox_col, src, where)
    score = _numbers(score_col, src, where, "score")
    image = _positions(img_col, gt.image_ids)
    if (image < 0).any():
        i = int(np.flatnonzero(image < 0)[0])
        raise InputError(
            f"{src}: entry {i}: field 'image_id' {img_col[i]!r} is not an image of {gt.source}; "
            "results must refer to images of the ground truth."
        )
    category = _positions(cat_col, gt.category_ids)
    known = category >= 0
    return CocoPredictions(
        boxes=boxes[known],
        score=score[known],
        image=image[known],
        category=category[known],
        n_unknown_category=int((~known).sum()),
        source=src,
    )
