"""Input/output: atomic writes, append-and-resume JSONL runs, truth/prediction/score tables."""

from medlens.io._atomic import atomic_write, atomic_write_bytes, atomic_write_json, atomic_write_text, file_sha256
from medlens.io._jsonl import JsonlRun, RunManifestMismatch, read_jsonl
from medlens.io._tables import LabelTable, ScoreTable, read_label_table, read_score_table, write_label_table

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
]
