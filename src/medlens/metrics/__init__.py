"""Metrics shared by the benchmarks: detection (IoU, VOC-11 and COCO AP) for NOVA and grounding.

Each family lives in its own module (``medlens.metrics.detection``) and is re-exported here.
"""

from medlens.metrics.detection import *  # noqa: F403 - the detection module defines __all__
from medlens.metrics.detection import __all__ as _detection_all

__all__ = [*_detection_all]
