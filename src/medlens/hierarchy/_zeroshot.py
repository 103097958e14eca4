"""Zero-shot node scores for texts: sentence-level prompt similarity, negation handling, Platt scaling.

A report is split into sentences; each sentence is embedded once; a node's raw score is the highest
cosine similarity between a sentence and the node's prompts (prompt embeddings averaged per node).
Sentences (:func:`medlens.text.split_sentences`) with a negation cue of the ``clinical`` rules of
:mod:`medlens.text` ("no", "without", "negative for", "normal", ...; pseudo-negations such as "no change" are
none) assert the absence of a finding, so they are ignored for finding nodes and kept for nodes of the normal
branch. Raw similarities become probabilities with per-node Platt scaling (a 1-D logistic regression fitted on labelled data).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from medlens._validation import InputError
from medlens.taxonomy import Taxonomy
from medlens.text import NegationDetector, load_negation_rules, negation_tokens, split_sentences

__all__ = [
    "PlattScaler",
    "ReportSentences",
    "is_negated",
    "prompt_centroids",
    "prompt_node_similarity",
    "sentence_node_similarity",
]

_NEGATION = NegationDetector(load_negation_rules("clinical"))


def is_negated(sentence: str) -> bool:
    """Whether a sentence holds a negation/normality cue of the ``clinical`` rules (pseudo-negations aside).

    >>> is_negated("No pleural effusion."), is_negated("Small left pleural effusion.")
    (True, False)
    >>> is_negated("No change in the left effusion.")  # a pseudo-negation asserts the effusion
    False
    """
    return _NEGATION.has_negation(negation_tokens(sentence))


@dataclass(frozen=True)
class ReportSentences:
    """The sentences of a set of texts, split once: unique sentences, where each occurs, which are negated.

    Build with :meth:`from_texts`; :func:`sentence_node_similarity` then scores any embedding of the unique
    sentences without splitting or negation-scanning again (an anchor sweep scores many embeddings).
    """

    n_texts: int
    sentences: tuple[str, ...]
    occurrence_text: np.ndarray
    occurrence_sentence: np.ndarray
    negated: np.ndarray

    @classmethod
    def from_texts(cls, texts: Sequence[str], *, negation: bool = True) -> ReportSentences:
        index: dict[str, int] = {}
        text_of: list[int] = []
        sentence_of: list[int] = []
        for i, t in enumerate(texts):
            for sent in split_sentences(t):
                sentence_of.append(index.setdefault(sent, len(index)))
                text_of.append(i)
        sentences = tuple(index)
        negated = np.array([is_negated(x) for x in sentences] if negation else [False] * len(sentences), dtype=bool)
        return cls(len(texts), sentences, np.array(text_of, dtype=int), np.array(sentence_of, dtype=int), negated)


def prompt_centroids(taxonomy: Taxonomy, embed: Callable[[list[str]], np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """Unit mean prompt embedding of every non-root node (``taxonomy.nodes[1:]`` order) and those node ids."""
    nodes = list(taxonomy.nodes[1:])
    missing = [n for n in nodes if not taxonomy.prompts.get(n)]
    if missing:
        raise InputError(
            f"taxonomy {taxonomy.name!r} has no prompts for {missing[:5]}; add 'prompts' to the taxonomy file."
        )
    prompt_texts = [p for n in nodes for p in taxonomy.prompts[n]]
    owner = np.repeat(np.arange(len(nodes)), [len(taxonomy.prompts[n]) for n in nodes])
    pe = np.asarray(embed(prompt_texts), dtype=np.float64)
    centroids = np.zeros((len(nodes), pe.shape[1]))
    np.add.at(centroids, owner, pe)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    return centroids, nodes


def sentence_node_similarity(
    report_sentences: ReportSentences,
    sentence_embeddings: np.ndarray,
    centroids: np.ndarray,
    *,
    taxonomy: Taxonomy,
    normal_branch: str | None = "Normal",
    normal_from_findings: bool = True,
) -> np.ndarray:
    """The scores of :func:`prompt_node_similarity` from embeddings of ``report_sentences.sentences``.

    ``sentence_embeddings`` has one L2-normalised row per unique sentence; ``centroids`` come from
    :func:`prompt_centroids` (or any unit vectors, one per non-root node, in the same space).
    """
    nodes = list(taxonomy.nodes[1:])
    rs = report_sentences
    sim = np.full((rs.n_texts, len(nodes)), -1.0)
    if not rs.sentences:
        return sim
    se = np.asarray(sentence_embeddings, dtype=np.float64)
    if se.shape != (len(rs.sentences), centroids.shape[1]):
        raise InputError(
            f"sentence embeddings must have shape ({len(rs.sentences)}, {centroids.shape[1]}); got {se.shape}."
        )
    s = se @ centroids.T  # (n_unique_sentences, n_nodes)
    normal = np.zeros(len(nodes), dtype=bool)
    if normal_branch is not None and normal_branch in taxonomy.index:
        normal_nodes = set(taxonomy.descendants(normal_branch, include_self=True))
        normal = np.array([n in normal_nodes for n in nodes])
    masked = np.where(rs.negated[:, None] & ~normal[None, :], -1.0, s)
    np.maximum.at(sim, rs.occurrence_text, masked[rs.occurrence_sentence])
    if normal_from_findings and normal.any() and (~normal).any():
        sim[:, normal] = -sim[:, ~normal].max(axis=1, keepdims=True)
    return sim


def prompt_node_similarity(
    texts: Sequence[str],
    *,
    taxonomy: Taxonomy,
    embed: Callable[[list[str]], np.ndarray],
    normal_branch: str | None = "Normal",
    negation: bool = True,
    normal_from_findings: bool = True,
    embed_prompts: Callable[[list[str]], np.ndarray] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Raw zero-shot similarity of every text to every non-root node's prompts.

    Parameters
    ----------
    texts : sequence of str
        One document (e.g. a report) per sample.
    taxonomy : Taxonomy
        Must carry ``prompts`` for every non-root node.
    embed : callable
        Maps a list of strings to L2-normalised embeddings of shape (n, dim).
    normal_branch : str or None
        Nodes in this branch (and the branch node) also see negated sentences.
    negation : bool
        Ignore negated sentences for finding nodes.
    normal_from_findings : bool
        Score the normal branch as ``-max`` of the finding similarities ("nothing abnormal is asserted")
        instead of by its own prompts, which match the negated sentences of abnormal reports as well.
    embed_prompts : callable, optional
        Embeds the prompts when they come from another encoder than the sentences (default ``embed``), e.g.
        sentences of one encoder translated into the space of another (:mod:`medlens.stitching`).

    Returns
    -------
    sim : array of shape (n_texts, n_nodes - 1)
        Highest sentence–prompt cosine similarity; -1 when a text has no usable sentence for a node.
    nodes : list of str
        The node id of each column (``taxonomy.nodes[1:]``).

    Each distinct sentence is embedded once.
    """
    centroids, nodes = prompt_centroids(taxonomy, embed_prompts or embed)
    rs = ReportSentences.from_texts(texts, negation=negation)
    se = np.asarray(embed(list(rs.sentences)), dtype=np.float64) if rs.sentences else np.zeros((0, centroids.shape[1]))
    sim = sentence_node_similarity(
        rs, se, centroids, taxonomy=taxonomy, normal_branch=normal_branch, normal_from_findings=normal_from_findings
    )
    return sim, nodes


@dataclass
class PlattScaler:
    """Per-column logistic calibration ``p = σ(a·x + b)`` of raw scores (Platt, 1999).

    Columns with a single class in the training labels get the smoothed prevalence as a constant. The objective
    per column is scikit-learn's: ``C · Σ log-loss + a²/2`` (the intercept unpenalised). ``solver="lbfgs"`` fits it
    with :class:`sklearn.linear_model.LogisticRegression` column by column (its default tolerance);
    ``solver="newton"`` solves every column at once with damped Newton steps to ``1e-10`` — the exact optimum, about
    a hundred times faster when many calibrations are fitted (an anchor sweep).
    """

    C: float = 100.0
    solver: str = "lbfgs"
    coef_: np.ndarray = field(default_factory=lambda: np.zeros(0))
    intercept_: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def fit(self, x: np.ndarray, y: np.ndarray) -> PlattScaler:
        from sklearn.linear_model import LogisticRegression

        x = np.asarray(x, dtype=float)
        y = np.asarray(y).astype(int)
        if x.shape != y.shape:
            raise InputError(f"scores and labels must have the same shape; got {x.shape} and {y.shape}.")
        if self.solver not in ("lbfgs", "newton"):
            raise InputError(f"solver must be 'lbfgs' or 'newton'; got {self.solver!r}.")
        a = np.zeros(x.shape[1])
        b = np.zeros(x.shape[1])
        if self.solver == "newton":
            self.coef_, self.intercept_ = _platt_newton(x, y, self.C)
            return self
        for j in range(x.shape[1]):
            pos = y[:, j].sum()
            if 0 < pos < len(y):
                lr = LogisticRegression(C=self.C).fit(x[:, j : j + 1], y[:, j])
                a[j], b[j] = lr.coef_[0, 0], lr.intercept_[0]
            else:
                prior = (pos + 0.5) / (len(y) + 1.0)
                a[j], b[j] = 0.0, np.log(prior / (1 - prior))
        self.coef_, self.intercept_ = a, b
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.coef_.size == 0:
            raise InputError("PlattScaler is not fitted; call fit(x, y) first.")
        z = np.asarray(x, dtype=float) * self.coef_ + self.intercept_
        return 1.0 / (1.0 + np.exp(-z))


def _platt_newton(x: np.ndarray, y: np.ndarray, C: float, *, tol: float = 1e-10, max_iter: int = 200):
    """Every column's ``argmin C·Σ log(1 + exp(−s·(a·x + b))) + a²/2`` (s = ±1) by damped Newton, vectorised."""
    from scipy.special import expit, log_expit

    n, k = x.shape
    pos = y.sum(axis=0)
    prior = (pos + 0.5) / (n + 1.0)
    fit = (pos > 0) & (pos < n)
    a = np.zeros(k)
    b = np.log(prior / (1 - prior))
    sign = 2.0 * y - 1.0

    def objective(a_: np.ndarray, b_: np.ndarray) -> np.ndarray:
        return -C * log_expit(sign * (x * a_ + b_)).sum(axis=0) + 0.5 * a_**2

    obj = objective(a, b)
    for _ in range(max_iter):
        p = expit(x * a + b)
        r = p - y
        g_a = C * (r * x).sum(axis=0) + a
        g_b = C * r.sum(axis=0)
        w = C * p * (1 - p)
        h_aa = (w * x * x).sum(axis=0) + 1.0
        h_ab = (w * x).sum(axis=0)
        h_bb = np.maximum(w.sum(axis=0), 1e-12)
        det = np.maximum(h_aa * h_bb - h_ab**2, 1e-300)
        da = np.where(fit, (h_bb * g_a - h_ab * g_b) / det, 0.0)
        db = np.where(fit, (h_aa * g_b - h_ab * g_a) / det, 0.0)
        step = np.ones(k)
        for _ in range(60):  # halve the step of every column whose objective would rise
            new = objective(a - step * da, b - step * db)
            worse = new > obj + 1e-12 * np.abs(obj)
            if not worse.any():
                break
            step = np.where(worse, step / 2, step)
        a, b = a - step * da, b - step * db
        obj = objective(a, b)
        if max(np.abs(step * da).max(initial=0.0), np.abs(step * db).max(initial=0.0)) < tol:
            break
    a = np.where(fit, a, 0.0)
    b = np.where(fit, b, np.log(prior / (1 - prior)))
    return a, b
