"""COCO-style pooled average precision (101-point interpolation), value for value as pycocotools' ``COCOeval``.

What pycocotools does for ``iouType="bbox"`` and what we reproduce exactly:

- IoU on ``xywh`` boxes with right edge ``x + w`` (no +1 pixel); a crowd region's union is the detection area.
- Per (image, category): detections sorted by score with a stable sort (ties keep file order), the first
  ``max_detections`` kept. Each detection, in that order, takes the still-unmatched ground truth with the
  highest IoU >= t (ties: the later annotation); a regular ground truth beats an ignored one; crowd regions can
  be matched again. A ground truth is ignored when it is a crowd region or its ``area`` field lies outside the
  area range; a detection matched to an ignored ground truth, or unmatched and outside the area range, is
  ignored (neither TP nor FP).
- Per category: all detections pooled, sorted by score with a stable sort over images in ascending id order;
  precision made monotone from the right; read at the 101 recall points ``0:.01:1`` with
  ``searchsorted(side="left")`` (0 past the last recall). Categories without non-ignored ground truth are
  undefined (-1 in pycocotools, left out of every mean).
- mAP = mean of the defined precision values over thresholds, recall points and categories.

Two deliberate differences: an annotation whose ``id`` is 0 counts as matched here (pycocotools mistakes
``dtMatches == 0`` for "unmatched"), and undefined values are ``nan`` rather than -1.

The work is vectorised: IoU over all same-group pairs at once, matching by rank level across all groups
(see ``_matching``), one sort per category and cumulative sums for the accumulation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medlens._validation import InputError, check_interval, check_option
from medlens.metrics._boxes import iou_pairs_coco
from medlens.metrics._matching import greedy_match, group_pairs, rank_within_groups

__all__ = [
    "COCO_AREA_RANGES",
    "COCO_IOU_THRESHOLDS",
    "COCO_RECALL_THRESHOLDS",
    "CocoEvalResult",
    "coco_accumulate",
    "thresholds_with",
]

# Same construction as pycocotools (np.arange drifts; linspace gives exactly .5 and .75).
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
COCO_AREA_RANGES: dict[str, tuple[float, float]] = {
    "all": (0**2, 1e5**2),
    "small": (0**2, 32**2),
    "medium": (32**2, 96**2),
    "large": (96**2, 1e5**2),
}


def thresholds_with(*extra: float) -> np.ndarray:
    """The COCO thresholds .5:.05:.95 plus ``extra`` ones, sorted, duplicates removed."""
    values = [float(check_interval(float(t), name="iou threshold", low=0, high=1, closed="right")) for t in extra]
    out = list(COCO_IOU_THRESHOLDS)
    for v in values:
        if not np.isclose(out, v, rtol=0, atol=1e-12).any():
            out.append(v)
    return np.array(sorted(out))


def find_threshold(thresholds: np.ndarray, iou: float) -> int:
    hit = np.flatnonzero(np.isclose(thresholds, iou, rtol=0, atol=1e-9))
    if len(hit) == 0:
        have = ", ".join(f"{t:g}" for t in thresholds)
        raise InputError(f"no results at IoU {iou:g}; evaluated thresholds are {have}. Pass it in iou_thresholds.")
    return int(hit[0])


def coco_range_indices(thresholds: np.ndarray) -> np.ndarray:
    idx = [find_threshold(thresholds, t) for t in COCO_IOU_THRESHOLDS]
    return np.array(idx)


def _mean_defined(s: np.ndarray) -> float:
    """pycocotools' ``np.mean(s[s > -1])`` with ``nan`` instead of -1 when nothing is defined."""
    v = s[s > -1]
    return float(np.mean(v)) if v.size else float("nan")


@dataclass(frozen=True)
class CocoEvalResult:
    """Accumulated COCO evaluation (the content of pycocotools' ``COCOeval.eval``, for maxDets = ``max_detections``).

    Attributes
    ----------
    precision : array of shape (T, 101, K, A)
        Interpolated precision per IoU threshold, recall point, category and area range; -1 where undefined.
    recall : array of shape (T, K, A)
        Final recall (AR contribution) per threshold, category and area range; -1 where undefined.
    iou_thresholds, category_ids, category_names, area_ranges, max_detections : the evaluation axes.
    counts : numbers of images, ground truths, detections and dropped detections.
    """

    precision: np.ndarray
    recall: np.ndarray
    iou_thresholds: np.ndarray
    category_ids: tuple[Any, ...]
    category_names: tuple[str, ...]
    area_ranges: tuple[str, ...]
    max_detections: int
    counts: dict[str, int] = field(default_factory=dict)
    protocol: str = "coco101"

    def _select(self, arr: np.ndarray, iou: float | None, area: str, category: Any) -> np.ndarray:
        check_option(area, self.area_ranges, name="area")
        a = self.area_ranges.index(area)
        t = coco_range_indices(self.iou_thresholds) if iou is None else [find_threshold(self.iou_thresholds, iou)]
        s = arr[np.asarray(t)]
        s = s[..., a]
        if category is not None:
            if category not in self.category_ids:
                raise InputError(f"unknown category {category!r}; known: {list(self.category_ids)[:20]}.")
            s = s[..., [self.category_ids.index(category)]]
        return s

    def ap(self, iou: float | None = None, *, area: str = "all", category: Any = None) -> float:
        """Mean AP at ``iou`` (``None``: over .5:.05:.95) for an area range and one or all categories (nan if undefined).

        Equals pycocotools' ``stats[0]`` (``iou=None``), ``stats[1]`` (0.5), ``stats[2]`` (0.75), ``stats[3:6]``
        (``area="small" | "medium" | "large"``).
        """
        return _mean_defined(self._select(self.precision, iou, area, category))

    def ar(self, iou: float | None = None, *, area: str = "all", category: Any = None) -> float:
        """Mean recall at ``max_detections`` (pycocotools' ``stats[8]`` for the defaults; nan if undefined)."""
        return _mean_defined(self._select(self.recall, iou, area, category))

    def per_category(self) -> list[dict[str, Any]]:
        """One row per category: id, name, ground-truth count, AP over .5:.95, at 0.5 and 0.75 (and 0.3 when evaluated)."""
        return category_rows(self)

    def to_dict(self, *, per_category: bool = False) -> dict[str, Any]:
        """Headline numbers with stable keys (``map``, ``map50``, ``map75``, ``mar100``, …); nan where undefined."""
        d = headline_ap(self)
        for area in ("small", "medium", "large"):
            if area in self.area_ranges:
                d[f"map_{area}"] = self.ap(area=area)
        d[f"mar{self.max_detections}"] = self.ar()
        d["iou_thresholds"] = [round(float(t), 10) for t in self.iou_thresholds]
        d["max_detections"] = self.max_detections
        d.update({k: v for k, v in self.counts.items() if k != "gt_per_category"})
        if per_category:
            d["per_category"] = self.per_category()
        return d


def _evaluated_at(result: Any, iou: float) -> bool:
    return bool(np.isclose(result.iou_thresholds, iou, atol=1e-9).any())


def headline_ap(result: Any) -> dict[str, Any]:
    """``protocol``, ``map`` (.5:.95), ``map50``, ``map75`` and ``map30`` when evaluated, of a result with ``ap``."""
    d: dict[str, Any] = {"protocol": result.protocol, "map": result.ap(), "map50": result.ap(0.5)}
    d["map75"] = result.ap(0.75)
    if _evaluated_at(result, 0.3):
        d["map30"] = result.ap(0.3)
    return d


def category_rows(result: Any) -> list[dict[str, Any]]:
    """One row per category of a result with ``ap(iou, category=)``: id, name, n_gt, map, map50, map75 (map30)."""
    n_gt = result.counts.get("gt_per_category", [None] * len(result.category_ids))
    rows = []
    for k, (cid, name) in enumerate(zip(result.category_ids, result.category_names, strict=True)):
        row = {"id": cid, "name": name, "n_gt": n_gt[k], "map": result.ap(category=cid)}
        row["map50"] = result.ap(0.5, category=cid)
        row["map75"] = result.ap(0.75, category=cid)
        if _evaluated_at(result, 0.3):
            row["map30"] = result.ap(0.3, category=cid)
        rows.append(row)
    return rows


def coco_accumulate(
    *,
    gt_boxes: np.ndarray,
    gt_image: np.ndarray,
    gt_category: np.ndarray,
    gt_area: np.ndarray,
    gt_crowd: np.ndarray,
    dt_boxes: np.ndarray,
    dt_score: np.ndarray,
    dt_image: np.ndarray,
    dt_category: np.ndarray,
    n_images: int,
    n_categories: int,
    iou_thresholds: np.ndarray = COCO_IOU_THRESHOLDS,
    area_ranges: Sequence[str] = ("all",),
    max_detections: int = 100,
    gt_tiebreak: np.ndarray | None = None,
    dt_tiebreak: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Core of the COCO evaluation on flat arrays; returns ``(precision (T, R, K, A), recall (T, K, A))``.

    Boxes are ``xywh``; images and categories are positions (images in ascending-id order, as pycocotools
    sorts them); ``*_tiebreak`` give the order of equal items inside a group (default: input order).
    """
    thr = np.asarray(iou_thresholds, dtype=np.float64)
    n_t, n_r, n_k, n_a = len(thr), len(COCO_RECALL_THRESHOLDS), n_categories, len(area_ranges)
    precision = -np.ones((n_t, n_r, n_k, n_a))
    recall = -np.ones((n_t, n_k, n_a))
    gt_tb = np.arange(len(gt_boxes)) if gt_tiebreak is None else gt_tiebreak
    dt_tb = np.arange(len(dt_boxes)) if dt_tiebreak is None else dt_tiebreak
    # Keep the first max_detections detections of each (image, category) by stable score order.
    dt_group = dt_image.astype(np.int64) * n_k + dt_category
    rank, _ = rank_within_groups(dt_group, dt_tb, -dt_score)
    keep = rank < max_detections
    dt_boxes, dt_score, dt_image, dt_category = dt_boxes[keep], dt_score[keep], dt_image[keep], dt_category[keep]
    dt_group, rank, dt_tb = dt_group[keep], rank[keep], dt_tb[keep]
    gt_group = gt_image.astype(np.int64) * n_k + gt_category
    # Gold boxes in pycocotools' within-group order, so that "later annotation wins" ties follow it.
    gt_pos = np.empty(len(gt_tb), dtype=np.int64)
    gt_pos[np.lexsort((gt_tb, gt_group))] = np.arange(len(gt_tb))
    d_idx, g_idx = group_pairs(dt_group, gt_group, n_images * n_k)
    iou = iou_pairs_coco(dt_boxes[d_idx], gt_boxes[g_idx], gt_crowd[g_idx])
    eff = np.minimum(thr, 1 - 1e-10)
    cand = iou >= eff.min()
    d_idx, g_idx, iou = d_idx[cand], g_idx[cand], iou[cand]
    # One global order for the accumulation: category, then score (stable over images, then within-image order).
    order = np.lexsort((rank, dt_image, -dt_score, dt_category))
    cat_sorted = dt_category[order]
    cat_bounds = np.searchsorted(cat_sorted, np.arange(n_k + 1))
    dt_area = dt_boxes[:, 2] * dt_boxes[:, 3]
    for a, label in enumerate(area_ranges):
        lo, hi = COCO_AREA_RANGES[label]
        gt_ignore = gt_crowd | (gt_area < lo) | (gt_area > hi)
        match = greedy_match(
            d_idx,
            g_idx,
            iou,
            rank,
            eff,
            len(dt_boxes),
            len(gt_boxes),
            priority=(gt_pos[g_idx], iou, ~gt_ignore[g_idx]),
            reusable=gt_crowd,
        )
        matched = match >= 0
        matched_ignored = np.append(gt_ignore, False)[match]  # match -1 reads the appended False
        dt_ignore = np.where(matched, matched_ignored, (dt_area < lo) | (dt_area > hi))
        tps = (matched & ~dt_ignore)[:, order]
        fps = (~matched & ~dt_ignore)[:, order]
        npig = np.bincount(gt_category[~gt_ignore], minlength=n_k)
        for k in range(n_k):
            if npig[k] == 0:
                continue
            s, e = cat_bounds[k], cat_bounds[k + 1]
            precision[:, :, k, a], recall[:, k, a] = _accumulate_category(tps[:, s:e], fps[:, s:e], npig[k])
    return precision, recall


def _accumulate_category(tps: np.ndarray, fps: np.ndarray, npig: int) -> tuple[np.ndarray, np.ndarray]:
    """Interpolated precision at the 101 recall points and final recall, for every threshold (rows)."""
    n_t, nd = tps.shape
    q = np.zeros((n_t, len(COCO_RECALL_THRESHOLDS)))
    if nd == 0:
        return q, np.zeros(n_t)
    tp = np.cumsum(tps, axis=1).astype(float)
    fp = np.cumsum(fps, axis=1).astype(float)
    rc = tp / npig
    pr = tp / (fp + tp + np.spacing(1))
    pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
    for t in range(n_t):
        inds = np.searchsorted(rc[t], COCO_RECALL_THRESHOLDS, side="left")
        inside = inds < nd
        q[t, inside] = pr[t, inds[inside]]
    return q, rc[:, -1]
