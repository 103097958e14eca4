"""Hand-computed tests of the hierarchical metrics on the toy tree and DAG (see tests/conftest.py).

Toy tree: root → Lung{Pneumonia, Edema}, Pleura{Effusion}; height 2. Closures exclude the root, e.g.
closure(Pneumonia) = {Lung, Pneumonia}.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from medlens._validation import InputError
from medlens.hierarchy import (
    bootstrap_ci,
    cae_rate,
    consistency_violations,
    encode_labels,
    error_breakdown,
    evaluate,
    hierarchical_distance_at_k,
    hierarchical_precision_recall_fscore,
    mean_tree_distance,
    mistake_severity,
    node_scores_from_leaves,
)
from medlens.hierarchy._core import lca_index, pair_distance
from medlens.hierarchy._stats import Ratio
from medlens.taxonomy import Taxonomy

KINDS = ("exact", "too_coarse", "too_specific", "within_branch", "cross_branch")


def prf(y_true, y_pred, tax, **kw):
    r = hierarchical_precision_recall_fscore(y_true, y_pred, taxonomy=tax, **kw)
    return r.hP, r.hR, r.hF


def closure_sets(enc):
    nodes = enc.taxonomy.nodes
    c = enc.closure.toarray()
    return [{nodes[j] for j in np.flatnonzero(row)} for row in c]


# --------------------------------------------------------------------------- hP / hR / hF
# y_true   = Pneumonia  Edema      Effusion        Pneumonia
# y_pred   = Pneumonia  Pneumonia  Pneumonia       Lung
# β (true) = {L, Pn}    {L, Ed}    {Pl, Ef}        {L, Pn}        Σ|β| = 8
# α (pred) = {L, Pn}    {L, Pn}    {L, Pn}         {L}            Σ|α| = 7
# |α∩β|    = 2          1          0               1              Σ = 4
SINGLE_TRUE = ["Pneumonia", "Edema", "Effusion", "Pneumonia"]
SINGLE_PRED = ["Pneumonia", "Pneumonia", "Pneumonia", "Lung"]


def test_hprf_micro_single_label(toy_tree):
    hp, hr, hf = prf(SINGLE_TRUE, SINGLE_PRED, toy_tree)
    assert hp == pytest.approx(4 / 7)  # 4 / 7
    assert hr == pytest.approx(0.5)  # 4 / 8
    assert hf == pytest.approx(8 / 15)  # 2 (4/7)(1/2) / (4/7 + 1/2) = (4/7) / (15/14) = 8/15


def test_hprf_macro_single_label(toy_tree):
    hp, hr, hf = prf(SINGLE_TRUE, SINGLE_PRED, toy_tree, average="macro")
    assert hp == pytest.approx(0.625)  # (2/2 + 1/2 + 0/2 + 1/1) / 4 = 2.5 / 4
    assert hr == pytest.approx(0.5)  # (2/2 + 1/2 + 0/2 + 1/2) / 4 = 2 / 4
    # hF_i = 2|α∩β| / (|α| + |β|) = 4/4, 2/4, 0, 2/3 -> (1 + 1/2 + 0 + 2/3) / 4 = 13/24
    assert hf == pytest.approx(13 / 24)


def test_hprf_with_an_abstention(toy_tree):
    # a 5th sample: truth Effusion (|β| = 2), prediction root = abstain (|α| = 0, |α∩β| = 0)
    y_true, y_pred = [*SINGLE_TRUE, "Effusion"], [*SINGLE_PRED, "root"]
    hp, hr, hf = prf(y_true, y_pred, toy_tree)
    assert hp == pytest.approx(4 / 7)  # unchanged: Σ|α| = 7
    assert hr == pytest.approx(0.4)  # 4 / 10
    assert hf == pytest.approx(8 / 17)  # 2 (4/7)(2/5) / (4/7 + 2/5) = (16/35) / (34/35)
    hp, hr, hf = prf(y_true, y_pred, toy_tree, average="macro")
    assert hp == pytest.approx(0.625)  # the abstention has no precision: 2.5 / 4
    assert hr == pytest.approx(0.4)  # (2 + 0) / 5
    assert hf == pytest.approx(13 / 30)  # (13/6 + 0) / 5


def test_hprf_multi_label(toy_tree):
    # truth {Pneumonia, Effusion}: β = {L, Pn, Pl, Ef} (4);  {Edema}: β = {L, Ed} (2)
    # pred  {Pneumonia}:           α = {L, Pn} (2);          {Edema, Effusion}: α = {L, Ed, Pl, Ef} (4)
    # |α∩β| = 2, 2
    y_true = [["Pneumonia", "Effusion"], ["Edema"]]
    y_pred = [["Pneumonia"], ["Edema", "Effusion"]]
    assert prf(y_true, y_pred, toy_tree) == pytest.approx((2 / 3, 2 / 3, 2 / 3))  # 4/6, 4/6
    hp, hr, hf = prf(y_true, y_pred, toy_tree, average="macro")
    assert hp == pytest.approx(0.75)  # (2/2 + 2/4) / 2
    assert hr == pytest.approx(0.75)  # (2/4 + 2/2) / 2
    assert hf == pytest.approx(2 / 3)  # 2*2/(2+4) for both samples


def test_hprf_beta(toy_tree):
    # F_2 = 5 P R / (4 P + R) with P = 4/7, R = 1/2: (10/7) / (16/7 + 1/2) = 20/39
    _, _, f2 = prf(SINGLE_TRUE, SINGLE_PRED, toy_tree, beta=2.0)
    assert f2 == pytest.approx(20 / 39)


def test_hprf_bad_options(toy_tree):
    with pytest.raises(InputError, match=r"The 'average' parameter must be one of \{'micro', 'macro'\}; got 'mikro'"):
        prf(SINGLE_TRUE, SINGLE_PRED, toy_tree, average="mikro")
    with pytest.raises(InputError, match=r"The 'beta' parameter must be in the range \(0, inf\); got 0"):
        prf(SINGLE_TRUE, SINGLE_PRED, toy_tree, beta=0)
    with pytest.raises(TypeError, match=r"taxonomy must be a medlens.taxonomy.Taxonomy; got dict"):
        hierarchical_precision_recall_fscore(SINGLE_TRUE, SINGLE_PRED, taxonomy={"root": ["A"]})
    with pytest.raises(InputError, match=r"y_true"):
        prf(SINGLE_TRUE, SINGLE_PRED[:3], toy_tree)


def test_flat_taxonomy_hf_equals_sklearn_micro_f1():
    classes = [f"c{i}" for i in range(5)]
    flat = Taxonomy({"root": classes})
    rng = np.random.default_rng(0)
    y_true = rng.choice(classes, 60).tolist()
    y_pred = rng.choice(classes, 60).tolist()
    hp, hr, hf = prf(y_true, y_pred, flat)
    # single-label on a flat taxonomy: each closure is one class, so hP = hR = hF = accuracy = micro-F1
    assert hf == pytest.approx(f1_score(y_true, y_pred, average="micro"), abs=1e-12)
    assert hf == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    assert hp == pytest.approx(hr, abs=1e-12)


def test_flat_taxonomy_multi_label_hprf_equals_sklearn_micro():
    classes = [f"c{i}" for i in range(6)]
    flat = Taxonomy({"root": classes})
    rng = np.random.default_rng(1)
    yt = rng.random((50, 6)) < 0.3
    yp = rng.random((50, 6)) < 0.3
    yt[yt.sum(1) == 0, 0] = True  # every sample has a finding; predictions may be empty (abstain)
    sets_t = [[c for c, on in zip(classes, row, strict=True) if on] for row in yt]
    sets_p = [[c for c, on in zip(classes, row, strict=True) if on] or ["root"] for row in yp]
    hp, hr, hf = prf(sets_t, sets_p, flat)
    assert hf == pytest.approx(f1_score(yt, yp, average="micro"), abs=1e-12)
    from sklearn.metrics import precision_score, recall_score

    assert hp == pytest.approx(precision_score(yt, yp, average="micro"), abs=1e-12)
    assert hr == pytest.approx(recall_score(yt, yp, average="micro"), abs=1e-12)


def test_metrics_are_invariant_to_sample_order(toy_dag):
    rng = np.random.default_rng(3)
    nodes = list(toy_dag.nodes[1:])
    y_true = rng.choice(nodes, 40).tolist()
    y_pred = rng.choice(["root", *nodes], 40).tolist()
    perm = rng.permutation(40)
    yt2, yp2 = [y_true[i] for i in perm], [y_pred[i] for i in perm]
    for avg in ("micro", "macro"):
        assert prf(y_true, y_pred, toy_dag, average=avg) == pytest.approx(
            prf(yt2, yp2, toy_dag, average=avg), abs=1e-12
        )
    a = cae_rate(y_true, y_pred, taxonomy=toy_dag)
    b = cae_rate(yt2, yp2, taxonomy=toy_dag)
    assert (a.rate, a.n_cae, a.n_errors, a.confusion) == (b.rate, b.n_cae, b.n_errors, b.confusion)
    assert (
        error_breakdown(y_true, y_pred, taxonomy=toy_dag).counts == error_breakdown(yt2, yp2, taxonomy=toy_dag).counts
    )
    assert mistake_severity(y_true, y_pred, taxonomy=toy_dag) == pytest.approx(
        mistake_severity(yt2, yp2, taxonomy=toy_dag)
    )
    assert mean_tree_distance(y_true, y_pred, taxonomy=toy_dag) == pytest.approx(
        mean_tree_distance(yt2, yp2, taxonomy=toy_dag)
    )


def test_dag_closure_holds_every_parent(toy_dag):
    enc = encode_labels(["Pneumonia", "Edema", "root"], toy_dag)
    assert closure_sets(enc) == [
        {"Lung", "Infection", "Opacity", "LRTI", "Pneumonia"},
        {"Lung", "Opacity", "Edema"},
        set(),
    ]
    # truth Sepsis: β = {Infection, Sepsis}; prediction Pneumonia: α = {Lung, Infection, Opacity, LRTI, Pneumonia}
    # α∩β = {Infection} -> hP = 1/5, hR = 1/2
    hp, hr, hf = prf(["Sepsis"], ["Pneumonia"], toy_dag)
    assert (hp, hr) == pytest.approx((0.2, 0.5))
    assert hf == pytest.approx(2 / 7)  # 2 * 1 / (5 + 2)


# --------------------------------------------------------------------------- CAE
def test_cae_single_label(toy_tree):
    y_true = ["Pneumonia", "Pneumonia", "Effusion", "Edema", "Pneumonia"]
    y_pred = ["Pneumonia", "Edema", "Pneumonia", "root", "Effusion"]
    # errors: samples 1-4 (4); cross-branch: 2 (Pleura vs Lung) and 4 (Lung vs Pleura); 1 stays in Lung; 3 abstains
    r = cae_rate(y_true, y_pred, taxonomy=toy_tree)
    assert (r.n_cae, r.n_errors, r.n) == (2, 4, 5)
    assert r.rate == pytest.approx(0.4)  # 2 / 5
    assert r.share == pytest.approx(0.5)  # 2 / 4
    assert r.branch_depth == 1
    assert r.branches == ["Lung", "Pleura"]
    # rows: true branch (Lung: samples 0, 1, 3, 4; Pleura: sample 2); columns: predicted branch, then
    # "(none)" for the abstention of sample 3
    assert r.confusion == [[2, 1, 1], [1, 0, 0]]


def test_cae_is_zero_when_every_error_stays_in_its_branch(toy_tree):
    r = cae_rate(["Pneumonia", "Edema", "Effusion"], ["Edema", "Lung", "Pleura"], taxonomy=toy_tree)
    assert (r.rate, r.n_cae, r.n_errors, r.share) == (0.0, 0, 3, 0.0)


def test_cae_abstention_is_never_a_cae(toy_tree, toy_dag):
    assert cae_rate(["Pneumonia", "Effusion"], ["root", "root"], taxonomy=toy_tree).n_cae == 0
    assert cae_rate([["Pneumonia", "Effusion"], ["Edema"]], [["root"], ["root"]], taxonomy=toy_tree).n_cae == 0
    assert cae_rate(["Cardiomegaly", "Sepsis"], ["root", "root"], taxonomy=toy_dag).n_cae == 0


def test_cae_branch_depth_two_and_shallow_nodes(toy_tree):
    y_true = ["Pneumonia", "Effusion", "Lung"]
    y_pred = ["Edema", "Lung", "Effusion"]
    # k=1: Edema/Pneumonia both in Lung (no); Lung vs Pleura (CAE); Pleura vs Lung (CAE)
    k1 = cae_rate(y_true, y_pred, taxonomy=toy_tree, branch_depth=1)
    assert k1.n_cae == 2
    assert k1.rate == pytest.approx(2 / 3)
    # k=2: branches are the leaves; Edema vs Pneumonia is cross-branch; Lung (depth 1 < 2) is never a CAE,
    # neither as a prediction (sample 1) nor as the truth (sample 2)
    k2 = cae_rate(y_true, y_pred, taxonomy=toy_tree, branch_depth=2)
    assert k2.n_cae == 1
    assert k2.rate == pytest.approx(1 / 3)
    assert k2.branches == ["Pneumonia", "Edema", "Effusion"]
    with pytest.raises(InputError, match=r"branch depth k=3 is deeper than taxonomy 'toy_tree'"):
        cae_rate(y_true, y_pred, taxonomy=toy_tree, branch_depth=3)


def test_cae_in_a_dag_uses_disjoint_branch_sets(toy_dag):
    # branch_1: Pneumonia {Lung, Infection}; Sepsis {Infection}; Edema {Lung}; Cardiomegaly {Heart}
    y_true = ["Pneumonia", "Sepsis", "Edema", "Cardiomegaly"]
    y_pred = ["Sepsis", "Pneumonia", "Sepsis", "Edema"]
    # 0: {Infection} ∩ {Lung, Infection} ≠ ∅ -> no; 1: same -> no; 2: {Infection} vs {Lung} -> CAE;
    # 3: {Lung} vs {Heart} -> CAE
    r = cae_rate(y_true, y_pred, taxonomy=toy_dag)
    assert (r.n_cae, r.n_errors) == (2, 4)


def test_cae_multi_label(toy_tree):
    y_true = [["Pneumonia"], ["Pneumonia", "Effusion"], ["Edema"], ["Effusion"]]
    y_pred = [["Pneumonia", "Effusion"], ["Edema"], ["root"], ["Effusion"]]
    # 0: Effusion is a false positive in Pleura, a branch with no true finding -> CAE
    # 1: Edema is wrong but in Lung, which holds a true finding -> not a CAE (missing Effusion is not counted)
    # 2: an abstention is never a CAE; 3: exact
    r = cae_rate(y_true, y_pred, taxonomy=toy_tree)
    assert (r.n_cae, r.n_errors, r.n) == (1, 3, 4)
    assert r.rate == pytest.approx(0.25)  # 1 / 4
    assert r.share == pytest.approx(1 / 3)  # 1 / 3


def test_cae_multi_label_shallow_truth_at_k2(toy_tree):
    # k=2: a truth set with a node shallower than k (Lung) carries no branch to contradict
    y_true = [["Lung", "Effusion"], ["Pneumonia", "Effusion"]]
    y_pred = [["Edema"], ["Edema", "Effusion"]]
    assert (
        cae_rate(y_true, y_pred, taxonomy=toy_tree, branch_depth=2).n_cae == 1
    )  # only sample 1: Edema ∉ {Pneumonia, Effusion}
    assert (
        cae_rate(y_true, y_pred, taxonomy=toy_tree, branch_depth=1).n_cae == 0
    )  # every prediction is in a true branch


# --------------------------------------------------------------------------- error breakdown
def test_error_breakdown_single_label_each_kind(toy_tree):
    y_true = ["Pneumonia"] * 6 + ["Lung"]
    y_pred = ["Pneumonia", "Lung", "root", "Edema", "Effusion", "Pleura", "Pneumonia"]
    # exact, coarse, coarse (abstain), within (Lung), cross, cross (Pleura vs Lung), specific
    e = error_breakdown(y_true, y_pred, taxonomy=toy_tree)
    assert e.counts == {"exact": 1, "too_coarse": 2, "too_specific": 1, "within_branch": 1, "cross_branch": 2}
    assert (e.exact, e.too_coarse, e.too_specific, e.within_branch, e.cross_branch) == pytest.approx(
        (1 / 7, 2 / 7, 1 / 7, 1 / 7, 2 / 7)
    )
    assert sum(getattr(e, k) for k in KINDS) == pytest.approx(1.0)
    assert (e.n_items, e.unit) == (7, "sample")
    # the cross-branch fraction is the CAE rate
    assert e.cross_branch == pytest.approx(cae_rate(y_true, y_pred, taxonomy=toy_tree).rate)


def test_error_breakdown_multi_label_each_kind(toy_tree):
    y_true = [["Pneumonia", "Effusion"], ["Edema"], ["Lung"], ["Effusion"]]
    y_pred = [["Edema", "Pleura"], ["Edema", "Effusion"], ["Pneumonia", "Effusion"], ["root"]]
    # items (most-specific predicted nodes):
    #   s0 Edema: not in the true closure, Lung holds a true finding -> within; Pleura: in the closure -> coarse
    #   s1 Edema: exact; Effusion: Pleura holds no true finding -> cross
    #   s2 Pneumonia: below the true Lung -> specific; Effusion -> cross
    #   s3 root (abstain) -> coarse
    e = error_breakdown(y_true, y_pred, taxonomy=toy_tree)
    assert e.counts == {"exact": 1, "too_coarse": 2, "too_specific": 1, "within_branch": 1, "cross_branch": 2}
    assert (e.n_items, e.unit) == (7, "predicted node")
    assert sum(getattr(e, k) for k in KINDS) == pytest.approx(1.0)


# --------------------------------------------------------------------------- severity and distance
def test_mistake_severity_tree(toy_tree):
    y_true = ["Pneumonia", "Lung", "Edema"]
    y_pred = ["Edema", "Effusion", "Edema"]
    # mistakes: (Edema, Pneumonia) lca Lung; (Effusion, Lung) lca root; sample 2 is exact and left out
    # height: 2 - 1 = 1, 2 - 0 = 2 -> 1.5; true_edges: d(Pneumonia) - 1 = 1, d(Lung) - 0 = 1 -> 1.0
    assert mistake_severity(y_true, y_pred, taxonomy=toy_tree) == pytest.approx(1.5)
    assert mistake_severity(y_true, y_pred, taxonomy=toy_tree, convention="true_edges") == pytest.approx(1.0)
    assert math.isnan(mistake_severity(["Edema"], ["Edema"], taxonomy=toy_tree))
    # an abstention is not a mistake (it lowers coverage instead): nothing is left to average
    assert math.isnan(mistake_severity(["Edema"], ["root"], taxonomy=toy_tree))
    with pytest.raises(InputError, match=r"The 'convention' parameter must be one of"):
        mistake_severity(y_true, y_pred, taxonomy=toy_tree, convention="depth")


def test_mean_tree_distance_tree(toy_tree):
    y_true = ["Pneumonia", "Pneumonia", "Pneumonia", "Effusion"]
    y_pred = ["Pneumonia", "Edema", "Effusion", "Pleura"]
    # 0 + 2 + 4 + 1 = 7 -> 7/4
    assert mean_tree_distance(y_true, y_pred, taxonomy=toy_tree) == pytest.approx(1.75)


def test_severity_and_distance_dag(toy_dag):
    y_true = ["Opacity", "Pneumonia", "Edema"]
    y_pred = ["LRTI", "Sepsis", "Aspiration"]
    # distances: Opacity-Pneumonia-LRTI 2; Pneumonia-LRTI-Infection-Sepsis 3; Edema-Opacity-Aspiration 2 -> 7/3
    assert mean_tree_distance(y_true, y_pred, taxonomy=toy_dag) == pytest.approx(7 / 3)
    # LCA heights (height 3): lca root 3; lca Infection 3 - 1 = 2; lca Opacity 3 - 2 = 1 -> 6/3
    assert mistake_severity(y_true, y_pred, taxonomy=toy_dag) == pytest.approx(2.0)


def test_severity_and_distance_multi_label(toy_tree):
    y_true = [["Pneumonia", "Effusion"], ["Edema"]]
    y_pred = [["Edema"], ["Edema", "Effusion"]]
    # items: Edema -> closest true Pneumonia (2, vs Effusion 4); Edema -> Edema (0); Effusion -> Edema (4)
    assert mean_tree_distance(y_true, y_pred, taxonomy=toy_tree) == pytest.approx(2.0)  # (2 + 0 + 4) / 3
    # mistakes: (Edema, Pneumonia) height 2 - 1 = 1; (Effusion, Edema) height 2 - 0 = 2 -> 1.5
    assert mistake_severity(y_true, y_pred, taxonomy=toy_tree) == pytest.approx(1.5)


def test_hierarchical_distance_at_k(toy_tree):
    classes = ["Pneumonia", "Edema", "Effusion"]
    scores = np.array([[0.5, 0.3, 0.2], [0.6, 0.3, 0.1]])
    y_true = ["Pneumonia", "Effusion"]
    # k=1: Pneumonia exact (0); Pneumonia vs Effusion: lca root, 2 - 0 = 2 -> 1.0
    assert hierarchical_distance_at_k(y_true, scores, taxonomy=toy_tree, classes=classes, top_k=1) == pytest.approx(1.0)
    # k=2: sample 0 -> Pneumonia 0, Edema 1 (lca Lung); sample 1 -> Pneumonia 2, Edema 2 -> 5/4
    assert hierarchical_distance_at_k(y_true, scores, taxonomy=toy_tree, classes=classes, top_k=2) == pytest.approx(
        1.25
    )
    with pytest.raises(InputError, match=r"top_k must be in \[1, 3\]; got 4"):
        hierarchical_distance_at_k(y_true, scores, taxonomy=toy_tree, classes=classes, top_k=4)
    with pytest.raises(InputError, match=r"scores must have shape \(n_samples, 3\) to match classes; got \(2, 2\)"):
        hierarchical_distance_at_k(y_true, scores[:, :2], taxonomy=toy_tree, classes=classes)
    with pytest.raises(InputError, match=r"needs one true label per sample"):
        hierarchical_distance_at_k(
            [["Pneumonia", "Effusion"], ["Edema"]], scores, taxonomy=toy_tree, classes=classes, top_k=2
        )


# --------------------------------------------------------------------------- consistency of node scores
def test_consistency_violations(toy_tree):
    # columns: root, Lung, Pleura, Pneumonia, Edema, Effusion; edges checked: Lung→Pneumonia, Lung→Edema,
    # Pleura→Effusion (edges from the root are skipped) -> 3 checks per sample
    scores = np.array(
        [
            [1.0, 0.5, 0.2, 0.6, 0.4, 0.3],  # Pneumonia > Lung, Effusion > Pleura
            [1.0, 0.3, 0.1, 0.4, 0.3, 0.05],  # Pneumonia > Lung; Edema == Lung is not a violation
        ]
    )
    r = consistency_violations(scores, taxonomy=toy_tree)
    assert (r.n_violations, r.n_checks) == (3, 6)
    assert r.rate == pytest.approx(0.5)  # 3 / 6
    assert r.worst_edges == [
        {"parent": "Lung", "child": "Pneumonia", "violations": 2},
        {"parent": "Pleura", "child": "Effusion", "violations": 1},
    ]
    # a subset of columns in another order: only Lung→Edema can be checked
    sub = consistency_violations(scores[:, [4, 1]], taxonomy=toy_tree, nodes=["Edema", "Lung"])
    assert (sub.n_violations, sub.n_checks, sub.rate) == (0, 2, 0.0)
    with pytest.raises(InputError, match=r"scores must have shape \(n_samples, 6\); got \(2, 5\)"):
        consistency_violations(scores[:, 1:], taxonomy=toy_tree)


def test_consistency_violations_dag(toy_dag):
    # edges below the root: Lung→Opacity, Infection→LRTI, Infection→Sepsis, Heart→Cardiomegaly,
    # Opacity→{Pneumonia, Edema, Aspiration}, LRTI→{Pneumonia, Aspiration} = 9 checks
    s = np.full((1, len(toy_dag)), 0.5)
    s[0, toy_dag.index["Pneumonia"]] = 0.9  # above both of its parents: 2 violations
    r = consistency_violations(s, taxonomy=toy_dag)
    assert (r.n_violations, r.n_checks) == (2, 9)
    assert {(w["parent"], w["child"]) for w in r.worst_edges} == {("Opacity", "Pneumonia"), ("LRTI", "Pneumonia")}


# --------------------------------------------------------------------------- node scores from leaf scores
def test_node_scores_from_leaves_tree(toy_tree):
    x = np.array([[0.5, 0.3, 0.2]])  # Pneumonia, Edema, Effusion
    col = toy_tree.index
    s = node_scores_from_leaves(x, taxonomy=toy_tree, aggregator="sum")
    assert s[0, col["Lung"]] == pytest.approx(0.8)  # 0.5 + 0.3
    assert s[0, col["Pleura"]] == pytest.approx(0.2)
    assert s[0, col["root"]] == 1.0
    m = node_scores_from_leaves(x, taxonomy=toy_tree, aggregator="max")
    assert m[0, col["Lung"]] == pytest.approx(0.5)  # max(0.5, 0.3)
    n = node_scores_from_leaves(x, taxonomy=toy_tree, aggregator="noisy_or")
    assert n[0, col["Lung"]] == pytest.approx(0.65)  # 1 - (1 - 0.5)(1 - 0.3) = 1 - 0.35
    assert n[0, col["Pleura"]] == pytest.approx(0.2)
    for out in (s, m, n):  # leaves keep their own scores
        assert out[0, [col["Pneumonia"], col["Edema"], col["Effusion"]]] == pytest.approx([0.5, 0.3, 0.2])
    # leaf columns in another order give the same node scores
    again = node_scores_from_leaves(x[:, ::-1], taxonomy=toy_tree, leaves=["Effusion", "Edema", "Pneumonia"])
    np.testing.assert_allclose(again, s)


def test_node_scores_from_leaves_dag(toy_dag):
    # leaves in node order: Sepsis, Cardiomegaly, Pneumonia, Edema, Aspiration
    x = np.array([[0.1, 0.2, 0.3, 0.25, 0.15]])
    col = toy_dag.index
    s = node_scores_from_leaves(x, taxonomy=toy_dag, aggregator="sum")
    assert s[0, col["Lung"]] == pytest.approx(0.7)  # Pneumonia + Edema + Aspiration = 0.3 + 0.25 + 0.15
    assert s[0, col["Infection"]] == pytest.approx(0.55)  # Sepsis + Pneumonia + Aspiration = 0.1 + 0.3 + 0.15
    assert s[0, col["LRTI"]] == pytest.approx(0.45)  # 0.3 + 0.15
    assert s[0, col["Heart"]] == pytest.approx(0.2)
    m = node_scores_from_leaves(x, taxonomy=toy_dag, aggregator="max")
    assert m[0, col["Infection"]] == pytest.approx(0.3)
    n = node_scores_from_leaves(x, taxonomy=toy_dag, aggregator="noisy_or")
    assert n[0, col["Infection"]] == pytest.approx(0.4645)  # 1 - 0.9 * 0.7 * 0.85 = 1 - 0.5355


def test_node_scores_sum_counts_a_leaf_reached_twice_once():
    # diamond: A → {B, C, E}; B → D; C → D. A reaches D by two paths.
    tax = Taxonomy({"root": ["A"], "A": ["B", "C", "E"], "B": ["D"], "C": ["D"]})
    assert tax.leaves == ("E", "D")
    s = node_scores_from_leaves(np.array([[0.4, 0.6]]), taxonomy=tax, leaves=["E", "D"])
    assert s[0, tax.index["A"]] == pytest.approx(1.0)  # 0.4 + 0.6, not 0.4 + 2 * 0.6
    assert s[0, tax.index["B"]] == pytest.approx(0.6)
    n = node_scores_from_leaves(np.array([[0.4, 0.6]]), taxonomy=tax, leaves=["E", "D"], aggregator="noisy_or")
    assert n[0, tax.index["A"]] == pytest.approx(0.76)  # 1 - 0.6 * 0.4, D counted once


def test_node_scores_from_leaves_errors(toy_tree):
    with pytest.raises(InputError, match=r"leaf_scores must have shape \(n_samples, 3\); got \(1, 2\)"):
        node_scores_from_leaves(np.array([[0.5, 0.5]]), taxonomy=toy_tree)
    with pytest.raises(InputError, match=r"missing \['Effusion'\], not leaves \['Lung'\]"):
        node_scores_from_leaves(np.array([[0.5, 0.3, 0.2]]), taxonomy=toy_tree, leaves=["Pneumonia", "Edema", "Lung"])
    with pytest.raises(InputError, match=r"The 'aggregator' parameter must be one of"):
        node_scores_from_leaves(np.array([[0.5, 0.3, 0.2]]), taxonomy=toy_tree, aggregator="mean")
    with pytest.raises(InputError, match=r"leaf scores"):
        node_scores_from_leaves(np.array([[1.5, 0.3, 0.2]]), taxonomy=toy_tree)


# --------------------------------------------------------------------------- evaluate()
EVAL_TRUE = ["Pneumonia", "Edema", "Effusion", "Effusion", "Pneumonia", "Edema"]
EVAL_PRED = ["Pneumonia", "Lung", "Pneumonia", "root", "Edema", "Effusion"]


def test_evaluate_agrees_with_the_individual_functions(toy_tree):
    r = evaluate(EVAL_TRUE, EVAL_PRED, taxonomy=toy_tree)
    hp, hr, hf = prf(EVAL_TRUE, EVAL_PRED, toy_tree)
    assert (r.hP, r.hR, r.hF) == pytest.approx((hp, hr, hf))
    # Σ|α∩β| = 2+1+0+0+1+0 = 4; Σ|α| = 2+1+2+0+2+2 = 9; Σ|β| = 12 -> hP 4/9, hR 1/3
    assert (r.hP, r.hR) == pytest.approx((4 / 9, 1 / 3))
    cae = cae_rate(EVAL_TRUE, EVAL_PRED, taxonomy=toy_tree)
    assert (r.cae_rate, r.cae_share, r.n_errors) == (cae.rate, cae.share, cae.n_errors)
    assert r.cae_rate == pytest.approx(2 / 6)  # Effusion→Pneumonia, Edema→Effusion
    assert r.coverage == pytest.approx(5 / 6)  # one abstention
    assert r.error_breakdown == error_breakdown(EVAL_TRUE, EVAL_PRED, taxonomy=toy_tree)
    assert r.mistake_severity == pytest.approx(mistake_severity(EVAL_TRUE, EVAL_PRED, taxonomy=toy_tree))
    assert r.mean_tree_distance == pytest.approx(mean_tree_distance(EVAL_TRUE, EVAL_PRED, taxonomy=toy_tree))
    assert r.flat.accuracy == pytest.approx(accuracy_score(EVAL_TRUE, EVAL_PRED))
    assert r.flat.macro_f1 == pytest.approx(f1_score(EVAL_TRUE, EVAL_PRED, average="macro", zero_division=0))
    assert (r.n, r.multilabel, r.branch_depth, r.consistency, r.ci) == (6, False, 1, None, None)
    assert r.taxonomy == {"name": "toy_tree", "version": "1"}
    macro = evaluate(EVAL_TRUE, EVAL_PRED, taxonomy=toy_tree, average="macro")
    assert (macro.hP, macro.hR, macro.hF) == pytest.approx(prf(EVAL_TRUE, EVAL_PRED, toy_tree, average="macro"))


def test_evaluate_to_dict_keys(toy_tree):
    scores = node_scores_from_leaves(
        np.random.default_rng(0).dirichlet(np.ones(3), size=len(EVAL_TRUE)), taxonomy=toy_tree
    )
    r = evaluate(EVAL_TRUE, EVAL_PRED, taxonomy=toy_tree, node_scores=scores)
    d = r.to_dict()
    assert set(d) >= {
        "hP", "hR", "hF", "average", "beta", "cae_rate", "cae_share", "coverage", "error_breakdown",
        "error_breakdown_counts", "error_breakdown_unit", "mistake_severity", "mean_tree_distance", "n",
        "n_errors", "n_cae", "multilabel", "taxonomy", "branch_depth", "branch_confusion", "flat", "consistency",
    }  # fmt: skip
    assert set(d["error_breakdown"]) == set(KINDS)
    assert d["branch_confusion"]["predicted_branches"] == ["Lung", "Pleura", "(none)"]
    assert d["consistency"]["n_violations"] == 0  # summed scores are consistent
    assert r.consistency == consistency_violations(scores, taxonomy=toy_tree)
    assert set(d["flat"]["auroc"]) == set(toy_tree.nodes[1:])
    assert "ci" not in d


def test_evaluate_multi_label(toy_tree):
    y_true = [["Pneumonia"], ["Pneumonia", "Effusion"], ["Edema"], ["Effusion"]]
    y_pred = [["Pneumonia", "Effusion"], ["Edema"], ["root"], ["Effusion"]]
    r = evaluate(y_true, y_pred, taxonomy=toy_tree)
    assert r.multilabel
    assert r.cae_rate == pytest.approx(0.25)
    assert (r.hP, r.hR, r.hF) == pytest.approx(prf(y_true, y_pred, toy_tree))


def test_bootstrap_ci_contains_the_estimate_and_is_deterministic(toy_tree):
    rng = np.random.default_rng(7)
    nodes = list(toy_tree.nodes[1:])
    y_true = rng.choice(nodes, 80).tolist()
    y_pred = [t if rng.random() < 0.6 else str(rng.choice(["root", *nodes])) for t in y_true]
    r = evaluate(y_true, y_pred, taxonomy=toy_tree, ci=0.95, n_bootstrap=300, seed=11)
    point = {
        "hP": r.hP,
        "hR": r.hR,
        "hF": r.hF,
        "cae_rate": r.cae_rate,
        "cae_share": r.cae_share,
        "coverage": r.coverage,
        "mistake_severity": r.mistake_severity,
        "mean_tree_distance": r.mean_tree_distance,
        **{f"error_breakdown.{k}": getattr(r.error_breakdown, k) for k in KINDS},
    }
    assert set(r.ci) == set(point)
    for name, value in point.items():
        lo, hi = r.ci[name]
        assert lo <= value + 1e-12, name
        assert value - 1e-12 <= hi, name
    again = evaluate(y_true, y_pred, taxonomy=toy_tree, ci=0.95, n_bootstrap=300, seed=11)
    assert again.ci == r.ci
    other = evaluate(y_true, y_pred, taxonomy=toy_tree, ci=0.95, n_bootstrap=300, seed=12)
    assert other.ci != r.ci
    assert r.to_dict()["ci_level"] == 0.95
    assert r.to_dict()["n_bootstrap"] == 300
    with pytest.raises(InputError, match=r"The 'ci' parameter must be in the range \(0, 1\); got 95"):
        evaluate(y_true, y_pred, taxonomy=toy_tree, ci=95)


def test_bootstrap_ci_of_a_ratio():
    r = Ratio(np.array([1.0, 0, 0, 1, 1, 0, 1, 1]), np.ones(8))
    a = bootstrap_ci({"rate": r}, n_bootstrap=500, seed=0)["rate"]
    assert a == bootstrap_ci({"rate": r}, n_bootstrap=500, seed=0)["rate"]
    assert a[0] <= 5 / 8 <= a[1]
    # a constant statistic has a zero-width interval
    assert bootstrap_ci({"c": Ratio(np.ones(5), np.ones(5))}, n_bootstrap=50)["c"] == (1.0, 1.0)
    with pytest.raises(InputError, match=r"bootstrap statistic 'b' has 3 samples; expected 8"):
        bootstrap_ci({"rate": r, "b": Ratio(np.ones(3), np.ones(3))})


# --------------------------------------------------------------------------- label encodings
def test_encode_labels_gives_one_closure_for_every_input_form(toy_tree):
    ids = ["Pneumonia", "Effusion", "Lung", "root"]
    sets = [["Pneumonia"], {"Effusion"}, ("Lung",), ["root"]]
    # indicator columns in taxonomy order: root, Lung, Pleura, Pneumonia, Edema, Effusion
    onehot = np.array([[0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    closed = np.array([[0, 1, 0, 1, 0, 0], [0, 0, 1, 0, 0, 1], [0, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    frame = pd.DataFrame(onehot[:, [5, 3, 1]], columns=["Effusion", "Pneumonia", "Lung"])
    expected = [{"Lung", "Pneumonia"}, {"Pleura", "Effusion"}, {"Lung"}, set()]
    for form in (ids, np.array(ids), pd.Series(ids), sets, onehot, closed, frame):
        enc = encode_labels(form, toy_tree)
        assert closure_sets(enc) == expected
        assert enc.abstained.tolist() == [False, False, False, True]
        assert enc.label_sets() == [["Pneumonia"], ["Effusion"], ["Lung"], ["root"]]
    assert encode_labels(ids, toy_tree).single.tolist() == [3, 5, 1, 0]
    enc = encode_labels(ids, toy_tree)
    assert encode_labels(enc, toy_tree) is enc


def test_metrics_agree_across_input_forms_on_a_tree(toy_tree):
    # indicator rows closed upward hold several 1s; on a tree every metric must still match the id form
    y_true = ["Pneumonia", "Edema", "Effusion", "Pneumonia", "Lung"]
    y_pred = ["Pneumonia", "Effusion", "Pleura", "root", "Edema"]

    def closed(labels):
        out = np.zeros((len(labels), len(toy_tree)), dtype=int)
        for i, lab in enumerate(labels):
            for a in toy_tree.ancestors(lab, include_self=True, include_root=True):
                out[i, toy_tree.index[a]] = 1
        return out

    a = evaluate(y_true, y_pred, taxonomy=toy_tree)
    b = evaluate(closed(y_true), closed(y_pred), taxonomy=toy_tree)
    for key in ("hP", "hR", "hF", "cae_rate", "cae_share", "coverage", "mistake_severity", "mean_tree_distance"):
        assert getattr(a, key) == pytest.approx(getattr(b, key)), key
    assert a.error_breakdown.counts == b.error_breakdown.counts


def test_encode_labels_errors(toy_tree):
    with pytest.raises(
        InputError, match=r"unknown label 'Pnemonia' at row 1 for taxonomy 'toy_tree'\. Did you mean: 'Pneumonia'\?"
    ):
        encode_labels(["Edema", "Pnemonia"], toy_tree)
    with pytest.raises(InputError, match=r"unknown label 'Efusion' in y_true row 1 for taxonomy 'toy_tree'"):
        encode_labels([["Edema"], ["Lung", "Efusion"]], toy_tree, name="y_true")
    with pytest.raises(
        InputError, match=r"y row 0 has an empty label set; use the root id 'root' to mark an abstention"
    ):
        encode_labels([[], ["Edema"]], toy_tree)
    with pytest.raises(InputError, match=r"y is empty; at least one sample is needed"):
        encode_labels([], toy_tree)
    with pytest.raises(TypeError, match=r"y must be a sequence of labels, not a single string 'Edema'"):
        encode_labels("Edema", toy_tree)
    with pytest.raises(
        InputError, match=r"must have one column per node \(6 for taxonomy 'toy_tree'\); got shape \(2, 3\)"
    ):
        encode_labels(np.zeros((2, 3)), toy_tree)
    with pytest.raises(InputError, match=r"y indicator columns must hold 0 or 1; found 0.5"):
        encode_labels(np.full((1, 6), 0.5), toy_tree)
    with pytest.raises(InputError, match=r"unknown label 'Heart' at row 0"):
        encode_labels(pd.DataFrame({"Heart": [1]}), toy_tree)
    with pytest.raises(TypeError, match=r"y must hold node ids \(str\) or label sets; got elements of type int"):
        encode_labels([1, 2], toy_tree)


# --------------------------------------------------------------------------- vectorised core vs Taxonomy
@pytest.mark.parametrize("fixture", ["toy_tree", "toy_dag"])
def test_vectorised_lca_and_distance_match_the_taxonomy(fixture, request):
    tax = request.getfixturevalue(fixture)
    pairs = list(itertools.product(range(len(tax)), repeat=2))
    u = np.array([p[0] for p in pairs])
    v = np.array([p[1] for p in pairs])
    lca = lca_index(tax, u, v)
    dist = pair_distance(tax, u, v)
    for j, (a, b) in enumerate(pairs):
        assert tax.nodes[lca[j]] == tax.lca(tax.nodes[a], tax.nodes[b])
        assert dist[j] == tax.distance(tax.nodes[a], tax.nodes[b])


def test_dag_cae_does_not_depend_on_the_input_form(toy_dag):
    y_true, y_pred = ["Sepsis", "Pneumonia"], ["Pneumonia", "Sepsis"]
    # truth Sepsis {Infection} vs prediction Pneumonia {Lung, Infection}: the branch sets overlap -> no CAE
    assert cae_rate(y_true, y_pred, taxonomy=toy_dag).n_cae == 0
    closed = {
        name: np.isin(toy_dag.nodes, toy_dag.ancestors(name, include_self=True, include_root=True)).astype(int)
        for name in ("Sepsis", "Pneumonia")
    }
    rows_true = np.array([closed[t] for t in y_true])
    rows_pred = np.array([closed[p] for p in y_pred])
    assert error_breakdown(rows_true, rows_pred, taxonomy=toy_dag).counts["cross_branch"] == 0  # agrees
    assert cae_rate(rows_true, rows_pred, taxonomy=toy_dag).n_cae == 0  # gives 1 (sample 0)
