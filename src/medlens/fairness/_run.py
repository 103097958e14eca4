"""The pipelines behind ``medlens fair score`` and ``medlens fair report``: files in, stamped JSON documents out.

``fair score`` scores every prediction once against its reference with the caption metrics of
:func:`medlens.metrics.caption_report` and writes a scores CSV (``id``, one column per metric, then every
attribute field the prediction or reference rows carry). All samples are scored together, so CIDEr-D's IDF and
the corpus n-gram statistics come from the whole evaluated set; a group's score is then the mean of its
samples' values (``design/fairness.md`` §8: per-subset IDF would change the numbers).

``fair report`` reads such a CSV (attributes may live in a separate ``--groups`` CSV joined by ``id``) and runs
:func:`medlens.fairness.group_report` for every metric column asked for.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from medlens._provenance import provenance, stamp
from medlens._validation import InputError, check_option, shorten
from medlens.fairness._groups import MISSING_POLICIES, SmallGroupWarning, group_report
from medlens.fairness._summary import DISPERSIONS, FAP_WEIGHTS
from medlens.io import atomic_write_json, atomic_write_text, iter_jsonl

__all__ = ["SCORE_METRICS", "read_scores_table", "run_fair_report", "run_fair_score", "write_scores_csv"]

SCORE_METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider", "meteor")
"""Per-sample text metrics of ``fair score`` (the caption keys of :mod:`medlens.metrics`)."""
PREDICTION_KEYS = ("prediction", "text")
REFERENCE_KEYS = ("reference", "text")


def _rows(path: str | os.PathLike, what: str, text_keys: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """id → row of a predictions/references JSONL file, with its text under ``"_text"``."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file {p} does not exist; give a JSONL file with one object per line.")
    rows: dict[str, dict[str, Any]] = {}
    for lineno, obj in iter_jsonl(p, what=f"{what} file"):
        if not isinstance(obj, dict):
            raise InputError(f"{p}: line {lineno} must be a JSON object; got {type(obj).__name__}.")
        if "id" not in obj or obj["id"] is None or str(obj["id"]).strip() == "":
            raise InputError(f"{p}: line {lineno} has no 'id'; every row needs an id.")
        sid = str(obj["id"]).strip()
        if sid in rows:
            raise InputError(f"{p}: line {lineno}: id {sid!r} appears more than once; ids must be unique.")
        key = next((k for k in text_keys if k in obj), None)
        if key is None:
            raise InputError(f"{p}: line {lineno} (id {sid!r}) has no {' or '.join(repr(k) for k in text_keys)} field.")
        rows[sid] = {**obj, "_text": obj[key], "_text_key": key}
    if not rows:
        raise InputError(f"{what} file {p} has no rows.")
    return rows


def _attribute_fields(preds: dict, refs: dict) -> list[str]:
    """Scalar fields (other than id and the texts) that the rows carry, in first-seen order."""
    skip = {"id", "_text", "_text_key", *PREDICTION_KEYS, *REFERENCE_KEYS}
    fields: dict[str, None] = {}
    for rows in (refs, preds):
        for row in rows.values():
            for k, v in row.items():
                if k not in skip and (v is None or isinstance(v, str | int | float | bool)):
                    fields.setdefault(k)
    return list(fields)


def write_scores_csv(
    ids: list[str],
    predictions: list[Any],
    references: list[Any],
    rows: dict[str, dict[str, Any]],
    fields: list[str],
    metrics: list[str],
    caption_mode: str,
    out: str | os.PathLike,
    *,
    empty_zero: bool = False,
) -> dict[str, Any]:
    """Score all samples in one pass and write the scores CSV (id, metrics, ``fields`` from ``rows``).

    With ``empty_zero`` a blank prediction (a refused request, an empty reply) is not scored but given 0 for
    every metric (it shares no n-gram with its reference), and counted; otherwise the metrics refuse it.
    Returns ``{"corpus", "mean", "settings", "n_empty"}`` (corpus values over the non-empty predictions).
    """
    from medlens.metrics import CaptionOptions, MeteorOptions, caption_report

    blank = [not str(p).strip() for p in predictions] if empty_zero else [False] * len(ids)
    keep = [k for k, b in enumerate(blank) if not b]
    if not keep:
        raise InputError("every prediction is empty; nothing to score.")
    options = CaptionOptions(bertscore=None, meteor=MeteorOptions() if "meteor" in metrics else None)
    rep = caption_report(
        [references[k] for k in keep],
        [predictions[k] for k in keep],
        ids=[ids[k] for k in keep],
        options=options,
        mode=caption_mode,
    )
    skipped = [m for m in metrics if m in rep.skipped]
    if skipped:
        raise InputError(f"metric {skipped[0]!r} could not be computed: {rep.skipped[skipped[0]]}")
    values = {m: np.zeros(len(ids)) for m in metrics}
    for m in metrics:
        values[m][keep] = rep.per_sample[m]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", *metrics, *fields])
    for k, sid in enumerate(ids):
        attrs = ["" if rows[sid].get(f) is None else str(rows[sid].get(f)) for f in fields]
        w.writerow([sid, *[repr(float(values[m][k])) for m in metrics], *attrs])
    atomic_write_text(out, buf.getvalue())
    return {
        "corpus": {m: rep.scores[m] for m in metrics},
        "mean": {m: float(np.nanmean(values[m])) for m in metrics},
        "settings": {m: rep.settings.get(m) for m in metrics},
        "n_empty": int(sum(blank)),
    }


def run_fair_score(
    predictions: str | os.PathLike,
    references: str | os.PathLike,
    *,
    metrics: list[str] | tuple[str, ...] = ("bleu4", "rouge_l", "cider"),
    out: str | os.PathLike,
    caption_mode: str = "coco-caption",
) -> dict[str, Any]:
    """Score each prediction against its reference; write the scores CSV ``out`` and return the stamped summary.

    Predictions and references are JSONL rows with ``id`` and the text (``prediction`` / ``reference``, or
    ``text``; a reference may be a list of strings). Every other scalar field is copied to the CSV as an
    attribute column; a field both files carry must agree.
    """
    metrics = [m.strip() for m in metrics if m.strip()]
    if not metrics:
        raise InputError(f"give at least one metric among {', '.join(SCORE_METRICS)}.")
    for m in metrics:
        check_option(m, SCORE_METRICS, name="metrics")
    from medlens.metrics import CAPTION_MODES

    check_option(caption_mode, CAPTION_MODES, name="caption-mode")
    preds = _rows(predictions, "predictions", PREDICTION_KEYS)
    refs = _rows(references, "references", REFERENCE_KEYS)
    no_ref = [i for i in preds if i not in refs]
    if no_ref:
        raise InputError(
            f"{len(no_ref)} prediction id(s) have no reference (first: {shorten(no_ref[0])}); every prediction "
            "needs a reference row with the same id."
        )
    no_pred = [i for i in refs if i not in preds]
    if no_pred:
        raise InputError(
            f"{len(no_pred)} reference id(s) have no prediction (first: {shorten(no_pred[0])}); score a failed "
            "generation explicitly (e.g. an empty-answer marker) or drop the reference."
        )
    ids = list(refs)
    fields = _attribute_fields(preds, refs)
    clash = set(SCORE_METRICS) & set(fields)
    if clash:
        raise InputError(f"rows carry a field named like a metric ({sorted(clash)[0]!r}); rename it.")
    for sid in ids:
        for f in fields:
            if f in preds[sid] and f in refs[sid] and preds[sid][f] != refs[sid][f]:
                raise InputError(
                    f"id {sid!r}: field {f!r} is {shorten(preds[sid][f])} in the predictions but "
                    f"{shorten(refs[sid][f])} in the references; make them agree or drop one."
                )
    rows = {sid: {**refs[sid], **preds[sid]} for sid in ids}
    part = write_scores_csv(
        ids, [preds[i]["_text"] for i in ids], [refs[i]["_text"] for i in ids], rows, fields, metrics, caption_mode, out
    )
    doc = {
        "n": len(ids),
        "metrics": metrics,
        "attributes": fields,
        "caption_mode": caption_mode,
        **{k: v for k, v in part.items() if k != "n_empty"},
        "note": "per-sample scores of one run over the whole set (CIDEr-D IDF and n-gram statistics from all "
        "samples); average them per group, do not re-score subsets",
        "out": str(out),
    }
    config = {"metrics": metrics, "caption_mode": caption_mode}
    prov = provenance(
        command="fair score", config=config, inputs={"predictions": predictions, "references": references}
    )
    return stamp(doc, prov)


def read_scores_table(path: str | os.PathLike, *, what: str = "scores"):
    """A CSV with an ``id`` column as a pandas DataFrame of strings (ids stripped, unique, non-empty)."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file {p} does not exist.")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True, index_col=False)
    except pd.errors.EmptyDataError:
        raise InputError(f"{what} file {p} is empty; expected a header with 'id' and score columns.") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{what} file {p} is not a valid CSV ({str(exc).strip()}).") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} file {p} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    df.columns = [str(c).strip() for c in df.columns]
    dup = [c for c in dict.fromkeys(df.columns) if list(df.columns).count(c) > 1]
    if dup:
        raise InputError(f"{what} file {p}: column {dup[0]!r} appears more than once.")
    if "id" not in df.columns:
        raise InputError(f"{what} file {p} needs an 'id' column; found columns {list(df.columns)[:8]}.")
    if not len(df):
        raise InputError(f"{what} file {p} has a header but no rows.")
    df["id"] = df["id"].str.strip()
    if (df["id"] == "").any():
        raise InputError(f"{what} file {p}: row {int(np.flatnonzero(df['id'] == '')[0]) + 2} has an empty 'id'.")
    d = df["id"][df["id"].duplicated()]
    if len(d):
        raise InputError(f"{what} file {p}: id {d.iloc[0]!r} appears more than once; ids must be unique.")
    return df


def _numeric(df, column: str, path: Any) -> np.ndarray:
    """A metric column as floats (an empty cell is NaN: not scored); text raises naming the row."""
    values = df[column].str.strip()
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v == "" or v.lower() == "nan":
            continue
        try:
            out[i] = float(v)
        except ValueError:
            raise InputError(
                f"scores file {path}: column {column!r} must hold numbers; row {i + 2} (id {df['id'].iloc[i]!r}) "
                f"has {shorten(v)}. Pass the score column with --metric."
            ) from None
        if not np.isfinite(out[i]):
            raise InputError(f"scores file {path}: column {column!r}, row {i + 2} holds {v}; scores must be finite.")
    return out


def run_fair_report(
    scores: str | os.PathLike,
    *,
    attributes: list[str],
    metrics: list[str] | None = None,
    groups: str | os.PathLike | None = None,
    lam: float = 1.0,
    weights: str = "size",
    dispersion: str = "mad",
    alpha: float = 1.0,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    min_group_size: int = 30,
    missing: str = "drop",
    unknown: list[str] | None = None,
    intersections: list[list[str]] | None = None,
    stratify: bool = False,
    seed: int = 0,
    out: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Group reports of the metric columns of a scores CSV over ``attributes``; the stamped JSON document.

    ``metrics`` default to the one column besides ``id`` and the attributes (several such columns need an
    explicit choice). ``groups`` is a CSV with ``id`` and attribute columns joined by id (every scored id must be
    there). The document holds ``results[metric][attribute]`` (see :class:`medlens.fairness.AttributeReport`)
    and the warnings of small groups.
    """
    attributes = [a.strip() for a in attributes if a.strip()]
    if not attributes:
        raise InputError("give at least one attribute column (--attributes race,gender).")
    check_option(missing, MISSING_POLICIES, name="missing")
    check_option(weights, FAP_WEIGHTS, name="weights")
    check_option(dispersion, DISPERSIONS, name="dispersion")
    df = read_scores_table(scores)
    if groups is not None:
        g = read_scores_table(groups, what="groups")
        both = [c for c in g.columns if c != "id" and c in df.columns]
        if both:
            raise InputError(
                f"column {both[0]!r} is in both {scores} and {groups}; keep it in one file (the groups file joins "
                "attributes by id)."
            )
        lost = df["id"][~df["id"].isin(g["id"])]
        if len(lost):
            raise InputError(f"groups file {groups} has no row for {len(lost)} scored id(s) (first: {lost.iloc[0]!r}).")
        df = df.merge(g, on="id", how="left")
    where = f"{scores}" + (f" or {groups}" if groups is not None else "")
    missing_cols = [a for a in attributes if a not in df.columns]
    if missing_cols:
        others = [c for c in df.columns if c != "id"]
        raise InputError(f"attribute column {missing_cols[0]!r} is not in {where}; columns: {others[:12]}.")
    if metrics is None or not [m for m in metrics if m.strip()]:
        candidates = [c for c in df.columns if c != "id" and c not in attributes]
        if groups is not None:
            candidates = [c for c in candidates if c not in g.columns]
        if len(candidates) != 1:
            raise InputError(
                f"{scores} has {len(candidates)} columns besides id and the attributes ({candidates[:8]}); "
                "name the score column(s) with --metric."
            )
        metrics = candidates
    metrics = [m.strip() for m in metrics if m.strip()]
    for m in metrics:
        if m not in df.columns:
            others = [c for c in df.columns if c not in ("id", *attributes)]
            raise InputError(
                f"metric column {m!r} is not in {scores}; columns besides id and attributes: {others[:12]}."
            )
        if m in attributes:
            raise InputError(f"column {m!r} is given both as a metric and as an attribute.")
    attr_values = {a: df[a].to_numpy(dtype=object) for a in attributes}
    results: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    counts = {}
    for m in metrics:
        s = _numeric(df, m, scores)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", SmallGroupWarning)
            rep = group_report(
                s,
                attr_values,
                min_group_size=min_group_size,
                missing=missing,
                unknown=unknown or (),
                intersections=intersections or (),
                lam=lam,
                weights=weights,
                dispersion=dispersion,
                alpha=alpha,
                n_bootstrap=n_bootstrap,
                confidence=confidence,
                stratify=stratify,
                seed=seed,
            )
        notes += [str(w.message) for w in caught if issubclass(w.category, SmallGroupWarning)]
        results[m] = {a: r.to_dict() for a, r in rep.attributes.items()}
        counts[m] = {"n": rep.n, "n_nan_scores": rep.n_nan_scores}
    settings = dict(rep.settings)
    doc = {"n": int(len(df)), "metrics": metrics, "attributes": list(rep.attributes), "counts": counts}
    doc.update({"results": results, "warnings": list(dict.fromkeys(notes)), "settings": settings})
    config = {"attributes": attributes, "metrics": metrics, **settings}
    inputs = {"scores": scores, **({"groups": groups} if groups is not None else {})}
    doc = stamp(doc, provenance(command="fair report", config=config, seed=seed, inputs=inputs))
    if out is not None:
        atomic_write_json(out, doc)
    return doc
