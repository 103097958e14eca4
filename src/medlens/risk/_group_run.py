"""File-to-file group-conditional (Mondrian) risk control: the pipeline behind ``medlens fair risk``.

:func:`run_group_calibrate` reads calibration scores and truth plus a groups CSV (``id`` and one attribute
column), fits a :class:`GroupRiskThresholder` (the marginal λ̂ and one λ̂ per group), writes the thresholds file
and returns the stamped report: per group its λ̂, calibration CAE rate, coverage and feasibility; with test
scores and truth also :meth:`GroupRiskThresholder.compare` on them, the marginal and the per-group guarantee
side by side (the per-group one holds within each group; coverage is its price).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from medlens._provenance import provenance, stamp
from medlens._validation import InputError, shorten
from medlens.hierarchy import align_ids, read_label_table, read_score_table
from medlens.io import atomic_write_json
from medlens.risk._groups import GroupRiskThresholder
from medlens.taxonomy import Taxonomy, load_taxonomy

__all__ = ["read_group_column", "run_group_calibrate"]

_SUMMARY_KEYS = ("lambda", "n_calibration", "calibration_risk", "coverage", "feasible", "message")


def read_group_column(path: str | os.PathLike, attribute: str, ids: list[str]) -> np.ndarray:
    """The ``attribute`` value of each id in ``ids`` from a CSV with ``id`` and that column (every id needed)."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise InputError(f"groups file {p} does not exist; give a CSV with id and the attribute column.")
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"groups file {p} is not a readable CSV ({str(exc).strip()[:120]}).") from None
    df.columns = [str(c).strip() for c in df.columns]
    if "id" not in df.columns:
        raise InputError(f"groups file {p} needs an 'id' column; found {list(df.columns)[:8]}.")
    if attribute not in df.columns:
        others = [c for c in df.columns if c != "id"]
        raise InputError(f"attribute column {attribute!r} is not in {p}; columns: {others[:12]}.")
    values: dict[str, str] = {}
    for i, (sid, v) in enumerate(zip(df["id"].str.strip(), df[attribute].str.strip(), strict=True)):
        if sid in values:
            raise InputError(f"groups file {p}: id {sid!r} appears more than once (row {i + 2}).")
        values[sid] = v
    lost = [s for s in ids if s not in values]
    if lost:
        raise InputError(f"groups file {p} has no row for {len(lost)} id(s) (first: {shorten(lost[0])}).")
    empty = next((s for s in ids if values[s] == ""), None)
    if empty is not None:
        raise InputError(
            f"groups file {p}: id {empty!r} has an empty {attribute!r}; give every sample a group (e.g. 'unknown')."
        )
    g = np.array([values[s] for s in ids], dtype=object)
    if len(set(g)) < 2:
        raise InputError(f"attribute {attribute!r} has 1 distinct value in {p}; per-group control needs two groups.")
    return g


def run_group_calibrate(
    taxonomy: str | Taxonomy,
    scores: str | os.PathLike,
    truth: str | os.PathLike,
    groups: str | os.PathLike,
    *,
    attribute: str,
    out: str | os.PathLike,
    test_scores: str | os.PathLike | None = None,
    test_truth: str | os.PathLike | None = None,
    alpha: float = 0.02,
    method: str = "crc",
    rule: str | None = None,
    delta: float = 0.1,
    branch_depth: int = 1,
    from_leaves: str | None = None,
    p_value: str = "binomial",
    grid: int = 1001,
) -> dict[str, Any]:
    """Fit marginal and per-group thresholds on calibration files; write them to ``out``; return the report.

    ``groups`` holds ``id`` and ``attribute`` for every calibration (and test) id. The report's ``feasible`` is
    false when the marginal threshold or any group's cannot meet ``alpha`` (a small group under CRC needs
    α ≥ 1/(n_g + 1)); ``infeasible_groups`` names them.
    """
    if (test_scores is None) != (test_truth is None):
        raise InputError("give both test scores and test truth (--test-scores with --test-truth), or neither.")
    tax = load_taxonomy(taxonomy)
    st = read_score_table(scores, tax, from_leaves=from_leaves)
    t = read_label_table(truth, tax, what="truth")
    order = align_ids(t.ids, st.ids, ref_name=str(truth), other_name=str(scores))
    g = read_group_column(groups, attribute, list(t.ids))
    rule = rule or ("multilabel" if t.multilabel else "climb")
    opts = {"rule": rule, "alpha": alpha, "delta": delta, "method": method, "branch_depth": branch_depth,
            "grid": grid, "p_value": p_value}  # fmt: skip
    th = GroupRiskThresholder(tax, **opts).fit(st.scores[order], t.labels, g)
    reports = th.reports()
    marginal = th.marginal.report().to_dict()
    per_group = {name: {k: r.to_dict()[k] for k in _SUMMARY_KEYS} for name, r in reports.items()}
    infeasible = [name for name, r in per_group.items() if not r["feasible"]]
    doc: dict[str, Any] = {
        "attribute": attribute,
        "alpha": alpha,
        "method": method,
        "rule": rule,
        "branch_depth": branch_depth,
        "n_calibration": len(t.ids),
        "marginal": {k: marginal[k] for k in _SUMMARY_KEYS},
        "groups": per_group,
        "feasible": bool(marginal["feasible"]) and not infeasible,
        "infeasible_groups": infeasible,
        "test": None,
        "out": str(out),
    }
    inputs: dict[str, Any] = {"scores": scores, "truth": truth, "groups": groups}
    if test_scores is not None:
        ts = read_score_table(test_scores, tax, from_leaves=from_leaves)
        tt = read_label_table(test_truth, tax, what="test truth")
        o = align_ids(tt.ids, ts.ids, ref_name=str(test_truth), other_name=str(test_scores))
        tg = read_group_column(groups, attribute, list(tt.ids))
        th.unseen = "marginal"
        doc["test"] = th.compare(ts.scores[o], tt.labels, tg).to_dict()
        inputs |= {"test_scores": test_scores, "test_truth": test_truth}
    config = {"taxonomy": tax.name, "attribute": attribute, "from_leaves": from_leaves, **opts}
    prov = provenance(command="fair risk", config=config, inputs=inputs, taxonomy=tax)
    thresholds = {
        "kind": "medlens.group_thresholds",
        "attribute": attribute,
        "marginal": th.marginal.to_dict(aggregator=st.aggregator),
        "groups": {name: tr.to_dict(aggregator=st.aggregator) for name, tr in th.thresholders.items()},
        "provenance": prov,
    }
    atomic_write_json(out, thresholds)
    return stamp(doc, prov)
