"""Disaggregated metrics: hand-computed summaries, small groups, missing sensitive values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.fairness import SmallGroupWarning, disaggregate, selection_rate, true_positive_rate


def test_hand_computed_summaries():
    d = disaggregate(selection_rate, [0] * 8, [1, 1, 1, 0, 1, 0, 0, 0], sensitive_features=list("aaaabbbb"))
    assert d.by_group == {"a": 0.75, "b": 0.25}
    assert d.overall == 0.5
    assert d.difference() == pytest.approx(0.5)
    assert d.difference("to_overall") == pytest.approx(0.25)
    assert d.ratio() == pytest.approx(1 / 3)
    assert d.ratio("to_overall") == pytest.approx(0.5)  # 0.75/0.5 folds to 2/3; 0.25/0.5 = 0.5
    doc = json.loads(json.dumps(d.to_dict()))
    assert doc["by_group"][0] == {"group": "a", "n": 4, "value": 0.75, "excluded": False}


def test_min_group_size_leaves_small_groups_out_of_the_summaries():
    sf = ["a"] * 5 + ["b"] * 5 + ["c"]
    y_pred = [1] * 5 + [0] * 5 + [1]
    with pytest.warns(SmallGroupWarning, match="'c' has 1 sample"):
        d = disaggregate(selection_rate, np.zeros(11), y_pred, sensitive_features=sf, min_group_size=2)
    assert d.excluded == ("c",)
    assert d.by_group["c"] == 1.0
    assert d.difference() == 1.0
    assert d.group_max() == 1.0


def test_two_features_are_keyed_by_tuples():
    d = disaggregate(
        true_positive_rate, [1, 1, 1, 1], [1, 0, 1, 1], sensitive_features={"r": list("xxyy"), "s": list("FMFM")}
    )
    assert d.by_group == {("x", "F"): 1.0, ("x", "M"): 0.0, ("y", "F"): 1.0, ("y", "M"): 1.0}
    assert d.to_dict()["by_group"][1]["group"] == "x&M"


def test_missing_sensitive_value_is_an_error():
    with pytest.raises(InputError, match="missing at sample 1"):
        disaggregate(selection_rate, [0, 0], [1, 0], sensitive_features=["a", None])
