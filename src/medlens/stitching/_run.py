"""The documents behind ``medlens stitch fit | apply | zeroshot | sweep`` (the CLI only prints them).

Feature files are ``X.npy`` (float32, one row per item) with an optional ``X.ids.txt`` beside them. Two files
are paired by their ids when both have an ids file (the target is reordered to the source's order; every id
must appear in both), else row by row (the row counts must match).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from medlens._provenance import provenance, stamp
from medlens._validation import InputError, check_interval, check_option, iter_text_lines
from medlens.stitching._diagnostics import cross_covariance_rank, linear_cka, sample_anchors, translation_report
from medlens.stitching._sweep import anchor_sweep
from medlens.stitching._translate import Translator, load_translator, underdetermined

__all__ = [
    "pair_features",
    "read_class_labels",
    "read_feature_matrix",
    "run_stitch_apply",
    "run_stitch_fit",
    "run_stitch_sweep",
    "run_stitch_zeroshot",
]


def read_feature_matrix(path: str | os.PathLike, *, what: str = "features") -> tuple[list[str] | None, np.ndarray]:
    """``(ids or None, X)`` from ``X.npy`` and its optional ``X.ids.txt``; NaN rows and bad shapes are refused."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file {p} does not exist (expected X.npy, e.g. from `medlens encode`).")
    try:
        x = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{what} file {p} is not a .npy array ({exc}).") from None
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise InputError(f"{what} file {p}: expected a 2-D array (rows × dimensions); got shape {x.shape}.")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InputError(f"{what} file {p}: expected real numbers; got dtype {x.dtype}.")
    x = x.astype(np.float64)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise InputError(
            f"{what} file {p}: row {int(np.flatnonzero(bad)[0])} holds NaN or infinite values "
            f"({int(bad.sum())} such rows); drop or re-encode them."
        )
    ids_path = p.with_suffix(".ids.txt")
    if not ids_path.is_file():
        return None, x
    ids = [line.strip() for _, line in iter_text_lines(ids_path, what=f"{what} ids file")]
    while ids and ids[-1] == "":
        ids.pop()
    if len(ids) != len(x):
        raise InputError(f"{ids_path}: {len(ids)} ids for the {len(x)} rows of {p.name}; they must match row for row.")
    seen: set[str] = set()
    for i, v in enumerate(ids):
        if v in seen or v == "":
            raise InputError(f"{ids_path} line {i + 1}: id {v!r} is {'empty' if v == '' else 'repeated'}.")
        seen.add(v)
    return ids, x


def pair_features(
    source: str | os.PathLike, target: str | os.PathLike
) -> tuple[list[str] | None, np.ndarray, np.ndarray, str]:
    """Read and pair two feature files: ``(ids, X, Y, "ids" | "row order")``."""
    sid, x = read_feature_matrix(source, what="source")
    tid, y = read_feature_matrix(target, what="target")
    if sid is not None and tid is not None:
        where = {v: i for i, v in enumerate(tid)}
        missing = [v for v in sid if v not in where]
        extra = sorted(set(tid) - set(sid))
        if missing or extra:
            first = (
                f"source id {missing[0]!r} is not among the target ids"
                if missing
                else f"target id {extra[0]!r} is not among the source ids"
            )
            raise InputError(
                f"{source} and {target} must describe the same items, paired by their .ids.txt files: {first} "
                f"({len(missing) + len(extra)} unpaired ids)."
            )
        return sid, x, y[[where[v] for v in sid]], "ids"
    if len(x) != len(y):
        raise InputError(
            f"{source} has {len(x)} rows and {target} has {len(y)}; without .ids.txt files on both, rows are paired "
            "by order and the counts must match."
        )
    return sid or tid, x, y, "row order"


def _ids_sha(ids: list[str] | None, n: int) -> str:
    text = "\n".join(ids) if ids is not None else f"rows 0..{n - 1}"
    return hashlib.sha256(text.encode()).hexdigest()


def run_stitch_fit(
    source: str | os.PathLike,
    target: str | os.PathLike,
    out: str | os.PathLike,
    *,
    method: str = "ortho",
    anchors: int | None = None,
    pre: str = "standard",
    ridge_alpha: float = 1.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit a translator on paired features, write ``out`` (``.npz``), return the fit document.

    With ``anchors``, that many rows (seeded, uniform) are the anchors and the rest are held out for the
    ``held_out`` diagnostics; otherwise every row is an anchor.
    """
    from medlens.stitching._translate import METHODS, PRE_TRANSFORMS

    check_option(method, METHODS, name="--method")
    check_option(pre, PRE_TRANSFORMS, name="--pre")
    tr = Translator(method, pre=pre, ridge_alpha=ridge_alpha, seed=seed)
    if Path(out).suffix != ".npz":
        raise InputError(f"--out {out}: a translator is saved as .npz; use a file name ending in .npz.")
    ids, x, y, paired_by = pair_features(source, target)
    n = len(x)
    if anchors is not None:
        check_interval(anchors, name="--anchors", low=2, high=n)
        rows = sample_anchors(int(anchors), pool=np.arange(n), seed=seed)
    else:
        rows = np.arange(n)
    if underdetermined(method, len(rows), x.shape[1], pre):
        raise InputError(
            f"--method {method} (least squares) needs more anchors than source dimensions: {len(rows)} anchors for "
            f"{x.shape[1]} dimensions; use --method ortho or ridge, or at least "
            f"{x.shape[1] + (pre != 'none')} anchors."
        )
    tr.fit(x[rows], y[rows])
    held = np.setdiff1d(np.arange(n), rows)
    anchor_ids = [ids[i] for i in rows] if ids is not None else None
    config = tr.config() | {"anchors": len(rows), "paired_by": paired_by}
    prov = provenance(
        command="stitch fit",
        config=config,
        seed=seed,
        inputs={"source": source, "target": target},
        extra={"anchor_ids_sha256": _ids_sha(anchor_ids, len(rows))},
    )
    tr.metadata = {"provenance": prov}
    tr.save(out)
    fit = translation_report(tr.transform(x[rows]), y[rows])
    doc: dict[str, Any] = {
        "translator": str(out),
        "method": method,
        "pre": pre if method != "absolute" else None,
        "source_dim": int(x.shape[1]),
        "target_dim": int(y.shape[1]),
        "n_rows": n,
        "n_anchors": int(len(rows)),
        "paired_by": paired_by,
        "anchor_fit": fit,
        "held_out": translation_report(tr.transform(x[held]), y[held]) if len(held) else None,
        "cka": linear_cka(x[rows], y[rows]),
        "cross_covariance": cross_covariance_rank(x[rows], y[rows]) if len(rows) > 1 else None,
    }
    return stamp(doc, prov)


def run_stitch_apply(
    translator: str | os.PathLike, features: str | os.PathLike, out: str | os.PathLike
) -> dict[str, Any]:
    """Translate ``features`` with a saved translator into ``out`` (``.npy`` + ``.ids.txt``)."""
    from medlens.io import write_features

    if Path(out).suffix != ".npy":
        raise InputError(f"--out {out}: translated features are written as .npy (with a .ids.txt beside it).")
    tr = load_translator(translator)
    ids, x = read_feature_matrix(features)
    if x.shape[1] != tr.source_dim:
        raise InputError(
            f"{features} has {x.shape[1]} dimensions but {translator} was fitted on {tr.source_dim}-dimensional "
            "source features; use the features of the source encoder."
        )
    ids = ids if ids is not None else [str(i) for i in range(len(x))]
    z = tr.transform(x)
    write_features(out, ids, z)
    prov = provenance(
        command="stitch apply",
        config=tr.config(),
        inputs={"translator": translator, "features": features},
    )
    return stamp(
        {"out": str(out), "n": len(ids), "source_dim": tr.source_dim, "target_dim": tr.target_dim, "method": tr.method},
        prov,
    )


def run_stitch_zeroshot(
    features: str | os.PathLike,
    translator: str | os.PathLike,
    taxonomy: Any,
    encoder: str,
    out: str | os.PathLike,
    *,
    method: str = "contrast",
    temperature: float | None = None,
    batch_size: int = 64,
    device: str = "cpu",
) -> dict[str, Any]:
    """Translate ``features`` into ``encoder``'s text space and score every node; write a scores CSV.

    The CSV (one column per node, root = 1) goes to ``hier evaluate --scores`` and ``hier calibrate`` as it is.
    """
    from medlens._device import resolve_device
    from medlens.encoders import load_encoder
    from medlens.hierarchy import ZeroShotScorer, write_node_scores
    from medlens.io import atomic_write_json
    from medlens.stitching._zeroshot import translated_zero_shot
    from medlens.taxonomy import load_taxonomy

    if Path(out).suffix != ".csv":
        raise InputError(f"--out {out}: zero-shot scores are written as a scores CSV; use a name ending in .csv.")
    check_interval(batch_size, name="--batch-size", low=1)
    if temperature is not None:
        check_interval(temperature, name="--temperature", low=0, closed="neither")
    tax = load_taxonomy(taxonomy)
    tr = load_translator(translator)
    ids, x = read_feature_matrix(features)
    if x.shape[1] != tr.source_dim:
        raise InputError(
            f"{features} has {x.shape[1]} dimensions but {translator} was fitted on {tr.source_dim}; use the "
            "features of the translator's source encoder."
        )
    ids = ids if ids is not None else [str(i) for i in range(len(x))]
    enc = load_encoder(encoder, device=resolve_device(device))
    scorer = ZeroShotScorer(enc, tax, method=method, temperature=temperature, batch_size=batch_size)
    probs = translated_zero_shot(x, translator=tr, scorer=scorer)
    write_node_scores(out, ids, tax, probs)
    model_id = getattr(enc, "model_id", enc.config.name)
    info = scorer.method_info()
    prov = provenance(
        command="stitch zeroshot",
        config={"translator": tr.config(), "encoder": model_id, "method": method, "scale": scorer.scale},
        inputs={"features": features, "translator": translator},
        models={"text_encoder": model_id},
        taxonomy=tax,
        extra={"input_ids_sha256": _ids_sha(ids, len(ids))},
    )
    meta = Path(out).with_suffix(".meta.json")
    doc = stamp(
        {
            "out": str(out),
            "meta": str(meta),
            "n": len(ids),
            "n_nodes": len(tax),
            "translator": {"path": str(translator), **tr.config()},
            "method": info,
            "encoder": {"model_id": model_id, **enc.config.to_dict()},
        },
        prov,
    )
    atomic_write_json(meta, doc)
    return doc


def read_class_labels(path: str | os.PathLike, ids: list[str] | None, n: int) -> list[frozenset[str]]:
    """Labels per feature row from a CSV ``id,label`` (several labels joined by ``;``), aligned to ``ids``."""
    import csv

    p = Path(path)
    rows: dict[str, frozenset[str]] = {}
    order: list[str] = []
    text = list(iter_text_lines(p, what="labels file"))
    reader = csv.reader([line for _, line in text])
    header = [h.strip() for h in next(reader, [])]
    if "id" not in header or "label" not in header:
        raise InputError(f"labels file {p} needs the columns 'id' and 'label'; found {header[:6]}.")
    ci, cl = header.index("id"), header.index("label")
    for lineno, rec in enumerate(reader, start=2):
        if not rec or not any(f.strip() for f in rec):
            continue
        if len(rec) <= max(ci, cl):
            raise InputError(f"labels file {p} line {lineno}: expected {len(header)} fields; got {len(rec)}.")
        key = rec[ci].strip()
        labels = frozenset(v.strip() for v in rec[cl].split(";") if v.strip())
        if not key or not labels:
            raise InputError(f"labels file {p} line {lineno}: empty {'id' if not key else 'label'}.")
        if key in rows:
            raise InputError(f"labels file {p} line {lineno}: id {key!r} appears twice.")
        rows[key] = labels
        order.append(key)
    if ids is None:
        if len(order) != n:
            raise InputError(
                f"labels file {p} has {len(order)} rows for {n} feature rows; without .ids.txt files rows pair by "
                "order and the counts must match."
            )
        return [rows[k] for k in order]
    missing = [i for i in ids if i not in rows]
    if missing:
        raise InputError(f"labels file {p} has no row for feature id {missing[0]!r} ({len(missing)} ids missing).")
    return [rows[i] for i in ids]


def run_stitch_sweep(
    source: str | os.PathLike,
    target: str | os.PathLike,
    *,
    labels: str | os.PathLike | None = None,
    anchors: list[int] | tuple[int, ...] = (16, 64, 256, 1024),
    seeds: int = 5,
    methods: list[str] | tuple[str, ...] | None = None,
    pre: str = "standard",
    seed: int = 0,
    ci: float = 0.95,
) -> dict[str, Any]:
    """Anchor-count sweep over seeds (:func:`medlens.stitching.anchor_sweep`) on two feature files."""
    from medlens.stitching._translate import METHODS

    ids, x, y, paired_by = pair_features(source, target)
    lab = read_class_labels(labels, ids, len(x)) if labels is not None else None
    sweep = anchor_sweep(
        x, y, labels=lab, anchors=anchors, seeds=seeds, methods=tuple(methods or METHODS), pre=pre, seed=seed, ci=ci
    )
    inputs: dict[str, Any] = {"source": source, "target": target}
    if labels is not None:
        inputs["labels"] = labels
    prov = provenance(
        command="stitch sweep",
        config={k: sweep[k] for k in ("anchors", "seeds", "methods", "pre", "ci")} | {"paired_by": paired_by},
        seed=seed,
        inputs=inputs,
    )
    return stamp(sweep | {"paired_by": paired_by}, prov)
