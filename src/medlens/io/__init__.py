"""Input/output, the leaf of the package graph: atomic writes, run folders, texts, images, features and 3-D volumes.

It imports nothing from the other medlens packages; truth/prediction/score tables know a taxonomy and so live
in :mod:`medlens.hierarchy` (``read_label_table``, ``read_score_table`` and their writers).
"""

from medlens.io._atomic import (
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    file_sha256,
    to_json,
)
from medlens.io._inputs import list_images, load_image, read_features, read_texts, write_features
from medlens.io._jsonl import drop_partial_line, iter_jsonl, read_jsonl
from medlens.io._runs import RunFolder, RunFolderLocked, RunLog, RunManifestMismatch, prepare_run_dir
from medlens.io._volumes import LPS_TO_RAS, Volume, read_mask, read_volume

__all__ = [
    "drop_partial_line",
    "prepare_run_dir",
    "to_json",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "file_sha256",
    "RunFolder",
    "RunFolderLocked",
    "RunLog",
    "RunManifestMismatch",
    "iter_jsonl",
    "read_jsonl",
    "list_images",
    "load_image",
    "read_texts",
    "read_features",
    "write_features",
    "LPS_TO_RAS",
    "Volume",
    "read_mask",
    "read_volume",
]
