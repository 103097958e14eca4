"""Model inputs and outputs as ARCHITECTURE.md defines them: text files, image folders, feature arrays.

* Texts: a ``.txt`` file (one text per line; ids are the 1-based line numbers; blank lines are errors) or a
  CSV / JSONL file with ``id`` and ``text`` fields.
* Images: a folder, searched recursively; ids are the paths relative to it (POSIX separators), sorted.
* Features: ``X.npy`` (float32, one row per input) next to ``X.ids.txt`` (one id per line, same order).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medlens._validation import InputError, read_text_file, shorten
from medlens.io._atomic import atomic_write, atomic_write_text
from medlens.io._jsonl import iter_jsonl

__all__ = ["IMAGE_SUFFIXES", "list_images", "load_image", "read_features", "read_texts", "write_features"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def read_texts(path: str | os.PathLike, *, allow_empty: bool = False) -> tuple[list[str], list[str]]:
    """Read ``(ids, texts)`` from a ``.txt``, ``.csv`` or ``.jsonl`` file.

    Empty texts (blank lines inside a ``.txt``, empty ``text`` fields) are errors unless ``allow_empty``
    (model answers can be empty); trailing blank lines of a ``.txt`` are always dropped.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file; give a .txt (one text per line), or a .csv/.jsonl with id,text.")
    suffix = p.suffix.lower()
    if suffix == ".txt":
        lines = read_text_file(p, what="texts file").splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        blank = [i + 1 for i, t in enumerate(lines) if not t.strip()]
        if blank and not allow_empty:
            raise InputError(f"{p}: line {blank[0]} is blank; every line is one text (ids are line numbers).")
        return [str(i + 1) for i in range(len(lines))], lines
    if suffix in (".jsonl", ".ndjson"):
        rows = list(iter_jsonl(p, what="texts file"))
    elif suffix == ".csv":
        import pandas as pd

        try:
            frame = pd.read_csv(p, dtype=str, keep_default_na=False)
        except Exception as e:  # noqa: BLE001 - pandas raises many types for malformed CSV
            raise InputError(f"{p}: cannot read as CSV ({e}).") from None
        rows = [(n + 2, r) for n, r in enumerate(frame.to_dict("records"))]
    else:
        raise InputError(f"{p}: unsupported text file type {suffix!r}; use .txt, .csv or .jsonl.")
    ids, texts = [], []
    for n, r in rows:
        if not isinstance(r, dict):
            raise InputError(f"{p}: row {n} must be an object with fields id,text; got {type(r).__name__}.")
        missing = [k for k in ("id", "text") if k not in r]
        if missing:
            raise InputError(f"{p}: row {n} lacks {missing}; expected fields id,text, found {sorted(r)}.")
        if not isinstance(r["text"], str) or (not allow_empty and not r["text"].strip()):
            raise InputError(f"{p}: row {n} (id {shorten(r['id'])}) has an empty or non-string text.")
        ids.append(str(r["id"]))
        texts.append(r["text"])
    dup = _first_duplicate(ids)
    if dup is not None:
        raise InputError(f"{p}: id {dup!r} appears more than once; ids must be unique.")
    return ids, texts


def _first_duplicate(ids: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            return i
        seen.add(i)
    return None


def list_images(folder: str | os.PathLike) -> tuple[list[str], list[Path]]:
    """``(ids, paths)`` of every image under ``folder`` (recursive), ids = relative POSIX paths, sorted."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder; --images takes a folder of images ({', '.join(IMAGE_SUFFIXES)}).")
    paths = sorted(
        (
            q
            for q in root.rglob("*")
            if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES and not q.name.startswith(".")
        ),
        key=lambda q: q.relative_to(root).as_posix(),
    )
    if not paths:
        raise InputError(f"{root}: no images found (looked for {', '.join(IMAGE_SUFFIXES)}, recursively).")
    return [q.relative_to(root).as_posix() for q in paths], paths


def load_image(image: Any) -> Any:
    """A path, PIL image or H×W[×C] array → an RGB ``PIL.Image``.

    16-bit and float grayscale images (common for radiographs) are rescaled to 8 bits by their own range;
    grayscale and RGBA images become RGB.
    """
    from medlens._optional import require

    pil = require("PIL.Image", extra="vision", purpose="reading images")
    if isinstance(image, (str, os.PathLike)):
        p = Path(image)
        try:
            img = pil.open(p)
            img.load()
        except FileNotFoundError:
            raise InputError(f"{p}: no such image file.") from None
        except Exception as e:  # noqa: BLE001 - PIL raises many types for unreadable files
            raise InputError(f"{p}: cannot read as an image ({type(e).__name__}: {e}).") from None
    elif isinstance(image, np.ndarray):
        img = _array_to_pil(image, pil)
    elif hasattr(image, "convert"):
        img = image
    else:
        raise InputError(f"cannot read {type(image).__name__} as an image; give a path, a PIL image or an array.")
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        img = _array_to_pil(np.asarray(img), pil)
    return img if img.mode == "RGB" else img.convert("RGB")


def _array_to_pil(a: np.ndarray, pil: Any) -> Any:
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise InputError(f"an image array must be H×W, H×W×3 or H×W×4; got shape {a.shape}.")
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        lo, hi = np.nanmin(a), np.nanmax(a)
        a = np.zeros_like(a) if hi <= lo else (a - lo) / (hi - lo) * 255.0
        a = np.nan_to_num(a).round().astype(np.uint8)
    return pil.fromarray(a)


def write_features(path: str | os.PathLike, ids: Sequence[str], features: np.ndarray) -> tuple[Path, Path]:
    """Write ``X.npy`` (float32) and ``X.ids.txt`` atomically; returns both paths."""
    p = Path(path)
    if p.suffix != ".npy":
        raise InputError(f"{p}: features are written as .npy (with a .ids.txt beside it); use --out NAME.npy.")
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or len(x) != len(ids):
        raise InputError(f"features must be (n_ids, dim) = ({len(ids)}, dim); got {x.shape}.")
    bad = [i for i in ids if "\n" in str(i)]
    if bad:
        raise InputError(f"id {bad[0]!r} contains a newline; ids are written one per line.")
    with atomic_write(p, "wb") as fh:
        np.save(fh, x)
    ids_path = p.with_suffix(".ids.txt")
    atomic_write_text(ids_path, "".join(f"{i}\n" for i in ids))
    return p, ids_path


def read_features(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Read ``(ids, X)`` written by :func:`write_features`."""
    p = Path(path)
    ids_path = p.with_suffix(".ids.txt")
    if not p.is_file():
        raise InputError(f"{p}: no such feature file (expected X.npy written by `medlens encode`).")
    if not ids_path.is_file():
        raise InputError(f"{p}: the ids file {ids_path.name} is missing beside it; it lists one id per row.")
    x = np.load(p, allow_pickle=False)
    ids = ids_path.read_text(encoding="utf-8").splitlines()
    if x.ndim != 2 or len(ids) != len(x):
        raise InputError(f"{p}: {x.shape} array but {len(ids)} ids in {ids_path.name}; they must match row for row.")
    return ids, x
