"""The NOVA data and its schema: where the data comes from, its licence, and every name the loader relies on.

The loader is :mod:`medlens.benchmarks.nova._loader` (records in ``_records``, the three on-disk layouts in
``_layouts``); this module holds the notes on the data for all of them. Names without a module below
(:func:`load_nova`, :class:`NovaDataset`, :func:`nova_evaluate`, ...) are those of :mod:`medlens.benchmarks.nova`.

The data
--------
NOVA (Bercea et al., "NOVA: A Benchmark for Anomaly Localization and Clinical Reasoning in Brain MRI", arXiv
2505.14064, NeurIPS 2025 Datasets & Benchmarks) is an evaluation-only set of about 900 2D brain-MRI key images
over 281 rare diagnoses. Each image has a radiologist caption and gold boxes plus the raw boxes of two raters;
each case (one or more images) has a clinical history and a final diagnosis. Three tasks: anomaly
localisation, captioning and diagnostic reasoning.

Licence: the dataset card says CC BY-NC-SA 4.0, "for academic, non-commercial use only" (its Croissant file says
CC BY 4.0; we follow the stricter one). **medlens never ships or downloads NOVA.** Point :func:`load_nova` at
your own local copy, or give the Hugging Face id (``c-i-ber/Nova``) of a copy already in the local Hugging Face
hub cache; nothing is fetched.

The schema
----------
Column names come from public descriptions of the dataset, not from the official files, so they live in one
place, :data:`NOVA_SCHEMA` below; adjust it there, or pass ``schema=dataclasses.replace(NOVA_SCHEMA, ...)``.
Where each name comes from ([V] verified on the dataset card / its notebook, [3P] seen only in third-party
loaders, [U] assumed):

- ``parquet_v1`` — ``data/nova-v1.parquet`` of the ``c-i-ber/Nova`` repo (the card's recommended file) [V]:
  columns ``filename``, ``case_id``, ``scan_id``, ``caption_text``, ``image_path`` (relative to the repo root),
  ``meta`` (``{"clinical_history", "final_diagnosis"}``) and ``bboxes`` (a list of ``{"source", "x", "y",
  "width", "height"}``; ``source`` is ``"gold"`` or a rater) [3P: liamchalcroft/gaze ``examples/nova``]. The
  Croissant description says the boxes and metadata are stored "as JSON" [V]: ``meta`` and ``bboxes`` may be
  JSON strings or nested parquet values; both are read (the summary reports which, as ``encoding``).
- ``parquet_struct`` — the layout of the original loading script and of the card's notebook: ``image`` (a
  Hugging Face image struct ``{bytes, path}``) and the struct-of-lists box columns ``bbox_gold`` ``{x, y,
  width, height}`` and ``bbox_raters`` ``{rater, x, y, width, height}`` [V: notebook]; text columns
  ``filename``, ``case_id``, ``scan_id``, ``caption``, ``clinical_history``, ``final_diagnosis`` [3P].
- ``csv`` — the CSV triplet of third-party loaders [3P]: ``captions.csv`` (``filename, case_id, scan_id,
  caption``), ``case_metadata.csv`` (``case_id, clinical_history, final_diagnosis``), ``bboxes_gold.csv``
  (``filename, x, y, width, height``), plus an optional ``bboxes_raters.csv`` (``filename, rater, x, y, width,
  height``) [U]; images are looked up by file name in ``images/`` and then in the folder itself.

Schema check (done for ``medlens nova run``; no official file could be opened, so nothing here is [V] beyond
what the list above marks so):

- ``parquet_v1`` names confirmed by three independent third-party readers of ``data/nova-v1.parquet``, which all
  use exactly ``filename``, ``case_id``, ``scan_id``, ``caption_text``, ``image_path`` (a path relative to the
  dataset repo root), ``meta`` with keys ``clinical_history`` and ``final_diagnosis``, and ``bboxes`` as a list
  of ``{"x", "y", "width", "height", "source"}`` with gold boxes marked ``source == "gold"`` and converted
  ``xywh -> xyxy`` as here: liamchalcroft/gaze ``examples/nova/src/data/nova_dataset.py`` (commit 650fc6d), a
  WALDO reference implementation's ``scripts/run_inference.py`` and a NOVA RL environment's ``prepare_data.py``
  (the code index did not name the repositories of the last two). All three read
  ``meta`` and ``bboxes`` as already-decoded Python objects (``isinstance(row["meta"], dict)`` after
  ``pandas.read_parquet``), which suggests nested parquet values rather than JSON strings in the current file;
  both are read here. The source name of rater boxes (anything other than ``"gold"``) was not found.
- ``parquet_struct`` confirmed [V] by the card's notebook (``example.ipynb`` of ``c-i-ber/Nova`` at commit
  e2d3c6c): ``load_dataset("Ano-2090/Nova", trust_remote_code=True)``, split ``"test"``, fields ``image``,
  ``bbox_gold`` ``{x, y, width, height}`` and ``bbox_raters`` ``{rater, x, y, width, height}`` drawn as top-left
  ``(x, y)`` plus ``(w, h)``. A third-party script over that loader also reads ``filename``, ``caption``,
  ``clinical_history``, ``final_diagnosis`` and a ``differential_diagnosis`` field [3P; not read by medlens].
- ``csv``: ``captions.csv`` (``filename, case_id, scan_id, caption``), ``case_metadata.csv`` (``case_id,
  clinical_history, final_diagnosis``) and ``bboxes_gold.csv`` (``filename, x, y, width, height``) confirmed
  [3P] by liamchalcroft/gaze ``examples/nova/src/data/nova_ground_truth.py`` and its tests, which download them
  from the dataset repo with ``hf_hub_download``; ``bboxes_raters.csv`` remains [U].
- Loading ``c-i-ber/Nova`` with ``load_dataset`` alone gives the image folder (images sorted by file name, not
  in parquet row order: the WALDO reader maps rows to images by file name); medlens looks images up by
  ``image_path`` / file name, never by position.

Boxes are pixel ``[x, y, width, height]`` with a top-left origin in every layout (the notebook draws them so);
the loader stores them as pixel ``xyxy`` (``[x1, y1, x2, y2]``), the frame of :mod:`medlens.metrics`.

Validation
----------
Structural faults (a missing file or column, unreadable JSON, a non-numeric coordinate, a duplicated file name)
raise :class:`~medlens._validation.InputError` naming the file, the row and the expected vs found columns.
Content faults are collected as :class:`NovaProblem` records: a box with non-positive width or height (the box
is dropped), a box outside its image (kept), case fields that differ between the images of a case (the first
image's value is the case's), an image file that is missing or unreadable, an empty caption or diagnosis, gold
boxes of an unknown file. ``strict=True`` (the default) raises on the first load when there is any problem;
``strict=False`` keeps them in :attr:`NovaDataset.problems` (``medlens nova validate`` lists them).

Evaluation
----------
:func:`nova_evaluate` (see :mod:`medlens.benchmarks.nova._eval`) scores prediction rows (one JSON object per
line) for the three tasks with :mod:`medlens.metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["HF_DATASET_ID", "LAYOUTS", "NOVA_SCHEMA", "Layout", "NovaSchema", "TableSchema"]


@dataclass(frozen=True)
class TableSchema:
    """Columns of one table: ``columns`` maps a record field to the column that holds it.

    ``required`` lists the fields that must be present; the others are read when there.
    """

    file: str
    columns: Mapping[str, str]
    required: tuple[str, ...]

    def column(self, field_name: str) -> str:
        return self.columns[field_name]


def _columns(same: str, **renamed: str) -> dict[str, str]:
    """A field → column map: the fields named in ``same`` (space-separated) are columns of their own name; each
    of ``renamed`` gives its column's name."""
    return {**{name: name for name in same.split()}, **renamed}


@dataclass(frozen=True)
class NovaSchema:
    """Every name the NOVA loader relies on, in one place (see the module notes for where each comes from).

    Attributes
    ----------
    parquet_v1 : TableSchema
        ``data/nova-v1.parquet``: fields ``filename, case_id, scan_id, caption, image_path, meta, boxes``.
    parquet_struct : TableSchema
        Loading-script layout: fields ``filename, case_id, scan_id, caption, clinical_history, final_diagnosis,
        image, image_path, gold_boxes, rater_boxes``.
    csv_captions, csv_cases, csv_gold, csv_raters : TableSchema
        The CSV triplet (+ the optional rater table).
    meta_keys : mapping
        Keys of the ``meta`` object: ``clinical_history`` and ``final_diagnosis``.
    box_keys : tuple
        Keys of a box: x, y, width, height (pixels, top-left origin).
    box_source_key, gold_source, rater_key : str
        In ``parquet_v1`` boxes, ``box_source_key`` says whether a box is gold (value ``gold_source``) or a
        rater's (any other value names the rater, unless a ``rater_key`` entry names it); in the struct and
        CSV layouts ``rater_key`` names the rater.
    image_keys : tuple
        Keys of a Hugging Face image struct: bytes, path.
    default_parquet : str
        Where the parquet file sits in the dataset repo.
    csv_image_dirs : tuple
        Folders (relative to the data folder) searched for CSV-layout images, in order.
    """

    parquet_v1: TableSchema = TableSchema(
        file="data/nova-v1.parquet",
        columns=_columns("filename case_id scan_id image_path meta", caption="caption_text", boxes="bboxes"),
        required=("filename", "case_id", "caption", "meta", "boxes"),
    )
    parquet_struct: TableSchema = TableSchema(
        file="*.parquet",
        columns=_columns(
            "filename case_id scan_id caption clinical_history final_diagnosis image image_path",
            gold_boxes="bbox_gold",
            rater_boxes="bbox_raters",
        ),
        required=("filename", "case_id", "caption", "clinical_history", "final_diagnosis", "gold_boxes"),
    )
    csv_captions: TableSchema = TableSchema(
        file="captions.csv",
        columns={"filename": "filename", "case_id": "case_id", "scan_id": "scan_id", "caption": "caption"},
        required=("filename", "case_id", "caption"),
    )
    csv_cases: TableSchema = TableSchema(
        file="case_metadata.csv",
        columns={"case_id": "case_id", "clinical_history": "clinical_history", "final_diagnosis": "final_diagnosis"},
        required=("case_id", "clinical_history", "final_diagnosis"),
    )
    csv_gold: TableSchema = TableSchema(
        file="bboxes_gold.csv",
        columns={"filename": "filename", "x": "x", "y": "y", "width": "width", "height": "height"},
        required=("filename", "x", "y", "width", "height"),
    )
    csv_raters: TableSchema = TableSchema(
        file="bboxes_raters.csv",
        columns={"filename": "filename", "rater": "rater", "x": "x", "y": "y", "width": "width", "height": "height"},
        required=("filename", "rater", "x", "y", "width", "height"),
    )
    meta_keys: Mapping[str, str] = field(
        default_factory=lambda: {"clinical_history": "clinical_history", "final_diagnosis": "final_diagnosis"}
    )
    box_keys: tuple[str, str, str, str] = ("x", "y", "width", "height")
    box_source_key: str = "source"
    gold_source: str = "gold"
    rater_key: str = "rater"
    image_keys: tuple[str, str] = ("bytes", "path")
    default_parquet: str = "data/nova-v1.parquet"
    csv_image_dirs: tuple[str, ...] = ("images", ".")


NOVA_SCHEMA = NovaSchema()
"""The schema :func:`load_nova` uses by default (see :class:`NovaSchema` and the module notes)."""

LAYOUTS = ("parquet_v1", "parquet_struct", "csv")
"""Layouts :func:`load_nova` reads (``layout="auto"`` tells them apart by file names and columns)."""

HF_DATASET_ID = "c-i-ber/Nova"
"""The dataset's Hugging Face id (read from the local hub cache only, never downloaded)."""

Layout = Literal["auto", "parquet_v1", "parquet_struct", "csv"]
