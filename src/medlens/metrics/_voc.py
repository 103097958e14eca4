"""Per-image 11-point (PASCAL VOC 2007) average precision: the NOVA-compatible protocol ``nova-voc11``.

For each unit (an image, or an image and a category) separately:

1. predictions are ordered by score, highest first, with a stable sort (equal scores, or no scores at all,
   keep the given order);
2. each prediction in turn is matched to the still-unmatched gold box with the highest IoU (ties: the gold box
   listed first) and is a true positive when that IoU is >= t; otherwise it is a false positive;
3. after the k-th prediction, precision = TP_k / k and recall = TP_k / n_gold;
4. AP = (1/11) * sum over r in {0, 0.1, ..., 1} of the highest precision at a recall >= r (0 if none).
   The recall points are exactly j/10, so a recall of 3/10 reaches the 0.3 point (``np.arange(0, 1.1, 0.1)``
   gives 0.30000000000000004 and would miss it).

A unit with gold boxes and no predictions has AP 0. Units without gold boxes have no AP here; the callers
apply the documented ``no_gold`` rule. The mAP is the mean of the per-unit APs (not a pooled curve).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medlens.metrics._boxes import iou_pairs_xyxy
from medlens.metrics._matching import greedy_match, group_pairs, rank_within_groups

__all__ = ["NO_GOLD_RULES", "PROTOCOL_VOC", "VOC_RECALL_POINTS", "UnitMatches", "voc11_units"]

PROTOCOL_VOC = "nova-voc11"
NO_GOLD_RULES = ("skip", "score")
VOC_RECALL_POINTS = np.arange(11) / 10


@dataclass(frozen=True)
class UnitMatches:
    """Per-unit VOC-11 APs and the greedy matches behind them.

    ``ap`` has shape (T, n_units) with nan for units without gold; ``tp`` (T, n_pred) flags true positives in
    input order; ``rank`` is each prediction's position inside its unit (0 = top-scoring).
    """

    thresholds: np.ndarray
    ap: np.ndarray
    n_gold: np.ndarray
    n_pred: np.ndarray
    tp: np.ndarray
    rank: np.ndarray
    top_iou: np.ndarray  # (n_units,) best IoU of the top-ranked prediction with any gold box (0 if none)


def voc11_units(
    gold: np.ndarray,
    gold_unit: np.ndarray,
    pred: np.ndarray,
    pred_unit: np.ndarray,
    pred_score: np.ndarray,
    n_units: int,
    thresholds: np.ndarray,
) -> UnitMatches:
    """Per-unit 11-point AP at every threshold for flat ``xyxy`` arrays (see the module docstring)."""
    thr = np.asarray(thresholds, dtype=np.float64)
    n_t, n_p = len(thr), len(pred)
    n_gold = np.bincount(gold_unit, minlength=n_units)
    n_pred = np.bincount(pred_unit, minlength=n_units)
    rank, order = rank_within_groups(pred_unit, -pred_score)
    d_idx, g_idx = group_pairs(pred_unit, gold_unit, n_units)
    iou = iou_pairs_xyxy(pred[d_idx], gold[g_idx])
    top_iou = np.zeros(n_units)
    top = rank[d_idx] == 0
    np.maximum.at(top_iou, pred_unit[d_idx[top]], iou[top])
    cand = iou >= thr.min()
    d_idx, g_idx, iou = d_idx[cand], g_idx[cand], iou[cand]
    match = greedy_match(d_idx, g_idx, iou, rank, thr, n_p, len(gold), priority=(-g_idx, iou))
    tp = match >= 0
    ap = np.full((n_t, n_units), np.nan)
    ap[:, n_gold > 0] = 0.0
    if n_p:
        units = pred_unit[order]
        starts = np.flatnonzero(np.r_[True, units[1:] != units[:-1]])
        seg = np.cumsum(np.r_[True, units[1:] != units[:-1]]) - 1
        cs = np.cumsum(tp[:, order], axis=1)
        before = np.where(starts > 0, cs[:, np.maximum(starts - 1, 0)], 0)
        cum = (cs - before[:, seg]).astype(np.float64)
        prec = cum / (rank[order] + 1)
        ng = n_gold[units].astype(np.float64)
        rec = np.divide(cum, ng, out=np.full_like(cum, -1.0), where=ng > 0)
        ap_seg = np.zeros((n_t, len(starts)))
        for r in VOC_RECALL_POINTS:
            ap_seg += np.maximum.reduceat(np.where(rec >= r, prec, 0.0), starts, axis=1)
        ap_seg /= 11.0  # sum first: 11 perfect points give exactly 1.0
        seg_units = units[starts]
        has_gold = n_gold[seg_units] > 0
        ap[:, seg_units[has_gold]] = ap_seg[:, has_gold]
    return UnitMatches(thr, ap, n_gold, n_pred, tp, rank, top_iou)
