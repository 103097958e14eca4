"""The registry of the hierarchical metric functions (``medlens.hierarchy.METRICS``).

Every entry takes ``(y_true, y_pred, *, taxonomy, sample_weight=None, ...)`` (labels as node ids, label sets or
indicator arrays) and weighs samples as documented in :mod:`medlens._results`. Metadata: ``inputs`` is
``"labels"`` (true and predicted labels) or ``"scores"`` (true labels and a score matrix over ``classes``);
``sample_weight`` is ``"weighted"`` for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from medlens._registry import Registry

__all__ = ["METRICS"]

METRICS: Registry[Callable[..., Any]] = Registry("hierarchical metric")

_M = "medlens.hierarchy._metrics"
for _name, _where, _inputs in [
    ("hierarchical_precision_recall_fscore", f"{_M}:hierarchical_precision_recall_fscore", "labels"),
    ("cae_rate", f"{_M}:cae_rate", "labels"),
    ("error_breakdown", f"{_M}:error_breakdown", "labels"),
    ("mistake_severity", f"{_M}:mistake_severity", "labels"),
    ("mean_tree_distance", f"{_M}:mean_tree_distance", "labels"),
    ("hierarchical_distance_at_k", f"{_M}:hierarchical_distance_at_k", "scores"),
    ("evaluate", "medlens.hierarchy._evaluate:evaluate", "labels"),
]:
    METRICS.register(_name, _where, inputs=_inputs, sample_weight="weighted")
METRICS.freeze()
