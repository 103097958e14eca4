"""Loading and validating a local copy of NOVA: :func:`load_nova`.

It finds the data (a folder, a parquet file, or a Hugging Face id already in the local hub cache), reads it with
the layout readers of :mod:`medlens.benchmarks.nova._layouts`, then checks the content (unique file names, boxes
against their image, cases consistent across their images) into :class:`~medlens.benchmarks.nova.NovaDataset`.
See :mod:`medlens.benchmarks.nova._schema` for the data, the licence and the schema's sources.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from medlens._validation import InputError, check_option
from medlens.benchmarks.nova._layouts import (
    RawBox,
    RawRow,
    detect_parquet_layout,
    read_csv_layout,
    read_parquet,
    read_parquet_layout,
)
from medlens.benchmarks.nova._records import NovaCase, NovaDataset, NovaImage, NovaProblem
from medlens.benchmarks.nova._schema import HF_DATASET_ID, LAYOUTS, NOVA_SCHEMA, Layout, NovaSchema

__all__ = ["load_nova"]

log = logging.getLogger(__name__)


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


# ======================================================================================= images and boxes
def _image_size_of(data: bytes | None, path: Path | None) -> tuple[int, int]:
    from medlens._optional import require

    pil = require("PIL.Image", extra="vision", purpose="reading NOVA image sizes")
    with pil.open(io.BytesIO(data) if data is not None else path) as im:  # reads the header only
        return int(im.size[0]), int(im.size[1])


def _locate_image(
    row: RawRow, layout: str, root: Path, table: Path | None, image_root: Path | None, schema: NovaSchema
):
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


def _xyxy(box: RawBox) -> np.ndarray:
    x, y, w, h = box.xywh
    return np.array([x, y, x + w, y + h], dtype=np.float64)


def _build(
    rows: list[RawRow],
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
        rows, files = read_csv_layout(root, schema, problems)
        chosen, encoding = "csv", "csv"
    else:
        table = table or _find_parquet(root, schema)
        if table is None:
            raise InputError(
                f"{root}: no .parquet file found for layout {layout!r} (looked for {schema.default_parquet})."
            )
        columns, records = read_parquet(table)
        chosen = detect_parquet_layout(columns, table, schema) if layout == "auto" else layout
        rows, encoding = read_parquet_layout(table, columns, records, schema, chosen)
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
