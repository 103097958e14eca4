"""The ``fair-reports`` benchmark: IU chest X-ray impressions disaggregated by real patient age (FMBench-style
fairness report on embedded data). The loader's public names are those of
:mod:`medlens.benchmarks.fair_reports._data`; the run is a registered benchmark (``medlens bench list``).
"""

from medlens.benchmarks.fair_reports import _data
from medlens.benchmarks.fair_reports._data import *  # noqa: F403 - _data defines __all__

__all__ = list(_data.__all__)
