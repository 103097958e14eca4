"""The ``cxr-reports`` benchmark: Indiana University chest X-ray reports labelled with ``cxr_anatomic_v1`` nodes,
the zero-shot run with risk-constrained thresholds, and the radial fine-tuning run (``--full``).
"""

from medlens.benchmarks.cxr_reports._data import (
    ARCHIVE_NAME,
    IGNORE,
    SPLITS,
    TAXONOMY,
    CxrReports,
    load_cxr_reports,
    load_mesh_map,
    locate_archive,
    map_headings,
    read_reports,
)

__all__ = [
    "ARCHIVE_NAME",
    "IGNORE",
    "SPLITS",
    "TAXONOMY",
    "CxrReports",
    "load_cxr_reports",
    "load_mesh_map",
    "locate_archive",
    "map_headings",
    "read_reports",
]
