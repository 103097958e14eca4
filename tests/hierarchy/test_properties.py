"""Property tests on random trees and DAGs, checked against a small pure-Python oracle.

Nodes are ``n0`` (the root) ... ``n{m-1}``; node ``i`` hangs under a random earlier node (and, in a DAG, maybe
under a second one), so every generated graph is a valid rooted DAG.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medlens.hierarchy import (
    cae_rate,
    error_breakdown,
    hierarchical_precision_recall_fscore,
    mean_tree_distance,
)
from medlens.taxonomy import Taxonomy

KINDS = ("exact", "too_coarse", "too_specific", "within_branch", "cross_branch")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def depths_to_check(tax: Taxonomy) -> list[int]:
    """Branch depths worth checking: the top level and the deepest one (a few ms per metric call)."""
    return sorted({1, tax.height})


# --------------------------------------------------------------------------- strategies
@st.composite
def graphs(draw, dag: bool = False):
    m = draw(st.integers(2, 14))
    parents = {f"n{i}": [f"n{draw(st.integers(0, i - 1))}"] for i in range(1, m)}
    if dag:
        for i in range(2, m):
            extra = f"n{draw(st.integers(0, i - 1))}"
            if draw(st.booleans()) and extra not in parents[f"n{i}"]:
                parents[f"n{i}"].append(extra)
    children: dict[str, list[str]] = {}
    for child, ps in parents.items():
        for p in ps:
            children.setdefault(p, []).append(child)
    return Taxonomy(children, root="n0", name="random"), parents


@st.composite
def labelled(draw, multilabel: bool = False, dag: bool = False):
    tax, parents = draw(graphs(dag))
    nodes = list(tax.nodes[1:])
    n = draw(st.integers(1, 12))
    if multilabel:
        truth = st.lists(st.sampled_from(nodes), min_size=1, max_size=3, unique=True)
        pred = st.one_of(truth, st.just(["n0"]))
    else:
        truth = st.sampled_from(nodes)
        pred = st.sampled_from(["n0", *nodes])
    y_true = draw(st.lists(truth, min_size=n, max_size=n))
    y_pred = list(y_true) if draw(st.booleans()) else draw(st.lists(pred, min_size=n, max_size=n))
    return tax, parents, y_true, y_pred


any_labelled = st.one_of(
    labelled(multilabel=False, dag=False),
    labelled(multilabel=False, dag=True),
    labelled(multilabel=True, dag=False),
    labelled(multilabel=True, dag=True),
)


# --------------------------------------------------------------------------- oracle
def up(label, parents) -> set[str]:
    """Closure of a node id or a label set: the nodes and all their ancestors, root excluded."""
    todo = [label] if isinstance(label, str) else list(label)
    seen: set[str] = set()
    while todo:
        v = todo.pop()
        if v != "n0" and v not in seen:
            seen.add(v)
            todo.extend(parents[v])
    return seen


def oracle_prf(y_true, y_pred, parents):
    a = [up(p, parents) for p in y_pred]
    b = [up(t, parents) for t in y_true]
    inter = [len(x & y) for x, y in zip(a, b, strict=True)]
    sa, sb = sum(len(x) for x in a), sum(len(y) for y in b)
    hp = sum(inter) / sa if sa else math.nan
    hr = sum(inter) / sb
    hf = 2 * hp * hr / (hp + hr) if sa and hp + hr > 0 else 0.0
    p_i = [i / len(x) for i, x in zip(inter, a, strict=True) if x]
    macro_p = sum(p_i) / len(p_i) if p_i else math.nan
    macro_r = sum(i / len(y) for i, y in zip(inter, b, strict=True)) / len(b)
    macro_f = sum(2 * i / (len(x) + len(y)) for i, x, y in zip(inter, a, b, strict=True)) / len(b)
    return (hp, hr, hf), (macro_p, macro_r, macro_f), a, b


def oracle_depths(parents) -> dict[str, int]:
    children: dict[str, list[str]] = {}
    for c, ps in parents.items():
        for p in ps:
            children.setdefault(p, []).append(c)
    depth, q = {"n0": 0}, deque(["n0"])
    while q:
        u = q.popleft()
        for c in children.get(u, ()):
            if c not in depth:
                depth[c] = depth[u] + 1
                q.append(c)
    return depth


def oracle_distance(u, v, parents) -> int:
    nbrs: dict[str, set[str]] = {"n0": set()}
    for c, ps in parents.items():
        for p in ps:
            nbrs.setdefault(c, set()).add(p)
            nbrs.setdefault(p, set()).add(c)
    dist, q = {u: 0}, deque([u])
    while q:
        x = q.popleft()
        for y in nbrs[x]:
            if y not in dist:
                dist[y] = dist[x] + 1
                q.append(y)
    return dist[v]


def approx(x, y):
    return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, rel_tol=0, abs_tol=1e-12)


# --------------------------------------------------------------------------- properties
@SETTINGS
@given(any_labelled)
def test_hprf_is_bounded_and_matches_the_oracle(case):
    tax, parents, y_true, y_pred = case
    micro_o, macro_o, _, _ = oracle_prf(y_true, y_pred, parents)
    for average, expected in (("micro", micro_o), ("macro", macro_o)):
        r = hierarchical_precision_recall_fscore(y_true, y_pred, taxonomy=tax, average=average)
        got = (r.hP, r.hR, r.hF)
        assert all(approx(g, e) for g, e in zip(got, expected, strict=True)), (average, got, expected)
        for value in got:
            # hP is undefined (NaN) only when every prediction abstains
            assert math.isnan(value) or 0.0 <= value <= 1.0
        assert 0.0 <= r.hR <= 1.0
        assert 0.0 <= r.hF <= 1.0


@SETTINGS
@given(any_labelled)
def test_hf_is_one_exactly_when_predictions_equal_truth(case):
    tax, parents, y_true, y_pred = case
    _, _, a, b = oracle_prf(y_true, y_pred, parents)
    equal = a == b  # same closure for every sample (same label, or same most-specific set)
    for average in ("micro", "macro"):
        hf = hierarchical_precision_recall_fscore(y_true, y_pred, taxonomy=tax, average=average).hF
        assert (hf == 1.0) == equal, (average, hf)
    if y_pred == y_true:
        assert equal


@SETTINGS
@given(any_labelled, st.randoms(use_true_random=False))
def test_metrics_are_invariant_to_sample_order(case, rnd):
    tax, _, y_true, y_pred = case
    perm = list(range(len(y_true)))
    rnd.shuffle(perm)
    yt2, yp2 = [y_true[i] for i in perm], [y_pred[i] for i in perm]
    for average in ("micro", "macro"):
        a = hierarchical_precision_recall_fscore(y_true, y_pred, taxonomy=tax, average=average)
        b = hierarchical_precision_recall_fscore(yt2, yp2, taxonomy=tax, average=average)
        assert all(approx(x, y) for x, y in zip((a.hP, a.hR, a.hF), (b.hP, b.hR, b.hF), strict=True))
    for k in depths_to_check(tax):
        c1, c2 = (
            cae_rate(y_true, y_pred, taxonomy=tax, branch_depth=k),
            cae_rate(yt2, yp2, taxonomy=tax, branch_depth=k),
        )
        assert (c1.n_cae, c1.n_errors, c1.confusion) == (c2.n_cae, c2.n_errors, c2.confusion)
        assert (
            error_breakdown(y_true, y_pred, taxonomy=tax, branch_depth=k).counts
            == error_breakdown(yt2, yp2, taxonomy=tax, branch_depth=k).counts
        )
    assert approx(mean_tree_distance(y_true, y_pred, taxonomy=tax), mean_tree_distance(yt2, yp2, taxonomy=tax))


@SETTINGS
@given(any_labelled)
def test_cae_rate_is_at_most_the_error_rate(case):
    tax, _, y_true, y_pred = case
    for k in depths_to_check(tax):
        r = cae_rate(y_true, y_pred, taxonomy=tax, branch_depth=k)
        assert 0 <= r.n_cae <= r.n_errors <= r.n == len(y_true)
        assert r.rate <= r.n_errors / r.n + 1e-12
        assert 0.0 <= r.share <= 1.0
        # abstentions are never CAEs
        abstain = [p in ("n0", ["n0"]) for p in y_pred]
        if all(abstain):
            assert r.n_cae == 0


@SETTINGS
@given(any_labelled)
def test_error_breakdown_sums_to_one(case):
    tax, _, y_true, y_pred = case
    for k in depths_to_check(tax):
        e = error_breakdown(y_true, y_pred, taxonomy=tax, branch_depth=k)
        assert sum(getattr(e, kind) for kind in KINDS) == pytest.approx(1.0, abs=1e-12)
        assert sum(e.counts.values()) == e.n_items
        assert all(0.0 <= getattr(e, kind) <= 1.0 for kind in KINDS)
        if e.unit == "sample":
            assert e.n_items == len(y_true)
            assert e.counts["cross_branch"] == cae_rate(y_true, y_pred, taxonomy=tax, branch_depth=k).n_cae


@SETTINGS
@given(st.one_of(labelled(dag=False), labelled(dag=True)))
def test_single_label_cae_and_distance_match_the_oracle(case):
    tax, parents, y_true, y_pred = case
    depth = oracle_depths(parents)
    for k in range(1, tax.height + 1):

        def branches(v, k=k):
            return {a for a in up(v, parents) if depth[a] == k}

        # the documented rule: both nodes at depth >= k (a node shallower than k contributes no branch, even
        # when a DAG gives it a deeper ancestor) and their depth-k branch sets disjoint
        expected = sum(
            depth[p] >= k and depth[t] >= k and not branches(p) & branches(t)
            for t, p in zip(y_true, y_pred, strict=True)
        )
        assert cae_rate(y_true, y_pred, taxonomy=tax, branch_depth=k).n_cae == expected
    # abstentions (the root) are left out of the distance: they count against coverage
    dist = [oracle_distance(p, t, parents) for t, p in zip(y_true, y_pred, strict=True) if p != tax.root]
    got = mean_tree_distance(y_true, y_pred, taxonomy=tax)
    if dist:
        assert got == pytest.approx(np.mean(dist), abs=1e-12)
    else:
        assert np.isnan(got)
    assert [tax.depth(v) for v in tax.nodes] == [depth[v] for v in tax.nodes]
