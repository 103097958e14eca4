"""auroc_columns equals scikit-learn's roc_auc_score column by column, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medlens._validation import InputError
from medlens.metrics import auroc_columns, macro_auroc


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 60), k=st.integers(1, 5), seed=st.integers(0, 2**16), levels=st.integers(2, 6))
def test_equals_sklearn_per_column(n, k, seed, levels):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=(n, k))
    s = rng.integers(0, levels, size=(n, k)) / levels  # many ties
    got = auroc_columns(y, s)
    for j in range(k):
        if y[:, j].min() == y[:, j].max():
            assert np.isnan(got[j])
        else:
            assert got[j] == pytest.approx(roc_auc_score(y[:, j], s[:, j]), abs=1e-12)


def test_macro_and_errors():
    assert macro_auroc([[1, 1], [0, 1]], [[0.9, 0.1], [0.2, 0.3]]) == 1.0
    assert np.isnan(macro_auroc([[1], [1]], [[0.1], [0.2]]))
    with pytest.raises(InputError, match="0/1"):
        auroc_columns([[2], [0]], [[0.1], [0.2]])
    with pytest.raises(InputError, match="one shape"):
        auroc_columns([[1, 0]], [[0.1]])
