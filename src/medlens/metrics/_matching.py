"""Vectorised greedy box matching shared by the per-image (VOC) and pooled (COCO) protocols.

Detections and gold boxes belong to *groups* (an image, or an image and a category). Inside a group the
detections are processed in rank order (highest score first); each takes the best still-unmatched gold box
whose IoU reaches the threshold. Instead of looping over images, the loop runs over rank levels: at level
``r`` the ``r``-th detection of *every* group is matched at once (detections of one level never share a
group, so they never compete). All IoU thresholds are matched together.
"""

from __future__ import annotations

import numpy as np

__all__ = ["group_pairs", "greedy_match", "rank_within_groups"]


def rank_within_groups(group: np.ndarray, *sort_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank of each item inside its group, ordering by ``sort_keys`` (most significant last, as ``np.lexsort``).

    Returns ``(rank, order)`` where ``order`` sorts the items by (group, keys) and ``rank[i]`` counts the items
    of ``i``'s group that come before it. Ties left by the keys keep the input order (the sort is stable).
    """
    n = len(group)
    order = np.lexsort((np.arange(n), *sort_keys, group))
    g = group[order]
    first = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if n else np.zeros(0, dtype=np.int64)
    starts = np.repeat(first, np.diff(np.r_[first, n]))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts
    return rank, order


def group_pairs(det_group: np.ndarray, gt_group: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (detection, gold) index pair that shares a group; gold boxes of a group in input order."""
    gt_order = np.argsort(gt_group, kind="stable")
    counts = np.bincount(gt_group, minlength=n_groups)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    reps = counts[det_group]
    total = int(reps.sum())
    det_idx = np.repeat(np.arange(len(det_group)), reps)
    offsets = np.arange(total) - np.repeat(np.cumsum(reps) - reps, reps)
    gt_idx = gt_order[np.repeat(starts[det_group], reps) + offsets]
    return det_idx, gt_idx


def greedy_match(
    det_idx: np.ndarray,
    gt_idx: np.ndarray,
    iou: np.ndarray,
    det_rank: np.ndarray,
    thresholds: np.ndarray,
    n_det: int,
    n_gt: int,
    priority: tuple[np.ndarray, ...],
    reusable: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy matching at every threshold; returns the matched gold index per ``(threshold, detection)`` (-1: none).

    Parameters
    ----------
    det_idx, gt_idx, iou : arrays of shape (n_pairs,)
        Candidate pairs (only pairs of one group) and their IoU.
    det_rank : array of shape (n_det,)
        Processing order of each detection inside its group (0 first).
    thresholds : array of shape (T,)
        A pair is a candidate at threshold ``t`` when ``iou >= t``.
    priority : tuple of arrays of shape (n_pairs,)
        Among the candidates of a detection the pair with the lexicographically largest key wins (keys listed
        least significant first, as ``np.lexsort``).
    reusable : bool array of shape (n_gt,), optional
        Gold boxes that may be matched more than once (COCO crowd regions).
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    n_t = len(thresholds)
    match = np.full((n_t, n_det), -1, dtype=np.int64)
    if len(det_idx) == 0:
        return match
    rank = det_rank[det_idx]
    order = np.lexsort((*priority, det_idx, rank))
    det_idx, gt_idx, rank = det_idx[order], gt_idx[order], rank[order]
    ok = iou[order][:, None] >= thresholds[None, :]
    reuse = reusable[gt_idx][:, None] if reusable is not None else None
    bounds = np.searchsorted(rank, np.arange(int(rank[-1]) + 2))
    taken = np.zeros((n_t, n_gt), dtype=bool)
    for lv in range(len(bounds) - 1):
        a, b = bounds[lv], bounds[lv + 1]
        if a == b:
            continue
        d, g = det_idx[a:b], gt_idx[a:b]
        free = ~taken[:, g].T
        if reuse is not None:
            free |= reuse[a:b]
        valid = ok[a:b] & free
        seg = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
        pos = np.where(valid, np.arange(b - a)[:, None], -1)
        best = np.maximum.reduceat(pos, seg, axis=0)
        s_idx, t_idx = np.nonzero(best >= 0)
        p = best[s_idx, t_idx]
        match[t_idx, d[p]] = g[p]
        taken[t_idx, g[p]] = True
    return match
