"""Readers of the three on-disk NOVA layouts (``parquet_v1``, ``parquet_struct``, ``csv``) into raw rows.

Each reader checks the columns its :class:`~medlens.benchmarks.nova._schema.TableSchema` requires and turns every
row into a :class:`RawRow` (text fields, pixel ``xywh`` boxes, an image path or bytes); structural faults raise
:class:`~medlens._validation.InputError` naming the file and row. :mod:`medlens.benchmarks.nova._loader` builds
the records from the rows. See :mod:`medlens.benchmarks.nova._schema` for where each column name comes from.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medlens._validation import InputError
from medlens.benchmarks.nova._records import NovaProblem
from medlens.benchmarks.nova._schema import NovaSchema, TableSchema

__all__ = ["RawBox", "RawRow", "detect_parquet_layout", "read_csv_layout", "read_parquet", "read_parquet_layout"]


@dataclass
class RawBox:
    kind: str  # "gold" | "rater"
    rater: str | None
    xywh: tuple[float, float, float, float]
    where: str


@dataclass
class RawRow:
    where: str
    filename: str
    case_id: str
    scan_id: str
    caption: str
    clinical_history: str
    final_diagnosis: str
    boxes: list[RawBox]
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
) -> list[RawBox]:
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
                out.append(RawBox("gold", None, xywh, w))  # type: ignore[arg-type]
            else:
                rater = _text(b.get(schema.rater_key), w, schema.rater_key) or src
                out.append(RawBox("rater", rater, xywh, w))  # type: ignore[arg-type]
        elif kind == "rater":
            rater = _text(b.get(schema.rater_key), w, schema.rater_key)
            if not rater:
                raise InputError(f"{w}: a rater box needs a {schema.rater_key!r} name; found {sorted(b)}.")
            out.append(RawBox("rater", rater, xywh, w))  # type: ignore[arg-type]
        else:
            out.append(RawBox("gold", None, xywh, w))  # type: ignore[arg-type]
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


def read_parquet(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The column names and the rows (as dicts) of a parquet file."""
    from medlens._optional import require

    pq = require("pyarrow.parquet", extra="io", purpose="reading NOVA parquet files")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for unreadable files
        raise InputError(f"{path}: cannot read as parquet ({exc}).") from None
    return list(table.column_names), table.to_pylist()


def detect_parquet_layout(columns: Sequence[str], path: Path, schema: NovaSchema) -> str:
    """``"parquet_v1"`` or ``"parquet_struct"``, told apart by the columns."""
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


def _v1_fields(rec: Mapping[str, Any], where: str, schema: NovaSchema, encodings: set[str]) -> dict[str, Any]:
    """The ``parquet_v1`` fields of a row other than file name, case, scan and caption: the ``meta`` object's
    history and diagnosis, the ``bboxes`` list (gold and rater boxes told apart by their source) and the path."""
    c = schema.parquet_v1.columns
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
    return {
        "boxes": boxes,
        "clinical_history": _text(meta.get(mk["clinical_history"]), where, f"{c['meta']}.{mk['clinical_history']}"),
        "final_diagnosis": _text(meta.get(mk["final_diagnosis"]), where, f"{c['meta']}.{mk['final_diagnosis']}"),
        "image_path": _text(rec.get(c["image_path"]), where, c["image_path"]) or None,
    }


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


def _struct_fields(rec: Mapping[str, Any], where: str, schema: NovaSchema, encodings: set[str]) -> dict[str, Any]:
    """The ``parquet_struct`` fields of a row other than file name, case, scan and caption: the struct-of-lists
    gold and rater boxes, the embedded image and its path, history and diagnosis columns."""
    c = schema.parquet_struct.columns
    boxes: list[RawBox] = []
    for fld, kind in (("gold_boxes", "gold"), ("rater_boxes", "rater")):
        raw = _json(rec.get(c[fld]), where, c[fld], encodings)
        boxes += _boxes_from(_box_dicts(raw, where, c[fld]), where, c[fld], schema, kind=kind)
    data, img_path = _image_field(rec.get(c["image"]), where, c["image"], schema)
    return {
        "boxes": boxes,
        "image_bytes": data,
        "image_path": _text(rec.get(c["image_path"]), where, c["image_path"]) or img_path,
        "clinical_history": _text(rec.get(c["clinical_history"]), where, c["clinical_history"]),
        "final_diagnosis": _text(rec.get(c["final_diagnosis"]), where, c["final_diagnosis"]),
    }


# layout -> (reader of its own fields, encoding when no nested value is present)
_PARQUET_LAYOUTS = {"parquet_v1": (_v1_fields, "json"), "parquet_struct": (_struct_fields, "nested")}


def read_parquet_layout(
    path: Path, columns: list[str], records: list[dict], schema: NovaSchema, layout: str
) -> tuple[list[RawRow], str]:
    """The rows of a parquet file in ``layout`` (``"parquet_v1"`` or ``"parquet_struct"``), and how its nested
    fields were stored (``"json"``, ``"nested"`` or ``"mixed"``)."""
    table = getattr(schema, layout)
    _check_columns(columns, table, str(path), layout)
    c = table.columns
    own_fields, default_encoding = _PARQUET_LAYOUTS[layout]
    encodings: set[str] = set()
    rows = []
    for i, rec in enumerate(records):
        fname = _text(rec.get(c["filename"]), f"{path.name} row {i}", c["filename"])
        where = f"{path.name} row {i} (filename {fname!r})"
        own = own_fields(rec, where, schema, encodings)
        rows.append(
            RawRow(
                where=where,
                filename=fname,
                case_id=_text(rec.get(c["case_id"]), where, c["case_id"]),
                scan_id=_text(rec.get(c["scan_id"]), where, c["scan_id"]),
                caption=_text(rec.get(c["caption"]), where, c["caption"]),
                **own,
            )
        )
    encoding = encodings.pop() if len(encodings) == 1 else ("mixed" if encodings else default_encoding)
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
) -> dict[str, list[RawBox]]:
    c = table.columns
    out: dict[str, list[RawBox]] = defaultdict(list)
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


def read_csv_layout(root: Path, schema: NovaSchema, problems: list[NovaProblem]) -> tuple[list[RawRow], list[Path]]:
    """The rows of the CSV triplet in ``root`` (plus the optional rater table), and the files read; case rows that
    repeat with other values, boxes of unknown file names and captions of unknown cases go to ``problems``."""
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
    raters: dict[str, list[RawBox]] = {}
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
            RawRow(
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
