"""Evaluating anomaly maps against lesion masks: pixel AUPRC/AUROC, Dice pooled and per image at a threshold
fitted on healthy data (default), on a validation split, or on the test set itself (the oracle), image-level
AUROC, lesion-size strata, and percentile-bootstrap intervals over test images.

The intervals resample test *images* (all their pixels together) with :func:`medlens.hierarchy.bootstrap_counts`;
thresholds fitted on healthy or validation data stay fixed across resamples, so the intervals reflect test
sampling only. A resample where a metric is undefined (no lesion image, for AUPRC) is left out of that
metric's interval rather than scored 0. Every test image counts: none is skipped (unlike evaluators that keep a hand-picked slice list).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medlens._validation import InputError, check_interval
from medlens.hierarchy import bootstrap_counts
from medlens.metrics import PixelCurve, best_dice_threshold, dice_per_image, lesion_size_strata, threshold_at_fpr

__all__ = ["ORACLE_LABEL", "evaluate_localization"]

ORACLE_LABEL = "oracle: best threshold on the test set itself (optimistic; not a deployable threshold)"


def _check(maps: Any, masks: Any, what: str = "maps") -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(maps, dtype=np.float64)
    t = np.asarray(masks) > 0
    if m.ndim < 2 or len(m) == 0:
        raise InputError(f"{what} must be a non-empty batch (N, ...); got shape {m.shape}.")
    if m.shape != t.shape:
        raise InputError(f"{what} {m.shape} and their masks {t.shape} must have the same shape.")
    if not np.isfinite(m).all():
        raise InputError(f"{what} contain NaN or infinite values.")
    return m.reshape(len(m), -1), t.reshape(len(t), -1)


def _ci(rows: list[float], ci: float) -> list[float]:
    a = np.asarray(rows, dtype=float)
    a = a[np.isfinite(a)]
    if not len(a):
        return [float("nan"), float("nan")]
    lo = (1 - ci) / 2
    return [float(np.quantile(a, lo)), float(np.quantile(a, 1 - lo))]


def _at_threshold(m: np.ndarray, t: np.ndarray, tau: float) -> dict[str, np.ndarray]:
    """Per-image counts at ``score > tau``: 2·TP, |P| + |G|, FP, negatives, Dice."""
    p = m > tau
    tp = (p & t).sum(1).astype(float)
    return {
        "dice_num": 2 * tp,
        "dice_den": (p.sum(1) + t.sum(1)).astype(float),
        "fp": (p & ~t).sum(1).astype(float),
        "neg": (~t).sum(1).astype(float),
        "dice_image": dice_per_image(t, p),
        "has_lesion": t.any(axis=1).astype(float),
    }


def _summary(c: dict[str, np.ndarray], w: np.ndarray | None = None) -> dict[str, float]:
    w = np.ones(len(c["fp"])) if w is None else w
    lesion = c["has_lesion"]  # per-image Dice is averaged over the images with a lesion
    d_img = np.nan_to_num(c["dice_image"])
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "dice": float(w @ c["dice_num"] / (w @ c["dice_den"])) if w @ c["dice_den"] > 0 else 1.0,
            "dice_per_image": float((w * lesion) @ d_img / (w @ lesion)) if w @ lesion > 0 else float("nan"),
            "fpr": float(w @ c["fp"] / (w @ c["neg"])) if w @ c["neg"] > 0 else float("nan"),
        }


def evaluate_localization(
    maps: Any,
    masks: Any,
    *,
    healthy_maps: Any = None,
    fpr: float = 0.05,
    val_maps: Any = None,
    val_masks: Any = None,
    image_scores: Any = None,
    strata_quantiles: tuple[float, float] = (0.25, 0.75),
    n_bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Localisation metrics of test ``maps`` (N, ...) against binary ``masks`` of the same shape.

    Parameters
    ----------
    healthy_maps : array (M, ...), optional
        Maps of healthy images: the threshold is the one leaving a pixel FPR ≤ ``fpr`` on them (the default).
    val_maps, val_masks : arrays, optional
        A labelled validation split: the Dice-maximising threshold there (used when no healthy maps are given).
    image_scores : array (N,), optional
        Image-level anomaly scores (default: each map's mean); image labels are "mask has a lesion pixel".

    Returns
    -------
    dict with ``auprc``, ``auroc``, ``image_auroc``, ``dice`` (pooled), ``dice_per_image`` (mean over images
    with a lesion), ``fpr`` (pixel FPR on the test set's lesion-free pixels), each ``{"value", "ci"}``;
    ``threshold`` and ``threshold_method`` (``healthy_fpr`` | ``validation`` | ``oracle``), ``thresholds``
    (every available method with its Dice; the oracle labelled :data:`ORACLE_LABEL`), ``strata`` (lesion-size
    strata with their counts, AUPRC and Dice), ``n_images``, ``n_lesion_images``, ``bootstrap``.
    """
    check_interval(ci, name="ci", low=0.0, high=1.0, closed="neither")
    m, t = _check(maps, masks)
    n, pixels = m.shape
    labels = t.any(axis=1)
    scores = m.mean(axis=1) if image_scores is None else np.asarray(image_scores, dtype=float).reshape(-1)
    if scores.shape != (n,) or not np.isfinite(scores).all():
        raise InputError(f"image_scores must be {n} finite numbers, one per map; got shape {scores.shape}.")
    if not t.any():
        raise InputError("no mask has a lesion pixel: pixel AUPRC and Dice need at least one anomalous image.")

    thresholds: dict[str, dict[str, Any]] = {}
    if healthy_maps is not None:
        h = np.asarray(healthy_maps, dtype=np.float64)
        if h.ndim < 2 or len(h) == 0 or h.shape[1:] != np.asarray(maps).shape[1:]:
            raise InputError(
                f"healthy maps must be (M, {', '.join(map(str, np.asarray(maps).shape[1:]))}); got {h.shape}."
            )
        tau = threshold_at_fpr(h, fpr)
        thresholds["healthy_fpr"] = {"threshold": tau, "fpr_target": fpr, "fpr_healthy": float((h > tau).mean()),
                                     "n_healthy_images": int(len(h))}  # fmt: skip
    if val_maps is not None or val_masks is not None:
        if val_maps is None or val_masks is None:
            raise InputError("a validation split needs both val_maps and val_masks.")
        vm, vt = _check(val_maps, val_masks, "validation maps")
        tau, d = best_dice_threshold(vt, vm)
        thresholds["validation"] = {"threshold": tau, "dice_validation": d, "n_validation_images": int(len(vm))}
    tau, _ = best_dice_threshold(t, m)
    thresholds["oracle"] = {"threshold": tau, "label": ORACLE_LABEL}
    for name, row in thresholds.items():
        row.update(_summary(_at_threshold(m, t, row["threshold"])))
        row["method"] = name
    method = next(k for k in ("healthy_fpr", "validation", "oracle") if k in thresholds)
    chosen = _at_threshold(m, t, thresholds[method]["threshold"])

    pixel = PixelCurve(t, m)
    image = PixelCurve(labels, scores)
    values = {"auprc": pixel.auprc(), "auroc": pixel.auroc(), "image_auroc": image.auroc(), **_summary(chosen)}
    draws: dict[str, list[float]] = {k: [] for k in values}
    for chunk in bootstrap_counts(n, n_bootstrap=n_bootstrap, seed=seed):
        for w in chunk:
            auprc, auroc = pixel.areas(np.repeat(w, pixels))
            draws["auprc"].append(auprc)
            draws["auroc"].append(auroc)
            draws["image_auroc"].append(image.auroc(w))
            for k, v in _summary(chosen, w).items():
                draws[k].append(v)

    strata_doc: dict[str, Any] = {}
    st = lesion_size_strata(t, quantiles=strata_quantiles)
    strata = np.asarray(st["strata"])
    for name in ("small", "medium", "large"):
        keep = strata == name
        if keep.any():
            sub = PixelCurve(t[keep], m[keep])
            sel = {k: v[keep] for k, v in chosen.items()}
            strata_doc[name] = {"n_images": int(keep.sum()), "auprc": sub.auprc(), **_summary(sel)}
    strata_doc["edges_px"] = st["edges"]

    return {
        **{k: {"value": v, "ci": _ci(draws[k], ci)} for k, v in values.items()},
        "threshold": thresholds[method]["threshold"],
        "threshold_method": method,
        "thresholds": thresholds,
        "strata": strata_doc,
        "n_images": int(n),
        "n_lesion_images": int(labels.sum()),
        "n_pixels": int(n * pixels),
        "bootstrap": {"n": int(n_bootstrap), "ci": ci, "seed": int(seed), "unit": "test image"},
    }
