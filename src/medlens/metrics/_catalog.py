"""The registry of the metric functions of :mod:`medlens.metrics` (``medlens.metrics.METRICS``).

Every entry follows the metric contract of :mod:`medlens._results`: ``f(y_true, y_pred, *, sample_weight=None,
...)``. Its metadata says what inputs it takes and how it treats weights, so generic code (the common test
suite, fairness reports) can call any of them:

- ``inputs``: ``"diagnoses"`` (gold names, ranked predicted names), ``"captions"`` (reference captions,
  candidate captions), ``"boxes"`` (gold boxes per image, predicted boxes per image), ``"labels"`` (two label
  lists) or ``"pixels"`` (binary truth and scores or 0/1 predictions, any shape, one weight per pixel);
- ``sample_weight``: ``"weighted"`` (weighted means or ratios of weighted sums) or ``"refused"`` (corpus-level:
  passing weights raises);
- ``needs``: what its default settings need beyond the core (``"model"``: a local encoder, ``"wordnet"``), if
  anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from medlens._registry import Registry

__all__ = ["METRICS"]

METRICS: Registry[Callable[..., Any]] = Registry("metric")

_D = "medlens.metrics.diagnosis"
_C = "medlens.metrics.captions"
_I = "medlens.metrics._images"
_L = "medlens.metrics.localization"
for _name, _where, _meta in [
    ("diagnosis_report", f"{_D}:diagnosis_report", {"inputs": "diagnoses", "sample_weight": "weighted"}),
    ("cohen_kappa", f"{_D}:cohen_kappa", {"inputs": "labels", "sample_weight": "weighted"}),
    ("label_coverage", f"{_D}:label_coverage", {"inputs": "labels", "sample_weight": "weighted"}),
    ("bleu", f"{_C}:bleu", {"inputs": "captions", "sample_weight": "refused"}),
    ("cider_d", f"{_C}:cider_d", {"inputs": "captions", "sample_weight": "refused"}),
    ("rouge_l", f"{_C}:rouge_l", {"inputs": "captions", "sample_weight": "weighted"}),
    ("meteor", f"{_C}:meteor", {"inputs": "captions", "sample_weight": "weighted", "needs": "wordnet"}),
    ("bertscore", f"{_C}:bertscore", {"inputs": "captions", "sample_weight": "weighted", "needs": "model"}),
    ("keyword_f1", f"{_C}:keyword_f1", {"inputs": "captions", "sample_weight": "weighted"}),
    ("caption_report", f"{_C}:caption_report", {"inputs": "captions", "sample_weight": "refused", "needs": "model"}),
    ("mean_average_precision", f"{_I}:mean_average_precision", {"inputs": "boxes", "sample_weight": "weighted"}),
    ("accuracy_at_iou", f"{_I}:accuracy_at_iou", {"inputs": "boxes", "sample_weight": "weighted"}),
    ("box_precision_recall", f"{_I}:box_precision_recall", {"inputs": "boxes", "sample_weight": "weighted"}),
    ("detection_report", f"{_I}:detection_report", {"inputs": "boxes", "sample_weight": "weighted"}),
    ("pixel_auprc", f"{_L}:pixel_auprc", {"inputs": "pixels", "sample_weight": "weighted"}),
    ("pixel_auroc", f"{_L}:pixel_auroc", {"inputs": "pixels", "sample_weight": "weighted"}),
    ("dice_score", f"{_L}:dice_score", {"inputs": "pixels", "sample_weight": "weighted"}),
]:
    METRICS.register(_name, _where, **_meta)
METRICS.freeze()
