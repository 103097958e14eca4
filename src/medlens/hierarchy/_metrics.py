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

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse as sp

from medlens._validation import InputError, check_interval, check_option, check_same_length
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
    return t, p


# --------------------------------------------------------------------------- hP / hR / hF
@dataclass(frozen=True)
class HierarchicalPRF:
    """Hierarchical precision, recall and F-beta (Kiritchenko et al., 2006)."""

    hP: float
    hR: float
    hF: float
    average: str
    beta: float
    taxonomy: dict[str, str | None] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _prf_parts(t: EncodedLabels, p: EncodedLabels, beta: float) -> dict[str, Ratio]:
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
        "micro_p": Ratio(inter, a),
        "micro_r": Ratio(inter, b),
        # F_beta of the micro P and R, written as one ratio: defined whenever either sum is positive
        "micro_f": Ratio((1 + b2) * inter, b2 * b + a),
        "macro_p": Ratio(p_i * (a > 0), (a > 0).astype(float)),
        "macro_r": Ratio(r_i * (b > 0), (b > 0).astype(float)),
        "macro_f": Ratio(f_i * (b > 0), (b > 0).astype(float)),
    }


def hierarchical_precision_recall_fscore(
    y_true: LabelsLike,
    y_pred: LabelsLike,
    *,
    taxonomy: Taxonomy,
    average: Average = "micro",
    beta: float = 1.0,
) -> HierarchicalPRF:
    """Hierarchical precision, recall and F-beta over label closures (root excluded).

    With α_i the predicted labels plus ancestors and β_i the true labels plus ancestors:
    micro hP = Σ|α∩β| / Σ|α|, hR = Σ|α∩β| / Σ|β|, hF = F_β(hP, hR); macro averages per-sample
    hP_i (samples that abstained are excluded: their precision is undefined), hR_i and hF_i
    (an abstention scores hF_i = 0). Equals ``hiclass.metrics`` on the same paths.

    Parameters
    ----------
    y_true, y_pred : labels
        Node ids (single-label), label sets (multi-label) or indicator arrays.
    taxonomy : Taxonomy
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
    parts = _prf_parts(t, p, beta)
    tax = {"name": taxonomy.name, "version": taxonomy.version}
    return HierarchicalPRF(
        parts[f"{average}_p"].value, parts[f"{average}_r"].value, parts[f"{average}_f"].value, average, float(beta), tax
    )


# --------------------------------------------------------------------------- CAE
@dataclass(frozen=True)
class CAEResult:
    """Catastrophic Abstraction Errors at branch depth ``k``."""

    rate: float
    share: float
    n_cae: int
    n_errors: int
    n: int
    branch_depth: int
    branches: list[str] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    taxonomy: dict[str, str | None] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _sample_errors(t: EncodedLabels, p: EncodedLabels) -> np.ndarray:
    """A sample is an error unless its predicted and true most-specific sets are equal."""
    if t.single is not None and p.single is not None:
        return t.single != p.single
    diff = (t.most_specific.astype(np.int8) - p.most_specific.astype(np.int8)).tocsr()
    diff.eliminate_zeros()
    return row_counts(diff) > 0


def branch_confusion(t: EncodedLabels, p: EncodedLabels, k: int) -> tuple[list[str], np.ndarray]:
    """True-branch × predicted-branch counts at depth ``k``; the last column counts predictions with no branch.

    For single-label trees this is the usual confusion matrix between branches (off-diagonal cells are
    CAEs); for DAGs and label sets every (true branch, predicted branch) pair of a sample is counted.
    """
    tax = t.taxonomy
    cols = branch_columns(tax, k)
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
    k: int = 1,
) -> CAEResult:
    """Catastrophic Abstraction Error rate: mistakes that cross depth-``k`` branches of the taxonomy.

    Single-label: ``CAE_i = 1[ŷ_i, y_i both at depth >= k and branch_k(ŷ_i) ∩ branch_k(y_i) = ∅]``.
    Multi-label: ``CAE_i = 1`` when a most-specific predicted node at depth >= k has a branch set disjoint from
    the union of the branch sets of the true nodes at depth >= k, and lies under no true node shallower than
    k; a truth with no node at depth >= k is never contradicted. ``rate`` is the mean over samples, ``share``
    the fraction of erroneous samples that are CAEs. Abstentions (the root) are never CAEs.

    Examples
    --------
    >>> from medlens.taxonomy import Taxonomy
    >>> tax = Taxonomy({"root": ["Lung", "Pleura"], "Lung": ["Pneumonia", "Edema"], "Pleura": ["Effusion"]})
    >>> r = cae_rate(["Pneumonia", "Pneumonia", "Effusion"], ["Edema", "Effusion", "root"], taxonomy=tax)
    >>> r.rate, r.share, r.n_errors
    (0.3333333333333333, 0.3333333333333333, 3)
    """
    t, p = _prepare(y_true, y_pred, taxonomy)
    return _cae_from_encoded(t, p, k)


def _cae_from_encoded(t: EncodedLabels, p: EncodedLabels, k: int) -> CAEResult:
    cae = sample_cae(t, p, k)
    err = _sample_errors(t, p)
    names, conf = branch_confusion(t, p, k)
    n_err = int(err.sum())
    return CAEResult(
        rate=float(cae.mean()),
        share=float(cae.sum() / n_err) if n_err else 0.0,
        n_cae=int(cae.sum()),
        n_errors=n_err,
        n=t.n,
        branch_depth=int(k),
        branches=names,
        confusion=conf.tolist(),
        taxonomy={"name": t.taxonomy.name, "version": t.taxonomy.version},
    )


# --------------------------------------------------------------------------- error breakdown
_KINDS = ("exact", "too_coarse", "too_specific", "within_branch", "cross_branch")


@dataclass(frozen=True)
class ErrorBreakdown:
    """Fractions of predictions that are exact, too coarse (an ancestor of the truth, abstentions included),
    too specific (a descendant), a different node within the same branch, or cross-branch (a CAE).

    Multi-label: one item per most-specific predicted node; it is cross-branch when it is a CAE against the
    sample's true set (see :func:`cae_rate`), so a sample is a CAE exactly when one of its items is."""

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

    def to_dict(self) -> dict:
        return asdict(self)


def _breakdown_items(t: EncodedLabels, p: EncodedLabels, k: int) -> tuple[np.ndarray, np.ndarray]:
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
        cross = cross_branch_pairs(tax, pi, ti, k)
    else:
        rows, pi = predicted_items(p)
        trow, tnode = predicted_items(t)
        truth_items = sp.csr_matrix((np.ones(len(trow), dtype=bool), (trow, tnode)), shape=t.given.shape)
        exact = np.asarray(truth_items[rows, pi]).ravel().astype(bool)
        coarse = (np.asarray(t.closure[rows, pi]).ravel().astype(bool) | ((pi == 0) & ~t.abstained[rows])) & ~exact
        specific = (rowwise_overlap(anc[pi], truth_items[rows]) > 0) & ~exact & ~coarse
        cross = item_cae(t, rows, pi, k)
    kind = np.full(len(rows), 3, dtype=np.int64)  # within_branch by default
    kind[specific] = 2
    kind[coarse] = 1
    # A CAE item is always reported as cross_branch (in a tree it is never an ancestor or descendant of a true
    # node anyway; in a DAG with uneven depths it can be), so a sample is a CAE iff one of its items is.
    kind[cross] = 4
    kind[exact] = 0
    return rows, kind


def error_breakdown(y_true: LabelsLike, y_pred: LabelsLike, *, taxonomy: Taxonomy, k: int = 1) -> ErrorBreakdown:
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
    return _breakdown_from_encoded(t, p, k)


def _breakdown_from_encoded(t: EncodedLabels, p: EncodedLabels, k: int) -> ErrorBreakdown:
    rows, kind = _breakdown_items(t, p, k)
    counts = np.bincount(kind, minlength=5)
    n = int(counts.sum())
    fr = counts / n if n else np.zeros(5)
    single = t.single is not None and p.single is not None
    return ErrorBreakdown(
        *(float(x) for x in fr),
        counts={name: int(c) for name, c in zip(_KINDS, counts, strict=True)},
        n_items=n,
        unit="sample" if single else "predicted node",
        branch_depth=int(k),
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
    convention: Literal["height", "true_edges"] = "height",
) -> float:
    """Mean LCA height over mistakes (Bertinetto et al., 2020).

    ``convention="height"``: ``height(taxonomy) - depth(lca(ŷ, y))``; ``"true_edges"``: edges on the shortest
    upward path from the true node to the LCA. Abstentions (the root) are not mistakes here; they lower
    coverage instead. Multi-label: over most-specific predicted nodes that are not exact (too coarse ones
    included, as in the single-label case), each against its closest true node. Returns NaN when there is no
    mistake.

    Examples
    --------
    >>> from medlens.taxonomy import Taxonomy
    >>> tax = Taxonomy({"root": ["Lung", "Pleura"], "Lung": ["Pneumonia", "Edema"], "Pleura": ["Effusion"]})
    >>> mistake_severity(["Pneumonia", "Pneumonia"], ["Edema", "Effusion"], taxonomy=tax)
    1.5
    """
    check_option(convention, ("height", "true_edges"), name="convention")
    t, p = _prepare(y_true, y_pred, taxonomy)
    return _severity_from_encoded(t, p, convention)


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


def _severity_from_encoded(t: EncodedLabels, p: EncodedLabels, convention: str = "height") -> float:
    _, h = _severity_per_item(t, p, convention)
    return float(h.mean()) if len(h) else float("nan")


def mean_tree_distance(y_true: LabelsLike, y_pred: LabelsLike, *, taxonomy: Taxonomy) -> float:
    """Mean shortest undirected path length between prediction and truth (0 for exact predictions).

    Multi-label: mean over most-specific predicted nodes of the distance to the closest true node.
    Abstentions (the root) are left out; they lower coverage instead.

    Examples
    --------
    >>> from medlens.taxonomy import Taxonomy
    >>> tax = Taxonomy({"root": ["Lung", "Pleura"], "Lung": ["Pneumonia", "Edema"], "Pleura": ["Effusion"]})
    >>> mean_tree_distance(["Pneumonia", "Pneumonia"], ["Pneumonia", "Effusion"], taxonomy=tax)
    2.0
    """
    t, p = _prepare(y_true, y_pred, taxonomy)
    return _distance_from_encoded(t, p)


def _distance_from_encoded(t: EncodedLabels, p: EncodedLabels) -> float:
    _, pi, _, d = _closest_pairs(t, p)
    d = d[pi != 0]  # abstentions are not mistakes: they count against coverage
    return float(d.mean()) if len(d) else float("nan")


def hierarchical_distance_at_k(
    y_true: LabelsLike,
    scores: np.ndarray,
    *,
    taxonomy: Taxonomy,
    classes: list[str],
    k: int = 5,
) -> float:
    """Average LCA height between the true node and each of the top-``k`` scored classes.

    Bertinetto et al.'s "average hierarchical distance@k" (mistake severity of top-k lists); exact
    predictions contribute 0. Single-label truth only.

    Parameters
    ----------
    y_true : sequence of node ids, shape (n_samples,)
    scores : array of shape (n_samples, n_classes)
    classes : list of node ids naming the score columns
    k : int
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.shape[1] != len(classes):
        raise InputError(f"scores must have shape (n_samples, {len(classes)}) to match classes; got {scores.shape}.")
    if not 1 <= k <= len(classes):
        raise InputError(f"k must be in [1, {len(classes)}]; got {k}.")
    t = encode_labels(y_true, taxonomy, name="y_true")
    if t.single is None:
        raise InputError("hierarchical_distance_at_k needs one true label per sample (single-label).")
    check_same_length(range(t.n), scores, names=("y_true", "scores"))
    cls = taxonomy.node_indices(classes)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    pred = cls[top].ravel()
    truth = np.repeat(t.single, k)
    lca = lca_index(taxonomy, pred, truth)
    h = np.where(pred == truth, 0, taxonomy.height - taxonomy.depths[lca])
    return float(h.mean())


# --------------------------------------------------------------------------- consistency of scores
@dataclass(frozen=True)
class ConsistencyResult:
    """Share of (sample, parent, child) triples whose child score exceeds the parent score."""

    rate: float
    n_violations: int
    n_checks: int
    worst_edges: list[dict]

    def to_dict(self) -> dict:
        return asdict(self)


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
