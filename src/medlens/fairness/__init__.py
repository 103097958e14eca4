"""Fairness evaluation: group reports with bootstrap intervals, gaps, ES-metric and FAP; disaggregated metrics.

:func:`group_report` summarises one per-sample score (a caption metric, a judge grade, 0/1 correctness) over
sensitive attributes; :func:`fap` and :func:`es_metric` are its summaries on their own. :class:`MetricFrame`-style
disaggregation of any ``metric(y_true, y_pred)`` and the classification parity measures
(:func:`demographic_parity_difference`, :func:`equalized_odds_difference`) equal fairlearn's.

Judges of generated text (:class:`GreenJudge`, :class:`RubricJudge`, through :mod:`medlens.llm` with caching)
give per-sample scores with NaN for unreadable replies; :func:`judges_agreement` reports kappa between judges.
:func:`load_fairvlmed` reads a Harvard-FairVLMed copy, :func:`generate_vqa` makes self-checked VQA items from its
notes, and :func:`run_fair_run` runs a model over the items (resumable; a ``--model-path`` model in this process or
on Ray actors, ``--executor ray``) and scores every answer.
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
from medlens.fairness._fairvlmed import (
    FAIRVLMED_ATTRIBUTES,
    FAIRVLMED_CODES,
    FairVLMedData,
    FairVLMedRecord,
    load_fairvlmed,
    load_slo_image,
    write_synthetic_fairvlmed,
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
from medlens.fairness._judge_run import JUDGE_KINDS, run_fair_agreement, run_fair_judge
from medlens.fairness._judges import (
    DEFAULT_RUBRIC,
    GreenJudge,
    JudgeScores,
    RubricJudge,
    judge_scores,
    parse_rubric_score,
)
from medlens.fairness._run import SCORE_METRICS, read_scores_table, run_fair_report, run_fair_score, write_scores_csv
from medlens.fairness._runner import RUN_TASKS, read_items, run_fair_run
from medlens.fairness._summary import DISPERSIONS, FAP_WEIGHTS, FAPResult, es_metric, fap
from medlens.fairness._vqa import VQA_CATEGORIES, generate_vqa, run_fair_vqa

__all__ = [
    "DEFAULT_RUBRIC",
    "JUDGE_KINDS",
    "run_fair_agreement",
    "run_fair_judge",
    "FAIRVLMED_ATTRIBUTES",
    "FAIRVLMED_CODES",
    "RUN_TASKS",
    "VQA_CATEGORIES",
    "FairVLMedData",
    "FairVLMedRecord",
    "generate_vqa",
    "load_fairvlmed",
    "load_slo_image",
    "read_items",
    "run_fair_run",
    "run_fair_vqa",
    "write_scores_csv",
    "write_synthetic_fairvlmed",
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
