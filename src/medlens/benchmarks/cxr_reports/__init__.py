"""The ``cxr-reports`` benchmark: Indiana University chest X-ray reports labelled with ``cxr_anatomic_v1`` nodes,
the zero-shot run with risk-constrained thresholds, and the radial fine-tuning run (``--full``).

The loader's public names (``load_cxr_reports``, ``CxrReports``, the MeSH map, the splits) are those of
:mod:`medlens.benchmarks.cxr_reports._data`; the runs are registered benchmarks (``medlens bench list``).
"""

from medlens.benchmarks.cxr_reports import _data
from medlens.benchmarks.cxr_reports._data import *  # noqa: F403 - _data defines __all__

__all__ = list(_data.__all__)
