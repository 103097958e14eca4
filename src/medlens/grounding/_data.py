"""Grounding data from a local VinDr-CXR copy: reader fusion, (image, finding) queries with negatives, splits,
and the human ceiling.

Layout (nothing is downloaded; see the README's "Grounding data" section):

- a boxes CSV as VinDr-CXR ships it, ``image_id, class_name, rad_id, x_min, y_min, x_max, y_max`` (extra columns
  such as ``class_id`` are ignored; "No finding" rows have empty boxes), one row per box per reader;
- an images folder whose files give the sizes: ``<image_id>.png`` (any suffix of
  :data:`medlens.io.IMAGE_SUFFIXES`, in any sub-folder; the id is the file name without its suffix). Only the
  header is read;
- optionally a split CSV ``image_id, split`` with ``split`` in ``train | val | test``. Images it does not list
  are ``train``. Without a ``val`` split, one is carved from ``train`` by image (or by ``patient_id`` when the
  split file has that column) with :func:`validation_split`; model selection uses ``val``, never ``test``.

Reader fusion (:func:`weighted_box_fusion`, Solovyev et al.'s weighted box fusion): the boxes of an (image,
finding) from all readers are taken in decreasing score order (reader boxes have no score: weight 1, ties in
reader then box order); each joins the cluster whose current fused box it overlaps most at IoU > ``iou``, else
starts a new one; a fused box is the score-weighted mean of its members' coordinates. Its *support* is the number
of distinct readers in the cluster and its score ``mean(member scores) × min(support, R) / R`` for R readers.
``min_readers`` keeps clusters with at least that support (1: every reader's box counts; 2 of 3: a majority).

Queries (:func:`build_queries`): one per (image, finding) with its fused boxes, plus a *negative* query (no box)
for every finding of the dataset's vocabulary (the findings the CSV uses, or those given) that no kept cluster
marks on that image. Findings are the knowledge base's canonical names; ``finding_split`` is its seen/unseen
split, and :func:`split_queries` leaves unseen findings out of ``train`` and ``val`` when asked (the
generalisation split of the design note).

Human ceiling (:func:`reader_ceiling`): each of an image's readers against the fusion of the others, per finding
and overall, as P/R/F1 at IoU ≥ 0.5 and mean best IoU. Reader boxes have no scores, so no AP is given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medlens._validation import InputError, check_interval
from medlens.grounding._evaluate import _best_ious, size_strata
from medlens.grounding._stats import read_vindr_boxes
from medlens.metrics import box_precision_recall

__all__ = [
    "DATA_SPLITS",
    "GroundingData",
    "build_queries",
    "fuse_readers",
    "image_paths",
    "image_sizes",
    "load_grounding_data",
    "read_split_file",
    "reader_ceiling",
    "split_queries",
    "validation_split",
    "weighted_box_fusion",
]

DATA_SPLITS = ("train", "val", "test")
_NO_FINDING = "No finding"
_BOX = ["x_min", "y_min", "x_max", "y_max"]


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _wbf(
    boxes: list[list[float]], readers: list[Any], weights: list[float], iou: float, r_total: int, min_readers: int
) -> tuple[list[list[float]], list[int], list[float]]:
    """Weighted box fusion on plain lists (the groups are small: Python floats beat numpy here)."""
    order = sorted(range(len(boxes)), key=lambda i: -weights[i])  # stable: ties keep the given order
    fused: list[list[float]] = []
    members: list[list[int]] = []
    for i in order:
        best, j = 0.0, -1
        for k, f in enumerate(fused):
            v = _iou(boxes[i], f)
            if v > best:
                best, j = v, k
        if j >= 0 and best > iou:
            m = members[j]
            m.append(i)
            tw = sum(weights[t] for t in m)
            fused[j] = [sum(boxes[t][c] * weights[t] for t in m) / tw for c in range(4)]
        else:
            fused.append(list(boxes[i]))
            members.append([i])
    out_b, out_s, out_c = [], [], []
    for f, m in zip(fused, members, strict=True):
        sup = len({readers[t] for t in m})
        if sup >= min_readers:
            out_b.append(f)
            out_s.append(sup)
            out_c.append(sum(weights[t] for t in m) / len(m) * min(sup, r_total) / max(1, r_total))
    return out_b, out_s, out_c


def weighted_box_fusion(
    boxes: Any,
    readers: Sequence[Any],
    *,
    scores: Sequence[float] | None = None,
    iou: float = 0.55,
    n_readers: int | None = None,
    min_readers: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fuse several readers' boxes of one (image, finding): ``(boxes (k, 4), support (k,), scores (k,))``.

    ``readers[i]`` names the reader of ``boxes[i]``; ``n_readers`` (default: the distinct readers given) is R in
    the score ``mean(member scores) × min(support, R) / R``. Clusters with fewer than ``min_readers`` distinct
    readers are dropped. Fused boxes come out in cluster creation order (highest score first).

    >>> b, s, c = weighted_box_fusion([[0, 0, 10, 10], [0, 0, 10, 12], [50, 50, 60, 60]], ["a", "b", "a"], n_readers=3)
    >>> b.tolist(), s.tolist(), [round(float(x), 3) for x in c]
    ([[0.0, 0.0, 10.0, 11.0], [50.0, 50.0, 60.0, 60.0]], [2, 1], [0.667, 0.333])
    """
    check_interval(float(iou), name="iou", low=0, high=1, closed="neither")
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(readers) != len(arr):
        raise InputError(f"weighted_box_fusion: {len(readers)} readers for {len(arr)} boxes; give one per box.")
    w = [1.0] * len(arr) if scores is None else [float(x) for x in np.asarray(scores, dtype=np.float64).reshape(-1)]
    if len(w) != len(arr):
        raise InputError(f"weighted_box_fusion: {len(w)} scores for {len(arr)} boxes; give one per box.")
    if any(x <= 0 for x in w):
        raise InputError("weighted_box_fusion: scores must be positive (they weight the coordinates).")
    r_total = int(n_readers) if n_readers is not None else len(set(readers))
    b, s, c = _wbf(arr.tolist(), list(readers), w, float(iou), r_total, int(min_readers))
    return np.asarray(b, dtype=np.float64).reshape(-1, 4), np.asarray(s, dtype=np.int64), np.asarray(c)


def fuse_readers(rows: pd.DataFrame, *, iou: float = 0.55, min_readers: int = 1) -> pd.DataFrame:
    """Fused boxes per (image, class): ``image_id, class_name, x_min, y_min, x_max, y_max, support, score``.

    ``rows`` are VinDr reader rows (:func:`medlens.grounding.read_vindr_boxes`); R is the number of readers of
    each image (all its rows, "No finding" included).
    """
    n_read = rows.groupby("image_id")["rad_id"].nunique()
    boxed = rows[rows["class_name"] != _NO_FINDING].sort_values(["image_id", "class_name", "rad_id"], kind="stable")
    out = []
    for (img, cls), g in boxed.groupby(["image_id", "class_name"], sort=True):
        b, s, c = weighted_box_fusion(
            g[_BOX].to_numpy(np.float64),
            list(g["rad_id"]),
            iou=iou,
            n_readers=int(n_read[img]),
            min_readers=min_readers,
        )
        for box, sup, sc in zip(b, s, c, strict=True):
            out.append((img, cls, *box.tolist(), int(sup), float(sc)))
    return pd.DataFrame(out, columns=["image_id", "class_name", *_BOX, "support", "score"])


def image_sizes(images: str | PathLike[str], image_ids: Iterable[str] | None = None) -> dict[str, tuple[int, int]]:
    """``image_id → (width, height)`` from the image files' headers (id = file name without suffix).

    With ``image_ids``, every id must have a file (an :class:`InputError` names the first missing one and how
    many are missing) and only those are read. Two files with the same id are an error.
    """
    pil = _pil()
    by_id = image_paths(images)
    wanted = sorted(by_id) if image_ids is None else sorted(set(map(str, image_ids)))
    missing = [i for i in wanted if i not in by_id]
    if missing:
        raise InputError(
            f"{images}: no image for {len(missing)} id(s) of the boxes CSV, e.g. {missing[0]!r}; name each image "
            "<image_id>.png (or .jpg, ...) in that folder."
        )
    out = {}
    for i in wanted:
        try:
            with pil.open(by_id[i]) as im:
                out[i] = (int(im.size[0]), int(im.size[1]))
        except Exception as e:  # noqa: BLE001 - PIL raises many types for unreadable files
            raise InputError(f"{by_id[i]}: cannot read as an image ({type(e).__name__}).") from None
    return out


def image_paths(images: str | PathLike[str]) -> dict[str, Path]:
    """``image_id → path`` of every image under the folder (id = file name without suffix; unique)."""
    from medlens.io import list_images

    _, paths = list_images(images)
    by_id: dict[str, Path] = {}
    for p in paths:
        if p.stem in by_id:
            raise InputError(f"{images}: two images for id {p.stem!r} ({by_id[p.stem]} and {p}); keep one.")
        by_id[p.stem] = p
    return by_id


def _pil() -> Any:
    from medlens._optional import require

    return require("PIL.Image", extra="vision", purpose="reading image sizes")


def read_split_file(path: str | PathLike[str]) -> pd.DataFrame:
    """A split CSV ``image_id, split[, patient_id]`` with ``split`` in ``train | val | test``."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"split file {str(p)!r} does not exist; give a CSV with columns image_id,split.")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"split file {str(p)!r} is not a readable CSV ({type(exc).__name__}).") from None
    if "image_id" not in df.columns or "split" not in df.columns:
        raise InputError(f"split file {str(p)!r}: needs columns image_id,split; got {list(df.columns)}.")
    bad = ~df["split"].isin(DATA_SPLITS)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"split file {str(p)!r}, row {row + 2}: split {df['split'].iloc[row]!r} must be one of "
            f"{', '.join(DATA_SPLITS)}."
        )
    dup = df["image_id"].duplicated()
    if dup.any():
        raise InputError(f"split file {str(p)!r}: image {df['image_id'][dup].iloc[0]!r} is listed twice.")
    return df


def validation_split(
    image_ids: Sequence[str], *, fraction: float = 0.1, seed: int = 0, groups: Sequence[str] | None = None
) -> set[str]:
    """The images of a validation split carved from training images: whole groups (patients; default: each
    image its own group) ranked by a seeded SHA-256 of the group id, the first ``round(fraction × groups)``.

    The choice of a group depends only on its id and the seed, not on which other images are present.
    """
    check_interval(float(fraction), name="fraction", low=0, high=1, closed="neither")
    ids = [str(i) for i in image_ids]
    grp = [str(g) for g in groups] if groups is not None else ids
    if len(grp) != len(ids):
        raise InputError(f"validation_split: {len(grp)} groups for {len(ids)} images; give one per image.")
    uniq = sorted(set(grp))
    if len(uniq) < 2:
        raise InputError("validation_split needs at least two training images (or patients) to hold one out.")
    n_val = min(len(uniq) - 1, max(1, round(fraction * len(uniq))))
    ranked = sorted(uniq, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    val_groups = set(ranked[:n_val])
    return {i for i, g in zip(ids, grp, strict=True) if g in val_groups}


def build_queries(
    fused: pd.DataFrame,
    sizes: Mapping[str, tuple[int, int]],
    kb: Any,
    *,
    findings: Sequence[str] | None = None,
    negatives: bool = True,
) -> list[dict[str, Any]]:
    """(image, finding) queries with fused gold boxes (pixels, ``xyxy``) and negatives for absent findings.

    ``fused`` is :func:`fuse_readers`' table (or any ``image_id, class_name, x_min…y_max`` table);
    ``sizes`` gives each image's ``(width, height)`` and decides the images (an image without boxes gets only
    negative queries). ``findings`` is the vocabulary negatives are drawn from (default: every class the table
    uses). A box outside its image is an :class:`InputError` naming the image and box.
    """
    canon = {c: kb.get(c).name for c in fused["class_name"].unique()}
    vocab = sorted({kb.get(f).name for f in findings} if findings is not None else set(canon.values()))
    boxes: dict[str, dict[str, list[list[float]]]] = {}
    for row in fused.itertuples(index=False):
        img = str(row.image_id)
        if img not in sizes:
            raise InputError(f"image {img!r} of the boxes has no size (no image file with that id).")
        w, h = sizes[img]
        box = [float(row.x_min), float(row.y_min), float(row.x_max), float(row.y_max)]
        if min(box) < 0 or box[2] > w or box[3] > h:
            raise InputError(
                f"image {img!r}: box {box} of {row.class_name!r} lies outside the image of (width, height) = "
                f"({w}, {h}); check that the images are the ones the boxes were drawn on (not resized)."
            )
        boxes.setdefault(img, {}).setdefault(canon[row.class_name], []).append(box)
    out = []
    for img in sorted(sizes):
        marked = boxes.get(img, {})
        for f in vocab if negatives else sorted(marked):
            b = marked.get(f, [])
            out.append(
                {
                    "image_id": img,
                    "finding": f,
                    "finding_split": kb.get(f).split,
                    "gold": b,
                    "width": sizes[img][0],
                    "height": sizes[img][1],
                }
            )
    return out


def split_queries(
    queries: Sequence[Mapping[str, Any]],
    image_split: Mapping[str, str],
    *,
    unseen_in_training: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """Queries by data split (``train``/``val``/``test``) from ``image_split`` (image → split; unlisted images
    are ``train``). Unless ``unseen_in_training``, queries of unseen findings are left out of train and val."""
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in DATA_SPLITS}
    for q in queries:
        s = image_split.get(str(q["image_id"]), "train")
        if s != "test" and not unseen_in_training and q.get("finding_split") == "unseen":
            continue
        out[s].append(dict(q))
    return out


@dataclass(frozen=True)
class GroundingData:
    """Queries of a local dataset by split, with how they were made (for a run's manifest)."""

    splits: dict[str, list[dict[str, Any]]]
    config: dict[str, Any]

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            s: {
                "queries": len(q),
                "positive": sum(bool(x["gold"]) for x in q),
                "images": len({x["image_id"] for x in q}),
            }
            for s, q in self.splits.items()
        }


def load_grounding_data(
    boxes_csv: str | PathLike[str],
    images: str | PathLike[str],
    kb: Any,
    *,
    split_file: str | PathLike[str] | None = None,
    fusion_iou: float = 0.55,
    min_readers: int = 1,
    val_fraction: float = 0.1,
    seed: int = 0,
    negatives: bool = True,
    unseen_in_training: bool = False,
) -> GroundingData:
    """Read the layout of the module docstring into train/val/test queries (see :func:`build_queries`); a
    ``.json`` ``boxes_csv`` is a COCO annotation file (:func:`medlens.grounding._coco.coco_queries`)."""
    from medlens.grounding._coco import coco_queries, is_coco_file

    coco = is_coco_file(boxes_csv)
    if coco:  # boxes of one annotation set: nothing to fuse
        queries = coco_queries(boxes_csv, kb, images=images, negatives=negatives)
        sizes = {q["image_id"]: (q["width"], q["height"]) for q in queries}
    else:
        rows = read_vindr_boxes(boxes_csv)
        rows = rows.assign(image_id=rows["image_id"].astype(str))
        for c in rows["class_name"].unique():
            if c != _NO_FINDING:
                kb.get(c)  # unknown class: InputError with a did-you-mean
        sizes = image_sizes(images, rows["image_id"].unique())
        fused = fuse_readers(rows, iou=fusion_iou, min_readers=min_readers)
        queries = build_queries(fused, sizes, kb, negatives=negatives)
        paths = image_paths(images)
        for q in queries:
            q["image"] = str(paths[q["image_id"]])
    split: dict[str, str] = {}
    patients: dict[str, str] = {}
    if split_file is not None:
        sf = read_split_file(split_file)
        split = dict(zip(sf["image_id"], sf["split"], strict=True))
        if "patient_id" in sf.columns:
            patients = dict(zip(sf["image_id"], sf["patient_id"], strict=True))
    carved = "val" not in split.values()
    if carved:
        train_ids = sorted(i for i in sizes if split.get(i, "train") == "train")
        val = validation_split(
            train_ids, fraction=val_fraction, seed=seed, groups=[patients.get(i, i) for i in train_ids]
        )
        split = {**split, **dict.fromkeys(val, "val")}
    config = {
        "boxes_csv": str(boxes_csv),
        "format": "coco" if coco else "vindr-csv",
        "fusion": None if coco else {"method": "wbf", "iou": fusion_iou, "min_readers": min_readers},
        "negatives": negatives,
        "unseen_in_training": unseen_in_training,
        "val": {"carved_from_train": carved, "fraction": val_fraction if carved else None, "seed": seed},
        "knowledge": kb.name,
    }
    return GroundingData(split_queries(queries, split, unseen_in_training=unseen_in_training), config)


def _readers_by_image(df: pd.DataFrame) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    pairs = df[["image_id", "rad_id"]].drop_duplicates().sort_values(["image_id", "rad_id"], kind="stable")
    for img, rad in zip(pairs["image_id"].astype(str), pairs["rad_id"], strict=True):
        out.setdefault(img, []).append(rad)
    return out


def _ceiling_row(gold: list[np.ndarray], pred: list[np.ndarray], n_negative_total: int) -> dict[str, Any]:
    p, r = box_precision_recall(gold, pred, no_gold="score")
    f1 = 2 * p * r / (p + r) if np.isfinite(p) and np.isfinite(r) and p + r > 0 else 0.0
    best = _best_ious([{"gold": g, "pred": x} for g, x in zip(gold, pred, strict=True)])
    counts = np.array([len(b) for b in best])
    flat = np.concatenate(best) if counts.sum() else np.zeros(0)
    pos = counts > 0
    means = np.add.reduceat(flat, np.r_[0, np.cumsum(counts)[:-1]][pos]) / counts[pos] if pos.any() else flat
    false_alarms = int(sum(1 for g, x in zip(gold, pred, strict=True) if not len(g) and len(x)))
    return {
        "n_positive": int(pos.sum()),
        "precision50": None if not np.isfinite(p) else float(p),
        "recall50": None if not np.isfinite(r) else float(r),
        "f1_50": float(f1),
        "miou": float(means.mean()) if pos.any() else None,
        "n_negative": int(n_negative_total),
        "hallucination_rate": false_alarms / n_negative_total if n_negative_total else None,
    }


def reader_ceiling(
    rows: pd.DataFrame | None = None,
    *,
    kb: Any = None,
    iou: float = 0.55,
    min_readers: int = 1,
    size_bins_px2: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Each reader of an image against the fusion (:func:`weighted_box_fusion`) of the image's other readers.

    Queries are (image, finding, reader) triples. Positive ones have gold = the other readers' fused boxes (kept
    with ``min_readers`` support) and predictions = the reader's boxes: P/R/F1 at IoU ≥ 0.5 and the mean best
    IoU of the gold boxes (``n_queries`` counts them). Negative ones (the others marked nothing) give the
    hallucination rate: the share of them where the reader marked the finding, over every image of the table.
    Overall, per finding (renamed to ``kb``'s names when given) and, over the positive queries, per size of the
    fused gold boxes (``by_size``: the table has no image sizes, so the mean gold-box area in pixels² is cut at
    ``size_bins_px2``, by default at its terciles; ``size_strata`` records the cuts, as
    :func:`medlens.grounding.evaluate_grounding` does).
    """
    df = read_vindr_boxes() if rows is None else rows
    readers = _readers_by_image(df)
    n_triples = sum(len(r) for r in readers.values())  # (image, reader) pairs: negatives per finding at most
    boxed = df[df["class_name"] != _NO_FINDING].sort_values(["image_id", "class_name", "rad_id"], kind="stable")
    per: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    empty = np.zeros((0, 4))
    xyxy = boxed[_BOX].to_numpy(np.float64)
    rad = boxed["rad_id"].to_numpy()
    key = (boxed["image_id"].astype(str) + "\x00" + boxed["class_name"]).to_numpy()
    cuts = np.flatnonzero(key[1:] != key[:-1]) + 1 if len(key) else np.array([], dtype=np.int64)
    names: dict[str, str] = {}
    for s, e in zip(np.r_[0, cuts], np.r_[cuts, len(key)], strict=True):
        if e <= s:
            continue
        img, cls = str(key[s]).split("\x00")
        if cls not in names:
            names[cls] = kb.get(cls).name if kb is not None else cls
        gold_l, pred_l = per.setdefault(names[cls], ([], []))
        g_rad = list(rad[s:e])
        g_box = xyxy[s:e].tolist()
        all_readers = readers[img]
        for r in all_readers:
            mine = [b for b, x in zip(g_box, g_rad, strict=True) if x == r]
            others = [(b, x) for b, x in zip(g_box, g_rad, strict=True) if x != r]
            if others:
                fb, _, _ = _wbf(
                    [b for b, _ in others],
                    [x for _, x in others],
                    [1.0] * len(others),
                    iou,
                    len(all_readers) - 1,
                    min_readers,
                )
                gold_l.append(np.asarray(fb, dtype=np.float64).reshape(-1, 4))
            else:
                gold_l.append(empty)
            pred_l.append(np.asarray(mine, dtype=np.float64).reshape(-1, 4))
    by = {}
    neg_total_all = 0
    for f, (g, x) in sorted(per.items()):
        n_neg = n_triples - sum(1 for a in g if len(a))
        neg_total_all += n_neg
        by[f] = _ceiling_row(g, x, n_neg)
    all_gold = [g for gl, _ in per.values() for g in gl]
    all_pred = [x for _, pl in per.values() for x in pl]
    sizes, strata = size_strata([{"gold": g} for g in all_gold], size_bins_px2)
    by_size = {}
    for s in ("small", "medium", "large"):
        keep = [i for i, x in enumerate(sizes) if x == s]
        if keep:
            row = _ceiling_row([all_gold[i] for i in keep], [all_pred[i] for i in keep], 0)
            by_size[s] = {k: v for k, v in row.items() if k not in ("n_negative", "hallucination_rate")}
    return {
        "method": "each reader against the weighted box fusion of the image's other readers",
        "fusion": {"method": "wbf", "iou": iou, "min_readers": min_readers},
        "n_images": len(readers),
        "readers_per_image": sorted({len(r) for r in readers.values()}),
        "overall": _ceiling_row(all_gold, all_pred, neg_total_all) if all_gold else None,
        "by_finding": by,
        "size_strata": strata,
        "by_size": by_size,
        "note": "reader boxes carry no scores, so no AP is given (it would depend on the order of the boxes)",
    }
