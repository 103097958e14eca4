"""RoDeO, the Robust Detection Outcome of Meissen et al. (MIDL 2023), written from the paper's equations.

Per image, predicted and gold boxes (each with a class) are matched one-to-one with the Hungarian algorithm on
the cost ``-GIoU(p, g) - w_cls · [class(p) = class(g)]``, where ``w_cls = max(0, MCC)`` of the image-level
class presence (predicted vs gold, all images × classes flattened). Over all matched pairs:

- localization: ``mean(2^(-d²))`` with ``d`` the distance between the two box centres measured in units of the
  gold box's width and height (``((cx_p - cx_g) / w_g)² + ((cy_p - cy_g) / h_g)²``);
- shape matching: mean IoU of the two boxes moved to the same upper-left corner (size and aspect only);
- classification: ``max(0, MCC)`` of the one-hot classes of the pairs, flattened (so a pair of another class
  counts);

and each is weighted down by the unmatched boxes, ``score · M / (M + O + U)`` (``M`` matched, ``O``
over-predicted, ``U`` missed boxes; weights 1 as in the paper). ``total`` is the harmonic mean of the three,
``3 / Σ 1 / (s + 1e-6)``. Without any matched pair every score is 0. A zero-width gold box gives a pair
localization of 0 unless the centres coincide on that axis.

The one-hot MCC needs at least two classes (with one, every vector is all ones and the MCC is undefined):
:func:`rodeo` takes the class list explicitly (the knowledge base's findings).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from medlens._validation import InputError

__all__ = ["RodeoMatch", "mcc_binary", "rodeo", "rodeo_match"]

_EPS = 1e-6


def mcc_binary(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Matthews correlation of two 0/1 vectors; 0 when a margin is empty (as scikit-learn returns)."""
    t = np.asarray(y_true, dtype=bool).ravel()
    p = np.asarray(y_pred, dtype=bool).ravel()
    tp = float(np.sum(t & p))
    tn = float(np.sum(~t & ~p))
    fp = float(np.sum(~t & p))
    fn = float(np.sum(t & ~p))
    den = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    return 0.0 if den == 0 else (tp * tn - fp * fn) / float(np.sqrt(den))


def _giou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise generalised IoU of ``xyxy`` boxes ``a`` (n, 4) and ``b`` (m, 4)."""
    a, b = a[:, None, :], b[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    enc = (np.maximum(a[..., 2], b[..., 2]) - np.minimum(a[..., 0], b[..., 0])) * (
        np.maximum(a[..., 3], b[..., 3]) - np.minimum(a[..., 1], b[..., 1])
    )
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou - np.divide(enc - union, enc, out=np.zeros_like(inter), where=enc > 0)


def _scores(mp: np.ndarray, mg: np.ndarray, mpc: np.ndarray, mgc: np.ndarray, n_over: int, n_missed: int,
            n_classes: int) -> dict[str, Any]:  # fmt: skip
    m = len(mp)
    out: dict[str, Any] = {"n_matched": m, "n_overpredicted": int(n_over), "n_missed": int(n_missed)}
    if m == 0:
        return {"total": 0.0, "localization": 0.0, "shape": 0.0, "classification": 0.0, **out}
    weight = m / (m + n_over + n_missed)
    gw, gh = mg[:, 2] - mg[:, 0], mg[:, 3] - mg[:, 1]
    pw, ph = mp[:, 2] - mp[:, 0], mp[:, 3] - mp[:, 1]
    dx = (mp[:, 0] + mp[:, 2] - mg[:, 0] - mg[:, 2]) / 2
    dy = (mp[:, 1] + mp[:, 3] - mg[:, 1] - mg[:, 3]) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        ddx = np.where(gw > 0, dx / np.where(gw > 0, gw, 1), np.where(dx == 0, 0.0, np.inf))
        ddy = np.where(gh > 0, dy / np.where(gh > 0, gh, 1), np.where(dy == 0, 0.0, np.inf))
    loc = float(np.mean(np.exp2(-(ddx**2 + ddy**2))))
    inter = np.minimum(pw, gw) * np.minimum(ph, gh)
    union = pw * ph + gw * gh - inter
    shape = float(np.mean(np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)))
    onehot_p = np.zeros((m, n_classes), dtype=bool)
    onehot_g = np.zeros((m, n_classes), dtype=bool)
    onehot_p[np.arange(m), mpc] = True
    onehot_g[np.arange(m), mgc] = True
    cls = max(0.0, mcc_binary(onehot_g, onehot_p))
    parts = np.array([loc * weight, shape * weight, cls * weight])
    total = float(len(parts) / np.sum(1.0 / (parts + _EPS)))
    return {
        "total": total,
        "localization": float(parts[0]),
        "shape": float(parts[1]),
        "classification": float(parts[2]),
        **out,
    }


@dataclass(frozen=True)
class RodeoMatch:
    """The joint Hungarian matching of :func:`rodeo_match`: flat boxes (images concatenated in order), their
    class indices, and the matched pairs as indices into them."""

    gold: np.ndarray  # (G, 4)
    gold_class: np.ndarray  # (G,)
    pred: np.ndarray  # (P, 4)
    pred_class: np.ndarray  # (P,)
    pair_pred: np.ndarray  # (M,) index into pred
    pair_gold: np.ndarray  # (M,) index into gold
    classes: tuple[str, ...]
    class_weight: float

    def scores(self, gold_mask: np.ndarray | None = None, pred_mask: np.ndarray | None = None) -> dict[str, Any]:
        """RoDeO of the pairs whose gold box is in ``gold_mask`` and of the unmatched boxes in the masks
        (default: all), e.g. one class's boxes, as the authors' per-class scores."""
        gm = np.ones(len(self.gold), bool) if gold_mask is None else np.asarray(gold_mask, bool)
        pm = np.ones(len(self.pred), bool) if pred_mask is None else np.asarray(pred_mask, bool)
        sel = gm[self.pair_gold]
        pp, pg = self.pair_pred[sel], self.pair_gold[sel]
        paired_p = np.zeros(len(self.pred), bool)
        paired_p[self.pair_pred] = True
        paired_g = np.zeros(len(self.gold), bool)
        paired_g[self.pair_gold] = True
        return _scores(
            self.pred[pp], self.gold[pg], self.pred_class[pp], self.gold_class[pg], int((pm & ~paired_p).sum()),
            int((gm & ~paired_g).sum()), len(self.classes),
        )  # fmt: skip


def rodeo_match(
    gold: Sequence[Any],
    gold_classes: Sequence[Any],
    pred: Sequence[Any],
    pred_classes: Sequence[Any],
    classes: Sequence[str],
) -> RodeoMatch:
    """Match each image's predicted to gold boxes (see the module docstring); inputs as :func:`rodeo`."""
    names = list(dict.fromkeys(str(c) for c in classes))
    if len(names) < 2:
        raise InputError(f"RoDeO needs at least two classes (its one-hot MCC); got {names}.")
    if not (len(gold) == len(gold_classes) == len(pred) == len(pred_classes)):
        raise InputError("rodeo: gold, gold_classes, pred and pred_classes need one entry per image.")
    index = {c: i for i, c in enumerate(names)}

    def cls_ids(values: Any, where: str) -> np.ndarray:
        try:
            return np.array([index[str(v)] for v in values], dtype=np.int64)
        except KeyError as exc:
            raise InputError(f"rodeo: {where} class {exc.args[0]!r} is not among the classes {names}.") from None

    g_boxes = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in gold]
    p_boxes = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in pred]
    g_cls = [cls_ids(c, "gold") for c in gold_classes]
    p_cls = [cls_ids(c, "predicted") for c in pred_classes]
    for i, (b, c) in enumerate([*zip(g_boxes, g_cls, strict=True), *zip(p_boxes, p_cls, strict=True)]):
        if len(b) != len(c):
            raise InputError(f"rodeo: entry {i % len(g_boxes)} has {len(b)} boxes but {len(c)} classes.")
    presence_g = np.zeros((len(g_boxes), len(names)), dtype=bool)
    presence_p = np.zeros_like(presence_g)
    for i, (gc, pc) in enumerate(zip(g_cls, p_cls, strict=True)):
        presence_g[i, gc] = True
        presence_p[i, pc] = True
    w_cls = max(0.0, mcc_binary(presence_g, presence_p))
    pairs_p, pairs_g = [], []
    g_off = p_off = 0
    for gb, gc, pb, pc in zip(g_boxes, g_cls, p_boxes, p_cls, strict=True):
        if len(gb) == 1 and len(pb) == 1:  # the only assignment
            pairs_p.append(np.array([p_off]))
            pairs_g.append(np.array([g_off]))
        elif len(gb) and len(pb):
            from scipy.optimize import linear_sum_assignment

            pi, gi = linear_sum_assignment(-_giou(pb, gb) - w_cls * (pc[:, None] == gc[None, :]))
            pairs_p.append(pi + p_off)
            pairs_g.append(gi + g_off)
        g_off += len(gb)
        p_off += len(pb)

    def flat(parts: list[np.ndarray], shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(shape, dtype)

    return RodeoMatch(
        gold=flat(g_boxes, (0, 4), np.float64),
        gold_class=flat(g_cls, (0,), np.int64),
        pred=flat(p_boxes, (0, 4), np.float64),
        pred_class=flat(p_cls, (0,), np.int64),
        pair_pred=flat(pairs_p, (0,), np.int64),
        pair_gold=flat(pairs_g, (0,), np.int64),
        classes=tuple(names),
        class_weight=w_cls,
    )


def rodeo(
    gold: Sequence[Any],
    gold_classes: Sequence[Any],
    pred: Sequence[Any],
    pred_classes: Sequence[Any],
    classes: Sequence[str],
    *,
    per_class: bool = False,
) -> dict[str, Any]:
    """RoDeO over images: ``gold[i]`` (n_i, 4) ``xyxy`` boxes of image ``i`` with ``gold_classes[i]`` (class
    names), the same for ``pred``. ``classes`` lists every class (at least two). Returns ``total``,
    ``localization``, ``shape``, ``classification`` and the box counts; with ``per_class`` also ``by_class``
    (pairs filtered by the gold class, unmatched boxes by their own class, after the joint matching)."""
    m = rodeo_match(gold, gold_classes, pred, pred_classes, classes)
    out = m.scores()
    out["class_weight_matching"] = m.class_weight
    if per_class:
        out["by_class"] = {c: m.scores(m.gold_class == i, m.pred_class == i) for i, c in enumerate(m.classes)}
    return out
