"""One CAE rule for single- and multi-label data on trees and DAGs (ARCHITECTURE.md DAG semantics)."""

import math

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.hierarchy import (
    cae_rate,
    error_breakdown,
    evaluate,
    hierarchical_precision_recall_fscore,
    mistake_severity,
)
from medlens.taxonomy import Taxonomy, load_taxonomy


@pytest.fixture
def dag() -> Taxonomy:
    # GU and Neoplasm are depth-1 branches; "GU neoplasm" has a parent in each (like HPO's HP:0007379).
    return Taxonomy(
        {
            "root": ["GU", "Neoplasm", "Eye"],
            "GU": ["Kidney cyst", "GU neoplasm"],
            "Neoplasm": ["GU neoplasm", "Eye neoplasm"],
            "Eye": ["Cataract", "Eye neoplasm"],
        }
    )


def test_cae_of_a_row_does_not_depend_on_other_rows(dag):
    # truth Kidney cyst {GU} vs prediction GU neoplasm {GU, Neoplasm}: branch sets overlap -> not a CAE
    alone = cae_rate(["Kidney cyst"], ["GU neoplasm"], taxonomy=dag)
    assert alone.n_cae == 0
    # the same row next to a multi-label row is judged by the same rule
    mixed = cae_rate([["Kidney cyst"], ["Cataract", "Kidney cyst"]], [["GU neoplasm"], ["Cataract"]], taxonomy=dag)
    assert mixed.n_cae == 0
    # and as closed 0/1 rows
    cols = list(dag.nodes)
    row = np.zeros((1, len(cols)), dtype=int)
    for v in ("GU", "Kidney cyst"):
        row[0, cols.index(v)] = 1
    pred = np.zeros((1, len(cols)), dtype=int)
    for v in ("GU", "Neoplasm", "GU neoplasm"):
        pred[0, cols.index(v)] = 1
    assert cae_rate(row, pred, taxonomy=dag).n_cae == 0
    # a prediction whose branches miss every true branch is a CAE either way
    assert cae_rate(["Cataract"], ["GU neoplasm"], taxonomy=dag).n_cae == 1
    assert cae_rate([["Cataract", "Cataract"]], [["GU neoplasm", "Eye neoplasm"]], taxonomy=dag).n_cae == 1


def test_a_shallow_true_label_covers_only_what_lies_below_it():
    tax = load_taxonomy("cxr_anatomic_v1")
    # k=2: Pleural Effusion (depth 2) vs Cardiomegaly (branch Enlarged Cardiomediastinum): a CAE
    assert cae_rate([["Pleural Effusion"]], [["Cardiomegaly"]], taxonomy=tax, branch_depth=2).n_cae == 1
    # adding the shallow truth "Lung" does not hide it: Cardiomegaly is not under Lung
    assert cae_rate([["Pleural Effusion", "Lung"]], [["Cardiomegaly"]], taxonomy=tax, branch_depth=2).n_cae == 1
    # ...but a prediction under "Lung" is covered by it
    assert cae_rate([["Pleural Effusion", "Lung"]], [["Pneumonia"]], taxonomy=tax, branch_depth=2).n_cae == 0
    # a truth with no node at depth >= k is never contradicted (nodes shallower than k are never a CAE)
    assert cae_rate([["Lung"]], [["Cardiomegaly"]], taxonomy=tax, branch_depth=2).n_cae == 0
    assert cae_rate(["Lung"], ["Cardiomegaly"], taxonomy=tax, branch_depth=2).n_cae == 0


def test_error_breakdown_treats_an_abstained_truth_the_same_on_both_paths(toy_tree):
    single = error_breakdown(["root"], ["Edema"], taxonomy=toy_tree).counts
    mixed = error_breakdown([["root"], ["Edema", "Effusion"]], [["Edema"], ["Edema"]], taxonomy=toy_tree).counts
    assert single["too_specific"] == 1
    assert mixed["too_specific"] == 1  # row 0; row 1 is exact
    assert mixed["exact"] == 1


def test_true_edges_severity_is_never_negative_in_a_dag():
    # X sits at depth 1 (root -> X) and also under the chain A -> B -> C, so its ancestor C is deeper than X
    tax = Taxonomy({"root": ["X", "A"], "A": ["B"], "B": ["C"], "C": ["X", "Y"]})
    # truth X, prediction Y: LCA is C (depth 3, deeper than X at depth 1); X -> C is one upward edge
    assert tax.lca("X", "Y") == "C"
    assert mistake_severity(["X"], ["Y"], taxonomy=tax, convention="true_edges") == 1.0


def test_abstentions_are_coverage_not_mistakes(toy_tree):
    r = evaluate(["Pneumonia", "Edema"], ["root", "Effusion"], taxonomy=toy_tree)
    assert r.coverage == 0.5
    assert r.mistake_severity == 2.0  # only Effusion vs Edema (LCA root, height 2)
    assert r.mean_tree_distance == 4.0
    # every sample abstained: precision undefined, recall 0, F 0 (no true node was found)
    prf = hierarchical_precision_recall_fscore(["Pneumonia"], ["root"], taxonomy=toy_tree)
    assert math.isnan(prf.hP)
    assert prf.hR == 0.0
    assert prf.hF == 0.0
    assert math.isnan(hierarchical_precision_recall_fscore(["root"], ["root"], taxonomy=toy_tree).hF)


def test_bad_beta_and_array_inputs_are_clear_errors(toy_tree):
    with pytest.raises(InputError, match="'beta' parameter must be in the range"):
        evaluate(["Edema"], ["Edema"], taxonomy=toy_tree, beta=-1)
    with pytest.raises(InputError, match="label paths are not accepted"):
        cae_rate(np.array([["Lung", "Edema"]]), np.array([["Lung", "Edema"]]), taxonomy=toy_tree)
    with pytest.raises(InputError, match="is empty"):
        cae_rate(np.zeros((0, len(toy_tree))), np.zeros((0, len(toy_tree))), taxonomy=toy_tree)


def test_taxonomy_labels_must_be_lists():
    with pytest.raises(InputError, match=r"'labels' of 'A' must be a list of strings; got 'pleural effusion'"):
        Taxonomy({"root": ["A"]}, labels={"A": "pleural effusion"})
    with pytest.raises(InputError, match=r"'prompts' of 'A' must be a list of strings"):
        Taxonomy({"root": ["A"]}, prompts={"A": "a chest x-ray"})


def test_evaluate_with_scores_reports_top_k_hierarchical_distance(toy_tree):
    from medlens.hierarchy import hierarchical_distance_at_k, node_scores_from_leaves

    leaves = ["Pneumonia", "Edema", "Effusion"]
    leaf_scores = np.array([[0.6, 0.3, 0.1], [0.2, 0.1, 0.7]])
    s = node_scores_from_leaves(leaf_scores, taxonomy=toy_tree, leaves=leaves)
    r = evaluate(["Edema", "Effusion"], ["Pneumonia", "Effusion"], taxonomy=toy_tree, node_scores=s).to_dict()
    # top-1: Pneumonia vs Edema (LCA Lung, height 1) and Effusion exact (0) -> 0.5
    assert r["hierarchical_distance_at_k"] == {"1": 0.5}
    assert (
        hierarchical_distance_at_k(["Edema", "Effusion"], leaf_scores, taxonomy=toy_tree, classes=leaves, top_k=1)
        == 0.5
    )


def test_a_node_shallower_than_k_is_never_a_cae_even_with_a_deep_ancestor_in_a_dag():
    # X has depth 1 (root -> X) but also the depth-2 ancestor A1 (root -> A -> A1 -> X)
    tax = Taxonomy({"root": ["A", "B", "X"], "A": ["A1"], "A1": ["X"], "B": ["B1"]})
    assert tax.depth("X") == 1
    assert tax.branch("X", 2) == frozenset({"A1"})
    for pred in (["X"], [["X", "A"]], [["X", "B"]]):
        assert cae_rate(["B1"], pred, taxonomy=tax, branch_depth=2).n_cae == 0
    assert error_breakdown(["B1"], ["X"], taxonomy=tax, branch_depth=2).cross_branch == 0.0
    # and a shallow truth with a deep ancestor contributes no branch: nothing to contradict
    assert cae_rate(["X"], ["B1"], taxonomy=tax, branch_depth=2).n_cae == 0
    assert cae_rate([["X", "X"]], [["B1", "B1"]], taxonomy=tax, branch_depth=2).n_cae == 0
