"""COCO JSON as grounding input: (image, finding) queries from a COCO annotation file.

The file is read and validated by :func:`medlens.metrics.load_coco_ground_truth` (errors name the section,
entry and field); on top of that grounding needs, for every image, ``width`` and ``height`` (the frame the
``<loc_k>`` bins are taken in) and uses ``file_name`` when present:

- the query's ``image_id`` is the file name without its suffix (``"a/b/p1.png"`` → ``"p1"``), the id the
  images folder and ``ground predict`` use; without ``file_name`` it is the COCO id as text;
- each category name is a finding of the knowledge base (a name or synonym; an unknown one is an error with a
  did-you-mean); boxes ``[x, y, w, h]`` become pixel ``xyxy``;
- a box outside its image's ``(width, height)`` is an error naming the annotation (a swapped (H, W) or resized
  image shows up here); ``iscrowd`` annotations are refused (a grounding query has no crowd regions);
- with an images folder, each image file must exist and its size must equal the JSON's.

Negative queries are added for every finding of the file's categories an image does not show, as for the
VinDr CSV (:func:`medlens.grounding.build_queries`).
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from medlens._validation import InputError, read_text_file

__all__ = ["coco_queries", "is_coco_file"]


def is_coco_file(path: str | PathLike[str]) -> bool:
    """A ``.json`` file is read as COCO; anything else as the VinDr CSV layout."""
    return Path(path).suffix.lower() == ".json"


def _read(path: str | PathLike[str]) -> dict[str, Any]:
    text = read_text_file(path, what="COCO file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a COCO file is a JSON object with images, annotations, categories.")
    return data


def _image_key(entry: dict[str, Any]) -> str:
    name = entry.get("file_name")
    if isinstance(name, str) and name.strip():
        return PurePosixPath(name.replace("\\", "/")).stem
    return str(entry["id"])


def coco_queries(
    path: str | PathLike[str],
    kb: Any,
    *,
    images: str | PathLike[str] | None = None,
    negatives: bool = True,
) -> list[dict[str, Any]]:
    """Queries ``{"image_id", "finding", "finding_split", "gold", "width", "height"[, "image"]}`` of a COCO file.

    ``images`` (a folder) adds each query's image path after checking the file's size against the JSON.
    """
    from medlens.metrics import load_coco_ground_truth

    data = _read(path)
    gt = load_coco_ground_truth(data)
    src = str(path)
    entries = {e["id"]: e for e in data["images"]}
    sizes: dict[Any, tuple[float, float]] = {}
    keys: dict[Any, str] = {}
    for i, e in enumerate(data["images"]):
        w, h = e.get("width"), e.get("height")
        ok = all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in (w, h))
        if not ok:
            raise InputError(
                f"{src}: images[{i}]: fields 'width' and 'height' must be positive numbers (the image's pixel "
                f"size); got width={w!r}, height={h!r}."
            )
        sizes[e["id"]] = (float(w), float(h))
        keys[e["id"]] = _image_key(e)
    seen: dict[str, Any] = {}
    for cid, k in keys.items():
        if k in seen:
            raise InputError(f"{src}: images {seen[k]!r} and {cid!r} have the same file name stem {k!r}; rename one.")
        seen[k] = cid
    names = {cid: kb.get(name).name for cid, name in zip(gt.category_ids, gt.category_names, strict=True)}
    if gt.crowd.any():
        i = int(np.flatnonzero(gt.crowd)[0])
        raise InputError(f"{src}: annotations[{i}]: iscrowd=1; grounding queries have no crowd regions, drop it.")
    boxes: dict[str, dict[str, list[list[float]]]] = {}
    for i, (b, im, c) in enumerate(zip(gt.boxes, gt.image, gt.category, strict=True)):
        img = gt.image_ids[int(im)]
        w, h = sizes[img]
        xyxy = [float(b[0]), float(b[1]), float(b[0] + b[2]), float(b[1] + b[3])]
        if xyxy[0] < 0 or xyxy[1] < 0 or xyxy[2] > w or xyxy[3] > h:
            raise InputError(
                f"{src}: annotations[{i}]: bbox {b.tolist()} (x, y, width, height) lies outside image {img!r} of "
                f"(width, height) = ({w:g}, {h:g}); check the box and the image size."
            )
        boxes.setdefault(keys[img], {}).setdefault(names[gt.category_ids[int(c)]], []).append(xyxy)
    paths: dict[str, Path] = {}
    if images is not None:
        from medlens.grounding._data import image_paths, image_sizes

        actual = image_sizes(images, sorted(keys.values()))
        for cid, k in keys.items():
            if tuple(float(v) for v in actual[k]) != sizes[cid]:
                raise InputError(
                    f"{src}: image {k!r} is {actual[k][0]}×{actual[k][1]} in {images} but "
                    f"{sizes[cid][0]:g}×{sizes[cid][1]:g} in the COCO file; use the images the boxes were drawn on."
                )
        paths = image_paths(images)
    vocab = sorted(set(names.values()))
    out = []
    for cid in sorted(entries, key=lambda c: keys[c]):
        k = keys[cid]
        marked = boxes.get(k, {})
        for f in vocab if negatives else sorted(marked):
            q: dict[str, Any] = {
                "image_id": k,
                "finding": f,
                "finding_split": kb.get(f).split,
                "gold": marked.get(f, []),
                "width": sizes[cid][0],
                "height": sizes[cid][1],
            }
            if paths:
                q["image"] = str(paths[k])
            out.append(q)
    return out
