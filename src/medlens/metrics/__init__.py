"""Metrics shared by the benchmarks: detection (IoU, VOC-11 and COCO AP) for NOVA and grounding; caption
metrics (BLEU, ROUGE-L, CIDEr-D, METEOR, BERTScore, keyword F1) for NOVA captioning and report generation;
diagnosis metrics (top-k accuracy under a judge, judge agreement, label coverage and entropy); pixel-level
anomaly localisation (AUPRC, AUROC, Dice, thresholds, lesion-size strata); normative-learning metrics of
restorations (RQI, CACI, AHI).

Each family lives in its own module (``medlens.metrics.detection``, ``medlens.metrics.captions``,
``medlens.metrics.diagnosis``) and is re-exported here. ``METRICS`` registers every metric function with the
inputs it takes and how it treats ``sample_weight``; results derive from :class:`MetricResult`.
"""

from medlens._results import MetricResult
from medlens.metrics._catalog import METRICS
from medlens.metrics.captions import *  # noqa: F403 - the captions module defines __all__
from medlens.metrics.captions import __all__ as _captions_all
from medlens.metrics.detection import *  # noqa: F403 - the detection module defines __all__
from medlens.metrics.detection import __all__ as _detection_all
from medlens.metrics.diagnosis import *  # noqa: F403 - the diagnosis module defines __all__
from medlens.metrics.diagnosis import __all__ as _diagnosis_all
from medlens.metrics.localization import *  # noqa: F403 - the localization module defines __all__
from medlens.metrics.localization import __all__ as _localization_all
from medlens.metrics.normative import *  # noqa: F403 - the normative module defines __all__
from medlens.metrics.normative import __all__ as _normative_all
from medlens.metrics.ranking import *  # noqa: F403 - the ranking module defines __all__
from medlens.metrics.ranking import __all__ as _ranking_all

__all__ = [
    "METRICS",
    "MetricResult",
    *_detection_all,
    *_captions_all,
    *_diagnosis_all,
    *_localization_all,
    *_normative_all,
    *_ranking_all,
]
