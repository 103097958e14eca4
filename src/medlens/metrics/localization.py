"""Pixel-level anomaly localisation metrics, in NumPy: AUPRC and AUROC equal to scikit-learn's
``average_precision_score`` and ``roc_auc_score`` (weighted too), Dice pooled and per image, the three ways to
pick a binarisation threshold, and lesion-size strata.

Truth is binary (``> 0`` is a lesion pixel); scores are any finite reals. A pixel is predicted positive when its
score is **strictly above** the threshold, everywhere in this module.

Thresholds (Bercea et al.'s review; pDDPM; THOR):

- :func:`threshold_at_fpr` — fitted on *healthy* images only: the smallest score ``τ`` with at most a
  fraction ``fpr`` of healthy pixels above it. Needs no labels; the honest default.
- :func:`best_dice_threshold` on a labelled *validation* split, then applied to the test set.
- :func:`best_dice_threshold` on the *test* set itself: an **oracle** (optimistic); report it labelled so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medlens._results import check_sample_weight
from medlens._validation import InputError, check_interval

__all__ = [
    "PixelCurve",
    "best_dice_threshold",
    "dice_per_image",
    "dice_score",
    "lesion_size_strata",
    "pixel_auprc",
    "pixel_auroc",
    "threshold_at_fpr",
]


def _flat(y_true: Any, y_score: Any, sample_weight: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.asarray(y_true)
    s = np.asarray(y_score, dtype=np.float64)
    if t.shape != s.shape:
        raise InputError(f"truth and scores must have the same shape; got {t.shape} and {s.shape}.")
    if t.size == 0:
        raise InputError("no pixels to score: truth and scores are empty.")
    if not np.isfinite(s).all():
        raise InputError("scores contain NaN or infinite values; every pixel needs a finite score.")
    if t.dtype.kind == "f" and not np.isfinite(t).all():
        raise InputError("truth contains NaN values; masks must be 0/1 (or boolean) everywhere.")
    y = (t.reshape(-1) > 0).astype(np.float64)
    w = np.ones(y.size) if sample_weight is None else check_sample_weight(np.asarray(sample_weight).reshape(-1), y.size)
    return y, s.reshape(-1), np.asarray(w, dtype=np.float64)


class PixelCurve:
    """Scores sorted once, for AUPRC/AUROC under many weightings (bootstrap resamples reweight the same pixels).

    ``auprc(w)``/``auroc(w)`` take one weight per pixel (``None``: all 1) and give exactly
    :func:`pixel_auprc`/:func:`pixel_auroc` with that ``sample_weight``.
    """

    def __init__(self, y_true: Any, y_score: Any) -> None:
        y, s, _ = _flat(y_true, y_score)
        self.order = np.argsort(-s, kind="mergesort")
        self.y = y[self.order]
        self.last = np.r_[np.nonzero(np.diff(s[self.order]))[0], y.size - 1]

    def counts(self, w: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Weighted true/false positive sums of ``score ≥ value`` at each distinct score, descending."""
        ws = np.ones(self.y.size) if w is None else np.asarray(w, dtype=np.float64)[self.order]
        return np.cumsum(self.y * ws)[self.last], np.cumsum((1 - self.y) * ws)[self.last]

    def auprc(self, w: Any = None) -> float:
        return self._auprc(*self.counts(w))

    def auroc(self, w: Any = None) -> float:
        return self._auroc(*self.counts(w))

    def areas(self, w: Any = None) -> tuple[float, float]:
        """``(auprc(w), auroc(w))`` from one pass over the sorted pixels (a bootstrap resample needs both)."""
        tps, fps = self.counts(w)
        return self._auprc(tps, fps), self._auroc(tps, fps)

    @staticmethod
    def _auprc(tps: np.ndarray, fps: np.ndarray) -> float:
        if tps[-1] <= 0:
            return float("nan")
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(tps + fps > 0, tps / np.where(tps + fps > 0, tps + fps, 1.0), 0.0)
        return float(np.sum(np.diff(np.r_[0.0, tps / tps[-1]]) * precision))

    @staticmethod
    def _auroc(tps: np.ndarray, fps: np.ndarray) -> float:
        if tps[-1] <= 0 or fps[-1] <= 0:
            return float("nan")
        return float(np.trapezoid(np.r_[0.0, tps / tps[-1]], np.r_[0.0, fps / fps[-1]]))


def pixel_auprc(y_true: Any, y_score: Any, *, sample_weight: Any = None) -> float:
    """Average precision ``Σ_k (R_k − R_{k−1})·P_k`` over the distinct scores (scikit-learn's
    ``average_precision_score``, no interpolation); NaN when there is no positive pixel.

    >>> pixel_auprc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.8333333333333333
    """
    y, s, w = _flat(y_true, y_score, sample_weight)
    return PixelCurve(y, s).auprc(w)


def pixel_auroc(y_true: Any, y_score: Any, *, sample_weight: Any = None) -> float:
    """Area under the ROC curve (trapezoids over the distinct scores; ties count half, as scikit-learn's
    ``roc_auc_score``); NaN when only one class is present.

    >>> pixel_auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y, s, w = _flat(y_true, y_score, sample_weight)
    return PixelCurve(y, s).auroc(w)


def dice_score(y_true: Any, y_pred: Any, *, sample_weight: Any = None) -> float:
    """Pooled Dice ``2·|P∩G| / (|P| + |G|)`` over all pixels of all images (THOR's "Dice"; weights per pixel);
    1.0 when both are empty.

    >>> dice_score([[0, 1, 1, 0]], [[0, 1, 0, 1]])
    0.5
    """
    y, p, w = _flat(y_true, np.asarray(y_pred, dtype=float), sample_weight)
    p = (p > 0).astype(float)
    den = float(np.sum(w * (y + p)))
    return 1.0 if den == 0 else float(2 * np.sum(w * y * p) / den)


def dice_per_image(y_true: Any, y_pred: Any) -> np.ndarray:
    """Dice of each image (first axis) on its own; NaN for an image where truth and prediction are both empty
    (pDDPM's per-volume Dice averages the images that have a lesion)."""
    t = np.asarray(y_true) > 0
    p = np.asarray(y_pred) > 0
    if t.shape != p.shape or t.ndim < 2:
        raise InputError(f"truth and predictions must be (N, ...) of the same shape; got {t.shape} and {p.shape}.")
    t, p = t.reshape(len(t), -1), p.reshape(len(p), -1)
    den = t.sum(1) + p.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 2.0 * (t & p).sum(1) / den, np.nan)


def threshold_at_fpr(healthy_scores: Any, fpr: float = 0.05) -> float:
    """The smallest healthy score ``τ`` with at most ``⌊fpr·n⌋`` of the ``n`` healthy pixels strictly above it,
    so that the healthy pixel FPR of ``score > τ`` is ≤ ``fpr``.

    >>> threshold_at_fpr(np.arange(100), 0.05)
    94.0
    """
    check_interval(fpr, name="fpr", low=0.0, high=1.0, closed="left")
    h = np.sort(np.asarray(healthy_scores, dtype=np.float64).reshape(-1))
    if h.size == 0:
        raise InputError("no healthy pixels to fit the FPR threshold on; give healthy images.")
    if not np.isfinite(h).all():
        raise InputError("healthy scores contain NaN or infinite values.")
    k = int(np.floor(fpr * h.size + 1e-9))
    return float(h[h.size - 1 - k])


def best_dice_threshold(y_true: Any, y_score: Any, *, thresholds: Any = None) -> tuple[float, float]:
    """``(τ, Dice)`` maximising the pooled Dice of ``score > τ`` over ``thresholds`` (default: every distinct
    score, plus one below the minimum so that "all pixels" is a candidate). Exact, in one sort.

    >>> best_dice_threshold([0, 1, 1, 0], [0.1, 0.9, 0.7, 0.3])
    (0.3, 1.0)
    """
    y, s, w = _flat(y_true, y_score)
    order = np.sort(s)
    if thresholds is None:
        cand = np.r_[np.nextafter(order[0], -np.inf), np.unique(s)]
    else:
        cand = np.unique(np.asarray(thresholds, dtype=np.float64).reshape(-1))
        if cand.size == 0 or not np.isfinite(cand).all():
            raise InputError("thresholds must be a non-empty list of finite numbers.")
    pos_scores = np.sort(s[y > 0])
    above = s.size - np.searchsorted(order, cand, side="right")  # predicted positives per τ
    tp = pos_scores.size - np.searchsorted(pos_scores, cand, side="right")
    den = above + pos_scores.size
    dice = np.where(den > 0, 2.0 * tp / np.maximum(den, 1), 1.0)
    i = int(np.argmax(dice))
    return float(cand[i]), float(dice[i])


def lesion_size_strata(
    masks: Any, *, quantiles: tuple[float, float] = (0.25, 0.75), edges: tuple[float, float] | None = None
) -> dict[str, Any]:
    """Lesion-area strata per image (THOR/autoDDPM): ``small`` (area ≤ low edge), ``medium``, ``large``
    (area > high edge), ``""`` for images without a lesion. The edges are the ``quantiles`` of the lesion
    areas (pixels per image, over images with a lesion) unless given. Returns ``{"edges", "areas", "strata"}``.
    """
    m = np.asarray(masks) > 0
    if m.ndim < 2 or len(m) == 0:
        raise InputError(f"masks must be a non-empty batch (N, ...); got shape {m.shape}.")
    areas = m.reshape(len(m), -1).sum(1)
    lesion = areas > 0
    if edges is None:
        if not lesion.any():
            raise InputError("no image has a lesion, so lesion-size strata are undefined.")
        lo, hi = (float(q) for q in np.quantile(areas[lesion], quantiles))
    else:
        lo, hi = (float(e) for e in edges)
    strata = np.where(~lesion, "", np.where(areas <= lo, "small", np.where(areas <= hi, "medium", "large")))
    return {"edges": [lo, hi], "areas": areas.astype(np.int64), "strata": strata.tolist()}
