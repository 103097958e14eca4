"""Fairness evaluation: group reports with bootstrap intervals, gaps, ES-metric and FAP; disaggregated metrics.

:func:`group_report` summarises one per-sample score (a caption metric, a judge grade, 0/1 correctness) over
sensitive attributes; :func:`fap` and :func:`es_metric` are its summaries on their own. :class:`MetricFrame`-style
disaggregation of any ``metric(y_true, y_pred)`` and the classification parity measures
(:func:`demographic_parity_difference`, :func:`equalized_odds_difference`) equal fairlearn's.
"""

from medlens.fairness._classification import (
    COMPARE_METHODS,
    Disaggregated,
    demographic_parity_difference,
    demographic_parity_ratio,
    disaggregate,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from medlens.fairness._groups import (
    MISSING_POLICIES,
    AttributeReport,
    GroupReport,
    GroupStat,
    SmallGroupWarning,
    encode_attribute,
    group_report,
)
from medlens.fairness._run import SCORE_METRICS, read_scores_table, run_fair_report, run_fair_score
from medlens.fairness._summary import DISPERSIONS, FAP_WEIGHTS, FAPResult, es_metric, fap

__all__ = [
    "COMPARE_METHODS",
    "Disaggregated",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "disaggregate",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "false_positive_rate",
    "selection_rate",
    "true_positive_rate",
    "DISPERSIONS",
    "FAP_WEIGHTS",
    "MISSING_POLICIES",
    "SCORE_METRICS",
    "read_scores_table",
    "run_fair_report",
    "run_fair_score",
    "AttributeReport",
    "FAPResult",
    "GroupReport",
    "GroupStat",
    "SmallGroupWarning",
    "encode_attribute",
    "es_metric",
    "fap",
    "group_report",
]
