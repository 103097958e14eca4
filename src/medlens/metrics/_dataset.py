"""Evaluation of COCO-format datasets (annotation file + result list) under either protocol.

``coco_evaluate`` reproduces pycocotools' ``COCOeval`` (bbox); ``voc11_evaluate`` applies the per-image
``nova-voc11`` protocol per category: for each category, the 11-point AP of every image that has gold boxes of
that category (``no_gold="skip"``) or of every image (``"score"``: AP 1 for an image with neither gold nor
predictions of the category, else 0), averaged over those images; mAP is the mean over categories that have
gold boxes. Crowd annotations have no place in VOC matching and are dropped there (counted).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from medlens._validation import InputError, check_interval, check_option
from medlens.metrics._coco import (
    COCO_AREA_RANGES,
    COCO_IOU_THRESHOLDS,
    CocoEvalResult,
    category_rows,
    coco_accumulate,
    coco_range_indices,
    find_threshold,
    headline_ap,
    thresholds_with,
)
from medlens.metrics._coco_io import CocoGroundTruth, CocoPredictions, load_coco_ground_truth, load_coco_predictions
from medlens.metrics._voc import NO_GOLD_RULES, PROTOCOL_VOC, voc11_units

__all__ = ["PerImageEvalResult", "coco_evaluate", "voc11_evaluate"]

GroundTruthLike = CocoGroundTruth | str | os.PathLike | Mapping[str, Any]
PredictionsLike = CocoPredictions | str | os.PathLike | Sequence[Any]


def _load(gt: GroundTruthLike, predictions: PredictionsLike) -> tuple[CocoGroundTruth, CocoPredictions]:
    g = gt if isinstance(gt, CocoGroundTruth) else load_coco_ground_truth(gt)
    p = predictions if isinstance(predictions, CocoPredictions) else load_coco_predictions(predictions, g)
    return g, p


def _check_thresholds(iou_thresholds: Sequence[float] | None) -> np.ndarray:
    if iou_thresholds is None:
        return COCO_IOU_THRESHOLDS.copy()
    thr = [
        float(check_interval(float(t), name="iou_thresholds", low=0, high=1, closed="right")) for t in iou_thresholds
    ]
    if not thr:
        raise InputError("iou_thresholds must hold at least one threshold in (0, 1].")
    return np.array(thr)


def _collapse(g: CocoGroundTruth, p: CocoPredictions, class_agnostic: bool) -> tuple:
    """Category positions, tie-break orders and category axis; class-agnostic keeps pycocotools' useCats=0 order."""
    if not class_agnostic:
        return g.category, p.category, None, None, g.category_ids, g.category_names
    # pycocotools (useCats=0) lists an image's boxes category by category, in file order within a category.
    gt_tb = np.lexsort((np.arange(len(g.category)), g.category))
    dt_tb = np.lexsort((np.arange(len(p.category)), p.category))
    gt_rank = np.empty_like(gt_tb)
    gt_rank[gt_tb] = np.arange(len(gt_tb))
    dt_rank = np.empty_like(dt_tb)
    dt_rank[dt_tb] = np.arange(len(dt_tb))
    zeros = (np.zeros(len(g.category), dtype=np.int64), np.zeros(len(p.category), dtype=np.int64))
    return zeros[0], zeros[1], gt_rank, dt_rank, ("all",), ("all categories",)


def coco_evaluate(
    gt: GroundTruthLike,
    predictions: PredictionsLike,
    *,
    iou_thresholds: Sequence[float] | None = None,
    area_ranges: Sequence[str] = ("all",),
    max_detections: int = 100,
    class_agnostic: bool = False,
) -> CocoEvalResult:
    """COCO pooled 101-point AP of COCO-format detections, equal to pycocotools' ``COCOeval`` for ``bbox``.

    Parameters
    ----------
    gt : path, dict or :class:`CocoGroundTruth`
        A COCO annotation file (images, annotations, categories).
    predictions : path, list or :class:`CocoPredictions`
        A COCO result list (``image_id``, ``category_id``, ``bbox`` as ``[x, y, w, h]``, ``score``).
    iou_thresholds : sequence of float, optional
        Default .5:.05:.95 (pycocotools' ``iouThrs``). Include them all to get ``ap()`` over the COCO range.
    area_ranges : subset of ``("all", "small", "medium", "large")``
        Area ranges to evaluate (each one re-matches, so only ``"all"`` by default).
    max_detections : int
        Highest-scoring detections kept per image and category (pycocotools' ``maxDets[-1]``).
    class_agnostic : bool
        Ignore categories (pycocotools' ``useCats=0``).

    Returns
    -------
    CocoEvalResult
        ``ap()`` = ``stats[0]``, ``ap(0.5)`` = ``stats[1]``, ``ap(0.75)`` = ``stats[2]``, ``ar()`` = ``stats[8]``.

    Examples
    --------
    >>> gt = {"images": [{"id": 1}], "categories": [{"id": 1, "name": "lesion"}],
    ...       "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100}]}
    >>> dets = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 8], "score": 0.9}]
    >>> r = coco_evaluate(gt, dets)
    >>> round(r.ap(), 4), round(r.ap(0.5), 4), r.ap(0.85)  # IoU 0.8: a hit up to the 0.8 threshold
    (0.7, 1.0, 0.0)
    """
    g, p = _load(gt, predictions)
    thr = _check_thresholds(iou_thresholds)
    for a in area_ranges:
        check_option(a, tuple(COCO_AREA_RANGES), name="area_ranges")
    if isinstance(max_detections, bool) or not isinstance(max_detections, int | np.integer) or max_detections < 1:
        raise InputError(f"max_detections must be a positive integer; got {max_detections!r}.")
    gcat, pcat, gt_tb, dt_tb, cat_ids, cat_names = _collapse(g, p, class_agnostic)
    precision, recall = coco_accumulate(
        gt_boxes=g.boxes,
        gt_image=g.image,
        gt_category=gcat,
        gt_area=g.area,
        gt_crowd=g.crowd,
        dt_boxes=p.boxes,
        dt_score=p.score,
        dt_image=p.image,
        dt_category=pcat,
        n_images=len(g.image_ids),
        n_categories=len(cat_ids),
        iou_thresholds=thr,
        area_ranges=tuple(area_ranges),
        max_detections=int(max_detections),
        gt_tiebreak=gt_tb,
        dt_tiebreak=dt_tb,
    )
    counts = {
        "n_images": len(g.image_ids),
        "n_categories": len(cat_ids),
        "n_gt": len(g.boxes),
        "n_gt_crowd": int(g.crowd.sum()),
        "n_pred": len(p.boxes),
        "n_pred_unknown_category": p.n_unknown_category,
        "gt_per_category": np.bincount(gcat, minlength=len(cat_ids)).tolist(),
    }
    return CocoEvalResult(
        precision, recall, thr, tuple(cat_ids), tuple(cat_names), tuple(area_ranges), int(max_detections), counts
    )


@dataclass(frozen=True)
class PerImageEvalResult:
    """Per-image VOC-11 evaluation of a COCO-format dataset: mean per-image AP per threshold and category.

    ``ap_per_category`` has shape (T, K), nan for categories without gold boxes.
    """

    ap_per_category: np.ndarray
    iou_thresholds: np.ndarray
    category_ids: tuple[Any, ...]
    category_names: tuple[str, ...]
    no_gold: str
    counts: dict[str, Any] = field(default_factory=dict)
    protocol: str = PROTOCOL_VOC

    def ap(self, iou: float | None = None, *, category: Any = None) -> float:
        """mAP at ``iou`` (``None``: mean over .5:.05:.95), over categories with gold or for one category."""
        t = coco_range_indices(self.iou_thresholds) if iou is None else [find_threshold(self.iou_thresholds, iou)]
        s = self.ap_per_category[np.asarray(t)]
        if category is not None:
            if category not in self.category_ids:
                raise InputError(f"unknown category {category!r}; known: {list(self.category_ids)[:20]}.")
            s = s[:, [self.category_ids.index(category)]]
        v = s[~np.isnan(s)]
        return float(v.mean()) if v.size else float("nan")

    def per_category(self) -> list[dict[str, Any]]:
        return category_rows(self)

    def to_dict(self, *, per_category: bool = False) -> dict[str, Any]:
        d = headline_ap(self)
        d["iou_thresholds"] = [round(float(t), 10) for t in self.iou_thresholds]
        d["no_gold"] = self.no_gold
        d.update({k: v for k, v in self.counts.items() if k != "gt_per_category"})
        if per_category:
            d["per_category"] = self.per_category()
        return d


def voc11_evaluate(
    gt: GroundTruthLike,
    predictions: PredictionsLike,
    *,
    iou_thresholds: Sequence[float] | None = None,
    no_gold: Literal["skip", "score"] = "skip",
    class_agnostic: bool = False,
) -> PerImageEvalResult:
    """Per-image 11-point AP (``nova-voc11``) of COCO-format detections, per category (see the module docstring).

    ``iou_thresholds`` defaults to 0.3 and .5:.05:.95 (NOVA reports mAP@0.3, @0.5 and @[.5:.95]).

    >>> gt = {"images": [{"id": 1}, {"id": 2}], "categories": [{"id": 1}],
    ...       "annotations": [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]},
    ...                       {"image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10]}]}
    >>> dets = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
    ...         {"image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 4], "score": 0.8}]
    >>> r = voc11_evaluate(gt, dets)
    >>> r.ap(0.5), r.ap(0.3)
    (0.5, 1.0)
    """
    check_option(no_gold, NO_GOLD_RULES, name="no_gold")
    g, p = _load(gt, predictions)
    thr = thresholds_with(0.3) if iou_thresholds is None else _check_thresholds(iou_thresholds)
    gcat, pcat, _, _, cat_ids, cat_names = _collapse(g, p, class_agnostic)
    n_i, n_k = len(g.image_ids), len(cat_ids)
    keep = ~g.crowd
    gold = g.boxes[keep]
    gold_xyxy = np.c_[gold[:, :2], gold[:, :2] + gold[:, 2:]]
    pred_xyxy = np.c_[p.boxes[:, :2], p.boxes[:, :2] + p.boxes[:, 2:]]
    gold_unit = g.image[keep] * n_k + gcat[keep]
    pred_unit = p.image * n_k + pcat
    m = voc11_units(gold_xyxy, gold_unit, pred_xyxy, pred_unit, p.score, n_i * n_k, thr)
    ap = m.ap.reshape(len(thr), n_i, n_k)
    has_gold = (m.n_gold > 0).reshape(n_i, n_k)
    if no_gold == "score":
        empty_ok = (m.n_pred == 0).reshape(n_i, n_k).astype(float)
        ap = np.where(has_gold[None], ap, empty_ok[None])
    scored = has_gold if no_gold == "skip" else np.ones_like(has_gold)
    defined = has_gold.any(axis=0)
    ap_cat = np.full((len(thr), n_k), np.nan)
    for k in np.flatnonzero(defined):
        ap_cat[:, k] = ap[:, scored[:, k], k].mean(axis=1)
    counts = {
        "n_images": n_i,
        "n_images_without_gold": int((~has_gold.any(axis=1)).sum()),
        "n_categories": n_k,
        "n_gt": int(keep.sum()),
        "n_gt_crowd_dropped": int(g.crowd.sum()),
        "n_pred": len(p.boxes),
        "n_pred_unknown_category": p.n_unknown_category,
        "gt_per_category": np.bincount(gcat[keep], minlength=n_k).tolist(),
    }
    return PerImageEvalResult(ap_cat, thr, tuple(cat_ids), tuple(cat_names), no_gold, counts)
