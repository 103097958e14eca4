"""A synthetic NOVA with the real schema, written in every layout: 4 cases, 5 tiny PNGs, gold and rater boxes.

The content is small enough to check every metric by hand (see ``IMAGES`` and the tests):

=================  =======  ======  ========================  ================================
image              case     size    gold boxes (x, y, w, h)   rater2 (rater1 = gold)
=================  =======  ======  ========================  ================================
case0001_001.png   case01   64x48   (10, 8, 20, 16)           identical
case0001_002.png   case01   64x48   (30, 10, 10, 10)          (30, 10, 10, 4): IoU 0.4
case0002_001.png   case02   80x60   (5, 5, 20, 20),           only the first box
                                    (40, 30, 20, 20)
case0003_001.png   case03   64x64   none                      none
case0004_001.png   case04   50x40   (0, 0, 25, 20)            identical
=================  =======  ======  ========================  ================================
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("PIL")

CASES = {
    "case01": ("Progressive left-sided hearing loss and tinnitus.", "Vestibular schwannoma"),
    "case02": ("Seizures and headache for two weeks.", "Glioblastoma"),
    "case03": ("Incidental finding.", "Arachnoid cyst"),
    "case04": ("Visual impairment since birth.", "Septo-optic dysplasia"),
}

IMAGES = [
    {
        "filename": "case0001_001.png",
        "case_id": "case01",
        "scan_id": "s1",
        "size": (64, 48),
        "caption": "Axial T2-weighted image shows an extra-axial mass in the left cerebellopontine angle.",
        "gold": [(10, 8, 20, 16)],
        "rater2": [(10, 8, 20, 16)],
    },
    {
        "filename": "case0001_002.png",
        "case_id": "case01",
        "scan_id": "s2",
        "size": (64, 48),
        "caption": "Coronal T1 post-contrast image shows an enhancing mass in the left internal auditory canal.",
        "gold": [(30, 10, 10, 10)],
        "rater2": [(30, 10, 10, 4)],
    },
    {
        "filename": "case0002_001.png",
        "case_id": "case02",
        "scan_id": "s3",
        "size": (80, 60),
        "caption": "Axial FLAIR image shows a large tumour with surrounding oedema.",
        "gold": [(5, 5, 20, 20), (40, 30, 20, 20)],
        "rater2": [(5, 5, 20, 20)],
    },
    {
        "filename": "case0003_001.png",
        "case_id": "case03",
        "scan_id": "s4",
        "size": (64, 64),
        "caption": "Sagittal T1 image shows a CSF-intensity cyst in the posterior fossa.",
        "gold": [],
        "rater2": [],
    },
    {
        "filename": "case0004_001.png",
        "case_id": "case04",
        "scan_id": "s5",
        "size": (50, 40),
        "caption": "Coronal T2 image shows absence of the septum pellucidum.",
        "gold": [(0, 0, 25, 20)],
        "rater2": [(0, 0, 25, 20)],
    },
]

FILENAMES = [im["filename"] for im in IMAGES]


def png_bytes(size: tuple[int, int]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", size, color=40).save(buf, format="PNG")
    return buf.getvalue()


def _boxes_v1(im: dict) -> list[dict]:
    out = [{"source": "gold", "x": x, "y": y, "width": w, "height": h} for x, y, w, h in im["gold"]]
    out += [{"source": "rater1", "x": x, "y": y, "width": w, "height": h} for x, y, w, h in im["gold"]]
    out += [{"source": "rater2", "x": x, "y": y, "width": w, "height": h} for x, y, w, h in im["rater2"]]
    return out


def _struct(boxes: list[tuple], rater: str | None = None) -> dict:
    d = {k: [float(b[i]) for b in boxes] for i, k in enumerate(("x", "y", "width", "height"))}
    if rater is not None:
        d = {"rater": [rater] * len(boxes), **d}
    return d


def write_images(folder: Path, images: list[dict] = IMAGES) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for im in images:
        (folder / im["filename"]).write_bytes(png_bytes(im["size"]))


def v1_rows(*, json_strings: bool = True, images: list[dict] = IMAGES, cases: dict = CASES) -> list[dict]:
    rows = []
    for im in images:
        history, dx = cases[im["case_id"]]
        meta = {"clinical_history": history, "final_diagnosis": dx}
        boxes = _boxes_v1(im)
        rows.append(
            {
                "filename": im["filename"],
                "case_id": im["case_id"],
                "scan_id": im["scan_id"],
                "caption_text": im["caption"],
                "image_path": f"images/{im['filename']}",
                "meta": json.dumps(meta) if json_strings else meta,
                "bboxes": json.dumps(boxes) if json_strings else boxes,
            }
        )
    return rows


def write_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_v1(root: Path, *, json_strings: bool = True, rows: list[dict] | None = None) -> Path:
    """``root/data/nova-v1.parquet`` + ``root/images/*.png``."""
    write_images(root / "images")
    write_parquet(root / "data" / "nova-v1.parquet", rows if rows is not None else v1_rows(json_strings=json_strings))
    return root


def struct_rows(*, embed_images: bool = True) -> list[dict]:
    rows = []
    for im in IMAGES:
        history, dx = CASES[im["case_id"]]
        raters = im["gold"] + im["rater2"]
        rater_struct = None
        if raters:
            r1, r2 = _struct(im["gold"], "rater1"), _struct(im["rater2"], "rater2")
            rater_struct = {k: r1[k] + r2[k] for k in r1}
        rows.append(
            {
                "image": {"bytes": png_bytes(im["size"]), "path": im["filename"]}
                if embed_images
                else {"bytes": None, "path": f"images/{im['filename']}"},
                "filename": im["filename"],
                "case_id": im["case_id"],
                "scan_id": im["scan_id"],
                "caption": im["caption"],
                "clinical_history": history,
                "final_diagnosis": dx,
                "bbox_gold": _struct(im["gold"]),
                "bbox_raters": rater_struct,
            }
        )
    return rows


def write_struct(root: Path, *, embed_images: bool = True) -> Path:
    """``root/nova.parquet`` with embedded images (or paths to ``root/images``)."""
    if not embed_images:
        write_images(root / "images")
    write_parquet(root / "nova.parquet", struct_rows(embed_images=embed_images))
    return root


def _csv(path: Path, header: list[str], rows: list[list]) -> None:
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def write_csv(root: Path, *, raters: bool = True) -> Path:
    """The CSV triplet (+ ``bboxes_raters.csv``) and ``root/images``."""
    root.mkdir(parents=True, exist_ok=True)
    write_images(root / "images")
    _csv(
        root / "captions.csv",
        ["filename", "case_id", "scan_id", "caption"],
        [[im["filename"], im["case_id"], im["scan_id"], im["caption"]] for im in IMAGES],
    )
    _csv(
        root / "case_metadata.csv",
        ["case_id", "clinical_history", "final_diagnosis"],
        [[cid, h, dx] for cid, (h, dx) in CASES.items()],
    )
    _csv(
        root / "bboxes_gold.csv",
        ["filename", "x", "y", "width", "height"],
        [[im["filename"], *b] for im in IMAGES for b in im["gold"]],
    )
    if raters:
        _csv(
            root / "bboxes_raters.csv",
            ["filename", "rater", "x", "y", "width", "height"],
            [[im["filename"], "rater1", *b] for im in IMAGES for b in im["gold"]]
            + [[im["filename"], "rater2", *b] for im in IMAGES for b in im["rater2"]],
        )
    return root


WRITERS = {
    "parquet_v1_json": lambda root: write_v1(root, json_strings=True),
    "parquet_v1_nested": lambda root: write_v1(root, json_strings=False),
    "parquet_struct": lambda root: write_struct(root, embed_images=True),
    "parquet_struct_paths": lambda root: write_struct(root, embed_images=False),
    "csv": write_csv,
}


@pytest.fixture(params=sorted(WRITERS))
def any_layout(request, tmp_path) -> tuple[str, Path]:
    """(variant name, data folder) for every layout variant."""
    return request.param, WRITERS[request.param](tmp_path / request.param)


@pytest.fixture
def nova_dir(tmp_path) -> Path:
    """The v1 layout with JSON-string columns (the card's recommended file)."""
    return write_v1(tmp_path / "nova")


@pytest.fixture
def nova(nova_dir):
    from medlens.benchmarks.nova import load_nova

    return load_nova(nova_dir)


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def perfect_localization() -> list[dict]:
    """Gold boxes in four frames (xyxy, xywh, 0-1, 0-1000) + an empty answer for the image without gold."""
    return [
        {
            "filename": "case0001_001.png",
            "task": "localization",
            "boxes": [[10, 8, 30, 24]],
            "scores": [0.9],
            "box_format": "xyxy_pixel",
        },
        {
            "filename": "case0001_002.png",
            "task": "localization",
            "boxes": [[30, 10, 10, 10]],
            "scores": None,
            "box_format": "xywh_pixel",
        },
        {
            "filename": "case0002_001.png",
            "task": "localization",
            "boxes": [[5 / 80, 5 / 60, 25 / 80, 25 / 60], [40 / 80, 30 / 60, 60 / 80, 50 / 60]],
            "scores": [0.8, 0.7],
            "box_format": "xyxy_norm1",
        },
        {"filename": "case0003_001.png", "task": "localization", "boxes": [], "scores": [], "box_format": "xyxy_pixel"},
        {
            "filename": "case0004_001.png",
            "task": "localization",
            "boxes": [[0, 0, 500, 500]],
            "scores": None,
            "box_format": "xyxy_norm1000",
        },
    ]


def hand_diagnoses() -> list[dict]:
    """top1 = 2/5, top5 = 3/5 under exact_synonym (see test_nova_eval)."""
    return [
        {"filename": "case0001_001.png", "task": "diagnosis", "diagnoses": ["Acoustic neuroma"]},
        {
            "filename": "case0001_002.png",
            "task": "diagnosis",
            "diagnoses": ["Meningioma", "Epidermoid cyst", "vestibular schwannoma"],
        },
        {"filename": "case0002_001.png", "task": "diagnosis", "diagnoses": ["GBM", "Lymphoma"]},
        {"filename": "case0003_001.png", "task": "diagnosis", "diagnoses": ["cyst"]},
        {"filename": "case0004_001.png", "task": "diagnosis", "diagnoses": []},
    ]


@dataclass
class NovaFiles:
    root: Path
    predictions: Path


@pytest.fixture
def nova_files(nova_dir, tmp_path) -> NovaFiles:
    """The v1 copy and a predictions file with every task (perfect boxes, exact captions, hand diagnoses)."""
    captions = [{"filename": im["filename"], "task": "caption", "caption": im["caption"]} for im in IMAGES]
    rows = perfect_localization() + captions + hand_diagnoses()
    return NovaFiles(nova_dir, write_jsonl(tmp_path / "pred.jsonl", rows))


@pytest.fixture
def nf() -> SimpleNamespace:
    """The builders and the truth of this synthetic NOVA (conftest modules cannot be imported by tests)."""
    return SimpleNamespace(
        CASES=CASES,
        IMAGES=IMAGES,
        FILENAMES=FILENAMES,
        png_bytes=png_bytes,
        write_images=write_images,
        v1_rows=v1_rows,
        write_parquet=write_parquet,
        write_v1=write_v1,
        struct_rows=struct_rows,
        write_struct=write_struct,
        write_csv=write_csv,
        write_jsonl=write_jsonl,
        perfect_localization=perfect_localization,
        hand_diagnoses=hand_diagnoses,
    )
