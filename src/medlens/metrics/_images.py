"""Single-class detection metrics over a list of images (NOVA, grounding): mAP, ACC@0.5, box precision/recall.

Inputs are per-image sequences: ``gold[i]`` and ``pred[i]`` are ``(n_i, 4)`` ``xyxy`` boxes of image ``i`` in
one frame (convert first with :func:`medlens.metrics.convert_boxes` and log the records), ``scores[i]`` the
prediction scores (or ``None``: the given order is the ranking). Or dicts keyed by image id: ``gold`` lists
the images scored (an image without gold boxes maps to ``[]``), ``pred`` (and ``scores``, ``sample_weight``)
may leave out an image that has no prediction; the ids then label the messages, and ``image_ids`` is not
given. A list for one and a dict for the other is refused, as the rows could not be paired.

Images without gold boxes follow an explicit rule, ``no_gold``:

- ``"skip"`` (default): they are left out of every metric and counted in ``n_images_without_gold``;
- ``"score"``: they are scored. Per-image AP is 1 when the image has no prediction and 0 otherwise (the rule
  of the NOVA reference code); under COCO pooling their predictions are false positives; for ACC@0.5 an empty
  prediction is correct; for box precision their predictions are false positives.

Images with gold boxes and no prediction have AP 0 and count as misses.

``sample_weight`` is one weight per image: ``nova-voc11`` mAP and ACC become weighted means over the scored
images, box precision/recall weigh each box by its image. COCO's pooled curve (``coco101``) has no standard
per-image weighting: it refuses weights. Box and image counts stay unweighted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from medlens._results import MetricResult, check_sample_weight, refuse_sample_weight, weighted_mean
from medlens._validation import InputError, check_interval, check_option, check_same_length
from medlens.metrics._boxes import as_boxes, check_boxes
from medlens.metrics._coco import COCO_IOU_THRESHOLDS, coco_accumulate, find_threshold, thresholds_with
from medlens.metrics._voc import NO_GOLD_RULES, PROTOCOL_VOC, voc11_units

__all__ = [
    "PROTOCOLS",
    "DetectionReport",
    "accuracy_at_iou",
    "average_precision_per_image",
    "box_precision_recall",
    "detection_report",
    "InterRaterReport",
    "inter_rater_report",
    "mean_average_precision",
]

PROTOCOL_COCO = "coco101"
PROTOCOLS = (PROTOCOL_VOC, PROTOCOL_COCO)
Protocol = Literal["nova-voc11", "coco101"]
NoGold = Literal["skip", "score"]
BoxesLike = Sequence[Any] | Mapping[Any, Any]


def _by_image(gold: Any, pred: Any, scores: Any, image_ids: Any, sample_weight: Any = None) -> tuple:
    """Per-image lists in one order: dicts keyed by image id are laid out in ``gold``'s key order (an image
    that ``pred``/``scores`` leave out has no prediction); lists pass through."""
    others = {"pred": pred, "scores": scores, "sample_weight": sample_weight}
    if not isinstance(gold, Mapping):
        dicts = [name for name, v in others.items() if isinstance(v, Mapping)]
        if dicts:
            raise InputError(
                f"gold is a list (one entry per image) but {dicts[0]} is a dict keyed by image id; give gold, pred "
                "and scores both ways alike: dicts keyed by image id, or lists in the same image order."
            )
        return gold, pred, scores, image_ids, sample_weight
    if image_ids is not None:
        raise InputError("gold is a dict keyed by image id, so its keys are the image ids; drop image_ids.")
    ids = list(gold)
    known = set(ids)
    out = []
    for name, v in others.items():
        if v is None:
            out.append(None)
            continue
        if not isinstance(v, Mapping):
            raise InputError(
                f"gold is a dict keyed by image id but {name} is a {type(v).__name__}; give {name} as a dict "
                "keyed by the same image ids."
            )
        extra = [k for k in v if k not in known]
        if extra:
            raise InputError(
                f"{name} has image id(s) {extra[:3]} that gold does not list ({len(extra)} in all); gold's keys are "
                "the images scored: give an image without gold boxes an empty list there."
            )
        if name == "sample_weight":
            missing = [k for k in ids if k not in v]
            if missing:
                raise InputError(f"sample_weight has no weight for image id(s) {missing[:3]}; give one per image.")
            out.append([v[k] for k in ids])
        else:
            out.append([v.get(k, [] if name == "pred" else None) for k in ids])
    return [gold[k] for k in ids], out[0], out[1], ids, out[2]


@dataclass(frozen=True)
class _Flat:
    gold: np.ndarray
    gold_image: np.ndarray
    pred: np.ndarray
    pred_image: np.ndarray
    score: np.ndarray
    n_images: int


def _label(image_ids: Sequence[Any] | None, i: int) -> Any:
    return image_ids[i] if image_ids is not None else i


def _flatten_boxes(per_image: BoxesLike, name: str, image_ids: Sequence[Any] | None, *, gold: bool) -> tuple:
    arrays = [as_boxes(b, name=name, image=_label(image_ids, i)) for i, b in enumerate(per_image)]
    counts = np.array([len(a) for a in arrays], dtype=np.int64)
    flat = np.concatenate(arrays) if arrays else np.zeros((0, 4))
    image = np.repeat(np.arange(len(arrays)), counts)
    w, h = flat[:, 2] - flat[:, 0], flat[:, 3] - flat[:, 1]
    bad = ~np.isfinite(flat).all(axis=1) | ((w <= 0) | (h <= 0) if gold else (w < 0) | (h < 0))
    if bad.any():  # re-check the offending image alone for the precise message
        i = int(image[np.flatnonzero(bad)[0]])
        check_boxes(arrays[i], image=_label(image_ids, i), name=name, allow_empty_area=not gold)
    return flat, image, counts


def _flatten(gold: BoxesLike, pred: BoxesLike, scores: Sequence[Any] | None, image_ids: Sequence[Any] | None) -> _Flat:
    n = check_same_length(gold, pred, names=("gold", "pred"))
    if n == 0:
        raise InputError("no image to score: gold and pred are empty.")
    if image_ids is not None:
        check_same_length(gold, image_ids, names=("gold", "image_ids"))
    g, g_img, _ = _flatten_boxes(gold, "gold boxes", image_ids, gold=True)
    p, p_img, p_counts = _flatten_boxes(pred, "predicted boxes", image_ids, gold=False)
    if scores is None:
        score = np.zeros(len(p))
    else:
        check_same_length(pred, scores, names=("pred", "scores"))
        parts = []
        for i, s in enumerate(scores):
            arr = np.zeros(p_counts[i]) if s is None else np.asarray(s, dtype=np.float64).reshape(-1)
            if len(arr) != p_counts[i]:
                raise InputError(
                    f"scores of image {_label(image_ids, i)!r} must have one value per predicted box; "
                    f"got {len(arr)} scores for {p_counts[i]} boxes."
                )
            if not np.isfinite(arr).all():
                raise InputError(f"scores of image {_label(image_ids, i)!r} must be finite; got {arr.tolist()}.")
            parts.append(arr)
        score = np.concatenate(parts) if parts else np.zeros(0)
    return _Flat(g, g_img, p, p_img, score, n)


def _thresholds(iou: float | Sequence[float] | None) -> tuple[np.ndarray, list[float]]:
    """All thresholds to evaluate: the COCO range, 0.3 and the requested ones."""
    req = [] if iou is None else [float(iou)] if np.isscalar(iou) else [float(t) for t in iou]  # type: ignore[arg-type]
    for t in req:
        check_interval(t, name="iou", low=0, high=1, closed="right")
    return thresholds_with(0.3, *req), req


def _per_image_ap(f: _Flat, thr: np.ndarray, no_gold: str) -> tuple[np.ndarray, np.ndarray, Any]:
    """(ap (T, n_images) with nan for unscored images, scored mask, unit matches)."""
    m = voc11_units(f.gold, f.gold_image, f.pred, f.pred_image, f.score, f.n_images, thr)
    ap = m.ap.copy()
    scored = m.n_gold > 0
    if no_gold == "score":
        empty = m.n_gold == 0
        ap[:, empty] = (m.n_pred[empty] == 0).astype(float)
        scored = np.ones(f.n_images, dtype=bool)
    return ap, scored, m


def _coco_map(f: _Flat, thr: np.ndarray, scored: np.ndarray) -> np.ndarray:
    """COCO pooled AP per threshold (single class) over the scored images; nan when undefined."""
    keep_g, keep_p = scored[f.gold_image], scored[f.pred_image]
    pos = np.cumsum(scored) - 1
    g = f.gold[keep_g]
    g_xywh = np.c_[g[:, :2], g[:, 2:] - g[:, :2]]
    p = f.pred[keep_p]
    p_xywh = np.c_[p[:, :2], p[:, 2:] - p[:, :2]]
    prec, _ = coco_accumulate(
        gt_boxes=g_xywh,
        gt_image=pos[f.gold_image[keep_g]],
        gt_category=np.zeros(len(g), dtype=np.int64),
        gt_area=g_xywh[:, 2] * g_xywh[:, 3],
        gt_crowd=np.zeros(len(g), dtype=bool),
        dt_boxes=p_xywh,
        dt_score=f.score[keep_p],
        dt_image=pos[f.pred_image[keep_p]],
        dt_category=np.zeros(len(p), dtype=np.int64),
        n_images=int(scored.sum()),
        n_categories=1,
        iou_thresholds=thr,
    )
    s = prec[:, :, 0, 0]
    return np.array([np.mean(row) if (row > -1).all() else np.nan for row in s])


def _weighted_pool(flags: np.ndarray, image: np.ndarray, w: np.ndarray | None) -> float:
    """Sum of per-box flags, each box weighted by its image's weight."""
    return float(flags.sum()) if w is None else float((flags * w[image]).sum())


def _evaluate(
    gold: BoxesLike,
    pred: BoxesLike,
    scores: Sequence[Any] | None,
    protocol: str,
    no_gold: str,
    iou: float | Sequence[float] | None,
    image_ids: Sequence[Any] | None,
    sample_weight: Any = None,
) -> dict[str, Any]:
    check_option(protocol, PROTOCOLS, name="protocol")
    check_option(no_gold, NO_GOLD_RULES, name="no_gold")
    gold, pred, scores, image_ids, sample_weight = _by_image(gold, pred, scores, image_ids, sample_weight)
    if protocol == PROTOCOL_COCO:
        refuse_sample_weight(sample_weight, metric="COCO AP", reason="it pools every image into one curve")
    f = _flatten(gold, pred, scores, image_ids)
    w = check_sample_weight(sample_weight, f.n_images)
    thr, _ = _thresholds(iou)
    ap, scored, m = _per_image_ap(f, thr, no_gold)
    n_scored = int(scored.sum())
    if protocol == PROTOCOL_VOC:
        if w is None:
            map_t = ap[:, scored].mean(axis=1) if n_scored else np.full(len(thr), np.nan)
        else:
            map_t = np.array([weighted_mean(row[scored], w[scored]) for row in ap])
    else:
        map_t = _coco_map(f, thr, scored)
    has_gold = m.n_gold > 0
    # ACC: the top-ranked prediction hits a gold box (IoU >= t); an image without gold is right when empty.
    hit = np.where(has_gold, (m.n_pred > 0) & (m.top_iou >= 0.5), m.n_pred == 0)
    tp_scored = m.tp[:, scored[f.pred_image]].sum(axis=1)
    n_pred = int(m.n_pred[scored].sum())
    n_gold = int(m.n_gold.sum())
    keep = scored[f.pred_image]
    return {
        "w": w,
        "acc": weighted_mean(hit[scored], None if w is None else w[scored]) if n_scored else float("nan"),
        "tp_w": np.array([_weighted_pool(row[keep], f.pred_image[keep], w) for row in m.tp]),
        "n_pred_w": float(n_pred) if w is None else float((m.n_pred * w)[scored].sum()),
        "n_gold_w": float(n_gold) if w is None else float((m.n_gold * w).sum()),
        "f": f,
        "thr": thr,
        "ap": ap,
        "scored": scored,
        "map_t": map_t,
        "acc_hits": hit,
        "tp": tp_scored,
        "n_pred": n_pred,
        "n_gold": n_gold,
        "n_scored": n_scored,
        "n_without_gold": int((~has_gold).sum()),
    }


def _nan_div(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


def average_precision_per_image(
    gold: BoxesLike,
    pred: BoxesLike,
    *,
    scores: Sequence[Any] | None = None,
    iou: float = 0.5,
    no_gold: NoGold = "skip",
    image_ids: Sequence[Any] | None = None,
) -> np.ndarray:
    """Per-image 11-point AP at IoU ``iou`` (``nova-voc11``); nan for images skipped by the ``no_gold`` rule.

    Examples
    --------
    >>> gold = [[[0, 0, 10, 10]], [[0, 0, 10, 10]], []]
    >>> pred = [[[0, 0, 10, 10]], [[20, 20, 30, 30]], []]
    >>> average_precision_per_image(gold, pred).tolist()
    [1.0, 0.0, nan]
    >>> average_precision_per_image(gold, pred, no_gold="score").tolist()
    [1.0, 0.0, 1.0]
    """
    check_option(no_gold, NO_GOLD_RULES, name="no_gold")
    gold, pred, scores, image_ids, _ = _by_image(gold, pred, scores, image_ids)
    f = _flatten(gold, pred, scores, image_ids)
    thr = np.array([check_interval(float(iou), name="iou", low=0, high=1, closed="right")])
    ap, scored, _ = _per_image_ap(f, thr, no_gold)
    return np.where(scored, ap[0], np.nan)


def mean_average_precision(
    gold: BoxesLike,
    pred: BoxesLike,
    *,
    scores: Sequence[Any] | None = None,
    iou: float | None = 0.5,
    protocol: Protocol = "nova-voc11",
    no_gold: NoGold = "skip",
    image_ids: Sequence[Any] | None = None,
    sample_weight: Sequence[float] | None = None,
) -> float:
    """mAP at IoU ``iou`` (``None``: the mean over .5:.05:.95) under ``protocol``; nan when no image is scored.

    ``nova-voc11`` averages per-image 11-point APs; ``coco101`` pools all images into one precision/recall curve
    read at 101 recall points (pycocotools' bbox AP with one category and at most 100 boxes per image).

    >>> gold = [[[0, 0, 10, 10]], [[0, 0, 10, 10]]]
    >>> pred = [[[0, 0, 10, 10]], [[0, 0, 10, 4]]]  # IoU 1.0 and 0.4
    >>> mean_average_precision(gold, pred, iou=0.5), mean_average_precision(gold, pred, iou=0.3)
    (0.5, 1.0)
    """
    r = _evaluate(gold, pred, scores, protocol, no_gold, iou, image_ids, sample_weight)
    if iou is None:
        return float(np.mean(r["map_t"][[find_threshold(r["thr"], t) for t in COCO_IOU_THRESHOLDS]]))
    return float(r["map_t"][find_threshold(r["thr"], float(iou))])


def accuracy_at_iou(
    gold: BoxesLike,
    pred: BoxesLike,
    *,
    scores: Sequence[Any] | None = None,
    iou: float = 0.5,
    no_gold: NoGold = "skip",
    image_ids: Sequence[Any] | None = None,
    sample_weight: Sequence[float] | None = None,
) -> float:
    """(Weighted) fraction of scored images whose top-ranked prediction overlaps a gold box with IoU >= ``iou``.

    The top-ranked prediction is the highest-scoring one (the first one when scores tie or are absent). An
    image with gold and no prediction is a miss; under ``no_gold="score"`` an image without gold is correct
    exactly when it has no prediction. nan when no image is scored.

    >>> gold = [[[0, 0, 10, 10]], [[0, 0, 10, 10]]]
    >>> pred = [[[0, 0, 10, 4], [0, 0, 10, 10]], [[0, 0, 10, 10]]]  # image 0: the top box has IoU 0.4
    >>> accuracy_at_iou(gold, pred, scores=[[0.9, 0.1], None])
    0.5
    """
    check_option(no_gold, NO_GOLD_RULES, name="no_gold")
    check_interval(float(iou), name="iou", low=0, high=1, closed="right")
    gold, pred, scores, image_ids, sample_weight = _by_image(gold, pred, scores, image_ids, sample_weight)
    f = _flatten(gold, pred, scores, image_ids)
    w = check_sample_weight(sample_weight, f.n_images)
    m = voc11_units(f.gold, f.gold_image, f.pred, f.pred_image, f.score, f.n_images, np.array([float(iou)]))
    has_gold = m.n_gold > 0
    hit = np.where(has_gold, (m.n_pred > 0) & (m.top_iou >= iou), m.n_pred == 0)
    scored = has_gold if no_gold == "skip" else np.ones(f.n_images, dtype=bool)
    return weighted_mean(hit[scored], None if w is None else w[scored]) if scored.any() else float("nan")


def box_precision_recall(
    gold: BoxesLike,
    pred: BoxesLike,
    *,
    scores: Sequence[Any] | None = None,
    iou: float = 0.5,
    no_gold: NoGold = "skip",
    image_ids: Sequence[Any] | None = None,
    sample_weight: Sequence[float] | None = None,
) -> tuple[float, float]:
    """Box-level (precision, recall) at IoU ``iou``, pooled over the scored images (boxes weigh as their image).

    Predictions are matched greedily per image (highest score first, each to the unmatched gold box of highest
    IoU, ties to the first gold box), a match being a true positive when its IoU is >= ``iou``. Precision =
    TP / predictions, recall = TP / gold boxes; nan for an empty denominator.

    >>> box_precision_recall([[[0, 0, 10, 10], [20, 20, 30, 30]]], [[[0, 0, 10, 10], [0, 0, 10, 9], [50, 50, 60, 60]]])
    (0.3333333333333333, 0.5)
    """
    check_option(no_gold, NO_GOLD_RULES, name="no_gold")
    check_interval(float(iou), name="iou", low=0, high=1, closed="right")
    gold, pred, scores, image_ids, sample_weight = _by_image(gold, pred, scores, image_ids, sample_weight)
    f = _flatten(gold, pred, scores, image_ids)
    w = check_sample_weight(sample_weight, f.n_images)
    m = voc11_units(f.gold, f.gold_image, f.pred, f.pred_image, f.score, f.n_images, np.array([float(iou)]))
    scored = (m.n_gold > 0) if no_gold == "skip" else np.ones(f.n_images, dtype=bool)
    if w is None:
        tp = int(m.tp[0, scored[f.pred_image]].sum())
        return _nan_div(tp, int(m.n_pred[scored].sum())), _nan_div(tp, int(m.n_gold.sum()))
    keep = scored[f.pred_image]
    tp_w = _weighted_pool(m.tp[0, keep], f.pred_image[keep], w)
    return _nan_div(tp_w, float((m.n_pred * w)[scored].sum())), _nan_div(tp_w, float((m.n_gold * w).sum()))


@dataclass(frozen=True)
class DetectionReport(MetricResult):
    """What :func:`detection_report` measures; ``to_dict()`` gives its stable keys in this order.

    ``map30``, ``map50``, ``map50_95``: mAP at IoU 0.3, 0.5 and the mean over .5:.05:.95 under ``protocol``;
    ``acc50``: :func:`accuracy_at_iou` at 0.5; ``precision50``, ``recall50``, ``tp50``: :func:`box_precision_recall`
    at 0.5 and its true positives; box counts are over the scored images; ``no_gold`` is the rule applied.
    """

    protocol: str
    map30: float
    map50: float
    map50_95: float
    acc50: float
    precision50: float
    recall50: float
    tp50: int
    n_gold_boxes: int
    n_pred_boxes: int
    n_images: int
    n_images_scored: int
    n_images_without_gold: int
    no_gold: str


def detection_report(
    gold: BoxesLike,
    pred: BoxesLike,
    *,
    scores: Sequence[Any] | None = None,
    protocol: Protocol = "nova-voc11",
    no_gold: NoGold = "skip",
    image_ids: Sequence[Any] | None = None,
    sample_weight: Sequence[float] | None = None,
) -> DetectionReport:
    """All localisation metrics of a single-class detector over a list of images, as a :class:`DetectionReport`.

    ``gold``, ``pred`` (and ``scores``) are lists in one image order or dicts keyed by image id (the module
    notes). Fields: ``map30``, ``map50``, ``map50_95`` (mAP at IoU 0.3, 0.5 and the mean over .5:.05:.95 under
    ``protocol``), ``acc50`` (:func:`accuracy_at_iou` at 0.5), ``precision50``, ``recall50``
    (:func:`box_precision_recall` at 0.5), ``tp50``, ``n_gold_boxes``, ``n_pred_boxes`` (over scored images),
    ``n_images``, ``n_images_scored``, ``n_images_without_gold``, ``no_gold`` (the rule) and ``protocol``
    (``"nova-voc11"`` or ``"coco101"``). ACC, precision and recall use the per-image greedy matching whatever
    the protocol. Undefined values (nothing scored, no predictions) are nan.

    Examples
    --------
    >>> gold = [[[10, 10, 50, 50]], [[0, 0, 20, 20], [30, 30, 60, 60]], []]
    >>> pred = [[[12, 10, 50, 50]], [[30, 30, 60, 58], [100, 100, 120, 120]], [[0, 0, 5, 5]]]
    >>> r = detection_report(gold, pred, scores=[[0.9], [0.8, 0.7], [0.5]])
    >>> r.map50, r.acc50, r.precision50, r.recall50, r.n_images_without_gold
    (0.7727272727272727, 1.0, 0.6666666666666666, 0.6666666666666666, 1)
    """
    r = _evaluate(gold, pred, scores, protocol, no_gold, None, image_ids, sample_weight)
    thr, map_t = r["thr"], r["map_t"]
    i50 = find_threshold(thr, 0.5)
    coco = [find_threshold(thr, t) for t in COCO_IOU_THRESHOLDS]
    return DetectionReport(
        protocol=protocol,
        map30=float(map_t[find_threshold(thr, 0.3)]),
        map50=float(map_t[i50]),
        map50_95=float(np.mean(map_t[coco])),
        acc50=r["acc"],
        precision50=_nan_div(r["tp_w"][i50], r["n_pred_w"]),
        recall50=_nan_div(r["tp_w"][i50], r["n_gold_w"]),
        tp50=int(r["tp"][i50]),
        n_gold_boxes=r["n_gold"],
        n_pred_boxes=r["n_pred"],
        n_images=r["f"].n_images,
        n_images_scored=r["n_scored"],
        n_images_without_gold=r["n_without_gold"],
        no_gold=no_gold,
    )


REPORT_METRICS = ("map30", "map50", "map50_95", "acc50", "precision50", "recall50")


@dataclass(frozen=True)
class InterRaterReport(MetricResult):
    """What :func:`inter_rater_report` measures: the human ceiling of a detection task.

    ``reference`` is the rater used as gold (``"rater_a"``), or ``"both"`` when ``metrics`` average the two
    directions; ``directions`` holds the one-way :class:`DetectionReport` (A as gold first, then B as gold).
    ``to_dict()`` keeps the stable layout: one direction's report plus ``reference``, or the averaged
    ``REPORT_METRICS`` with ``protocol``, ``no_gold``, ``reference``, ``n_images`` and the ``directions``.
    """

    reference: str
    metrics: dict[str, float]
    protocol: str
    no_gold: str
    n_images: int
    directions: tuple[DetectionReport, ...]

    def to_dict(self) -> dict[str, Any]:
        one_way = [
            {**d.to_dict(), "reference": ref} for d, ref in zip(self.directions, ("rater_a", "rater_b"), strict=False)
        ]
        if self.reference != "both":
            return one_way[0]
        return {
            **self.metrics,
            "protocol": self.protocol,
            "no_gold": self.no_gold,
            "reference": "both",
            "n_images": self.n_images,
            "directions": one_way,
        }


def inter_rater_report(
    rater_a: BoxesLike,
    rater_b: BoxesLike,
    *,
    protocol: Protocol = "nova-voc11",
    no_gold: NoGold = "skip",
    symmetric: bool = False,
    image_ids: Sequence[Any] | None = None,
) -> InterRaterReport:
    """Human ceiling: :func:`detection_report` of rater B's boxes (unscored, in the given order) against rater A's.

    With ``symmetric=True`` the metrics are the mean of both directions (A as gold, then B as gold), and both
    one-way reports are kept in ``directions``.

    >>> a = [[[0, 0, 10, 10]], [[0, 0, 10, 10]]]
    >>> b = [[[0, 0, 10, 10]], [[0, 0, 10, 4]]]
    >>> r = inter_rater_report(a, b)
    >>> r.reference, r.metrics["map50"], r.metrics["map30"]
    ('rater_a', 0.5, 1.0)
    """
    ab = detection_report(rater_a, rater_b, protocol=protocol, no_gold=no_gold, image_ids=image_ids)
    if not symmetric:
        metrics = {k: getattr(ab, k) for k in REPORT_METRICS}
        return InterRaterReport("rater_a", metrics, ab.protocol, ab.no_gold, ab.n_images, (ab,))
    ba = detection_report(rater_b, rater_a, protocol=protocol, no_gold=no_gold, image_ids=image_ids)
    metrics = {k: float(np.mean([getattr(ab, k), getattr(ba, k)])) for k in REPORT_METRICS}
    return InterRaterReport("both", metrics, protocol, no_gold, ab.n_images, (ab, ba))
