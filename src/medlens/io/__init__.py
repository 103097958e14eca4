"""Input/output: atomic writes, JSONL runs, truth/prediction/score tables, texts, images and features."""

from medlens.io._atomic import atomic_write, atomic_write_bytes, atomic_write_json, atomic_write_text, file_sha256
from medlens.io._inputs import list_images, load_image, read_features, read_texts, write_features
from medlens.io._jsonl import JsonlRun, RunManifestMismatch, read_jsonl
from medlens.io._tables import (
    LabelTable,
    ScoreTable,
    read_label_table,
    read_score_table,
    write_label_table,
    write_score_table,
)

__all__ = [
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "file_sha256",
    "JsonlRun",
    "RunManifestMismatch",
    "read_jsonl",
    "LabelTable",
    "ScoreTable",
    "read_label_table",
    "read_score_table",
    "write_label_table",
    "write_score_table",
    "list_images",
    "load_image",
    "read_texts",
    "read_features",
    "write_features",
]
