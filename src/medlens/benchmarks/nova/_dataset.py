"""The NOVA benchmark: loader and validator of a local copy, and the evaluation of prediction rows.

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

import io
import json
import logging
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from medlens._validation import InputError, check_option, did_you_mean
from medlens.benchmarks.nova._eval import (
    PREDICTION_TASKS,
    NovaPredictions,
    nova_evaluate,
    read_nova_predictions,
)

__all__ = [
    "HF_DATASET_ID",
    "LAYOUTS",
    "NOVA_SCHEMA",
    "NovaCase",
    "NovaDataset",
    "NovaImage",
    "NovaPredictions",
    "NovaProblem",
    "PREDICTION_TASKS",
    "NovaSchema",
    "TableSchema",
    "load_nova",
    "nova_evaluate",
    "read_nova_predictions",
]

log = logging.getLogger(__name__)


# ================================================================================================ the schema
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
        columns={
            "filename": "filename",
            "case_id": "case_id",
            "scan_id": "scan_id",
            "caption": "caption_text",
            "image_path": "image_path",
            "meta": "meta",
            "boxes": "bboxes",
        },
        required=("filename", "case_id", "caption", "meta", "boxes"),
    )
    parquet_struct: TableSchema = TableSchema(
        file="*.parquet",
        columns={
            "filename": "filename",
            "case_id": "case_id",
            "scan_id": "scan_id",
            "caption": "caption",
            "clinical_history": "clinical_history",
            "final_diagnosis": "final_diagnosis",
            "image": "image",
            "image_path": "image_path",
            "gold_boxes": "bbox_gold",
            "rater_boxes": "bbox_raters",
        },
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


# ============================================================================================= the records
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


# ========================================================================================== locating data
_HF_ID = re.compile(r"^(?:hf://datasets/)?([A-Za-z0-9][\w.-]*/[\w.-]+)/?$")


def _from_hf_cache(repo_id: str, cache_dir: str | os.PathLike | None, revision: str | None) -> Path:
    """The snapshot folder of a dataset already in the local Hugging Face hub cache (no network, ever)."""
    from medlens._optional import require

    hub = require("huggingface_hub", extra="hf", purpose="reading NOVA from the Hugging Face cache")
    try:
        folder = hub.snapshot_download(
            repo_id, repo_type="dataset", revision=revision, cache_dir=cache_dir, local_files_only=True
        )
    except Exception as exc:  # noqa: BLE001 - LocalEntryNotFoundError and friends differ across versions
        where = cache_dir or "the Hugging Face hub cache ($HF_HUB_CACHE, default ~/.cache/huggingface/hub)"
        raise InputError(
            f"{repo_id!r} is not a local path and is not in {where} ({type(exc).__name__}). medlens never downloads "
            "NOVA (licence CC BY-NC-SA 4.0, non-commercial): download it yourself, e.g. "
            f"`huggingface-cli download {repo_id} --repo-type dataset --local-dir NOVA`, then pass --data NOVA."
        ) from None
    return Path(folder)


def _resolve(
    source: str | os.PathLike, hf_cache_dir: str | os.PathLike | None, revision: str | None
) -> tuple[Path, Path | None]:
    """(data folder, parquet file or None)."""
    path = Path(source).expanduser()
    if path.exists():
        if path.is_dir():
            return path, None
        if path.suffix.lower() == ".parquet":
            root = path.parent.parent if path.parent.name == "data" else path.parent
            return root, path
        raise InputError(
            f"{path}: expected a NOVA folder (with {NOVA_SCHEMA.default_parquet} or the CSV triplet "
            f"{NOVA_SCHEMA.csv_captions.file}, {NOVA_SCHEMA.csv_cases.file}, {NOVA_SCHEMA.csv_gold.file}) or a .parquet "
            "file; got a file of another type."
        )
    m = _HF_ID.match(str(source))
    if m and not str(source).startswith((".", "/", "~")):
        return _from_hf_cache(m.group(1), hf_cache_dir, revision), None
    raise InputError(
        f"{source}: no such file or folder. Give the folder of your local NOVA copy, its .parquet file, or the "
        f"Hugging Face id of a copy already in the local cache (e.g. {HF_DATASET_ID!r})."
    )


def _find_parquet(root: Path, schema: NovaSchema) -> Path | None:
    default = root / schema.default_parquet
    if default.is_file():
        return default
    found = sorted({*root.glob("*.parquet"), *root.glob("data/*.parquet")})
    if len(found) > 1:
        names = ", ".join(str(p.relative_to(root)) for p in found)
        raise InputError(f"{root}: several parquet files ({names}); pass the one to read as --data FILE.")
    return found[0] if found else None


def _has_csv(root: Path, schema: NovaSchema) -> bool:
    return all((root / t.file).is_file() for t in (schema.csv_captions, schema.csv_cases, schema.csv_gold))


# ============================================================================================ raw records
@dataclass
class _Box:
    kind: str  # "gold" | "rater"
    rater: str | None
    xywh: tuple[float, float, float, float]
    where: str


@dataclass
class _Row:
    where: str
    filename: str
    case_id: str
    scan_id: str
    caption: str
    clinical_history: str
    final_diagnosis: str
    boxes: list[_Box]
    image_path: str | None = None
    image_bytes: bytes | None = None


def _text(value: Any, where: str, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | np.integer):
        return str(int(value))
    raise InputError(f"{where}: column {column!r} must be text; got {type(value).__name__} {value!r}.")


def _number(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or value is None:
        raise InputError(f"{where}: box field {key!r} must be a number; got {value!r}.")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: box field {key!r} must be a number; got {value!r}.") from None
    if not math.isfinite(out):
        raise InputError(f"{where}: box field {key!r} must be finite; got {value!r}.")
    return out


def _json(value: Any, where: str, column: str, encodings: set[str]) -> Any:
    """The value of a nested column, parsed when it is a JSON string; adds how it was stored (``json`` or
    ``nested``) to ``encodings`` unless it is missing."""
    if isinstance(value, str):
        encodings.add("json")
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: column {column!r} is not valid JSON ({exc.msg}); got {value[:80]!r}.") from None
    if value is not None:
        encodings.add("nested")
    return value


def _box_dicts(value: Any, where: str, column: str) -> list[dict[str, Any]]:
    """Boxes given as a list of objects, or as an object of parallel lists (struct of lists), or nothing."""
    if value is None:
        return []
    if hasattr(value, "tolist"):  # numpy arrays from pandas
        value = value.tolist()
    if isinstance(value, Mapping):
        lists = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in value.items()}
        if all(v is None for v in lists.values()):
            return []
        lengths = {k: len(v) for k, v in lists.items() if isinstance(v, list | tuple)}
        if len(lengths) != len(lists) or len(set(lengths.values())) > 1:
            raise InputError(
                f"{where}: column {column!r} must be parallel lists of equal length (a struct of lists such as "
                f"{{x: [...], y: [...], width: [...], height: [...]}}); got lengths {lengths or lists}."
            )
        n = next(iter(lengths.values()), 0)
        return [{k: v[i] for k, v in lists.items()} for i in range(n)]
    if isinstance(value, list | tuple):
        out = []
        for i, b in enumerate(value):
            if not isinstance(b, Mapping):
                raise InputError(f"{where}: box {i} of column {column!r} must be an object; got {b!r}.")
            out.append(dict(b))
        return out
    raise InputError(
        f"{where}: column {column!r} must hold a list of boxes or a struct of lists; got {type(value).__name__}."
    )


def _boxes_from(
    dicts: list[dict[str, Any]], where: str, column: str, schema: NovaSchema, *, kind: str | None
) -> list[_Box]:
    """Read boxes; ``kind=None`` reads the gold/rater split from the source key (parquet_v1)."""
    out = []
    for i, b in enumerate(dicts):
        w = f"{where}, {column} box {i}"
        missing = [k for k in schema.box_keys if k not in b]
        if missing:
            raise InputError(f"{w}: missing key(s) {missing}; a box needs {list(schema.box_keys)}, found {sorted(b)}.")
        xywh = tuple(_number(b[k], w, k) for k in schema.box_keys)
        if kind is None:
            if schema.box_source_key not in b:
                raise InputError(
                    f"{w}: missing key {schema.box_source_key!r} (gold or a rater name); found {sorted(b)}."
                )
            src = _text(b[schema.box_source_key], w, schema.box_source_key)
            if src == schema.gold_source:
                out.append(_Box("gold", None, xywh, w))  # type: ignore[arg-type]
            else:
                rater = _text(b.get(schema.rater_key), w, schema.rater_key) or src
                out.append(_Box("rater", rater, xywh, w))  # type: ignore[arg-type]
        elif kind == "rater":
            rater = _text(b.get(schema.rater_key), w, schema.rater_key)
            if not rater:
                raise InputError(f"{w}: a rater box needs a {schema.rater_key!r} name; found {sorted(b)}.")
            out.append(_Box("rater", rater, xywh, w))  # type: ignore[arg-type]
        else:
            out.append(_Box("gold", None, xywh, w))  # type: ignore[arg-type]
    return out


def _check_columns(found: Sequence[str], table: TableSchema, source: str, layout: str) -> None:
    need = [table.columns[f] for f in table.required]
    missing = [c for c in need if c not in found]
    if missing:
        raise InputError(
            f"{source}: missing column(s) {missing} for the {layout} layout; expected columns {need} (optional: "
            f"{[c for f, c in table.columns.items() if f not in table.required]}), found {list(found)}. If your copy "
            "names them differently, adjust medlens.benchmarks.nova.NOVA_SCHEMA (or pass schema=...)."
        )


def _read_parquet(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    from medlens._optional import require

    pq = require("pyarrow.parquet", extra="io", purpose="reading NOVA parquet files")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for unreadable files
        raise InputError(f"{path}: cannot read as parquet ({exc}).") from None
    return list(table.column_names), table.to_pylist()


def _detect_parquet_layout(columns: Sequence[str], path: Path, schema: NovaSchema) -> str:
    v1 = schema.parquet_v1
    st = schema.parquet_struct
    if v1.columns["meta"] in columns or v1.columns["boxes"] in columns:
        return "parquet_v1"
    if st.columns["gold_boxes"] in columns or st.columns["clinical_history"] in columns:
        return "parquet_struct"
    raise InputError(
        f"{path}: cannot tell the NOVA layout from its columns. parquet_v1 expects "
        f"{[v1.columns[f] for f in v1.required]}; parquet_struct expects {[st.columns[f] for f in st.required]}; "
        f"found {list(columns)}. If your copy names them differently, adjust medlens.benchmarks.nova.NOVA_SCHEMA."
    )


def _rows_parquet_v1(path: Path, columns: list[str], records: list[dict], schema: NovaSchema) -> tuple[list, str]:
    t = schema.parquet_v1
    _check_columns(columns, t, str(path), "parquet_v1")
    c = t.columns
    encodings = set()
    rows = []
    for i, rec in enumerate(records):
        fname = _text(rec.get(c["filename"]), f"{path.name} row {i}", c["filename"])
        where = f"{path.name} row {i} (filename {fname!r})"
        meta = _json(rec.get(c["meta"]), where, c["meta"], encodings)
        if meta is None:
            meta = {}
        if not isinstance(meta, Mapping):
            raise InputError(
                f"{where}: column {c['meta']!r} must be an object with {sorted(schema.meta_keys.values())}; "
                f"got {type(meta).__name__}."
            )
        boxes_raw = _json(rec.get(c["boxes"]), where, c["boxes"], encodings)
        boxes = _boxes_from(_box_dicts(boxes_raw, where, c["boxes"]), where, c["boxes"], schema, kind=None)
        mk = schema.meta_keys
        rows.append(
            _Row(
                where=where,
                filename=fname,
                case_id=_text(rec.get(c["case_id"]), where, c["case_id"]),
                scan_id=_text(rec.get(c["scan_id"]), where, c["scan_id"]),
                caption=_text(rec.get(c["caption"]), where, c["caption"]),
                clinical_history=_text(
                    meta.get(mk["clinical_history"]), where, f"{c['meta']}.{mk['clinical_history']}"
                ),
                final_diagnosis=_text(meta.get(mk["final_diagnosis"]), where, f"{c['meta']}.{mk['final_diagnosis']}"),
                boxes=boxes,
                image_path=_text(rec.get(c["image_path"]), where, c["image_path"]) or None,
            )
        )
    encoding = encodings.pop() if len(encodings) == 1 else ("mixed" if encodings else "json")
    return rows, encoding


def _image_field(value: Any, where: str, column: str, schema: NovaSchema) -> tuple[bytes | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, bytes | bytearray):
        return bytes(value), None
    if isinstance(value, str):
        return None, value or None
    if isinstance(value, Mapping):
        kb, kp = schema.image_keys
        data, path = value.get(kb), value.get(kp)
        return (bytes(data) if data else None), (path or None)
    raise InputError(
        f"{where}: column {column!r} must be an image struct {{{', '.join(schema.image_keys)}}}, bytes or a path; "
        f"got {type(value).__name__}."
    )


def _rows_parquet_struct(path: Path, columns: list[str], records: list[dict], schema: NovaSchema) -> tuple[list, str]:
    t = schema.parquet_struct
    _check_columns(columns, t, str(path), "parquet_struct")
    c = t.columns
    encodings = set()
    rows = []
    for i, rec in enumerate(records):
        fname = _text(rec.get(c["filename"]), f"{path.name} row {i}", c["filename"])
        where = f"{path.name} row {i} (filename {fname!r})"
        boxes: list[_Box] = []
        for fld, kind in (("gold_boxes", "gold"), ("rater_boxes", "rater")):
            raw = _json(rec.get(c[fld]), where, c[fld], encodings)
            boxes += _boxes_from(_box_dicts(raw, where, c[fld]), where, c[fld], schema, kind=kind)
        data, img_path = _image_field(rec.get(c["image"]), where, c["image"], schema)
        img_path = _text(rec.get(c["image_path"]), where, c["image_path"]) or img_path
        rows.append(
            _Row(
                where=where,
                filename=fname,
                case_id=_text(rec.get(c["case_id"]), where, c["case_id"]),
                scan_id=_text(rec.get(c["scan_id"]), where, c["scan_id"]),
                caption=_text(rec.get(c["caption"]), where, c["caption"]),
                clinical_history=_text(rec.get(c["clinical_history"]), where, c["clinical_history"]),
                final_diagnosis=_text(rec.get(c["final_diagnosis"]), where, c["final_diagnosis"]),
                boxes=boxes,
                image_path=img_path,
                image_bytes=data,
            )
        )
    encoding = encodings.pop() if len(encodings) == 1 else ("mixed" if encodings else "nested")
    return rows, encoding


def _read_csv(path: Path, table: TableSchema, layout: str = "csv") -> list[tuple[str, dict[str, str]]]:
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001 - pandas raises many types for malformed CSV
        raise InputError(f"{path}: cannot read as CSV ({exc}).") from None
    _check_columns(list(frame.columns), table, str(path), layout)
    return [(f"{path.name} line {n + 2}", r) for n, r in enumerate(frame.to_dict("records"))]


def _csv_boxes(
    path: Path, table: TableSchema, schema: NovaSchema, kind: str, known: set[str], problems: list[NovaProblem]
) -> dict[str, list[_Box]]:
    c = table.columns
    out: dict[str, list[_Box]] = defaultdict(list)
    for where, r in _read_csv(path, table):
        fname = r[c["filename"]]
        rec = {k: r[c[k]] for k in ("x", "y", "width", "height")}
        rec = dict(zip(schema.box_keys, rec.values(), strict=True))
        if kind == "rater":
            rec[schema.rater_key] = r[c["rater"]]
        box = _boxes_from([rec], where, path.name, schema, kind=kind)[0]
        box.where = where
        if fname not in known:
            problems.append(
                NovaProblem(
                    "unknown_filename",
                    where,
                    f"{where}: box of {fname!r}, which is not in {schema.csv_captions.file}; the box is ignored.",
                    fname,
                )
            )
            continue
        out[fname].append(box)
    return out


def _rows_csv(root: Path, schema: NovaSchema, problems: list[NovaProblem]) -> tuple[list[_Row], list[Path]]:
    cap_t, case_t, gold_t, rater_t = schema.csv_captions, schema.csv_cases, schema.csv_gold, schema.csv_raters
    files = [root / cap_t.file, root / case_t.file, root / gold_t.file]
    cases: dict[str, tuple[str, str, str]] = {}
    cc = case_t.columns
    for where, r in _read_csv(root / case_t.file, case_t):
        cid = r[cc["case_id"]]
        vals = (r[cc["clinical_history"]], r[cc["final_diagnosis"]])
        if cid in cases and tuple(v.strip() for v in cases[cid][1:]) != tuple(v.strip() for v in vals):
            problems.append(
                NovaProblem(
                    "case_inconsistent",
                    where,
                    f"{where}: case {cid!r} appears again in {case_t.file} with other values than at {cases[cid][0]}; "
                    "the first row is used.",
                )
            )
            continue
        cases.setdefault(cid, (where, *vals))
    c = cap_t.columns
    captions = _read_csv(root / cap_t.file, cap_t)
    known = {r[c["filename"]] for _, r in captions}
    gold = _csv_boxes(root / gold_t.file, gold_t, schema, "gold", known, problems)
    raters: dict[str, list[_Box]] = {}
    if (root / rater_t.file).is_file():
        files.append(root / rater_t.file)
        raters = _csv_boxes(root / rater_t.file, rater_t, schema, "rater", known, problems)
    rows = []
    for where, r in captions:
        fname, cid = r[c["filename"]], r[c["case_id"]]
        where = f"{where} (filename {fname!r})"
        if cid not in cases:
            problems.append(
                NovaProblem(
                    "missing_case",
                    where,
                    f"{where}: case {cid!r} is not in {case_t.file}; its clinical history and diagnosis are empty.",
                    fname,
                )
            )
        _, history, dx = cases.get(cid, ("", "", ""))
        rows.append(
            _Row(
                where=where,
                filename=fname,
                case_id=cid,
                scan_id=r.get(c["scan_id"], ""),
                caption=r[c["caption"]],
                clinical_history=history,
                final_diagnosis=dx,
                boxes=gold.get(fname, []) + raters.get(fname, []),
            )
        )
    return rows, files


# ======================================================================================= images and boxes
def _image_size_of(data: bytes | None, path: Path | None) -> tuple[int, int]:
    from medlens._optional import require

    pil = require("PIL.Image", extra="vision", purpose="reading NOVA image sizes")
    with pil.open(io.BytesIO(data) if data is not None else path) as im:  # reads the header only
        return int(im.size[0]), int(im.size[1])


def _locate_image(row: _Row, layout: str, root: Path, table: Path | None, image_root: Path | None, schema: NovaSchema):
    bases = [image_root] if image_root is not None else []
    if layout == "csv":
        names = [row.image_path or row.filename]
        bases += [root / d for d in schema.csv_image_dirs]
    else:
        names = [row.image_path] if row.image_path else []
        names.append(row.filename)
        bases += [root, *([table.parent] if table is not None else []), root / "images"]
    for base in bases:
        for name in names:
            p = (base / name) if not Path(name).is_absolute() else Path(name)
            if p.is_file():
                return p
    return None


def _xyxy(box: _Box) -> np.ndarray:
    x, y, w, h = box.xywh
    return np.array([x, y, x + w, y + h], dtype=np.float64)


def _build(
    rows: list[_Row],
    *,
    layout: str,
    encoding: str,
    source: str,
    root: Path,
    table: Path | None,
    files: list[Path],
    image_root: Path | None,
    require_images: bool,
    schema: NovaSchema,
    problems: list[NovaProblem],
) -> NovaDataset:
    seen: dict[str, str] = {}
    for r in rows:
        if not r.filename:
            raise InputError(f"{r.where}: empty filename; every image needs a unique file name.")
        if r.filename in seen:
            raise InputError(
                f"{r.where}: filename {r.filename!r} already appears at {seen[r.filename]}; file names must be unique."
            )
        seen[r.filename] = r.where
        if not r.case_id:
            raise InputError(f"{r.where}: empty case_id; every image belongs to a case.")
    images = []
    raters: set[str] = set()
    for r in rows:
        for fld in ("caption", "final_diagnosis"):
            if not getattr(r, fld).strip():
                problems.append(NovaProblem("empty_field", r.where, f"{r.where}: empty {fld}.", r.filename))
        path = None if r.image_bytes is not None else _locate_image(r, layout, root, table, image_root, schema)
        size = None
        if r.image_bytes is not None or path is not None:
            try:
                size = _image_size_of(r.image_bytes, path)
            except ImportError:
                raise
            except Exception as exc:  # noqa: BLE001 - PIL raises several types for broken files
                problems.append(
                    NovaProblem("image_unreadable", r.where, f"{r.where}: cannot read the image ({exc}).", r.filename)
                )
        elif require_images:
            looked = r.image_path or r.filename
            problems.append(
                NovaProblem(
                    "image_missing",
                    r.where,
                    f"{r.where}: image {looked!r} not found under {image_root or root}; its boxes cannot be checked "
                    "against the image (pass image_root=/--images, or require_images=False/--no-images).",
                    r.filename,
                )
            )
        gold: list[np.ndarray] = []
        by_rater: dict[str, list[np.ndarray]] = defaultdict(list)
        for b in r.boxes:
            x, y, w, h = b.xywh
            if w <= 0 or h <= 0:
                problems.append(
                    NovaProblem(
                        "box_not_positive",
                        b.where,
                        f"{b.where}: box [x={x:g}, y={y:g}, width={w:g}, height={h:g}] has a non-positive "
                        "width or height; dropped.",
                        r.filename,
                    )
                )
                continue
            if size is not None and (x < 0 or y < 0 or x + w > size[0] or y + h > size[1]):
                problems.append(
                    NovaProblem(
                        "box_outside_image",
                        b.where,
                        f"{b.where}: box [x={x:g}, y={y:g}, width={w:g}, height={h:g}] lies outside the "
                        f"{size[0]}x{size[1]} image.",
                        r.filename,
                    )
                )
            if b.kind == "gold":
                gold.append(_xyxy(b))
            else:
                by_rater[b.rater].append(_xyxy(b))  # type: ignore[index]
        raters.update(by_rater)
        images.append(
            NovaImage(
                filename=r.filename,
                case_id=r.case_id,
                scan_id=r.scan_id,
                caption=r.caption,
                clinical_history=r.clinical_history,
                final_diagnosis=r.final_diagnosis,
                gold_boxes=np.array(gold, dtype=np.float64).reshape(-1, 4),
                rater_boxes={k: np.array(v, dtype=np.float64).reshape(-1, 4) for k, v in sorted(by_rater.items())},
                image_path=path,
                image_bytes=r.image_bytes,
                image_size=size,
                where=r.where,
            )
        )
    cases = _cases(images, problems)
    return NovaDataset(
        images=tuple(images),
        cases=cases,
        layout=layout,
        encoding=encoding,
        source=source,
        root=root,
        files=tuple(files),
        problems=tuple(problems),
        raters=tuple(sorted(raters)),
    )


def _cases(images: list[NovaImage], problems: list[NovaProblem]) -> dict[str, NovaCase]:
    groups: dict[str, list[NovaImage]] = {}
    for im in images:
        groups.setdefault(im.case_id, []).append(im)
    cases = {}
    for cid, ims in groups.items():
        first = ims[0]
        for fld in ("clinical_history", "final_diagnosis"):
            values = {getattr(im, fld).strip() for im in ims}
            if len(values) > 1:
                listing = "; ".join(f"{im.where}: {getattr(im, fld)!r}" for im in ims)
                problems.append(
                    NovaProblem(
                        "case_inconsistent",
                        first.where,
                        f"case {cid!r}: {fld} differs between its images ({listing}); the first image's value is used.",
                        first.filename,
                    )
                )
        cases[cid] = NovaCase(cid, first.clinical_history, first.final_diagnosis, tuple(im.filename for im in ims))
    return cases


# ================================================================================================ loading
def load_nova(
    source: str | os.PathLike,
    *,
    layout: Layout = "auto",
    strict: bool = True,
    require_images: bool = True,
    image_root: str | os.PathLike | None = None,
    schema: NovaSchema = NOVA_SCHEMA,
    hf_cache_dir: str | os.PathLike | None = None,
    revision: str | None = None,
) -> NovaDataset:
    """Load and validate a local copy of NOVA.

    Parameters
    ----------
    source : path or str
        The data folder (holding ``data/nova-v1.parquet``, another single ``.parquet`` file, or the CSV triplet),
        a ``.parquet`` file, or a Hugging Face dataset id (``"c-i-ber/Nova"`` or ``"hf://datasets/c-i-ber/Nova"``)
        that is already in the local hub cache. Nothing is ever downloaded.
    layout : {"auto", "parquet_v1", "parquet_struct", "csv"}
        ``"auto"`` prefers the parquet file when a folder has both.
    strict : bool
        Raise when the data has content problems (listing the first ones); ``False`` keeps them in
        :attr:`NovaDataset.problems`.
    require_images : bool
        Count a missing image file as a problem (without the image, boxes cannot be checked against its size
        and normalised box predictions cannot be converted). ``False`` for text-only work.
    image_root : path, optional
        Folder to look for images in first.
    schema : NovaSchema
        Column names (default :data:`NOVA_SCHEMA`).
    hf_cache_dir, revision
        Hugging Face hub cache folder (default: the hub's own default) and revision, for an id ``source``.

    Returns
    -------
    NovaDataset

    Raises
    ------
    InputError
        For structural faults (naming file, row, expected vs found columns), and for content problems when
        ``strict``.
    """
    check_option(layout, ("auto", *LAYOUTS), name="layout")
    root, table = _resolve(source, hf_cache_dir, revision)
    img_root = Path(image_root).expanduser() if image_root is not None else None
    if img_root is not None and not img_root.is_dir():
        raise InputError(f"image_root {img_root} is not a folder.")
    problems: list[NovaProblem] = []
    if layout == "csv" or (layout == "auto" and table is None and not _find_parquet(root, schema)):
        if not _has_csv(root, schema):
            need = [schema.csv_captions.file, schema.csv_cases.file, schema.csv_gold.file]
            found = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
            raise InputError(
                f"{root}: no NOVA data found. Expected {schema.default_parquet} (or one .parquet file) or the CSV files "
                f"{need}; found {found[:20]}."
            )
        rows, files = _rows_csv(root, schema, problems)
        chosen, encoding = "csv", "csv"
    else:
        table = table or _find_parquet(root, schema)
        if table is None:
            raise InputError(
                f"{root}: no .parquet file found for layout {layout!r} (looked for {schema.default_parquet})."
            )
        columns, records = _read_parquet(table)
        chosen = _detect_parquet_layout(columns, table, schema) if layout == "auto" else layout
        reader = _rows_parquet_v1 if chosen == "parquet_v1" else _rows_parquet_struct
        rows, encoding = reader(table, columns, records, schema)
        files = [table]
    if not rows:
        raise InputError(f"{files[0]}: no rows; a NOVA copy has one row per image.")
    ds = _build(
        rows,
        layout=chosen,
        encoding=encoding,
        source=str(source),
        root=root,
        table=table,
        files=files,
        image_root=img_root,
        require_images=require_images,
        schema=schema,
        problems=problems,
    )
    log.info("NOVA: %d images, %d cases from %s (%s, %s)", len(ds), len(ds.cases), source, chosen, encoding)
    if strict and ds.problems:
        shown = " | ".join(p.message for p in ds.problems[:3])
        more = f" (and {len(ds.problems) - 3} more)" if len(ds.problems) > 3 else ""
        raise InputError(
            f"NOVA data at {source} has {len(ds.problems)} problem(s): {shown}{more}. Run `medlens nova validate "
            "--data PATH` to list them all, or load with strict=False (CLI: --allow-problems) to keep going."
        )
    return ds
