"""File-to-file threshold fitting and prediction: the pipelines behind ``hier calibrate`` and ``hier predict``.

:func:`run_calibrate` reads calibration scores and truth, fits a :class:`RiskConstrainedThresholder`, writes
``THRESHOLDS.json`` (everything :func:`run_predict` needs, with its provenance) and returns the stamped report;
:func:`run_predict` applies such a file to new scores, writes the prediction CSV and returns a stamped summary.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from medlens._provenance import provenance, stamp
from medlens._validation import InputError
from medlens.hierarchy import read_score_table, read_scores_with_truth, write_label_table
from medlens.io import atomic_write_json
from medlens.risk._thresholder import RiskConstrainedThresholder
from medlens.taxonomy import Taxonomy, load_taxonomy

__all__ = ["run_calibrate", "run_predict"]


def run_calibrate(
    taxonomy: str | Taxonomy,
    scores: str | os.PathLike,
    truth: str | os.PathLike,
    out: str | os.PathLike,
    *,
    alpha: float = 0.02,
    method: str = "crc",
    rule: str | None = None,
    delta: float = 0.1,
    branch_depth: int = 1,
    from_leaves: str | None = None,
    p_value: str = "binomial",
    grid: int = 1001,
) -> dict[str, Any]:
    """Fit a threshold on ``scores`` and ``truth`` (CSV files) so that the CAE rate stays under ``alpha``; write
    the thresholds to ``out`` and return the stamped :class:`ThresholdReport` (what ``hier calibrate --json``
    prints). ``rule`` defaults to ``"climb"`` for single-label truth and ``"multilabel"`` otherwise; the report's
    ``feasible`` and ``message`` say when no threshold meets ``alpha`` (α < 1/(n+1) for CRC, or no λ passes):
    the file is then still written, with ``"feasible": false`` and the strictest λ, and ``hier calibrate`` exits
    with code 3 unless ``--allow-infeasible``.
    """
    tax = load_taxonomy(taxonomy)
    st, t = read_scores_with_truth(scores, truth, tax, from_leaves=from_leaves)
    th = RiskConstrainedThresholder(
        tax, rule=rule, alpha=alpha, delta=delta, method=method, branch_depth=branch_depth, grid=grid, p_value=p_value
    ).fit(st.scores, t.labels)  # rule None: chosen from the truth, as the API does
    rule = th.rule
    config = {
        "taxonomy": tax.name,
        "alpha": alpha,
        "delta": delta,
        "method": method,
        "rule": rule,
        "branch_depth": branch_depth,
        "from_leaves": from_leaves,
        "p_value": p_value,
        "grid": grid,
    }
    prov = provenance(command="hier calibrate", config=config, inputs={"scores": scores, "truth": truth}, taxonomy=tax)
    doc = th.to_dict(aggregator=st.aggregator)
    doc["provenance"] = prov
    atomic_write_json(out, doc)
    return stamp(th.report().to_dict(), prov)


def run_predict(thresholds: str | os.PathLike, scores: str | os.PathLike, out: str | os.PathLike) -> dict[str, Any]:
    """Apply the thresholds file written by :func:`run_calibrate` to ``scores`` (a CSV in the calibration's
    column layout); write the predictions to ``out`` (``id,label``; the root = abstained) and return the stamped
    summary (what ``hier predict --json`` prints): ``n``, ``abstained``, ``coverage``, ``lambda``, ``rule``, ``out``.
    """
    th = RiskConstrainedThresholder.load(thresholds)
    aggregator = json.loads(Path(thresholds).read_text(encoding="utf-8")).get("aggregator")
    try:
        st = read_score_table(scores, th.taxonomy, from_leaves=aggregator)
    except InputError as exc:
        layout = f"one column per leaf, aggregated with {aggregator!r}" if aggregator else "one column per node"
        raise InputError(
            f"{exc} The thresholds in {thresholds} were fitted on scores with {layout}; give --scores in that layout."
        ) from None
    labels = th.predict(st.scores)
    write_label_table(out, st.ids, labels)
    root = th.taxonomy.root
    abstained = sum(1 for lab in labels if (lab == root or lab == [root]))
    summary = {
        "n": len(labels),
        "abstained": abstained,
        "coverage": 1 - abstained / max(1, len(labels)),
        "lambda": th.lambda_,
        "rule": th.rule,
        "out": str(out),
    }
    prov = provenance(
        command="hier predict",
        config={"thresholds": str(thresholds)},
        inputs={"thresholds": thresholds, "scores": scores},
        taxonomy=th.taxonomy,
    )
    return stamp(summary, prov)
