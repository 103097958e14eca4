"""Parity with hiclass.metrics (Kiritchenko hP/hR/hF): the acceptance criterion for our implementation.

Labels go to hiclass as root→node paths from ``Taxonomy.to_paths`` (2-D single-label, 3-D multi-label).
hiclass cannot score empty predictions (it divides by zero), so the data hold no abstentions; its macro
F averages per-sample F, as ours does. Only trees: in a DAG a path keeps one parent, our closure keeps all.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from medlens.hierarchy import hierarchical_precision_recall_fscore
from medlens.taxonomy import Taxonomy

hiclass_metrics = pytest.importorskip(
    "hiclass.metrics", reason='hiclass not installed (pip install "medlens[reference]")'
)

pytestmark = pytest.mark.reference

SEEDS = [0, 1, 2, 3, 4]


def random_tree(rng: np.random.Generator, depth: int = 3) -> Taxonomy:
    """A depth-``depth`` tree with 2-4 children per internal node (every leaf at full depth)."""
    children: dict[str, list[str]] = {}
    frontier = ["root"]
    for level in range(depth):
        nxt = []
        for parent in frontier:
            kids = [f"{parent}.{j}" if parent != "root" else f"L{level}_{j}" for j in range(rng.integers(2, 5))]
            children[parent] = kids
            nxt.extend(kids)
        frontier = nxt
    return Taxonomy(children, name="random")


def ours(y_true, y_pred, tax, average):
    r = hierarchical_precision_recall_fscore(y_true, y_pred, taxonomy=tax, average=average)
    return r.hP, r.hR, r.hF


def theirs(paths_true, paths_pred, average):
    with warnings.catch_warnings():
        # per-sample F of a fully wrong prediction is "ill-defined" for hiclass (set to 0, as ours)
        warnings.simplefilter("ignore")
        return (
            hiclass_metrics.precision(paths_true, paths_pred, average=average),
            hiclass_metrics.recall(paths_true, paths_pred, average=average),
            hiclass_metrics.f1(paths_true, paths_pred, average=average),
        )


def assert_parity(y_true, y_pred, paths_true, paths_pred, tax):
    for average in ("micro", "macro"):
        np.testing.assert_allclose(
            ours(y_true, y_pred, tax, average), theirs(paths_true, paths_pred, average), rtol=0, atol=1e-12
        )


def noisy_predictions(rng, y_true, candidates, p_keep=0.4):
    return [t if rng.random() < p_keep else str(rng.choice(candidates)) for t in y_true]


@pytest.mark.parametrize("seed", SEEDS)
def test_single_label_full_depth_paths(seed):
    rng = np.random.default_rng(seed)
    tax = random_tree(rng)
    leaves = list(tax.leaves)
    y_true = rng.choice(leaves, 100).tolist()
    y_pred = noisy_predictions(rng, y_true, leaves)
    paths_true, paths_pred = tax.to_paths(y_true), tax.to_paths(y_pred)
    assert paths_true.shape == (100, 3)
    assert (paths_true != "").all()
    assert_parity(y_true, y_pred, paths_true, paths_pred, tax)


@pytest.mark.parametrize("seed", SEEDS)
def test_single_label_ragged_depths(seed):
    rng = np.random.default_rng(100 + seed)
    tax = random_tree(rng)
    nodes = list(tax.nodes[1:])  # internal nodes too: paths of length 1, 2 and 3, right-padded with ""
    y_true = rng.choice(nodes, 100).tolist()
    y_pred = noisy_predictions(rng, y_true, nodes)
    paths_true, paths_pred = tax.to_paths(y_true), tax.to_paths(y_pred)
    assert {int((row != "").sum()) for row in paths_true} == {1, 2, 3}
    assert_parity(y_true, y_pred, paths_true, paths_pred, tax)


@pytest.mark.parametrize("seed", SEEDS)
def test_multi_label_3d_paths(seed):
    rng = np.random.default_rng(200 + seed)
    tax = random_tree(rng)
    nodes = list(tax.nodes[1:])

    def label_set():
        return sorted(set(rng.choice(nodes, rng.integers(1, 4)).tolist()))

    y_true = [label_set() for _ in range(80)]
    y_pred = [t if rng.random() < 0.3 else label_set() for t in y_true]
    # hiclass zips the true and predicted paths of a sample, so both arrays need the same number of paths
    paths_true, paths_pred = tax.to_paths_pair(y_true, y_pred)
    assert paths_true.ndim == 3
    assert paths_true.shape == paths_pred.shape
    assert_parity(y_true, y_pred, paths_true, paths_pred, tax)
    width = paths_true.shape[1]
    assert_parity(y_true, y_pred, tax.to_paths(y_true, width=width), tax.to_paths(y_pred, width=width), tax)


def test_paths_of_different_widths_regression():
    # Regression: to_paths padded truth (1 label per row) and predictions (2 in row 0) to their own widths;
    # hiclass then dropped the second predicted path and reported precision 1.0 instead of 4/6.
    tax = Taxonomy({"root": ["A", "B"], "A": ["a1"], "B": ["b1"]})
    y_true, y_pred = [["a1"], ["b1"]], [["a1", "b1"], ["b1"]]
    truth, pred = tax.to_paths_pair(y_true, y_pred)
    assert truth.shape == pred.shape == (2, 2, 2)
    assert hiclass_metrics.precision(truth, pred) == pytest.approx(4 / 6)
    assert_parity(y_true, y_pred, truth, pred, tax)
    # the width= argument gives the same arrays
    assert tax.to_paths(y_true, width=2).tolist() == truth.tolist()
    # single-label truth against label-set predictions: one-label sets of the common width
    truth1, pred1 = tax.to_paths_pair(["a1", "b1"], y_pred)
    assert truth1.tolist() == truth.tolist()
    assert pred1.tolist() == pred.tolist()


def test_hand_example_from_the_hiclass_docs():
    # hiclass' docstring example: two samples, one fully right, one fully wrong -> 0.5 micro and macro
    tax = Taxonomy({"root": ["0", "3", "6"], "0": ["1"], "1": ["2"], "3": ["4"], "4": ["5"], "6": ["7"], "7": ["8"]})
    y_true, y_pred = ["2", "5"], ["2", "8"]
    assert tax.to_paths(y_true).tolist() == [["0", "1", "2"], ["3", "4", "5"]]
    assert_parity(y_true, y_pred, tax.to_paths(y_true), tax.to_paths(y_pred), tax)
    assert ours(y_true, y_pred, tax, "micro") == pytest.approx((0.5, 0.5, 0.5))
