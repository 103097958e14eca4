"""Training tables: a truth CSV (``id,label`` or 0/1 node columns) plus a ``text`` or an ``image`` column."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medlens._validation import InputError
from medlens.hierarchy._encode import EncodedLabels
from medlens.taxonomy import Taxonomy

__all__ = ["TrainingTable", "read_training_table"]


@dataclass(frozen=True)
class TrainingTable:
    ids: list[str]
    inputs: list[Any]  # texts, or image paths resolved against the CSV's folder
    labels: EncodedLabels
    modality: str  # "text" or "image"
    path: str


def read_training_table(path: str | os.PathLike, taxonomy: Taxonomy, *, what: str = "training data") -> TrainingTable:
    """Read ``DATA.csv``: labels as in a truth CSV, plus ``text`` (the input text) or ``image`` (a path,
    relative to the CSV's folder unless absolute)."""
    from medlens.hierarchy import read_label_table

    header = _header(path)
    if header is not None and "text" not in header and "image" not in header:  # before a column reads as a label
        raise InputError(
            f"{what} {path}: found neither 'text' nor 'image' among its columns {header[:8]}; add exactly one input "
            "column: 'text' (the input text) or 'image' (an image path, relative to the CSV's folder)."
        )
    t = read_label_table(path, taxonomy, what=what, keep=("text", "image"))
    have = [c for c in ("text", "image") if c in t.extra]
    if len(have) != 1:
        found = "both 'text' and 'image'" if len(have) == 2 else "neither 'text' nor 'image'"
        raise InputError(f"{what} {path}: found {found}; add exactly one input column, 'text' or 'image'.")
    col = have[0]
    values = t.extra[col]
    for r, v in enumerate(values):
        if not str(v).strip():
            raise InputError(f"{what} {path}: row {r + 2} (id {t.ids[r]!r}) has an empty {col!r}.")
    if col == "image":
        base = Path(path).parent
        inputs: list[Any] = [Path(v) if Path(v).is_absolute() else base / v for v in values]
        missing = [(r, p) for r, p in enumerate(inputs) if not p.is_file()]
        if missing:
            r, p = missing[0]
            raise InputError(
                f"{what} {path}: row {r + 2} (id {t.ids[r]!r}): image {p} does not exist "
                f"({len(missing)} missing in all); paths are relative to the CSV's folder."
            )
    else:
        inputs = list(values)
    return TrainingTable(t.ids, inputs, t.labels, col, str(path))


def _header(path: str | os.PathLike) -> list[str] | None:
    """The CSV's column names, or None when the file cannot be read (the table reader then says why)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            return [h.strip() for h in next(csv.reader(fh), [])] or None
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
