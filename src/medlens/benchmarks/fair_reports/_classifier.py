"""Part (a) of ``fair-reports``: the ``cxr-reports`` zero-shot classifier's test-split metrics per age group.

Reads a ``cxr-reports`` run folder (``scores_test.csv``, ``truth_test.csv``, ``thresholds_crc.json``; the demo
writes it just before this section) and evaluates the test reports of each age group at the baseline threshold
0.5 and at the CRC threshold fitted on the calibration split: hF, CAE rate, coverage and macro-AUROC with 95 %
bootstrap intervals. CRC bounds the CAE rate on average over reports, not within each group; the table shows the
per-group rates that marginal guarantee leaves. When the run also holds the calibration split
(``scores_calibration.csv``, ``truth_calibration.csv``), :func:`per_group_risk` fits one CRC threshold per age group
on it (:class:`medlens.risk.GroupRiskThresholder`, Mondrian) and compares, on the test split, each group's CAE rate
and coverage under the marginal and under its own threshold.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CALIBRATION_FILES", "CLASSIFIER_FILES", "classifier_by_age", "per_group_risk"]

CLASSIFIER_FILES = ("scores_test.csv", "truth_test.csv", "thresholds_crc.json")
CALIBRATION_FILES = ("scores_calibration.csv", "truth_calibration.csv")
_METRICS = (("hF", True), ("cae_rate", False), ("coverage", True), ("macro_auroc", True))


def _row(rep: dict[str, Any]) -> dict[str, Any]:
    ci = rep.get("ci") or {}
    out = {"n": rep["n"]}
    for key, _ in _METRICS:
        value = rep["flat"].get("macro_auroc") if key == "macro_auroc" else rep[key]
        out[key] = value
        lo_hi = ci.get(key)
        out[f"{key}_ci"] = list(lo_hi) if lo_hi is not None else None
    return out


def classifier_by_age(
    run_dir: Path,
    ages: dict[str, float],
    *,
    seed: int = 0,
    n_bootstrap: int = 1000,
    min_group_size: int = 30,
    lam: float = 1.0,
) -> dict[str, Any]:
    """Per age group and threshold (0.5 and CRC λ̂): hF, CAE rate, coverage, macro-AUROC, and FAP/ES over groups."""
    from medlens.benchmarks.fair_reports._data import AGE_GROUPS, age_group
    from medlens.fairness import es_metric, fap
    from medlens.hierarchy import align_ids, evaluate, predict_labels, read_label_table, read_score_table
    from medlens.taxonomy import load_taxonomy

    crc = json.loads((run_dir / "thresholds_crc.json").read_text(encoding="utf-8"))
    tax = load_taxonomy(crc.get("taxonomy", "cxr_anatomic_v1"))
    truth = read_label_table(run_dir / "truth_test.csv", tax)
    scores = read_score_table(run_dir / "scores_test.csv", tax)
    order = align_ids(truth.ids, scores.ids, ref_name="truth_test.csv", other_name="scores_test.csv")
    S = scores.scores[order]
    groups = age_group(np.array([ages.get(i, np.nan) for i in truth.ids], dtype=float))
    thresholds = {"threshold 0.5": 0.5, f"CRC λ̂ {crc['lambda']:g} (α {crc['alpha']:g})": float(crc["lambda"])}
    out: dict[str, Any] = {
        "run": str(run_dir),
        "n_test": len(truth.ids),
        "n_without_age": int(sum(g is None for g in groups)),
        "branch_depth": int(crc.get("branch_depth", 1)),
        "alpha": crc["alpha"],
        "thresholds": {},
    }
    for label, lam_t in thresholds.items():
        pred = predict_labels(S, tax, rule=crc.get("rule", "multilabel"), lam=lam_t)
        kw = {"taxonomy": tax, "branch_depth": out["branch_depth"], "ci": 0.95, "n_bootstrap": n_bootstrap}
        overall = evaluate(truth.labels, pred, node_scores=S, seed=seed, **kw).to_dict()
        per: dict[str, Any] = {}
        for g in AGE_GROUPS:
            idx = np.flatnonzero(groups == g)
            if not len(idx):
                continue
            rep = evaluate(truth.labels.subset(idx), pred.subset(idx), node_scores=S[idx], seed=seed, **kw)
            per[g] = {**_row(rep.to_dict()), "excluded": bool(len(idx) < min_group_size)}
        summary = {}
        included = {g: r for g, r in per.items() if not r["excluded"]}
        for key, higher in _METRICS:
            vals = {g: r[key] for g, r in included.items() if r[key] is not None}
            if len(vals) < 2:
                continue
            f = fap(vals, {g: included[g]["n"] for g in vals}, lam=lam, higher_is_better=higher)
            ref = _row(overall)[key]
            summary[key] = {
                "gap_max_min": max(vals.values()) - min(vals.values()),
                "worst_group": f.worst_group,
                "fap": f.to_dict(),
                "es": es_metric(ref, vals) if higher else None,
            }
        out["thresholds"][label] = {"overall": _row(overall), "by_age": per, "summary": summary}
    if all((run_dir / f).is_file() for f in CALIBRATION_FILES):
        out["per_group_risk"] = per_group_risk(run_dir, ages, crc, tax, S, truth.labels, groups)
    return out


def per_group_risk(
    run_dir: Path,
    ages: dict[str, float],
    crc: dict[str, Any],
    tax: Any,
    test_scores: Any,
    test_labels: Any,
    groups: Any,
) -> dict[str, Any]:
    """Mondrian CRC by age group (fitted on the calibration split) vs the marginal CRC λ̂, on the test split.

    Reports without an age are left out of both fit and comparison (counted).
    """
    from medlens.benchmarks.fair_reports._data import age_group
    from medlens.hierarchy import align_ids, read_label_table, read_score_table
    from medlens.risk import GroupRiskThresholder

    cal_t = read_label_table(run_dir / "truth_calibration.csv", tax)
    cal_s = read_score_table(run_dir / "scores_calibration.csv", tax)
    order = align_ids(cal_t.ids, cal_s.ids, ref_name="truth_calibration.csv", other_name="scores_calibration.csv")
    cal_g = age_group(np.array([ages.get(i, np.nan) for i in cal_t.ids], dtype=float))
    keep = np.flatnonzero(cal_g != None)  # noqa: E711 - an object array of names and None
    opts = {"alpha": crc["alpha"], "method": "crc", "rule": crc.get("rule", "multilabel"),
            "branch_depth": int(crc.get("branch_depth", 1))}  # fmt: skip
    th = GroupRiskThresholder(tax, **opts).fit(cal_s.scores[order][keep], cal_t.labels.subset(keep), cal_g[keep])
    test_keep = np.flatnonzero(groups != None)  # noqa: E711
    cmp = th.compare(test_scores[test_keep], test_labels.subset(test_keep), groups[test_keep]).to_dict()
    reports = th.reports()
    for g, row in cmp["groups"].items():
        row["group"]["calibration_risk"] = reports[g].calibration_risk
    return {
        **opts,
        "n_calibration": int(len(keep)),
        "n_calibration_without_age": int(len(cal_g) - len(keep)),
        "n_test": int(len(test_keep)),
        "marginal_lambda": cmp["marginal_lambda"],
        "groups": cmp["groups"],
        "overall": cmp["overall"],
    }
