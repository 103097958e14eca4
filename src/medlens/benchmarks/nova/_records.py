"""The records of a loaded NOVA copy: images, cases, content problems and the dataset that holds them.

See :mod:`medlens.benchmarks.nova._schema` for the data and what each problem kind means.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medlens._validation import InputError, did_you_mean

__all__ = ["PROBLEM_KINDS", "NovaCase", "NovaDataset", "NovaImage", "NovaProblem"]


@dataclass(frozen=True, eq=False)
class NovaImage:
    """One key image with its annotations.

    Attributes
    ----------
    filename, case_id, scan_id : str
        Identity (``scan_id`` is ``""`` when the data has none).
    caption : str
        The radiologist's image-level caption.
    clinical_history, final_diagnosis : str
        The case's fields (as given on this image's row; :class:`NovaCase` holds the case's value).
    gold_boxes : numpy.ndarray
        ``(n, 4)`` pixel ``xyxy`` gold boxes (``n`` may be 0).
    rater_boxes : dict
        Rater name → ``(n, 4)`` pixel ``xyxy`` boxes.
    image_path : pathlib.Path or None
        The image file, when the data points to one that exists.
    image_bytes : bytes or None
        The encoded image, when the data embeds it (struct layout).
    image_size : tuple or None
        ``(width, height)`` in pixels, read from the image header; ``None`` when the image is unavailable.
    where : str
        Where the record comes from (``"nova-v1.parquet row 3"``, ``"captions.csv line 5"``).
    """

    filename: str
    case_id: str
    scan_id: str
    caption: str
    clinical_history: str
    final_diagnosis: str
    gold_boxes: np.ndarray
    rater_boxes: dict[str, np.ndarray]
    image_path: Path | None
    image_bytes: bytes | None = field(repr=False)
    image_size: tuple[int, int] | None
    where: str

    def open_image(self):
        """The image as a ``PIL.Image`` (needs the ``vision`` extra)."""
        from medlens._optional import require

        pil = require("PIL.Image", extra="vision", purpose="opening NOVA images")
        if self.image_bytes is not None:
            return pil.open(io.BytesIO(self.image_bytes))
        if self.image_path is not None:
            return pil.open(self.image_path)
        raise InputError(f"image {self.filename!r} ({self.where}) has no image file or bytes in this copy of NOVA.")


@dataclass(frozen=True)
class NovaCase:
    """One case: its clinical history, final diagnosis and the file names of its images (in data order)."""

    case_id: str
    clinical_history: str
    final_diagnosis: str
    filenames: tuple[str, ...]


@dataclass(frozen=True)
class NovaProblem:
    """A content problem found while loading (see the module notes).

    ``kind`` is one of ``box_not_positive``, ``box_outside_image``, ``case_inconsistent``, ``image_missing``,
    ``image_unreadable``, ``empty_field``, ``unknown_filename``, ``missing_case``.
    """

    kind: str
    where: str
    message: str
    filename: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "where": self.where, "filename": self.filename, "message": self.message}


PROBLEM_KINDS = (
    "box_not_positive",
    "box_outside_image",
    "case_inconsistent",
    "image_missing",
    "image_unreadable",
    "empty_field",
    "unknown_filename",
    "missing_case",
)


@dataclass(frozen=True, eq=False)
class NovaDataset:
    """A loaded copy of NOVA: per-image and per-case records, where they came from, and what is wrong with them.

    Attributes
    ----------
    images : tuple of NovaImage
        In data order; file names are unique.
    cases : dict
        ``case_id`` → :class:`NovaCase`, in order of first appearance.
    layout : str
        ``"parquet_v1"``, ``"parquet_struct"`` or ``"csv"``.
    encoding : str
        How nested fields were stored: ``"json"`` (JSON strings), ``"nested"`` (parquet structs/lists),
        ``"mixed"``, or ``"csv"``.
    source : str
        The path or Hugging Face id given to :func:`load_nova`.
    root : pathlib.Path
        The data folder.
    files : tuple of pathlib.Path
        The table files read (hashed into provenance).
    problems : tuple of NovaProblem
    raters : tuple of str
        Rater names found, sorted.
    """

    images: tuple[NovaImage, ...]
    cases: dict[str, NovaCase]
    layout: str
    encoding: str
    source: str
    root: Path
    files: tuple[Path, ...]
    problems: tuple[NovaProblem, ...] = ()
    raters: tuple[str, ...] = ()
    _index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index.update({im.filename: i for i, im in enumerate(self.images)})

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[NovaImage]:
        return iter(self.images)

    def __contains__(self, filename: object) -> bool:
        return filename in self._index

    @property
    def filenames(self) -> list[str]:
        """Image file names in data order."""
        return [im.filename for im in self.images]

    def image(self, filename: str) -> NovaImage:
        """The record of ``filename``; a ``KeyError`` with close matches when unknown."""
        try:
            return self.images[self._index[filename]]
        except KeyError:
            raise KeyError(
                f"{filename!r} is not an image of this NOVA copy ({len(self)} images).{did_you_mean(filename, self._index)}"
            ) from None

    def case_of(self, filename: str) -> NovaCase:
        """The case an image belongs to."""
        return self.cases[self.image(filename).case_id]

    def final_diagnosis(self, filename: str) -> str:
        """The final diagnosis of an image's case (the case value, after the consistency check)."""
        return self.case_of(filename).final_diagnosis

    def summary(self) -> dict[str, Any]:
        """Counts and problems, as ``medlens nova validate`` prints them."""
        n_gold = [len(im.gold_boxes) for im in self.images]
        rater_counts = {r: sum(len(im.rater_boxes.get(r, ())) for im in self.images) for r in self.raters}
        sizes = [im.image_size for im in self.images if im.image_size is not None]
        per_case = [len(c.filenames) for c in self.cases.values()]
        kinds = Counter(p.kind for p in self.problems)
        return {
            "source": self.source,
            "root": str(self.root),
            "layout": self.layout,
            "encoding": self.encoding,
            "files": [str(f) for f in self.files],
            "n_images": len(self.images),
            "n_cases": len(self.cases),
            "n_diagnoses": len({c.final_diagnosis.strip().lower() for c in self.cases.values()}),
            "images_per_case": {"min": min(per_case), "max": max(per_case)} if per_case else None,
            "n_gold_boxes": int(sum(n_gold)),
            "n_images_without_gold": int(sum(1 for n in n_gold if n == 0)),
            "raters": rater_counts,
            "n_rater_boxes": int(sum(rater_counts.values())),
            "n_images_with_size": len(sizes),
            "image_width": _range([s[0] for s in sizes]),
            "image_height": _range([s[1] for s in sizes]),
            "valid": not self.problems,
            "n_problems": len(self.problems),
            "problem_counts": {k: kinds[k] for k in PROBLEM_KINDS if kinds[k]},
            "problems": [p.to_dict() for p in self.problems],
        }


def _range(values: list[int]) -> dict[str, int] | None:
    return {"min": int(min(values)), "max": int(max(values))} if values else None
