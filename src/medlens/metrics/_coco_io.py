"""Reading COCO annotation files and COCO result lists into flat arrays, with errors that name the entry.

Ground truth: ``{"images": [{"id", ...}], "annotations": [{"image_id", "category_id", "bbox": [x, y, w, h],
"area"?, "iscrowd"?, "id"?}], "categories": [{"id", "name"?}]}``. ``area`` defaults to ``w * h`` and
``iscrowd`` to 0 when absent (pycocotools would fail on them); the ``ignore`` field is not used (pycocotools
overwrites it with ``iscrowd``). Predictions: ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}]``.
Ids are integers or strings (one kind per file). Widths and heights must be >= 0; a zero-size box matches
nothing. A prediction on an image absent from the ground truth is an error (pycocotools asserts); one whose
category is not in ``categories`` is dropped and counted (pycocotools drops it silently).
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

from medlens._validation import InputError

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

    def image_index(self) -> dict[Any, int]:
        return {iid: i for i, iid in enumerate(self.image_ids)}


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
            with path.open(encoding="utf-8") as fh:
                return json.load(fh), str(path)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).") from None
        except UnicodeDecodeError:
            raise InputError(f"{path}: not a UTF-8 text file; expected COCO JSON.") from None
    return obj, f"<{what}>"


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _check_id(v: Any, src: str, where: str, fld: str) -> None:
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise InputError(f"{src}: {where}: field '{fld}' must be an integer or a string; got {v!r}.")


def _bbox_error(src: str, where: str, bb: Any) -> InputError:
    return InputError(
        f"{src}: {where}: field 'bbox' must be 4 finite numbers [x, y, width, height] with width, height >= 0; "
        f"got {bb!r}."
    )


def _entry(entries: Sequence[Any], i: int, src: str, where: str, required: Sequence[str]) -> Mapping[str, Any]:
    e = entries[i]
    if not isinstance(e, Mapping):
        raise InputError(f"{src}: {where}: expected a JSON object; got {type(e).__name__} {e!r:.60}.")
    for f in required:
        if f not in e:
            raise InputError(f"{src}: {where}: missing field '{f}' (required: {', '.join(required)}).")
    return e


def _bbox_array(entries: Sequence[Mapping[str, Any]], src: str, label: str) -> np.ndarray:
    """``(n, 4)`` float boxes; a fast path for well-formed files, then an entry-by-entry scan to name the bad one."""
    try:
        raw = [e["bbox"] for e in entries]
        arr = np.array(raw) if raw else np.zeros((0, 4))
        if arr.ndim == 2 and arr.shape[1] == 4 and arr.dtype.kind in "iuf":
            arr = arr.astype(np.float64)
            if np.isfinite(arr).all() and (arr[:, 2:] >= 0).all():
                return arr
    except (KeyError, TypeError, ValueError):
        pass
    for i, e in enumerate(entries):
        bb = e["bbox"]
        ok = isinstance(bb, list | tuple) and len(bb) == 4 and all(_is_number(v) for v in bb)
        if not ok or bb[2] < 0 or bb[3] < 0:
            raise _bbox_error(src, label.format(i), bb)
    raise InputError(f"{src}: could not read the boxes as numbers.")  # pragma: no cover - the scan finds it


def _id_list(entries: Sequence[Any], src: str, section: str) -> list[Any]:
    ids = []
    for i, _ in enumerate(entries):
        e = _entry(entries, i, src, f"{section}[{i}]", ("id",))
        _check_id(e["id"], src, f"{section}[{i}]", "id")
        ids.append(e["id"])
    kinds = {type(v) for v in ids}
    if len(kinds) > 1:
        raise InputError(f"{src}: {section}: ids mix integers and strings; use one kind.")
    seen: dict[Any, int] = {}
    for i, v in enumerate(ids):
        if v in seen:
            raise InputError(f"{src}: {section}[{i}]: duplicate id {v!r} (first at {section}[{seen[v]}]).")
        seen[v] = i
    return ids


def _positions(values: list[Any], index: dict[Any, int]) -> np.ndarray:
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
    cat_ids_file = _id_list(cats, src, "categories")
    names = {c["id"]: str(c.get("name", c["id"])) for c in cats}
    cat_ids = sorted(cat_ids_file)
    anns = data["annotations"]
    for i in range(len(anns)):
        _entry(anns, i, src, f"annotations[{i}]", ("image_id", "category_id", "bbox"))
    boxes = _bbox_array(anns, src, "annotations[{}]")
    img_index = {v: i for i, v in enumerate(image_ids)}
    cat_index = {v: i for i, v in enumerate(cat_ids)}
    image = _positions([a["image_id"] for a in anns], img_index)
    category = _positions([a["category_id"] for a in anns], cat_index)
    for arr, fld, known in ((image, "image_id", "images"), (category, "category_id", "categories")):
        if (arr < 0).any():
            i = int(np.flatnonzero(arr < 0)[0])
            raise InputError(f"{src}: annotations[{i}]: field '{fld}' {anns[i][fld]!r} is not among the '{known}' ids.")
    area = boxes[:, 2] * boxes[:, 3]
    crowd = np.zeros(len(anns), dtype=bool)
    ann_ids: dict[Any, int] = {}
    for i, a in enumerate(anns):
        if "area" in a:
            if not _is_number(a["area"]):
                raise InputError(f"{src}: annotations[{i}]: field 'area' must be a finite number; got {a['area']!r}.")
            area[i] = a["area"]
        if "iscrowd" in a:
            if not (_is_number(a["iscrowd"]) or isinstance(a["iscrowd"], bool)) or a["iscrowd"] not in (0, 1):
                raise InputError(f"{src}: annotations[{i}]: field 'iscrowd' must be 0 or 1; got {a['iscrowd']!r}.")
            crowd[i] = bool(a["iscrowd"])
        if "id" in a:
            if a["id"] in ann_ids:
                raise InputError(
                    f"{src}: annotations[{i}]: duplicate id {a['id']!r} (first at annotations[{ann_ids[a['id']]}])."
                )
            ann_ids[a["id"]] = i
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
    for i in range(len(data)):
        e = _entry(data, i, src, f"entry {i}", ("image_id", "category_id", "bbox", "score"))
        if not _is_number(e["score"]):
            raise InputError(f"{src}: entry {i}: field 'score' must be a finite number; got {e['score']!r}.")
        for fld in ("image_id", "category_id"):
            _check_id(e[fld], src, f"entry {i}", fld)
    boxes = _bbox_array(data, src, "entry {}")
    image = _positions([d["image_id"] for d in data], gt.image_index())
    if (image < 0).any():
        i = int(np.flatnonzero(image < 0)[0])
        raise InputError(
            f"{src}: entry {i}: field 'image_id' {data[i]['image_id']!r} is not an image of {gt.source}; "
            "results must refer to images of the ground truth."
        )
    category = _positions([d["category_id"] for d in data], {c: k for k, c in enumerate(gt.category_ids)})
    score = np.array([d["score"] for d in data], dtype=np.float64)
    known = category >= 0
    return CocoPredictions(
        boxes=boxes[known],
        score=score[known],
        image=image[known],
        category=category[known],
        n_unknown_category=int((~known).sum()),
        source=src,
    )
