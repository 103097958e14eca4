"""Real box statistics for the knowledge base: NIH ChestX-ray14 and VinDr-CXR box tables.

Both tables ship in the ``torchxrayvision`` wheel (the ``data`` extra) and are found through package metadata;
``torchxrayvision`` is never imported.

- NIH ``BBox_List_2017.csv.gz``: 984 boxes ``x, y, w, h`` on 1024 × 1024 images, 8 findings. All images share one
  size, so boxes normalise to the unit square: :func:`nih_box_statistics` gives each finding's centre, side, zone
  and area fraction.
- VinDr ``vinbigdata-train.csv.gz``: 15,000 images, each read by 3 of 17 readers, 14 findings + "No finding",
  pixel boxes without image sizes (so sizes stay absolute, in pixels): :func:`vindr_box_statistics` gives counts
  and sizes, :func:`reader_agreement` the agreement of the three readers.

Derivation of the "typical size/location" attributes (:func:`derive_attributes`), recorded in every output:

- side: a box whose width exceeds half the image is ``bilateral``; otherwise its centre ``cx`` decides:
  ``cx < 0.4`` is the patient's right (the viewer's left on a PA image), ``cx > 0.6`` the patient's left, and in
  between ``central``;
- zone: the centre height ``cy`` in thirds of the image: ``upper`` (< 1/3), ``middle``, ``lower`` (≥ 2/3). This
  is a proxy for lung zones (the lungs do not fill the image), stated as such;
- the location attribute names the most frequent zone and side with their shares; the size attribute gives the
  median and interquartile range of the box area as a percentage of the image area (NIH), and the median box
  width × height in pixels from VinDr when the finding has VinDr boxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from os import PathLike
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from medlens._validation import InputError
from medlens.metrics import box_precision_recall

__all__ = [
    "NIH_BOX_FILE",
    "NIH_IMAGE_SIZE",
    "VINDR_BOX_FILE",
    "DERIVATION",
    "DerivedAttributes",
    "derive_attributes",
    "fleiss_kappa_binary",
    "locate_data_file",
    "nih_box_statistics",
    "read_nih_boxes",
    "read_vindr_boxes",
    "reader_agreement",
    "vindr_box_statistics",
]

NIH_BOX_FILE = "BBox_List_2017.csv.gz"
VINDR_BOX_FILE = "vinbigdata-train.csv.gz"
NIH_IMAGE_SIZE = 1024
_DIST = "torchxrayvision"
_MISSING = 'reading {name} needs the torchxrayvision data files. Install them with: pip install "medlens[data]"'
_VINDR_COLUMNS = ("image_id", "class_name", "rad_id", "x_min", "y_min", "x_max", "y_max")
_NO_FINDING = "No finding"
DERIVATION = (
    "side: box wider than half the image = bilateral, else centre x < 0.4 = patient's right (viewer's left on PA), "
    "> 0.6 = patient's left, otherwise central; zone: centre y in image thirds (upper/middle/lower, a proxy for "
    "lung zones); size: median [IQR] box area as % of the 1024x1024 NIH image; VinDr: median box width x height "
    "in pixels (no image sizes in that table)."
)


def locate_data_file(name: str) -> Path:
    """Path of ``torchxrayvision/data/<name>`` in the installed wheel (found through metadata, never imported)."""
    try:
        dist = metadata.distribution(_DIST)
    except metadata.PackageNotFoundError:
        raise ImportError(_MISSING.format(name=name)) from None
    path = Path(str(dist.locate_file(f"torchxrayvision/data/{name}")))
    if path.is_file():
        return path
    for entry in dist.files or ():
        if PurePosixPath(str(entry)).name == name:
            candidate = Path(str(dist.locate_file(entry)))
            if candidate.is_file():
                return candidate
    raise ImportError(_MISSING.format(name=name))


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"{what} {str(path)!r} does not exist; give the path of the CSV (.csv or .csv.gz).")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as exc:
        raise InputError(f"{what} {str(path)!r} is not a readable CSV ({type(exc).__name__}).") from None


def read_nih_boxes(path: str | PathLike[str] | None = None) -> pd.DataFrame:
    """NIH boxes as ``image_id, label, x1, y1, x2, y2`` (pixels of the 1024 × 1024 image)."""
    p = Path(path) if path is not None else locate_data_file(NIH_BOX_FILE)
    raw = _read_csv(p, "NIH box table")
    if raw.shape[1] < 6 or raw.columns[0] != "Image Index" or raw.columns[1] != "Finding Label":
        raise InputError(
            f"NIH box table {str(p)!r}: expected columns 'Image Index, Finding Label, Bbox [x,y,w,h]'; "
            f"got {list(raw.columns[:6])}."
        )
    xywh = raw.iloc[:, 2:6].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(xywh).all(axis=1) | (xywh[:, 2] <= 0) | (xywh[:, 3] <= 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"NIH box table {str(p)!r}, row {row + 2}: box {xywh[row].tolist()} must be finite with w, h > 0."
        )
    return pd.DataFrame(
        {
            "image_id": raw.iloc[:, 0].astype(str),
            "label": raw.iloc[:, 1].astype(str),
            "x1": xywh[:, 0],
            "y1": xywh[:, 1],
            "x2": xywh[:, 0] + xywh[:, 2],
            "y2": xywh[:, 1] + xywh[:, 3],
        }
    )


def read_vindr_boxes(path: str | PathLike[str] | None = None) -> pd.DataFrame:
    """VinDr-CXR reader rows ``image_id, class_name, rad_id, x_min, y_min, x_max, y_max`` (empty box: no finding)."""
    p = Path(path) if path is not None else locate_data_file(VINDR_BOX_FILE)
    raw = _read_csv(p, "VinDr-CXR table")
    missing = [c for c in _VINDR_COLUMNS if c not in raw.columns]
    if missing:
        raise InputError(f"VinDr-CXR table {str(p)!r}: missing columns {missing}; expected {list(_VINDR_COLUMNS)}.")
    df = raw[list(_VINDR_COLUMNS)].copy()
    boxed = df["class_name"] != _NO_FINDING
    box = df.loc[boxed, ["x_min", "y_min", "x_max", "y_max"]].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(box).all(axis=1) | (box[:, 2] < box[:, 0]) | (box[:, 3] < box[:, 1])
    if bad.any():
        row = int(np.flatnonzero(boxed.to_numpy())[np.flatnonzero(bad)[0]])
        raise InputError(
            f"VinDr-CXR table {str(p)!r}, row {row + 2}: box {box[np.flatnonzero(bad)[0]].tolist()} of "
            f"{df['class_name'].iloc[row]!r} must be finite with x_min <= x_max and y_min <= y_max."
        )
    return df


def _side(cx: np.ndarray, width: np.ndarray) -> np.ndarray:
    return np.where(width > 0.5, "bilateral", np.where(cx < 0.4, "right", np.where(cx > 0.6, "left", "central")))


def _zone(cy: np.ndarray) -> np.ndarray:
    return np.where(cy < 1 / 3, "upper", np.where(cy < 2 / 3, "middle", "lower"))


def _shares(values: np.ndarray) -> dict[str, float]:
    keys, counts = np.unique(values, return_counts=True)
    order = np.lexsort((keys, -counts))
    return {str(keys[i]): float(counts[i] / counts.sum()) for i in order}


def nih_box_statistics(boxes: pd.DataFrame | None = None) -> dict[str, dict[str, Any]]:
    """Per NIH label: box count, median centre, side and zone shares, area fraction (median, quartiles)."""
    df = read_nih_boxes() if boxes is None else boxes
    out = {}
    s = float(NIH_IMAGE_SIZE)
    for label, g in df.groupby("label", sort=True):
        x1, y1, x2, y2 = (g[c].to_numpy() / s for c in ("x1", "y1", "x2", "y2"))
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        area = w * h
        q1, med, q3 = np.percentile(area, [25, 50, 75])
        out[str(label)] = {
            "n_boxes": len(g),
            "centre_x": float(np.median(cx)),
            "centre_y": float(np.median(cy)),
            "side": _shares(_side(cx, w)),
            "zone": _shares(_zone(cy)),
            "area_fraction": {"median": float(med), "q1": float(q1), "q3": float(q3)},
            "width_fraction_median": float(np.median(w)),
            "height_fraction_median": float(np.median(h)),
        }
    return out


def vindr_box_statistics(rows: pd.DataFrame | None = None) -> dict[str, dict[str, Any]]:
    """Per VinDr class: boxes, images with a box (any reader), boxes per (image, reader), median box size (px)."""
    df = read_vindr_boxes() if rows is None else rows
    boxed = df[df["class_name"] != _NO_FINDING]
    out = {}
    for label, g in boxed.groupby("class_name", sort=True):
        w = (g["x_max"] - g["x_min"]).to_numpy()
        h = (g["y_max"] - g["y_min"]).to_numpy()
        per_read = g.groupby(["image_id", "rad_id"]).size()
        out[str(label)] = {
            "n_boxes": len(g),
            "n_images": int(g["image_id"].nunique()),
            "boxes_per_reading_median": float(per_read.median()),
            "width_px": {
                "median": float(np.median(w)),
                "q1": float(np.percentile(w, 25)),
                "q3": float(np.percentile(w, 75)),
            },
            "height_px": {
                "median": float(np.median(h)),
                "q1": float(np.percentile(h, 25)),
                "q3": float(np.percentile(h, 75)),
            },
        }
    return out


def fleiss_kappa_binary(marks: np.ndarray, n_raters: int) -> float:
    """Fleiss' kappa of a binary rating: ``marks[i]`` raters (of ``n_raters``) said "present" on item ``i``.

    >>> round(fleiss_kappa_binary(np.array([3, 0, 3, 0]), 3), 6), round(fleiss_kappa_binary(np.array([1, 2]), 3), 6)
    (1.0, -0.333333)
    """
    m = np.asarray(marks, dtype=np.float64)
    n = float(n_raters)
    p_i = (m * (m - 1) + (n - m) * (n - m - 1)) / (n * (n - 1))
    p1 = m.sum() / (len(m) * n)
    p_e = p1**2 + (1 - p1) ** 2
    return float((p_i.mean() - p_e) / (1 - p_e)) if p_e < 1 else float("nan")


def _reader_boxes(g: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:
    """(image, reader) → that reader's boxes, from one sort (no per-group pandas overhead)."""
    g = g.sort_values(["image_id", "rad_id"], kind="stable")
    xyxy = g[["x_min", "y_min", "x_max", "y_max"]].to_numpy(dtype=np.float64)
    keys = list(zip(g["image_id"].to_numpy(), g["rad_id"].to_numpy(), strict=True))
    starts = [0] + [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]] + [len(keys)]
    return {keys[a]: xyxy[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)}


def _mean_best_iou(g: pd.DataFrame, n_raters: int) -> float:
    """Mean over boxes and over the other readers of the image of the box's best IoU with that reader's boxes."""
    cols = ["x_min", "y_min", "x_max", "y_max"]
    a = g[["image_id", "rad_id", *cols]].reset_index(drop=True)
    a["box"] = np.arange(len(a))
    pairs = a.merge(a, on="image_id", suffixes=("_a", "_b"))
    pairs = pairs[pairs["rad_id_a"] != pairs["rad_id_b"]]
    xa = pairs[[f"{c}_a" for c in cols]].to_numpy(dtype=np.float64)
    xb = pairs[[f"{c}_b" for c in cols]].to_numpy(dtype=np.float64)
    iw = np.clip(np.minimum(xa[:, 2], xb[:, 2]) - np.maximum(xa[:, 0], xb[:, 0]), 0, None)
    ih = np.clip(np.minimum(xa[:, 3], xb[:, 3]) - np.maximum(xa[:, 1], xb[:, 1]), 0, None)
    inter = iw * ih
    union = (xa[:, 2] - xa[:, 0]) * (xa[:, 3] - xa[:, 1]) + (xb[:, 2] - xb[:, 0]) * (xb[:, 3] - xb[:, 1]) - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=inter > 0)
    best = pd.Series(iou).groupby([pairs["box_a"].to_numpy(), pairs["rad_id_b"].to_numpy()]).max()
    # a reader of the image who marked nothing contributes 0 for each box of the others
    return float(best.sum() / (len(a) * (n_raters - 1))) if len(a) else float("nan")


def reader_agreement(rows: pd.DataFrame | None = None) -> dict[str, dict[str, Any]]:
    """How the 3 readers of each VinDr image agree, per finding.

    Image level: over all images, how many of the 3 readers marked the finding (``readers_1/2/3`` count the images
    marked by exactly 1, 2, 3 readers) and Fleiss' kappa of "marked / not marked". Box level, over every pair of
    readers of an image of which at least one marked the finding: F1 at IoU ≥ 0.5 (one reader as gold, the
    other's boxes greedily matched by :func:`medlens.metrics.box_precision_recall`; a box of one reader where the
    other has none is a miss or a false positive; F1 = 2 TP / (boxes of both), symmetric) and the mean best IoU of
    each box with each other reader's boxes (0 when that reader marked nothing). Reader boxes carry no scores, so
    no AP is given (it would depend on box order).
    """
    df = read_vindr_boxes() if rows is None else rows
    readers = df.groupby("image_id", sort=True)["rad_id"].unique()
    n_per = readers.map(len)
    if (n_per != n_per.iloc[0]).any():
        bad = n_per.index[n_per != n_per.iloc[0]][0]
        raise InputError(
            f"VinDr-CXR table: image {bad!r} has {n_per[bad]} readers, others {n_per.iloc[0]}; "
            "reader agreement needs the same number of readers per image."
        )
    n_raters = int(n_per.iloc[0])
    image_index = {img: i for i, img in enumerate(readers.index)}
    boxed = df[df["class_name"] != _NO_FINDING]
    out = {}
    empty = np.zeros((0, 4))
    for label, g in boxed.groupby("class_name", sort=True):
        marks = np.zeros(len(readers), dtype=np.int64)
        per_image = g.groupby("image_id")["rad_id"].nunique()
        marks[[image_index[i] for i in per_image.index]] = per_image.to_numpy()
        boxes = _reader_boxes(g)
        gold, pred = [], []
        for img in per_image.index:
            rads = sorted(readers[img])
            for a in range(n_raters):
                for b in range(a + 1, n_raters):
                    gold.append(boxes.get((img, rads[a]), empty))
                    pred.append(boxes.get((img, rads[b]), empty))
        p, r = box_precision_recall(gold, pred, no_gold="score")
        counts = np.bincount(marks, minlength=n_raters + 1)
        out[str(label)] = {
            "n_images_marked": int((marks > 0).sum()),
            **{f"readers_{k}": int(counts[k]) for k in range(1, n_raters + 1)},
            "unanimous_share": float(counts[n_raters] / max(1, (marks > 0).sum())),
            "fleiss_kappa": fleiss_kappa_binary(marks, n_raters),
            "pairwise_f1_50": float(2 * p * r / (p + r)) if p + r > 0 else 0.0,
            "pairwise_mean_best_iou": _mean_best_iou(g, n_raters),
            "n_reader_pairs": len(gold),
        }
    return out


@dataclass(frozen=True)
class DerivedAttributes:
    """Measured ``size``/``location`` phrases per finding, the findings without box statistics, and how."""

    attributes: dict[str, dict[str, str]]
    without_statistics: list[str]
    derivation: str = DERIVATION

    def to_dict(self) -> dict[str, Any]:
        return {
            "attributes": self.attributes,
            "without_statistics": self.without_statistics,
            "derivation": self.derivation,
        }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _pool_nih(stats: dict[str, dict[str, Any]], boxes: pd.DataFrame, labels: tuple[str, ...]) -> dict[str, Any]:
    """NIH statistics of one or several labels pooled (``nodule or mass`` = Nodule + Mass)."""
    if len(labels) == 1:
        return stats[labels[0]]
    return nih_box_statistics(boxes[boxes["label"].isin(labels)].assign(label="+".join(labels)))["+".join(labels)]


def derive_attributes(
    kb: Any,
    *,
    nih_boxes: pd.DataFrame | None = None,
    vindr_rows: pd.DataFrame | None = None,
) -> DerivedAttributes:
    """Measured "typical size" and "typical location" phrases for the findings of ``kb`` that have box statistics.

    Location and relative size come from the NIH boxes (one image size, so normalised); absolute size from the
    VinDr boxes. Findings whose ``statistics`` names no table are listed in ``without_statistics`` and keep their
    textual attributes only. See the module docstring for the derivation.
    """
    nih_df = read_nih_boxes() if nih_boxes is None else nih_boxes
    vindr_df = read_vindr_boxes() if vindr_rows is None else vindr_rows
    nih = nih_box_statistics(nih_df)
    vindr = vindr_box_statistics(vindr_df)
    out: dict[str, dict[str, str]] = {}
    without = []
    for f in kb.findings:
        attrs: dict[str, str] = {}
        nih_labels = tuple(x for x in f.statistics.get("nih", ()) if x in nih)
        if nih_labels:
            s = _pool_nih(nih, nih_df, nih_labels)
            zone, zshare = next(iter(s["zone"].items()))
            side, sshare = next(iter(s["side"].items()))
            side_text = "both sides" if side == "bilateral" else f"{side} side" if side != "central" else "centre"
            attrs["location"] = (
                f"most often the {zone} zone ({_pct(zshare)} of boxes), {side_text} ({_pct(sshare)}); "
                f"NIH, {s['n_boxes']} boxes"
            )
            a = s["area_fraction"]
            attrs["size"] = (
                f"median {_pct(a['median'])} of the image area (IQR {_pct(a['q1'])}-{_pct(a['q3'])}); "
                f"NIH, {s['n_boxes']} boxes"
            )
        vindr_labels = [x for x in f.statistics.get("vindr", ()) if x in vindr]
        if vindr_labels:
            v = vindr[vindr_labels[0]]
            px = f"median {v['width_px']['median']:.0f} x {v['height_px']['median']:.0f} px (VinDr, {v['n_boxes']} boxes)"
            attrs["size"] = f"{attrs['size']}; {px}" if "size" in attrs else px
        if attrs:
            out[f.name] = attrs
        else:
            without.append(f.name)
    return DerivedAttributes(out, without)
