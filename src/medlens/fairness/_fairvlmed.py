"""The Harvard-FairVLMed layout (FairCLIP, CVPR 2024): a user-supplied copy, read in place, never downloaded.

::

    FairVLMed/
    ├── data_summary.csv      filename, age, gender, race, ethnicity, language, maritalstatus, note,
    │                         gpt4_summary, glaucoma, use (training | validation | test)
    ├── Training/  Validation/  Test/ (or Testing/)   data_xxxxx.npz with slo_fundus (664 x 512) and the codes
    └── ...

Attributes come as FairCLIP's integer codes or their names (case-insensitive): gender Female 0 / Male 1; race
Asian 0 / Black 1 / White 2; ethnicity Non-Hispanic 0 / Hispanic 1 / Unknown -1; language English 0 /
Spanish 1 / Other 2 / Unknown -1; maritalstatus Married or Partnered 0 / Single 1 / Divorced 2 / Widowed 3 /
Legally Separated 4 / Unknown -1. Unknown (or an empty cell) is a missing value. ``unknown="drop"`` drops a
record whose race, gender, ethnicity or language is missing (FairCLIP's evaluation does), ``"keep"`` keeps it
with ``None`` (then the group report's ``missing`` policy decides); the counts are reported either way. The
data are CC BY-NC-ND 4.0 (non-commercial): medlens ships only :func:`write_synthetic_fairvlmed`, a small
fake copy with the same schema and adjustable group imbalance, for tests and wiring.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medlens._validation import InputError, check_option, shorten

__all__ = [
    "FAIRVLMED_ATTRIBUTES",
    "FAIRVLMED_CODES",
    "FairVLMedData",
    "FairVLMedRecord",
    "load_fairvlmed",
    "load_slo_image",
    "write_synthetic_fairvlmed",
]

FAIRVLMED_CODES: dict[str, dict[int, str | None]] = {
    "gender": {0: "Female", 1: "Male"},
    "race": {0: "Asian", 1: "Black", 2: "White"},
    "ethnicity": {0: "Non-Hispanic", 1: "Hispanic", -1: None},
    "language": {0: "English", 1: "Spanish", 2: "Other", -1: None},
    "maritalstatus": {
        0: "Married or Partnered",
        1: "Single",
        2: "Divorced",
        3: "Widowed",
        4: "Legally Separated",
        -1: None,
    },
}
"""FairCLIP's attribute codes → names (``None``: unknown)."""
FAIRVLMED_ATTRIBUTES = ("race", "gender", "ethnicity", "language")
"""The four attributes FMBench reports (and FairCLIP's unknown-drop applies to)."""
SPLITS = {"train": ("training", "train"), "val": ("validation", "val"), "test": ("test", "testing")}
SPLIT_FOLDERS = {"train": ("Training",), "val": ("Validation",), "test": ("Test", "Testing")}
SUMMARY = "data_summary.csv"
REQUIRED = ("filename", "note", "use", "glaucoma", *FAIRVLMED_CODES)
_ALIASES = {"nonhispanic": "Non-Hispanic", "not hispanic": "Non-Hispanic", "married": "Married or Partnered",
            "partnered": "Married or Partnered", "widoled": "Widowed", "separated": "Legally Separated"}  # fmt: skip
_MISSING = {"", "unknown", "-1", "nan", "none", "na", "n/a"}
_GLAUCOMA = {"1": 1, "yes": 1, "glaucoma": 1, "true": 1, "0": 0, "no": 0, "non-glaucoma": 0, "false": 0}


@dataclass(frozen=True)
class FairVLMedRecord:
    """One subject: ids, texts, label, attributes (names; ``None`` unknown) and its npz file when present."""

    id: str
    filename: str
    split: str
    note: str
    summary: str | None
    glaucoma: int
    age: float | None
    attributes: dict[str, str | None]
    image_path: Path | None = None

    def reference(self, source: str = "summary") -> str:
        """The report-generation reference: the GPT-4 summary (FMBench's kind) or the original note."""
        if source == "summary":
            if not self.summary:
                raise InputError(
                    f"record {self.id} has no gpt4_summary; use the note as the reference (reference='note')."
                )
            return self.summary
        return self.note


@dataclass(frozen=True)
class FairVLMedData:
    """The records of one split and how many rows each rule removed."""

    root: Path
    split: str
    records: list[FairVLMedRecord]
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def files(self) -> list[Path]:
        return [self.root / SUMMARY]


def _code(attr: str, value: str, row: int, path: Path) -> str | None:
    v = value.strip()
    if v.lower() in _MISSING:
        return None
    names = FAIRVLMED_CODES[attr]
    try:
        f = float(v)
    except ValueError:
        f = None
    if f is not None:
        if f == int(f) and int(f) in names:
            return names[int(f)]
    else:
        by_name = {n.lower(): n for n in names.values() if n} | {
            k: a for k, a in _ALIASES.items() if a in names.values()
        }
        if v.lower() in by_name:
            return by_name[v.lower()]
    allowed = ", ".join(f"{k} {n or 'Unknown'}" for k, n in names.items())
    raise InputError(f"{path}: row {row}, field {attr!r} holds {shorten(v)}; expected a code or name among {allowed}.")


def _folder(root: Path, split: str) -> Path | None:
    return next((root / f for f in SPLIT_FOLDERS[split] if (root / f).is_dir()), None)


def load_fairvlmed(
    root: str | os.PathLike,
    *,
    split: str = "test",
    unknown: str = "drop",
    limit: int | None = None,
) -> FairVLMedData:
    """Read ``data_summary.csv`` of a FairVLMed copy: the records of ``split`` (train | val | test).

    Rows are checked one by one and a bad one is named (file, row, field, value, what is allowed). ``limit``
    keeps the first records (in file order) after the unknown policy.
    """
    import pandas as pd

    check_option(split, tuple(SPLITS), name="split")
    check_option(unknown, ("drop", "keep"), name="unknown")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"limit must be a positive int; got {limit!r}.")
    base = Path(root)
    path = base / SUMMARY
    if not base.is_dir():
        raise InputError(f"FairVLMed folder {base} does not exist; give the folder that holds {SUMMARY}.")
    if not path.is_file():
        raise InputError(f"{base} has no {SUMMARY}; give the Harvard-FairVLMed folder (data_summary.csv + Test/).")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not a readable CSV ({str(exc).strip()[:120]}).") from None
    df.columns = [str(c).strip() for c in df.columns]
    lost = [c for c in REQUIRED if c not in df.columns]
    if lost:
        raise InputError(f"{path} has no {lost[0]!r} column; FairVLMed's columns are {', '.join(REQUIRED)}.")
    folder = _folder(base, split)
    records: list[FairVLMedRecord] = []
    seen: set[str] = set()
    dropped = dict.fromkeys(FAIRVLMED_ATTRIBUTES, 0)
    n_split = n_dropped = 0
    for i, r in enumerate(df.to_dict("records")):
        row = i + 2  # 1-based, after the header
        use = r["use"].strip().lower()
        which = next((s for s, names in SPLITS.items() if use in names), None)
        if which is None:
            raise InputError(
                f"{path}: row {row}, field 'use' holds {shorten(r['use'])}; expected training, validation or test."
            )
        name = r["filename"].strip()
        if not name:
            raise InputError(f"{path}: row {row} has an empty 'filename'.")
        if name in seen:
            raise InputError(f"{path}: row {row}: filename {name!r} appears more than once.")
        seen.add(name)
        if which != split:
            continue
        n_split += 1
        attrs = {a: _code(a, r[a], row, path) for a in FAIRVLMED_CODES}
        note = r["note"].strip()
        if not note:
            raise InputError(f"{path}: row {row} ({name}) has an empty 'note'.")
        g = _GLAUCOMA.get(r["glaucoma"].strip().lower())
        if g is None:
            raise InputError(
                f"{path}: row {row}, field 'glaucoma' holds {shorten(r['glaucoma'])}; expected 0/1 or no/yes."
            )
        age = r.get("age", "").strip()
        try:
            age_v = float(age) if age else None
        except ValueError:
            raise InputError(f"{path}: row {row}, field 'age' holds {shorten(age)}; expected a number.") from None
        missing = [a for a in FAIRVLMED_ATTRIBUTES if attrs[a] is None]
        if missing and unknown == "drop":
            n_dropped += 1
            for a in missing:
                dropped[a] += 1
            continue
        npz = folder / name if folder is not None else None
        records.append(
            FairVLMedRecord(
                id=Path(name).stem,
                filename=name,
                split=split,
                note=note,
                summary=(r.get("gpt4_summary") or "").strip() or None,
                glaucoma=g,
                age=age_v,
                attributes=attrs,
                image_path=npz if npz is not None and npz.is_file() else None,
            )
        )
    if limit is not None:
        records = records[:limit]
    if not records:
        raise InputError(
            f"{path}: no {split} records left (rows in the split {n_split}, dropped as unknown {n_dropped})."
        )
    counts = {
        "rows": int(len(df)),
        "in_split": n_split,
        "dropped_unknown": n_dropped,
        "dropped_unknown_by_attribute": dropped,
        "records": len(records),
        "with_image": sum(r.image_path is not None for r in records),
    }
    return FairVLMedData(base, split, records, counts)


def load_slo_image(path: str | os.PathLike) -> np.ndarray:
    """The ``slo_fundus`` image of a FairVLMed npz as a uint8 array (rescaled to 0..255 when it is not uint8)."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            if "slo_fundus" not in z.files:
                raise InputError(f"{p} has no 'slo_fundus' array (found {sorted(z.files)[:8]}).")
            img = np.asarray(z["slo_fundus"])
    except (OSError, ValueError) as exc:
        raise InputError(f"{p} is not a readable npz file ({str(exc).strip()[:120]}).") from None
    if img.ndim not in (2, 3) or img.size == 0:
        raise InputError(f"{p}: slo_fundus must be a 2-D (or H x W x C) image; got shape {img.shape}.")
    if img.dtype == np.uint8:
        return img
    f = img.astype(np.float64)
    lo, hi = float(np.nanmin(f)), float(np.nanmax(f))
    scaled = (f - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(f)
    return np.clip(np.rint(np.nan_to_num(scaled)), 0, 255).astype(np.uint8)


def write_synthetic_fairvlmed(
    root: str | os.PathLike,
    *,
    n: int = 60,
    seed: int = 0,
    split_fractions: tuple[float, float, float] = (0.0, 0.0, 1.0),
    race_weights: tuple[float, float, float] = (0.2, 0.15, 0.65),
    unknown_rate: float = 0.05,
    images: bool = True,
    size: tuple[int, int] = (32, 24),
) -> Path:
    """Write a small fake FairVLMed copy (same schema, coded attributes, tiny random images) under ``root``.

    Notes are templated from the glaucoma label, so generated text is checkable, not clinical. Groups follow
    ``race_weights`` (and a skew towards English) so group reports have small groups to flag.
    """
    rng = np.random.default_rng(seed)
    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    uses = rng.choice(["training", "validation", "test"], size=n, p=np.asarray(split_fractions) / sum(split_fractions))
    import csv

    rows = []
    for i in range(n):
        g = int(rng.random() < 0.5)
        attrs = {
            "race": int(rng.choice(3, p=race_weights)),
            "gender": int(rng.integers(2)),
            "ethnicity": int(rng.choice([0, 1], p=[0.85, 0.15])),
            "language": int(rng.choice([0, 1, 2], p=[0.8, 0.12, 0.08])),
            "maritalstatus": int(rng.integers(5)),
        }
        for a in ("ethnicity", "language", "maritalstatus"):
            if rng.random() < unknown_rate:
                attrs[a] = -1
        cdr = round(0.3 + 0.4 * g + 0.1 * rng.random(), 2)
        note = (
            f"Patient seen for glaucoma evaluation. Cup-to-disc ratio {cdr} in both eyes. "
            + ("Inferior rim thinning and an arcuate visual field defect; assessment: primary open-angle glaucoma."
               if g else "Healthy rims and a full visual field; assessment: no glaucoma, routine follow-up.")
        )  # fmt: skip
        summary = f"Cup-to-disc ratio {cdr}; " + ("glaucoma with rim thinning and field loss." if g else "no glaucoma.")
        name = f"data_{i + 1:05d}.npz"
        rows.append([name, int(rng.integers(25, 90)), attrs["gender"], attrs["race"], attrs["ethnicity"],
                     attrs["language"], attrs["maritalstatus"], note, summary, g, uses[i]])  # fmt: skip
        if images:
            split = {"training": "train", "validation": "val", "test": "test"}[uses[i]]
            folder = base / SPLIT_FOLDERS[split][0]
            folder.mkdir(exist_ok=True)
            img = rng.integers(0, 256, size=size, dtype=np.uint8)
            np.savez(folder / name, slo_fundus=img, glaucoma=np.int64(g), **{k: np.int64(v) for k, v in attrs.items()})
    with (base / SUMMARY).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["filename", "age", "gender", "race", "ethnicity", "language", "maritalstatus", "note",
                    "gpt4_summary", "glaucoma", "use"])  # fmt: skip
        w.writerows(rows)
    return base
