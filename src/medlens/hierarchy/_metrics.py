"""Hierarchical metrics: hP/hR/hF, CAE, error breakdown, mistake severity, tree distance, consistency.

All functions take ``(y_true, y_pred, *, taxonomy, ...)`` where labels are node ids, label sets or
indicator arrays (see :func:`medlens.hierarchy.encode_labels`), work on trees and DAGs, single- and
multi-label, and are vectorised over samples.

References
----------
Kiritchenko, Matwin, Nock, Famili (2006), "Learning and evaluation in the presence of class hierarchies".
Bertinetto et al. (2020), "Making Better Mistakes: Leveraging Class Hierarchies with Deep Networks", CVPR.
Schaper et al. (2026), "Measuring and Aligning Abstraction in Vision-Language Models with Medical Taxonomies".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from medlens._results import MetricResult, check_sample_weight, weighted_mean
from medlens._validation import InputError, check_finite, check_interval, check_option, check_same_length
from medlens.hierarchy._core import (
    branch_columns,
    cross_branch_pairs,
    item_cae,
    lca_index,
    pair_distance,
    predicted_items,
    row_counts,
    rowwise_overlap,
    sample_cae,
    up_distance,
)
from medlens.hierarchy._encode import EncodedLabels, LabelsLike, encode_labels
from medlens.hierarchy._stats import Ratio
from medlens.taxonomy import Taxonomy

__all__ = [
    "HierarchicalPRF",
    "CAEResult",
    "ErrorBreakdown",
    "ConsistencyResult",
    "hierarchical_precision_recall_fscore",
    "cae_rate",
    "error_breakdown",
    "mistake_severity",
    "mean_tree_distance",
    "hierarchical_distance_at_k",
    "consistency_violations",
]

Average = Literal["micro", "macro"]


def _prepare(y_true: LabelsLike, y_pred: LabelsLike, taxonomy: Taxonomy) -> tuple[EncodedLabels, EncodedLabels]:
    if not isinstance(taxonomy, Taxonomy):
        raise TypeError(f"taxonomy must be a medlens.taxonomy.Taxonomy; got {type(taxonomy).__name__}.")
    t = encode_labels(y_true, taxonomy, name="y_true")
    p = encode_labels(y_pred, taxonomy, name="y_pred")
    check_same_length(range(t.n), range(p.n))
    if t.n == 0:
        raise InputError("y_true and y_pred are empty; give at least one sample.")
    return t, p


def _weights(sample_weight: Any, n: int) -> np.ndarray:
    """Checked per-sample weights, ones when ``sample_weight`` is None (x * 1.0 == x: unweighted values stay)."""
    w = check_sample_weight(sample_weight, n)
    return np.ones(n) if w is None else w


# --------------------------------------------------------------------------- hP / hR / hF
@dataclass(frozen=True)
class HierarchicalPRF(MetricResult):
    """Hierarchical precision, recall and F-beta (Kiritchenko et al., 2006)."""

    hP: float
    hR: float
    hF: float
    average: str
    beta: float
    taxonomy: dict[str, str | None] = field(default_factory=dict)


def _prf_parts(t: EncodedLabels, p: EncodedLabels, beta: float, w: np.ndarray) -> dict[str, Ratio]:
    """Per-sample numerators and denominators of hP/hR/hF, each multiplied by the sample's weight ``w``."""
    inter = rowwise_overlap(t.closure, p.closure).astype(float)
    a = p.closure_size.astype(float)
    b = t.closure_size.astype(float)
    b2 = beta * beta
    with np.errstate(invalid="ignore", divide="ignore"):
        p_i = np.where(a > 0, inter / np.where(a > 0, a, 1), 0.0)
        r_i = np.where(b > 0, inter / np.where(b > 0, b, 1), 0.0)
        den_f = b2 * b + a
        f_i = np.where(den_f > 0, (1 + b2) * inter / np.where(den_f > 0, den_f, 1), 0.0)
    return {
        "micro_p": Ratio(inter * w, a * w),
        "micro_r": Ratio(inter * w, b * w),
        # F_beta of the micro P and R, written as one ratio: defined whenever either sum is positive
        "micro_f": Ratio((1 + b2) * inter * w, (b2 * b + a) * w),
        "macro_p": Ratio(p_i * (a > 0) * w, (a > 0) * w),
        "macro_r": Ratio(r_i * (b > 0) * w, (b > 0) * w),
        "macro_f": Ratio(f_i * (b > 0) * w, (b > 0) * w),
    }


def hierarchical_precision_recall_fscore(
    y_true: LabelsLike,
    y_pred: LabelsLike,
    *,
    taxonomy: Taxonomy,
    sample_weight: Any = None,
    average: Average = "micro",
    beta: float = 1.0,
) -> HierarchicalPRF:
    """Hierarchical precision, recall and F-beta over label closures (root excluded).

    With α_i the predicted labels plus ancestors and β_i the true labels plus ancestors:
    micro hP = Σ|α∩β| / Σ|α|, hR = Σ|α∩β| / Σ|β|, hF = F_β(hP, hR); macro averages per-sample
    hP_i (samples that abstained are excluded: their precision is undefined), hR_i and hF_i
    (an abstention scores hF_i = 0). Equals ``hiclass.metrics`` on the same paths. With ``sample_weight``
    every per-sample term is multiplied by the sample's weight (micro: weighted sums; macro: weighted means).

    Parameters
    ----------
    y_true, y_pred : labels
        Node ids (single-label), label sets (multi-label) or indicator arrays.
    taxonomy : Taxonomy
    sample_weight : array of shape (n_samples,), optional
    average : {"micro", "macro"}
    beta : float > 0

    Returns
    -------
    HierarchicalPRF

    Examples
    --------
    >>> from medlens.taxonomy import Taxonomy
    >>> tax = Taxonomy({"root": ["Lung", "Pleura"], "Lung": ["Pneumonia", "Edema"], "Pleura": ["Effusion"]})
    >>> r = hierarchical_precision_recall_fscore(["Pneumonia", "Effusion"], ["Edema", "Effusion"], taxonomy=tax)
    >>> r.hP, r.hR, r.hF
    (0.75, 0.75, 0.75)
    """
    check_option(average, ("micro", "macro"), name="average")
    check_interval(beta, name="beta", low=0, closed="neither")
    t, p = _prepare(y_true, y_pred, taxonomy)
    parts = _prf_parts(t, p, beta, _weights(sample_weight, t.n))
    tax = {"name": taxonomy.name, "version": taxonomy.version}
    return HierarchicalPRF(
        parts[f"{average}_p"].value, parts[f"{average}_r"].value, parts[f"{average}_f"].value, average, float(beta), tax
    )


# --------------------------------------------------------------------------- CAE
@dataclass(frozen=True)
class CAEResult(MetricResult):
    """Catastrophic Abstraction Errors at branch depth ``branch_depth``.

    ``rate`` and ``share`` are (weighted) fractions; ``n_cae``, ``n_errors``, ``n`` and ``confusion`` count samples.
    """

    rate: float
    share: float
    n_cae: int
    n_errors: int
    n: int
    branch_depth: int
    branches: list[str] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    taxonomy: dict[str, str | None] = field(default_factory=dict)


def _sample_errors(t: EncodedLabels, p: EncodedLabels) -> np.ndarray:
    """A sample is an error unless its predicted and true most-specific sets are equal."""
    if t.single is not None and p.single is not None:
        return t.single != p.single
    diff = (t.most_specific.astype(np.int8) - p.most_specific.astype(np.int8)).tocsr()
    diff.eliminate_zeros()
    return row_counts(diff) > 0


def branch_confusion(t: EncodedLabels, p: EncodedLabels, branch_depth: int) -> tuple[list[str], np.ndarray]:
    """True-branch × predicted-branch counts at ``branch_depth``; the last column counts predictions with no branch.

    For single-label trees this is the usual confusion matrix between branches (off-diagonal cells are
    CAEs); for DAGs and label sets every (true branch, predicted branch) pair of a sample is counted.
    """
    tax = t.taxonomy
    cols = branch_columns(tax, branch_depth)
    tb = t.closure[:, cols].astype(np.int64)
    pb = p.closure[:, cols].astype(np.int64)
    conf = (tb.T @ pb).toarray()
    none = np.asarray(tb.T @ (row_counts(pb.tocsr()) == 0).astype(np.int64)).ravel()
    return [tax.nodes[c] for c in cols], np.column_stack([conf, none])


def cae_rate(
    y_true: LabelsLike,
    y_pred: LabelsLike,
    *,
    taxonomy: Taxonomy,
    sample_weight: Any = None,
    branch_depth: int = 1,
) -> CAEResult:
    """Catastrophic Abstraction Error rate: mistakes that cross the branches at ``branch_depth`` (k below).

    Single-label: ``CAE_i = 1[ŷ_i, y_i both at depth >= k and branch_k(ŷ_i) ∩ branch_k(y_i) = ∅]``.
    Multi-label: ``CAE_i = 1`` when a most-specific predicted node at depth >= k has a branch set disjoint from
    the union of the branch sets of the true nodes at depth >= k, and lies under no true node shallower than
    k; a truth with no node at depth >= k is never contradicted. ``rate`` is the mean over samples, ``share``
    the fraction of erroneous samples that are CAEs (both weighted by ``sample_weight`` when given).
    Abstentions (the root) are never CAEs.

    Examples
    --------
    >>> from medlens.taxonomy import Taxonomy
    >>> tax = Taxonomy({"root": ["Lung", "Pleura"], "Lung": ["Pneumonia", "Edema"], "Pleura": ["Effusion"]})
    >>> r = cae_rate(["Pneumonia", "Pneumonia", "Effusion"], ["Edema", "Effusion", "root"], taxonomy=tax)
    >>> r.rate, r.share, r.n_errors
    (0.3333333333333333, 0.3333333333333333, 3)
    """
    t, p = _prepare(y_true, y_pred, taxonomy)
    return _cae_from_encoded(t, p, branch_depth, _weights(sample_weight, t.n))


def _cae_from_encoded(t: EncodedLabels, p: EncodedLabels, branch_depth: int, w: np.ndarray) -> CAEResult:
    cae = sample_cae(t, p, branch_depth)
    err = _sample_errors(t, p)
    names, conf = branch_confusion(t, p, branch_depth)
    n_err = int(err.sum())
    w_err = float((w * err).sum())
    return CAEResult(
        rate=weighted_mean(cae, w),
        share=float((w * cae).sum() / w_err) if w_err > 0 else 0.0,
        n_cae=int(cae.sum()),
        n_errors=n_err,
        n=t.n,
        branch_depth=int(branch_depth),
        branches=names,
        confusion=conf.tolist(),
        taxonomy={"name": t.taxonomy.name, "version": t.taxonomy.version},
    )


# --------------------------------------------------------------------------- error breakdown
_KINDS = ("exact", "too_coarse", "too_specific", "within_branch", "cross_branch")


@dataclass(frozen=True)
class ErrorBreakdown(MetricResult):
    """Fractions of predictions that are exact, too coarse (an ancestor of the truth, abstentions included),
    too specific (a descendant), a different node within the same branch, or cross-branch (a CAE).

    Multi-label: one item per most-specific predicted node; it is cross-branch when it is a CAE against the
    sample's true set (see :func:`cae_rate`), so a sample is a CAE exactly when one of its items is.
    With sample weights each item weighs as its sample; ``counts`` and ``n_items`` count items."""

    exact: float
    too_coarse: float
    too_specific: float
    within_branch: float
    cross_branch: float
    counts: dict[str, int]
    n_items: int
    unit: str
    branch_depth: int = 1
    taxonomy: dict[str, str | None] = field(default_factory=dict)


def _breakdown_items(t: EncodedLabels, p: EncodedLabels, branch_depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Classify each predicted item; returns (sample index, kind code 0..4) per item.

    Single-label: one item per sample. Multi-label: one item per most-specific predicted node (an
    abstention is one item on the root), classified against the whole true set in the order exact >
    cross_branch (:func:`~medlens.hierarchy._core.item_cae`) > too_coarse (an ancestor of a true node;
    abstentions) > too_specific (a descendant of a true node) > within_branch.
    """
    tax = t.taxonomy
    anc = tax.ancestor_matrix
    if t.single is not None and p.single is not None:
        ti, pi = t.single, p.single
        rows = np.arange(t.n)
        exact = ti == pi
        coarse = np.asarray(anc[ti, pi]).ravel().astype(bool) & ~exact
        specific = np.asarray(anc[pi, ti]).ravel().astype(bool) & ~exact
        cross = cross_branch_pairs(tax, pi, ti, branch_depth)
    else:
        rows, pi = predicted_items(p)
        trow, tnode = predicted_items(t)
        truth_items = sp.csr_matrix((np.ones(len(trow), dtype=bool), (trow, tnode)), shape=t.given.shape)
        exact = np.asarray(truth_items[rows, pi]).ravel().astype(bool)
        coarse = (np.asarray(t.closure[rows, pi]).ravel().astype(bool) | ((pi == 0) & ~t.abstained[rows])) & ~exact
        specific = (rowwise_overlap(anc[pi], truth_items[rows]) > 0) & ~exact & ~coarse
        cross = item_cae(t, rows, pi, branch_depth)
    kind = np.full(len(rows), 3, dtype=np.int64)  # within_branch by default
    kind[specific] = 2
    kind[coarse] = 1
    # A CAE item is always reported as cross_branch (in a tree it is never an ancestor or descendant of a true
    # node anyway; in a DAG with uneven depths it can be), so a sample is a CAE iff one of its items is.
    kind[cross] = 4
    kind[exact] = 0
    return rows, kind


def error_breakdown(
    y_true: LabelsLike, y_pred: LabelsLike, *, taxonomy: Taxonomy, sample_weight: Any = None, branch_depth: int = 1
) -> ErrorBreakdown:
    """Break predictions down into exact, too coarse, too specific, within-branch and cross-branch.

    Fractions sum to 1 over items: samples (single-label) or most-specific predicted nodes (multi-label).

    Examples
    --------
    >>> from medlens.taxonomy import Taxonomy
    >>> tax = Taxonomy({"root": ["Lung", "Pleura"], "Lung": ["Pneumonia", "Edema"], "Pleura": ["Effusion"]})
    >>> e = error_breakdown(["Pneumonia"] * 4, ["Pneumonia", "Lung", "Edema", "Effusion"], taxonomy=tax)
    >>> e.exact, e.too_coarse, e.within_branch, e.cross_branch
    (0.25, 0.25, 0.25, 0.25)
    """
    t, p = _prepare(y_true, y_pred, taxonomy)
    return _breakdown_from_encoded(t, p, branch_depth, _weights(sample_weight, t.n))


def _breakdown_from_encoded(t: EncodedLabels, p: EncodedLabels, branch_depth: int, w: np.ndarray) -> ErrorBreakdown:
    rows, kind = _breakdown_items(t, p, branch_depth)
    counts = np.bincount(kind, minlength=5)
    n = int(counts.sum())
    mass = np.bincount(kind, weights=w[rows], minlength=5)
    total = float(mass.sum())
    fr = mass / total if total > 0 else np.zeros(5)
    single = t.single is not None and p.single is not None
    return ErrorBreakdown(
        *(float(x) for x in fr),
        counts={name: int(c) for name, c in zip(_KINDS, counts, strict=True)},
        n_items=n,
        unit="sample" if single else "predicted node",
        branch_depth=int(branch_depth),
        taxonomy={"name": t.taxonomy.name, "version": t.taxonomy.version},
    )


# --------------------------------------------------------------------------- severity and distance
def _closest_pairs(t: EncodedLabels, p: EncodedLabels) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pair every predicted item with its closest true item of the same sample.

    Returns (sample, predicted node, closest true node, distance). Closest = smallest tree distance, ties
    broken by true node order. Single-label inputs pair each sample's prediction with its truth.
    """
    tax = t.taxonomy
    if t.single is not None and p.single is not None:
        rows = np.arange(t.n, dtype=np.int64)
        return rows, p.single, t.single, pair_distance(tax, p.single, t.single)
    prow, pnode = predicted_items(p)
    trow, tnode = predicted_items(t)
    tstart = np.searchsorted(trow, np.arange(t.n))
    tcount = np.bincount(trow, minlength=t.n)
    counts = tcount[prow]
    item = np.repeat(np.arange(len(prow)), counts)
    offs = np.arange(len(item)) - np.repeat(np.cumsum(counts) - counts, counts)
    rep_t = tnode[np.repeat(tstart[prow], counts) + offs]
    rep_p = pnode[item]
    dist = pair_distance(tax, rep_p, rep_t)
    order = np.lexsort((rep_t, dist, item))
    sel = order[np.unique(item[order], return_index=True)[1]]
    return prow, pnode, rep_t[sel], dist[sel]


def mistake_severity(
    y_true: LabelsLike,
    y_pred: LabelsLike,
    *,
    taxonomy: Taxonomy,
    sample_weight: Any = None,
    convention: Literal["height", "true_edges"] = "height",
) -> float:
    """Mean LCA height over mistakes (Bertinetto et al., 2020).

    ``convention="height"``: ``height(taxonomy) - depth(lca(ŷ, y))``; ``"true_edges"``: edges on the shortest
    upward path from the true node to the LCA. Abstentions (the root) are not mistakes here; they lower
    coverage instead. Multi-label: over most-specific predicted nodes that are not exact (too coarse ones
    included, as in the single-label case), each against its closest true node. With ``sample_weight`` each
    mistake weighs as its sample. Returns NaN when there is no mistake.

    Examples
    --------
    >>> from medlens.taxonomy import Taxonomy
    >>> tax = Taxonomy({"root": ["Lung", "Pleura"], "Lung": ["Pneumonia", "Edema"], "Pleura": ["Effusion"]})
    >>> mistake_severity(["Pneumonia", "Pneumonia"], ["Edema", "Effusion"], taxonomy=tax)
    1.5
    """
    check_option(convention, ("height", "true_edges"), name="convention")
    t, p = _prepare(y_true, y_pred, taxonomy)
    rows, h = _severity_per_item(t, p, convention)
    w = check_sample_weight(sample_weight, t.n)
    return weighted_mean(h, None if w is None else w[rows])


def _severity_per_item(
    t: EncodedLabels, p: EncodedLabels, convention: str, pairs: tuple | None = None
) -> tuple[np.ndarray, np.ndarray]:
    rows, pi, ti, _ = _closest_pairs(t, p) if pairs is None else pairs
    wrong = (pi != ti) & (pi != 0)  # abstentions are not mistakes: they count against coverage
    rows, pi, ti = rows[wrong], pi[wrong], ti[wrong]
    tax = t.taxonomy
    lca = lca_index(tax, pi, ti)
    h = (tax.height - tax.depths[lca]) if convention == "height" else up_distance(tax, ti, lca)
    return rows, h.astype(float)


def mean_tree_distance(
    y_true: LabelsLike, y_pred: LabelsLike, *, taxonomy: Taxonomy, sample_weight: Any = None
) -> float:
    """Mean shortest undirected path length between prediction and truth (0 for exact predictions).

    Multi-label: mean over most-specific predicted nodes of the distance to the closest true node.
    Abstentions (the root) are left out; they lower coverage instead. With ``sample_weight`` each
    prediction weighs as its sample.

    Examples
    --------
    >>> from medlens.taxonomy import Taxonomy
    >>> tax = Taxonomy({"root": ["Lung", "Pleura"], "Lung": ["Pneumonia", "Edema"], "Pleura": ["Effusion"]})
    >>> mean_tree_distance(["Pneumonia", "Pneumonia"], ["Pneumonia", "Effusion"], taxonomy=tax)
    2.0
    """
    t, p = _prepare(y_true, y_pred, taxonomy)
    w = check_sample_weight(sample_weight, t.n)
    rows, pi, _, d = _closest_pairs(t, p)
    committed = pi != 0  # abstentions are not mistakes: they count against coverage
    return weighted_mean(d[committed], None if w is None else w[rows[committed]])


def hierarchical_distance_at_k(
    y_true: LabelsLike,
    scores: np.ndarray,
    *,
    taxonomy: Taxonomy,
    classes: list[str],
    sample_weight: Any = None,
    top_k: int = 5,
) -> float:
    """Average LCA height between the true node and each of the ``top_k`` best-scored classes.

    Bertinetto et al.'s "average hierarchical distance@k" (mistake severity of top-k lists); exact
    predictions contribute 0. Single-label truth only.

    Parameters
    ----------
    y_true : sequence of node ids, shape (n_samples,)
    scores : array of shape (n_samples, n_classes)
    classes : list of node ids naming the score columns
    sample_weight : array of shape (n_samples,), optional
        Weighted mean over samples.
    top_k : int
        How many of the best-scored classes of each sample count.
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[1] != len(classes):
        raise InputError(f"scores must have shape (n_samples, {len(classes)}) to match classes; got {scores.shape}.")
    if not 1 <= top_k <= len(classes):
        raise InputError(f"top_k must be in [1, {len(classes)}]; got {top_k}.")
    t = encode_labels(y_true, taxonomy, name="y_true")
    if t.single is None:
        raise InputError("hierarchical_distance_at_k needs one true label per sample (single-label).")
    check_same_length(range(t.n), scores, names=("y_true", "scores"))
    if t.n == 0:
        raise InputError("y_true and scores are empty; give at least one sample.")
    check_finite(scores, name="scores", columns=classes)
    w = check_sample_weight(sample_weight, t.n)
    cls = taxonomy.node_indices(classes)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :top_k]
    pred = cls[top].ravel()
    truth = np.repeat(t.single, top_k)
    lca = lca_index(taxonomy, pred, truth)
    h = np.where(pred == truth, 0, taxonomy.height - taxonomy.depths[lca])
    return weighted_mean(h, None if w is None else np.repeat(w, top_k))


# --------------------------------------------------------------------------- consistency of scores
@dataclass(frozen=True)
class ConsistencyResult(MetricResult):
    """Share of (sample, parent, child) triples whose child score exceeds the parent score."""

    rate: float
    n_violations: int
    n_checks: int
    worst_edges: list[dict]


def consistency_violations(
    scores: np.ndarray, *, taxonomy: Taxonomy, nodes: list[str] | None = None, tol: float = 1e-9, top: int = 5
) -> ConsistencyResult:
    """Hierarchy-consistency violations of node score vectors: ``s(child) > s(parent) + tol``.

    Parameters
    ----------
    scores : array of shape (n_samples, n_nodes)
        Node probabilities; columns in ``nodes`` order (default: ``taxonomy.nodes``). Edges whose parent is
        the root, or whose endpoints have no column, are skipped.
    """
    scores = np.asarray(scores, dtype=float)
    nodes = list(taxonomy.nodes) if nodes is None else list(nodes)
    if scores.ndim != 2 or scores.shape[1] != len(nodes):
        raise InputError(f"scores must have shape (n_samples, {len(nodes)}); got {scores.shape}.")
    col = {taxonomy.index[n]: j for j, n in enumerate(nodes)}
    adj = taxonomy.adjacency.tocoo()
    pairs = [(col[p], col[c], p, c) for p, c in zip(adj.row, adj.col, strict=True) if p != 0 and p in col and c in col]
    if not pairs:
        return ConsistencyResult(0.0, 0, 0, [])
    pc = np.array([(a, b) for a, b, _, _ in pairs])
    viol = scores[:, pc[:, 1]] > scores[:, pc[:, 0]] + tol
    per_edge = viol.sum(0)
    order = np.argsort(-per_edge, kind="stable")[:top]
    worst = [
        {"parent": taxonomy.nodes[pairs[j][2]], "child": taxonomy.nodes[pairs[j][3]], "violations": int(per_edge[j])}
        for j in order
        if per_edge[j] > 0
    ]
    return ConsistencyResult(float(viol.mean()), int(viol.sum()), int(viol.size), worst)
