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

__all__ = ["is_negated", "prompt_node_similarity", "PlattScaler"]

_NEGATION = NegationDetector(load_negation_rules("clinical"))


def is_negated(sentence: str) -> bool:
    """Whether a sentence holds a negation/normality cue of the ``clinical`` rules (pseudo-negations aside).

    >>> is_negated("No pleural effusion."), is_negated("Small left pleural effusion.")
    (True, False)
    >>> is_negated("No change in the left effusion.")  # a pseudo-negation asserts the effusion
    False
    """
    return _NEGATION.has_negation(negation_tokens(sentence))


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
    """
    nodes = list(taxonomy.nodes[1:])
    missing = [n for n in nodes if not taxonomy.prompts.get(n)]
    if missing:
        raise InputError(
            f"taxonomy {taxonomy.name!r} has no prompts for {missing[:5]}; add 'prompts' to the taxonomy file."
        )
    prompt_texts = [p for n in nodes for p in taxonomy.prompts[n]]
    owner = np.repeat(np.arange(len(nodes)), [len(taxonomy.prompts[n]) for n in nodes])
    pe = np.asarray((embed_prompts or embed)(prompt_texts), dtype=np.float64)
    centroids = np.zeros((len(nodes), pe.shape[1]))
    np.add.at(centroids, owner, pe)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    sents: list[str] = []
    doc: list[int] = []
    for i, t in enumerate(texts):
        ss = split_sentences(t)
        sents.extend(ss)
        doc.extend([i] * len(ss))
    sim = np.full((len(texts), len(nodes)), -1.0)
    if not sents:
        return sim, nodes
    se = np.asarray(embed(sents), dtype=np.float64)
    s = se @ centroids.T  # (n_sentences, n_nodes)
    neg = np.array([is_negated(x) for x in sents]) if negation else np.zeros(len(sents), dtype=bool)
    normal = np.zeros(len(nodes), dtype=bool)
    if normal_branch is not None and normal_branch in taxonomy.index:
        normal_nodes = set(taxonomy.descendants(normal_branch, include_self=True))
        normal = np.array([n in normal_nodes for n in nodes])
    doc_arr = np.array(doc)
    masked = np.where(neg[:, None] & ~normal[None, :], -1.0, s)
    np.maximum.at(sim, doc_arr, masked)
    if normal_from_findings and normal.any() and (~normal).any():
        sim[:, normal] = -sim[:, ~normal].max(axis=1, keepdims=True)
    return sim, nodes


@dataclass
class PlattScaler:
    """Per-column logistic calibration ``p = σ(a·x + b)`` of raw scores (Platt, 1999).

    Columns with a single class in the training labels get the smoothed prevalence as a constant.
    """

    C: float = 100.0
    coef_: np.ndarray = field(default_factory=lambda: np.zeros(0))
    intercept_: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def fit(self, x: np.ndarray, y: np.ndarray) -> PlattScaler:
        from sklearn.linear_model import LogisticRegression

        x = np.asarray(x, dtype=float)
        y = np.asarray(y).astype(int)
        if x.shape != y.shape:
            raise InputError(f"scores and labels must have the same shape; got {x.shape} and {y.shape}.")
        a = np.zeros(x.shape[1])
        b = np.zeros(x.shape[1])
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
