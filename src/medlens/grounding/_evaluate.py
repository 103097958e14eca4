"""Honest grounding evaluation: P/R/F1, Acc@0.5, mIoU and mAP with real scores, negative queries, strata.

A *query* is one (image, finding) pair: the gold boxes of that finding on that image (none for a *negative*
query: the finding is absent) and the model's predicted boxes with, when the model gives them, one score per
box (e.g. from :func:`medlens.grounding.parse_grounding` with transition log-probabilities).

Every number comes from :mod:`medlens.metrics` with each query as one "image" of a single-class detector:

- ``precision50``, ``recall50``, ``f1_50``: greedy one-to-one box matching at IoU ≥ 0.5
  (:func:`medlens.metrics.box_precision_recall` with ``no_gold="score"``), so any box on a negative query is a
  false positive;
- ``acc50``: share of positive queries whose top-ranked box hits a gold box at IoU ≥ 0.5
  (:func:`medlens.metrics.accuracy_at_iou`; ``null`` unless the scores rank the boxes, since the "top" box
  would otherwise be the first one); ``acc50_any``: share of positive queries where *any* predicted box hits
  (order-free, the MS-CXR-style grounding accuracy);
- ``miou``: mean over positive queries of the mean, over the query's gold boxes, of each gold box's best IoU
  with a predicted box (0 when nothing is predicted);
- ``hallucination_rate``: share of negative queries with at least one box; ``empty_rate``: share of positive
  queries with none;
- ``map`` (.5:.95), ``map50``, ``map75``, ``map30``: COCO pooled AP (``coco101``) over all queries, negatives
  included, **only when the scores rank the boxes**. When every box has the same score (or no scores are
  given), an AP is the AP of the given box order: the public AG-KD evaluation gives every box 1.0 and reports
  that as mAP. Here the ``map*`` keys are then ``null`` and ``map_order_dependent`` holds the values for the
  given order and for the reversed order (queries and each query's boxes reversed), labelled as such; use
  P/R/F1 instead.

- ``rodeo``: RoDeO (:mod:`medlens.grounding._rodeo`) with the queries of an image as one image, each box's
  class its query's finding, over the knowledge base's findings (or the evaluated ones; ``null`` with fewer
  than two classes). It uses no scores, so it does not depend on the order of the boxes. The matching is
  done once over all queries; a stratum's RoDeO takes the pairs whose gold box is in it and its unmatched
  boxes (the authors' per-class scores, generalised to any stratum).

``by_finding`` and ``by_split`` (seen/unseen, from the knowledge base) repeat the metrics per stratum, and so
do ``by_size`` and ``by_n_boxes`` (positive queries with 1, 2 or 3+ gold boxes). ``by_size`` puts each positive
query by the mean area of its gold boxes (``size_strata`` says how):

- when every positive query has its image's ``width`` and ``height``: as a fraction of the image, small < 1 %,
  medium < 10 %, large (:data:`SIZE_BINS`);
- otherwise (the VinDr-CXR table has no image sizes): in pixels², at ``size_bins_px2`` when given, else at the
  terciles of the evaluated positive queries' mean gold-box areas (the gold boxes only, so every model evaluated
  on the same truth gets the same bins; the bins are reported).
``map50_finding_mean`` averages the per-finding AP50 over findings with a positive query (the per-class mean
that detection toolkits report).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medlens._validation import InputError
from medlens.grounding._rodeo import rodeo_match
from medlens.metrics import accuracy_at_iou, box_precision_recall, detection_report, mean_average_precision

__all__ = ["SCORE_STATUS", "SIZE_BINS", "evaluate_grounding", "size_strata"]

SCORE_STATUS = ("model", "constant", "none")
SIZE_BINS = (0.01, 0.10)
"""Box-size strata by the mean gold-box area as a fraction of the image: small < 1 %, medium < 10 %, large."""
_ORDER_NOTE = (
    "every predicted box has the same score (or none was given): AP then depends on the order of the boxes, "
    "not on the model's confidence. The values below are for the given and the reversed box order; they are not "
    "a ranking metric. Compare models with precision50/recall50/f1_50."
)


def _as_boxes(value: Any, where: str) -> np.ndarray:
    try:
        arr = np.asarray(value if value is not None else [], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{where}: boxes must be a list of [x1, y1, x2, y2]; got {value!r}.") from None
    if arr.size == 0:
        return np.zeros((0, 4))
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise InputError(f"{where}: boxes must have shape (n, 4) [x1, y1, x2, y2]; got shape {arr.shape}.")
    return arr


def _normalise(queries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, q in enumerate(queries):
        where = f"query {i} ({q.get('image_id', '?')!r}, {q.get('finding', '?')!r})"
        if "finding" not in q:
            raise InputError(f"query {i}: missing 'finding'; each query needs image_id, finding, gold, pred.")
        gold = _as_boxes(q.get("gold"), f"{where} gold")
        pred = _as_boxes(q.get("pred"), f"{where} pred")
        scores = q.get("scores")
        if scores is not None:
            scores = np.asarray(scores, dtype=np.float64).reshape(-1)
            if len(scores) != len(pred):
                raise InputError(f"{where}: {len(scores)} scores for {len(pred)} predicted boxes; give one per box.")
        out.append(
            {
                "image_id": q.get("image_id", i),
                "finding": str(q["finding"]),
                "gold": gold,
                "pred": pred,
                "scores": scores,
                "width": q.get("width"),
                "height": q.get("height"),
            }
        )
    if not out:
        raise InputError("no query to evaluate.")
    return out


def _score_status(qs: list[dict[str, Any]]) -> str:
    with_boxes = [q for q in qs if len(q["pred"])]
    given = [q["scores"] is not None for q in with_boxes]
    if not with_boxes or not any(given):
        return "none"
    if not all(given):
        bad = next(q for q in with_boxes if q["scores"] is None)
        raise InputError(
            f"query ({bad['image_id']!r}, {bad['finding']!r}) has boxes without scores while others have scores; "
            "give scores for every query or for none."
        )
    values = np.concatenate([q["scores"] for q in with_boxes])
    return "constant" if np.all(values == values[0]) else "model"


def _best_ious(qs: list[dict[str, Any]]) -> list[np.ndarray]:
    """Per query, each gold box's best IoU with a predicted box of the same query (0 without one); vectorised."""
    g_counts = np.array([len(q["gold"]) for q in qs])
    p_counts = np.array([len(q["pred"]) for q in qs])
    gold = np.concatenate([q["gold"] for q in qs]) if g_counts.sum() else np.zeros((0, 4))
    pred = np.concatenate([q["pred"] for q in qs]) if p_counts.sum() else np.zeros((0, 4))
    g_query = np.repeat(np.arange(len(qs)), g_counts)
    p_start = np.r_[0, np.cumsum(p_counts)[:-1]]
    reps = p_counts[g_query]  # pairs of each gold box: the predictions of its query
    gi = np.repeat(np.arange(len(gold)), reps)
    offsets = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
    pi = np.repeat(p_start[g_query], reps) + offsets
    a, b = gold[gi], pred[pi]
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=inter > 0)
    best = np.zeros(len(gold))
    np.maximum.at(best, gi, iou)
    return np.split(best, np.cumsum(g_counts)[:-1])


def _nan_none(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _rodeo_match(qs: list[dict[str, Any]], classes: Sequence[str]) -> tuple[Any, np.ndarray, np.ndarray] | None:
    """The joint RoDeO matching of all queries, grouped by image (each box's class is its query's finding), and
    the query index of every flat gold and predicted box (for the strata)."""
    if len(classes) < 2:
        return None
    by_image: dict[Any, list[int]] = {}
    for i, q in enumerate(qs):
        by_image.setdefault(q["image_id"], []).append(i)
    groups = list(by_image.values())
    gold = [np.concatenate([qs[i]["gold"] for i in g]) for g in groups]
    pred = [np.concatenate([qs[i]["pred"] for i in g]) for g in groups]
    g_cls = [[qs[i]["finding"] for i in g for _ in range(len(qs[i]["gold"]))] for g in groups]
    p_cls = [[qs[i]["finding"] for i in g for _ in range(len(qs[i]["pred"]))] for g in groups]
    g_query = np.array([i for g in groups for i in g for _ in range(len(qs[i]["gold"]))], dtype=np.int64)
    p_query = np.array([i for g in groups for i in g for _ in range(len(qs[i]["pred"]))], dtype=np.int64)
    return rodeo_match(gold, g_cls, pred, p_cls, classes), g_query, p_query


def _rodeo(qs: list[dict[str, Any]], match: Any) -> dict[str, Any] | None:
    """RoDeO of a stratum: the pairs of the joint matching whose gold box is in it, its unmatched boxes."""
    if match is None:
        return None
    m, g_query, p_query = match
    ids = np.array([q["_index"] for q in qs], dtype=np.int64)
    return m.scores(np.isin(g_query, ids), np.isin(p_query, ids))


def _mean_gold_area(q: dict[str, Any]) -> float:
    g = q["gold"]
    return float(np.mean((g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])))


def size_strata(
    qs: Sequence[Mapping[str, Any]], size_bins_px2: Sequence[float] | None = None
) -> tuple[list[str | None], dict[str, Any]]:
    """Each query's size stratum (``None`` for a negative query) and how the strata were cut (module docstring).

    >>> qs = [{"gold": np.array([[0, 0, 10, 10]]), "width": None, "height": None},
    ...       {"gold": np.array([[0, 0, 20, 20]]), "width": None, "height": None},
    ...       {"gold": np.zeros((0, 4)), "width": None, "height": None}]
    >>> size_strata(qs, size_bins_px2=(150, 300))
    (['small', 'large', None], {'basis': 'mean gold-box area in pixels² (no image size for 2 of 2 positive queries)', 'bins_px2': [150.0, 300.0]})
    """
    pos = [i for i, q in enumerate(qs) if len(q["gold"])]
    area = np.array([_mean_gold_area(qs[i]) for i in pos], dtype=np.float64)
    unsized = sum(1 for i in pos if not qs[i].get("width") or not qs[i].get("height"))
    if not unsized and size_bins_px2 is None:
        lo, hi = SIZE_BINS
        info: dict[str, Any] = {"basis": "mean gold-box area as a fraction of the image", "bins": [lo, hi]}
        value = area / np.array([float(qs[i]["width"]) * float(qs[i]["height"]) for i in pos], dtype=np.float64)
    else:
        if size_bins_px2 is not None:
            bins = [float(b) for b in size_bins_px2]
            if len(bins) != 2 or not 0 < bins[0] < bins[1]:
                raise InputError(f"size_bins_px2 must be two increasing positive areas; got {list(size_bins_px2)}.")
            how = ""
        else:
            bins = [float(b) for b in np.quantile(area if len(area) else np.zeros(1), [1 / 3, 2 / 3])]
            how = ", terciles of the evaluated positive queries"
        lo, hi = bins
        why = f"no image size for {unsized} of {len(pos)} positive queries" if unsized else "bins given"
        info = {"basis": f"mean gold-box area in pixels² ({why}{how})", "bins_px2": bins}
        value = area
    labels: list[str | None] = [None] * len(qs)
    for i, v in zip(pos, value, strict=True):
        labels[i] = "small" if v < lo else "medium" if v < hi else "large"
    return labels, info


def _count_stratum(q: dict[str, Any]) -> str | None:
    n = len(q["gold"])
    return None if n == 0 else str(n) if n < 3 else "3+"


def _metrics(qs: list[dict[str, Any]], status: str, match: Any = None) -> dict[str, Any]:
    gold = [q["gold"] for q in qs]
    pred = [q["pred"] for q in qs]
    scores = [q["scores"] for q in qs] if status == "model" else None
    pos = [len(g) > 0 for g in gold]
    n_pos, n_neg = int(sum(pos)), len(qs) - int(sum(pos))
    p, r = box_precision_recall(gold, pred, scores=scores, no_gold="score")
    f1 = 2 * p * r / (p + r) if np.isfinite(p) and np.isfinite(r) and p + r > 0 else (0.0 if n_pos else float("nan"))
    miou = [float(q["best_iou"].mean()) for q, ok in zip(qs, pos, strict=True) if ok]
    hit_any = [bool((q["best_iou"] >= 0.5).any()) for q, ok in zip(qs, pos, strict=True) if ok]
    out: dict[str, Any] = {
        "n_queries": len(qs),
        "n_positive": n_pos,
        "n_negative": n_neg,
        "n_gold_boxes": int(sum(len(g) for g in gold)),
        "n_pred_boxes": int(sum(len(x) for x in pred)),
        "precision50": _nan_none(p),
        "recall50": _nan_none(r),
        "f1_50": _nan_none(f1),
        # the top-ranked box is only defined when scores rank the boxes; otherwise it is just the first one
        "acc50": _nan_none(accuracy_at_iou(gold, pred, scores=scores)) if n_pos and status == "model" else None,
        "acc50_any": float(np.mean(hit_any)) if n_pos else None,
        "miou": float(np.mean(miou)) if n_pos else None,
        "hallucination_rate": float(np.mean([len(x) > 0 for x, ok in zip(pred, pos, strict=True) if not ok]))
        if n_neg
        else None,
        "empty_rate": float(np.mean([len(x) == 0 for x, ok in zip(pred, pos, strict=True) if ok])) if n_pos else None,
    }
    out["rodeo"] = _rodeo(qs, match)
    keys = ("map", "map50", "map75", "map30")
    if status == "model" and n_pos:
        rep = detection_report(gold, pred, scores=scores, protocol="coco101", no_gold="score")
        m75 = mean_average_precision(gold, pred, scores=scores, iou=0.75, protocol="coco101", no_gold="score")
        vals = (rep.map50_95, rep.map50, m75, rep.map30)
        out.update({k: _nan_none(v) for k, v in zip(keys, vals, strict=True)})
        out["map_order_dependent"] = None
    else:
        out.update(dict.fromkeys(keys))
        out["map_order_dependent"] = _order_dependent(gold, pred) if n_pos else None
    return out


def _order_dependent(gold: list[np.ndarray], pred: list[np.ndarray]) -> dict[str, Any]:
    def one(golds: list[np.ndarray], preds: list[np.ndarray]) -> dict[str, float | None]:
        rep = detection_report(golds, preds, protocol="coco101", no_gold="score")
        return {"map": _nan_none(rep.map50_95), "map50": _nan_none(rep.map50)}

    rev = slice(None, None, -1)
    return {
        "note": _ORDER_NOTE,
        "given_order": one(gold, pred),
        "reversed_order": one(gold[rev], [x[rev] for x in pred[rev]]),
    }


def evaluate_grounding(
    queries: Sequence[Mapping[str, Any]],
    *,
    kb: Any = None,
    size_bins_px2: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Evaluate grounding queries (see the module docstring for every key).

    Parameters
    ----------
    queries : sequence of mappings
        ``{"image_id", "finding", "gold": [[x1, y1, x2, y2], ...], "pred": [...], "scores": [...] | None}``,
        boxes in one pixel frame per query; ``gold`` empty for a negative query.
    kb : KnowledgeBase, optional
        Maps each finding (name or synonym) to its canonical name and seen/unseen split; without it findings
        are taken as given and ``by_split`` is omitted.
    size_bins_px2 : (float, float), optional
        Small/medium and medium/large cuts of the mean gold-box area in pixels² for ``by_size``; by default the
        strata are relative to the image when every positive query has a size, else gold-area terciles.

    Returns
    -------
    dict
        ``{"score_status": "model"|"constant"|"none", **overall metrics, "by_finding": {...}, "by_split": {...},
        "map50_finding_mean"}``.
    """
    qs = _normalise(queries)
    if kb is not None:
        canonical = {f: kb.get(f).name for f in {q["finding"] for q in qs}}
        for q in qs:
            q["finding"] = canonical[q["finding"]]
    for q, best in zip(qs, _best_ious(qs), strict=True):
        q["best_iou"] = best
    status = _score_status(qs)
    findings = sorted({q["finding"] for q in qs})
    for i, q in enumerate(qs):
        q["_index"] = i
    match = _rodeo_match(qs, kb.names if kb is not None else findings)
    out: dict[str, Any] = {"score_status": status, **_metrics(qs, status, match)}
    out["by_finding"] = {f: _metrics([q for q in qs if q["finding"] == f], status, match) for f in findings}
    sizes, out["size_strata"] = size_strata(qs, size_bins_px2)
    for key, label, order in (("by_size", sizes, ("small", "medium", "large")),
                              ("by_n_boxes", [_count_stratum(q) for q in qs], ("1", "2", "3+"))):  # fmt: skip
        out[key] = {
            s: _metrics([q for q, x in zip(qs, label, strict=True) if x == s], status, match)
            for s in order
            if s in label
        }
    per = [v["map50"] for v in out["by_finding"].values() if v["map50"] is not None]
    out["map50_finding_mean"] = float(np.mean(per)) if per else None
    if kb is not None:
        split = {f: kb.get(f).split for f in findings}
        out["by_split"] = {
            s: _metrics([q for q in qs if split[q["finding"]] == s], status, match)
            for s in ("seen", "unseen")
            if any(split[q["finding"]] == s for q in qs)
        }
    return out
