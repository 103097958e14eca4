"""Risk-constrained thresholding: conformal risk control, Learn-then-Test and an empirical baseline; per-group
(Mondrian) thresholds with :class:`GroupRiskThresholder`."""

from medlens.risk._bounds import binomial_pvalue, hoeffding_bentkus_pvalue
from medlens.risk._group_run import read_group_column, run_group_calibrate
from medlens.risk._groups import GroupRiskComparison, GroupRiskThresholder
from medlens.risk._rules import LossCurve, climb_paths, climb_predict, loss_curve, multilabel_predict, predict_labels
from medlens.risk._run import run_calibrate, run_predict
from medlens.risk._thresholder import RiskConstrainedThresholder, ThresholdReport

__all__ = [
    "read_group_column",
    "run_group_calibrate",
    "GroupRiskComparison",
    "GroupRiskThresholder",
    "LossCurve",
    "RiskConstrainedThresholder",
    "ThresholdReport",
    "binomial_pvalue",
    "climb_paths",
    "climb_predict",
    "hoeffding_bentkus_pvalue",
    "loss_curve",
    "multilabel_predict",
    "predict_labels",
    "run_calibrate",
    "run_predict",
]
