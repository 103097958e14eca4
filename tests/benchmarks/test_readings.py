"""One-line readings of risk-controlled results (terminal and report): CRC above α, LTT abstaining, no guarantee."""

from __future__ import annotations

from medlens.benchmarks.cxr_reports._finetune import explain as finetune_explain
from medlens.benchmarks.cxr_reports._run import LOW_COVERAGE, explain, summary_lines
from medlens.benchmarks.fair_reports._run import explain as fair_explain


def _row(lam, cae, cov, *, feasible=True, alpha=0.02):
    return {
        "calibration": {"lambda": lam, "feasible": feasible},
        "test_cae_rate": cae,
        "test_cae_se": 0.005,
        "test_coverage": cov,
        "test_hF": 0.5,
        "test_cae_within_alpha": cae <= alpha,
    }


def _doc(**rows):
    return {
        "alpha": 0.02,
        "delta": 0.1,
        "splits": {"train": 10, "calibration": 950, "test": 951},
        "baseline_test": {"hF": 0.77, "cae_rate": 0.187, "coverage": 0.88, "flat": {"accuracy": 0.4}},
        "thresholds": rows,
    }


def test_crc_above_alpha_is_explained_as_sampling_noise():
    doc = _doc(crc=_row(0.903, 0.0273, 0.6), ltt=_row(0.97, 0.015, 0.44), empirical=_row(0.9, 0.019, 0.63))
    (line,) = explain(doc)
    assert line == (
        "cxr-reports crc λ̂=0.903: test CAE 0.0273 above α=0.02. CRC bounds the expected CAE rate over calibration "
        "draws (n=950), not the rate of one test split (n=951), which may exceed α by sampling noise (SE 0.0050)."
    )


def test_crc_within_alpha_still_says_what_it_bounds():
    (line,) = explain(_doc(crc=_row(0.91, 0.0150, 0.6)))
    assert "test CAE 0.0150 within α=0.02" in line
    assert "expected CAE rate over calibration draws" in line


def test_ltt_with_almost_no_coverage_is_flagged_as_abstaining():
    doc = _doc(ltt=_row(0.99, 0.0, 0.015))
    (line,) = explain(doc)
    assert line.startswith("cxr-reports ltt λ̂=0.990: coverage 0.015 — it abstains on 98.5 % of reports.")
    assert "δ=0.1" in line
    assert not explain(_doc(ltt=_row(0.99, 0.0, LOW_COVERAGE)))  # at the cut-off: not flagged


def test_ltt_and_empirical_above_alpha_and_infeasible_fits():
    lines = explain(
        _doc(ltt=_row(0.97, 0.021, 0.44), empirical=_row(0.9, 0.0284, 0.63), crc=_row(1.0, 0, 0, feasible=False))
    )
    assert lines[0].startswith("cxr-reports ltt λ̂=0.970: test CAE 0.0210 above α=0.02. LTT bounds the chance")
    assert "no guarantee" in lines[1]
    assert lines[2].startswith("cxr-reports crc λ̂=1.000: infeasible")


def test_terminal_lines_use_yes_no_and_end_with_the_readings():
    doc = _doc(crc=_row(0.903, 0.0273, 0.6), ltt=_row(0.99, 0.0, 0.015))
    doc["thresholds"]["crc"]["calibration"]["lambda"] = 0.903
    lines = summary_lines(doc)
    assert "(≤ α: no)" in lines[1]
    assert "(≤ α: yes)" in lines[2]
    assert not any("True" in x or "False" in x for x in lines)
    assert lines[3].startswith("  note: crc λ̂=0.903: test CAE 0.0273 above α=0.02.")
    assert lines[4].startswith("  note: ltt λ̂=0.990: coverage 0.015 — it abstains")


def test_finetune_readings_name_each_crc_cell_above_alpha():
    cell = {"lambda": 0.9, "cae_rate": 0.011}
    doc = {
        "alpha": 0.02,
        "splits": {"test": 951},
        "table": {"zero_shot": {"crc": {**cell, "cae_rate": 0.028}}, "finetuned": {"crc": cell}},
    }
    (line,) = finetune_explain(doc)
    assert line.startswith("cxr-reports-finetune zero-shot CRC λ=0.900: test CAE 0.0280 above α=0.02.")


def test_fair_reports_flags_age_groups_above_alpha_under_crc_only():
    def groups(*rates):
        return {"by_age": {g: {"cae_rate": r} for g, r in zip(("<40", "40-59", ">=60"), rates, strict=True)}}

    doc = {
        "classifier": {
            "alpha": 0.02,
            "thresholds": {"threshold 0.5": groups(0.2, 0.2, 0.2), "CRC λ̂ 0.9 (α 0.02)": groups(0.028, 0.034, 0.011)},
        }
    }
    (line,) = fair_explain(doc)
    assert line.startswith(
        "fair-reports CRC λ̂ 0.9 (α 0.02): CAE above α=0.02 in age groups <40 (0.028), 40-59 (0.034)."
    )
    assert "not within each group" in line
    doc["classifier"]["thresholds"]["CRC λ̂ 0.9 (α 0.02)"] = groups(0.01, 0.02, 0.019)  # = α is within
    assert fair_explain(doc) == []
    assert fair_explain({"classifier": None}) == []


def test_fair_reports_flags_a_per_age_threshold_that_abstains_on_almost_everything():
    def cov(marginal, group):
        return {"marginal": {"coverage": marginal, "cae_rate": 0.01}, "group": {"coverage": group, "cae_rate": 0.0}}

    doc = {
        "classifier": {
            "alpha": 0.02,
            "thresholds": {},
            "per_group_risk": {"alpha": 0.02, "groups": {"<40": cov(0.7, 0.5), "40-59": cov(0.63, 0.03)}},
        }
    }
    (line,) = fair_explain(doc)
    assert line.startswith("fair-reports per-age CRC for 40-59: coverage 0.03 (marginal λ̂: 0.63)")
    assert "abstains on 97 % of its test reports" in line
    doc["classifier"]["per_group_risk"]["groups"]["40-59"] = cov(0.63, 0.1)  # at the limit: not flagged
    assert fair_explain(doc) == []
