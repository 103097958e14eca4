"""``medlens fair judge`` and ``medlens fair agreement``: judge scores as a scores CSV, and kappa between judges.

``fair judge`` grades every prediction against its reference with :class:`~medlens.fairness.GreenJudge` or
:class:`~medlens.fairness.RubricJudge` (a reference row's ``question`` field is shown to the judge) and writes a
scores CSV like ``fair score``'s (``id``, the judge column, the attributes): an unreadable judge reply is an
empty cell (NaN: left out of the group report, counted). The raw replies go to ``<out>.judgements.jsonl``.
``fair agreement`` joins such CSVs by id and reports kappa between every pair of judge columns.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from medlens._provenance import provenance, stamp
from medlens._validation import InputError, check_option
from medlens.fairness._agreement import KAPPA_WEIGHTS, judges_agreement
from medlens.fairness._judges import DEFAULT_RUBRIC, GreenJudge, RubricJudge, _client, judge_scores
from medlens.fairness._run import PREDICTION_KEYS, REFERENCE_KEYS, _attribute_fields, _numeric, _rows, read_scores_table
from medlens.io import atomic_write_text

__all__ = ["JUDGE_KINDS", "run_fair_agreement", "run_fair_judge"]

JUDGE_KINDS = ("green", "rubric")
_RUN_KEYS = {"question", "task", "record", "self_check", "image", "cached", "finish_reason", "error"}
"""Fields of ``fair vqa`` items and ``fair run`` predictions that are bookkeeping, not attributes."""


def run_fair_judge(
    predictions: str | os.PathLike,
    references: str | os.PathLike,
    client: Any = None,
    *,
    judge: str = "rubric",
    out: str | os.PathLike,
    llm_url: str | None = None,
    model: str | None = None,
    model_path: str | os.PathLike | None = None,
    allow_remote: bool = False,
    device: str = "cpu",
    cache: bool = True,
    rubric: str | None = None,
    scale: tuple[int, int] = (1, 5),
    pass_mark: int | None = None,
    column: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Judge every prediction; write the scores CSV ``out`` and the raw replies; return the stamped summary.

    ``column`` names the score column (default: the judge kind). With ``cache`` the client's response cache
    and the judgement cache (``$MEDLENS_CACHE/judgements``) are used, so a rerun asks nothing.
    """
    check_option(judge, JUDGE_KINDS, name="judge")
    column = (column or judge).strip()
    preds = _rows(predictions, "predictions", PREDICTION_KEYS)
    refs = _rows(references, "references", REFERENCE_KEYS)
    lost = next((i for i in refs if i not in preds), None) or next((i for i in preds if i not in refs), None)
    if lost is not None:
        raise InputError(f"id {lost!r} is in only one of the predictions and references; every id needs both.")
    ids = list(refs)
    bad = next(
        (i for i in ids if not isinstance(preds[i]["_text"], str) or not isinstance(refs[i]["_text"], str)), None
    )
    if bad is not None:
        raise InputError(f"id {bad!r}: the judge compares one prediction text with one reference text.")
    fields = [f for f in _attribute_fields(preds, refs) if f not in _RUN_KEYS]
    if column in fields:
        raise InputError(f"rows carry a field named {column!r}; name the judge column otherwise (--column).")
    questions = [refs[i].get("question") or preds[i].get("question") for i in ids]
    from medlens.llm import closing_client
    from medlens.metrics import JudgeCache

    owned = client is None
    client = _client(client, llm_url, model, model_path, allow_remote, device, cache)
    with closing_client(client if owned else None):
        if judge == "green":
            j: Any = GreenJudge(client, seed=seed)
        else:
            j = RubricJudge(client, rubric=rubric or DEFAULT_RUBRIC, scale=scale, pass_mark=pass_mark, seed=seed)
        res = judge_scores(
            j,
            [preds[i]["_text"] for i in ids],
            [refs[i]["_text"] for i in ids],
            questions=questions if any(questions) else None,
            cache=JudgeCache() if cache else None,
        )
    rows = {i: {**refs[i], **preds[i]} for i in ids}
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", column, *fields])
    for k, i in enumerate(ids):
        v = res.scores[k]
        w.writerow(
            [
                i,
                "" if np.isnan(v) else repr(float(v)),
                *["" if rows[i].get(f) is None else str(rows[i][f]) for f in fields],
            ]
        )
    atomic_write_text(out, buf.getvalue())
    raw_path = Path(str(out) + ".judgements.jsonl")
    lines = [
        json.dumps({"id": i, "score": None if np.isnan(res.scores[k]) else float(res.scores[k]),
                    "match": bool(res.matches[k]), "raw": res.raw[k]}, ensure_ascii=False) + "\n"
        for k, i in enumerate(ids)
    ]  # fmt: skip
    atomic_write_text(raw_path, "".join(lines))
    doc = {**res.to_dict(), "judge": j.describe(), "column": column, "attributes": fields, "out": str(out),
           "judgements": str(raw_path)}  # fmt: skip
    config = {"judge": j.judge_id, "column": column}
    prov = provenance(command="fair judge", config=config, seed=seed,
                      inputs={"predictions": predictions, "references": references},
                      models={"judge": str(client.model)})  # fmt: skip
    return stamp(doc, prov)


def run_fair_agreement(
    scores: list[str | os.PathLike], *, columns: list[str], weights: str = "quadratic"
) -> dict[str, Any]:
    """Kappa between judge columns found in ``scores`` CSVs (joined by id; empty cells are unreadable replies).

    Every column must be in exactly one file; ids missing from a file count as not graded by that judge.
    """
    check_option(weights, KAPPA_WEIGHTS, name="weights")
    columns = [c.strip() for c in columns if c.strip()]
    if len(columns) < 2:
        raise InputError("give at least two judge columns (--metric a,b).")
    tables = [(p, read_scores_table(p)) for p in scores]
    found: dict[str, tuple[Any, Any]] = {}
    for c in columns:
        where = [(p, df) for p, df in tables if c in df.columns]
        if len(where) != 1:
            names = ", ".join(str(p) for p in scores)
            raise InputError(
                f"column {c!r} is in {len(where)} of the scores files ({names}); it must be in exactly one."
            )
        found[c] = where[0]
    ids = list(dict.fromkeys(i for _, df in tables for i in df["id"]))
    grades: dict[str, np.ndarray] = {}
    for c, (p, df) in found.items():
        values = dict(zip(df["id"], _numeric(df, c, p), strict=True))
        grades[c] = np.array([values.get(i, np.nan) for i in ids], dtype=np.float64)
    doc = judges_agreement(grades, weights=None if weights == "none" else weights)
    doc["n_ids"] = len(ids)
    prov = provenance(command="fair agreement", config={"columns": columns, "weights": weights},
                      inputs={f"scores{k}": p for k, p in enumerate(scores)})  # fmt: skip
    return stamp(doc, prov)
