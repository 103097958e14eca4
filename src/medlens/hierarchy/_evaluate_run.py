"""Evaluation of a prediction file against a truth file: the pipeline behind ``hier evaluate``.

Reads the truth, prediction and optional score tables, aligns them by id, runs :func:`evaluate`, and returns
the report stamped with its provenance (optionally also written to a JSON file).
"""

from __future__ import annotations

import os
from typing import Any

from medlens._provenance import provenance, stamp
from medlens.hierarchy._evaluate import evaluate
from medlens.hierarchy._tables import align_ids, read_label_table, read_score_table
from medlens.io import atomic_write_json
from medlens.taxonomy import Taxonomy, load_taxonomy

__all__ = ["run_evaluate"]


def run_evaluate(
    taxonomy: str | Taxonomy,
    truth: str | os.PathLike,
    pred: str | os.PathLike,
    *,
    branch_depth: int = 1,
    average: str = "micro",
    beta: float = 1.0,
    scores: str | os.PathLike | None = None,
    from_leaves: str | None = None,
    ci: float | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    out: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Evaluate the labels of ``pred`` against ``truth`` (CSV files) under ``taxonomy``; return the stamped report
    (what ``hier evaluate --json`` prints), also written to ``out`` when given.

    ``scores`` (a node or leaf score CSV, leaves aggregated with ``from_leaves``) adds AUROC and consistency;
    ``ci`` adds bootstrap intervals from ``bootstrap`` resamples seeded with ``seed``.
    """
    tax = load_taxonomy(taxonomy)
    t = read_label_table(truth, tax, what="truth")
    p = read_label_table(pred, tax, what="prediction")
    order = align_ids(t.ids, p.ids, ref_name=str(truth), other_name=str(pred))
    node_scores = None
    inputs = {"truth": truth, "pred": pred}
    if scores is not None:
        st = read_score_table(scores, tax, from_leaves=from_leaves)
        node_scores = st.scores[align_ids(t.ids, st.ids, ref_name=str(truth), other_name=str(scores))]
        inputs["scores"] = scores
    rep = evaluate(
        t.labels,
        p.labels.subset(order),
        taxonomy=tax,
        branch_depth=branch_depth,
        average=average,
        beta=beta,
        node_scores=node_scores,
        ci=ci,
        n_bootstrap=bootstrap,
        seed=seed,
    )
    config = {
        "taxonomy": tax.name,
        "branch_depth": branch_depth,
        "average": average,
        "beta": beta,
        "ci": ci,
        "bootstrap": bootstrap,
        "from_leaves": from_leaves,
    }
    prov = provenance(command="hier evaluate", config=config, seed=seed, inputs=inputs, taxonomy=tax)
    doc = stamp(rep.to_dict(), prov)
    if out is not None:
        atomic_write_json(out, doc)
    return doc
