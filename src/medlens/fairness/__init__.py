"""Fairness evaluation: group reports with bootstrap intervals, gaps, ES-metric and FAP; disaggregated metrics.

:func:`group_report` summarises one per-sample score (a caption metric, a judge grade, 0/1 correctness) over
sensitive attributes; :func:`fap` and :func:`es_metric` are its summaries on their own. :class:`MetricFrame`-style
disaggregation of any ``metric(y_true, y_pred)`` and the classification parity measures
(:func:`demographic_parity_difference`, :func:`equalized_odds_difference`) equal fairlearn's.

Judges of generated text (:class:`GreenJudge`, :class:`RubricJudge`, through :mod:`medlens.llm` with caching)
give per-sample scores with NaN for unreadable replies; :func:`judges_agreement` reports kappa between judges.
"""

from medlens.fairness._agreement import KAPPA_WEIGHTS, judges_agreement, weighted_kappa
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
from medlens.fairness._green import GREEN_CATEGORIES, GreenParse, green_score, parse_green
from medlens.fairness._groups import (
    MISSING_POLICIES,
    AttributeReport,
    GroupReport,
    GroupStat,
    SmallGroupWarning,
    encode_attribute,
    group_report,
)
from medlens.fairness._judges import (
    DEFAULT_RUBRIC,
    GreenJudge,
    JudgeScores,
    RubricJudge,
    judge_scores,
    parse_rubric_score,
)
from medlens.fairness._run import SCORE_METRICS, read_scores_table, run_fair_report, run_fair_score
from medlens.fairness._summary import DISPERSIONS, FAP_WEIGHTS, FAPResult, es_metric, fap

__all__ = [
    "DEFAULT_RUBRIC",
    "GREEN_CATEGORIES",
    "KAPPA_WEIGHTS",
    "GreenJudge",
    "GreenParse",
    "JudgeScores",
    "RubricJudge",
    "green_score",
    "judge_scores",
    "judges_agreement",
    "parse_green",
    "parse_rubric_score",
    "weighted_kappa",
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
