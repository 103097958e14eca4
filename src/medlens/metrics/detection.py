"""Detection metrics: boxes and coordinate frames, IoU, per-image VOC-11 AP (NOVA) and COCO pooled AP.

Two protocols, named in every output:

- ``"nova-voc11"`` (default for NOVA and grounding): 11-point AP per image, averaged over images, with an
  explicit rule for images without gold boxes (see :mod:`medlens.metrics._images`);
- ``"coco101"``: pycocotools' pooled 101-point AP, reproduced value for value (see :mod:`medlens.metrics._coco`).

Single-class lists of per-image boxes go to :func:`detection_report` (and :func:`mean_average_precision`,
:func:`accuracy_at_iou`, :func:`box_precision_recall`, :func:`inter_rater_report` for the human ceiling);
COCO-format files go to :func:`coco_evaluate` / :func:`voc11_evaluate`, or, file to stamped document, to
:func:`run_boxes` (``medlens metrics boxes``).
"""

from medlens.metrics._boxes import (
    BOX_FORMATS,
    BoxConversion,
    box_iou,
    check_boxes,
    clip_boxes,
    convert_boxes,
)
from medlens.metrics._boxes_run import BOX_MODES, run_boxes
from medlens.metrics._coco import (
    COCO_AREA_RANGES,
    COCO_IOU_THRESHOLDS,
    COCO_RECALL_THRESHOLDS,
    CocoEvalResult,
    thresholds_with,
)
from medlens.metrics._coco_io import CocoGroundTruth, CocoPredictions, load_coco_ground_truth, load_coco_predictions
from medlens.metrics._dataset import PerImageEvalResult, coco_evaluate, voc11_evaluate
from medlens.metrics._images import (
    PROTOCOLS,
    DetectionReport,
    InterRaterReport,
    accuracy_at_iou,
    average_precision_per_image,
    box_precision_recall,
    detection_report,
    inter_rater_report,
    mean_average_precision,
)
from medlens.metrics._voc import NO_GOLD_RULES, VOC_RECALL_POINTS

__all__ = [
    "thresholds_with",
    "BOX_MODES",
    "run_boxes",
    "BOX_FORMATS",
    "COCO_AREA_RANGES",
    "COCO_IOU_THRESHOLDS",
    "COCO_RECALL_THRESHOLDS",
    "NO_GOLD_RULES",
    "PROTOCOLS",
    "VOC_RECALL_POINTS",
    "BoxConversion",
    "CocoEvalResult",
    "CocoGroundTruth",
    "CocoPredictions",
    "DetectionReport",
    "PerImageEvalResult",
    "accuracy_at_iou",
    "average_precision_per_image",
    "box_iou",
    "box_precision_recall",
    "check_boxes",
    "clip_boxes",
    "coco_evaluate",
    "convert_boxes",
    "detection_report",
    "InterRaterReport",
    "inter_rater_report",
    "load_coco_ground_truth",
    "load_coco_predictions",
    "mean_average_precision",
    "voc11_evaluate",
]
