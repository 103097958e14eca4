"""Detection mAP of COCO-format files: the pipeline behind ``metrics boxes``.

Reads a COCO annotation file and a COCO result list, evaluates them under COCO pooling (``mode="coco"``, equal
to pycocotools' COCOeval) or NOVA's per-image VOC-11 AP (``mode="voc11"``), and returns the stamped result.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from medlens._provenance import provenance, stamp
from medlens._validation import InputError, check_option
from medlens.io import atomic_write_json
from medlens.metrics._coco import thresholds_with
from medlens.metrics._coco_io import load_coco_ground_truth, load_coco_predictions
from medlens.metrics._dataset import coco_evaluate, voc11_evaluate

__all__ = ["BOX_MODES", "run_boxes"]

BOX_MODES = {"coco": "coco101", "voc11": "nova-voc11"}
"""The modes of :func:`run_boxes` and the protocol each one names in its output."""


def run_boxes(
    gt: str | os.PathLike,
    pred: str | os.PathLike,
    *,
    mode: str,
    iou: Sequence[float] = (),
    no_gold: str | None = None,
    per_category: bool = False,
    class_agnostic: bool = False,
    areas: bool = False,
    max_dets: int | None = None,
    out: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """mAP of the COCO result list ``pred`` against the COCO annotations ``gt``; return the stamped result (what
    ``metrics boxes --json`` prints), also written to ``out`` when given.

    ``iou`` adds AP at these IoU thresholds (``ap_at_iou``); ``no_gold`` (voc11 only) is the rule for images
    without gold boxes (``"skip"`` by default); ``areas`` and ``max_dets`` apply to coco mode only. Predictions
    whose category is absent from the ground truth are dropped (as pycocotools does) with a warning on stderr.
    """
    iou = list(iou)
    check_option(mode, tuple(BOX_MODES), name="mode")
    if mode == "coco" and no_gold is not None:
        raise InputError("--no-gold applies to --mode voc11 only (COCO pooling scores every image).")
    if mode == "voc11" and (areas or max_dets is not None):
        raise InputError("--areas and --max-dets apply to --mode coco only.")
    thr = thresholds_with(0.3, *iou)
    g = load_coco_ground_truth(gt)
    p = load_coco_predictions(pred, g)
    if mode == "coco":
        res = coco_evaluate(
            g,
            p,
            iou_thresholds=thr,
            area_ranges=("all", "small", "medium", "large") if areas else ("all",),
            max_detections=100 if max_dets is None else max_dets,
            class_agnostic=class_agnostic,
        )
    else:
        res = voc11_evaluate(g, p, iou_thresholds=thr, no_gold=no_gold or "skip", class_agnostic=class_agnostic)
    doc = {"mode": mode, **res.to_dict(per_category=per_category)}
    if iou:
        doc["ap_at_iou"] = {f"{t:g}": res.ap(t) for t in iou}
    if p.n_unknown_category:
        sys.stderr.write(
            f"medlens: warning: {p.n_unknown_category} prediction(s) with a category_id absent from the ground-truth "
            "categories were dropped (as pycocotools does)\n"
        )
    config = {
        "mode": mode,
        "iou": sorted(iou),
        "no_gold": no_gold,
        "class_agnostic": class_agnostic,
        "areas": areas,
        "max_dets": max_dets,
        "per_category": per_category,
    }
    prov = provenance(command="metrics boxes", config=config, inputs={"gt": gt, "pred": pred})
    doc = stamp(doc, prov)
    if out is not None:
        atomic_write_json(out, doc)
    return doc
