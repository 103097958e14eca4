"""Which candidate concept a text span names, and whether it names one at all: a logistic scorer over the span's
nearest terms.

A bare cosine threshold (:data:`medlens.retrieval._concepts.THRESHOLD`) takes each span's most similar label and
keeps it when the cosine is high enough. The error analysis in :mod:`medlens.retrieval._concepts` shows why that
is weak: fragments cut from inside a definition-like sentence ("neck", "punctate", "presence of a stenosis") reach
cosine 0.7-0.8 with unrelated terms, while the right term of a short span often sits second or third behind a more
specific neighbour ("telangiectases" → *Palate telangiectasia* ahead of *Telangiectasia*). A span's own words and
its place in the sentence tell these apart better than the cosine alone.

:class:`ConceptScorer` re-ranks the ``top_k`` nearest *terms* of every span (each by its most similar label) and
gives each a probability of being a term the text names, from seven features of the (span, term) pair
(:data:`FEATURES`):

* ``cosine`` of the span and the term's most similar label, and ``gap``: that cosine minus the span's best;
* ``span_share``: the span's words over its sentence's words, and ``cosine_x_share``, their product (a span
  that *is* its sentence, or a list item, against a fragment of a long description);
* ``ic``: the term's information content over the index's diseases (a specific term needs more evidence);
* ``span_covered`` and ``label_covered``: the share of the span's words found in the label, and of the
  label's words found in the span (normalised like the exact matcher: folded, plurals stemmed, ``a an the of``
  dropped); a label with words the span lacks names something more specific.

``probability = sigmoid(((x − mean) / scale) · coef + intercept)``. Each span takes its most probable term; spans
are accepted greedily, most probable first, above ``threshold``, without overlaps.

**Fitted on the development split only.** :func:`fit_concept_scorer` fits the coefficients with scikit-learn's
logistic regression on (span, candidate) pairs of ``rare-hpo-v2`` *dev* cases, labelled by whether the candidate
is a term the generator wrote (``scripts/fit_concept_scorer.py`` reproduces :data:`DEFAULT_SCORER` and prints
the choice of threshold by 2-fold cross-validation over the dev cases). No feature names a term or a word, so
the scorer learns how much to trust a match, not which strings to look up. The coefficients hold for the
recipe they were fitted with (:attr:`ConceptScorer.fitted_for`: the embedder and the self-alignment map's
settings and label data); with another embedder or map the recogniser falls back to the cosine threshold
unless it is given a scorer fitted for it (:func:`fit_concept_scorer` on the user's own development cases).

**Measured on dev.** Fitted on ``rare-hpo-v2`` dev (n=200) by ``scripts/fit_concept_scorer.py``; 2-fold
cross-validation over the dev cases (fit on one half, measure on the other), with refinement of exact matches on;
micro P / R / F1 of exact + embedding recognition and ontology top-5::

    variant                                         threshold    P      R      F1     top-5
    map + cosine threshold (before)                 0.70         0.631  0.619  0.625  0.665
    map + cosine threshold + refinement             0.70         0.653  0.635  0.644  0.675
    scorer (probability)                            0.20         0.709  0.646  0.676  0.755
    scorer (probability)                            0.25         0.739  0.635  0.683  0.735
    scorer (probability)                            0.30         0.757  0.617  0.679  0.715
    scorer (probability)                            0.40         0.782  0.586  0.670  0.675
    body sites kept in findings (spans), cosine     0.70         0.658  0.640  0.649  0.685
    body sites kept in findings (spans), scorer     0.20         0.714  0.654  0.683  0.755
    body sites kept in findings (spans), scorer     0.25         0.742  0.643  0.689  0.735   <- default
    body sites kept in findings (spans), scorer     0.30         0.756  0.621  0.682  0.715

The last four rows are the current spans (a body site is trimmed only next to an imaging word,
:mod:`medlens.retrieval._concepts`); the scorer was refitted on them.

The threshold with the best cross-validated F1 is kept. Tried on dev and left out (none raised F1 or top-5 by more
than 0.01): the best term chosen among the descendants of an exact term inside the span (F1 0.666, top-5 0.695);
more features (span, sentence and label lengths, the candidate's rank, whether the label is the name, whether it is
an ancestor or descendant of other candidates, its co-annotation with the exact terms of the case, the frozen
encoder's cosine, a character-trigram similarity, the similarity of the term's other labels); 16 candidates instead
of 8; adjacent list items joined as extra spans; definitions of up to 40 words in the label table or only in the
map's training; hard negatives re-mined from the mapped space for one or two more rounds of 200 steps (F1
0.682-0.686, top-5 0.70-0.74); the scorer's probability as a weight on a term's evidence in the disease score;
gradient-boosted trees instead of the logistic regression; a listwise (conditional-logit) choice among a span's
candidates with the pointwise probability for acceptance (F1 +0.005). Also left out: the span's other candidates as
alternatives in the disease score, each weighted by its normalised probability (the expected likelihood ratio of the
span; top-5 0.685-0.745 for the probability to the power 0.5-2, against 0.735 in-sample; with the spans below the
threshold down to a probability of 0.05 or 0.1 as weaker evidence too, negation scoped as for accepted spans, 2-fold
CV top-5 0.695-0.75 and MRR 0.587-0.619 against 0.74 / 0.609: within a few cases of 200); a hubness correction of
the cosine (CSLS-style, minus β times a label's mean cosine to its 10 nearest labels of other terms: term accuracy
of the written spans 0.517 at β=0, lower for every β>0); fine-tuning MiniLM's top one or two layers on the span side
(:mod:`medlens.retrieval._adapt`); on the new spans, ``with`` no longer cutting segments (F1 0.684, top-5 0.735) and
two segments joined across ``and``/``or`` when one is a single word ("wobbly and uncoordinated walk": F1 0.688,
top-5 0.725); plain-English variants of the indexed names and synonyms built from medical word formation (~200
combining forms and anatomical adjectives, no term-level glosses: "Microcephaly" → "small head", "Hepatosplenomegaly"
→ "enlarged liver spleen", 7.4k more labels): F1 0.692, R 0.649, top-5 0.725 against 0.689 / 0.643 / 0.735; with
the spans glossed the same way too R 0.655, top-5 0.72; with the map retrained on the variants, lower; an eighth
feature for opposite polarity (the span's and the label's size, amount or tone words and prefixes point opposite
ways: "flexible joints" → *Joint stiffness*, "small oral aperture" → *Wide mouth*, "undergrowth" → *Overgrowth*;
1.4% of candidates): F1 0.688, top-5 0.735, the same as without it; the first clause of the index-half definitions
longer than 12 words as 1,612 more labels ("Difficulty in speaking", "Failure to pass meconium"): F1 0.678, top-5
0.725; spans and labels embedded after a clinical prefix ("a patient with fits", with the map and scorer refitted):
F1 0.675, top-5 0.73. What limits recall is the encoder: of the written terms still missed on dev, about 270 of
610 are not among the 8 nearest terms of any span, and the rest lose to a neighbour the features cannot tell apart
("Chiari I malformation": *Chiari malformation* over *Chiari type I malformation*).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from medlens._validation import InputError

__all__ = [
    "DEFAULT_SCORER",
    "FEATURES",
    "SCORER_VERSION",
    "ConceptScorer",
    "candidate_features",
    "fit_concept_scorer",
    "nearest_terms",
    "scorer_key",
]

SCORER_VERSION = "medlens-concept-scorer-v1"
FEATURES = ("cosine", "gap", "span_share", "cosine_x_share", "ic", "span_covered", "label_covered")
#: Candidate terms re-ranked per span (each term by its most similar label, among the span's ``4 * TOP_K`` most
#: similar labels).
TOP_K = 8


@dataclass(frozen=True)
class ConceptScorer:
    """A fitted logistic scorer over :data:`FEATURES` (module docstring).

    >>> s = ConceptScorer(mean=(0,) * 7, scale=(1,) * 7, coef=(1, 0, 0, 0, 0, 0, 0), intercept=0.0, threshold=0.5)
    >>> [round(float(p), 3) for p in s.probability(np.array([[0.0] * 7, [2.0] + [0.0] * 6]))]
    [0.5, 0.881]
    """

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float
    features: tuple[str, ...] = FEATURES
    top_k: int = TOP_K
    #: The recipe the coefficients hold for (:func:`scorer_key`); empty: any.
    fitted_for: str = ""
    #: What the coefficients were fitted on (provenance).
    fitted_on: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.features)
        if tuple(self.features) != FEATURES:
            raise InputError(f"this medlens scores the concept features {', '.join(FEATURES)}; got {self.features}.")
        if not (len(self.mean) == len(self.scale) == len(self.coef) == n):
            raise InputError(f"a concept scorer needs {n} means, scales and coefficients.")
        if any(not s > 0 for s in self.scale):
            raise InputError("a concept scorer's scales must be > 0.")
        if not 0.0 < self.threshold < 1.0:
            raise InputError(f"the concept scorer's probability threshold must be in (0, 1); got {self.threshold}.")
        if self.top_k < 1:
            raise InputError(f"top_k must be >= 1; got {self.top_k}.")

    def probability(self, x: np.ndarray) -> np.ndarray:
        """The probability of each row of features (columns in :data:`FEATURES` order)."""
        x = np.asarray(x, dtype=np.float64)
        from scipy.special import expit

        z = ((x - np.asarray(self.mean)) / np.asarray(self.scale)) @ np.asarray(self.coef) + self.intercept
        return expit(z)

    def with_threshold(self, threshold: float) -> ConceptScorer:
        """The same coefficients with another acceptance threshold."""
        return ConceptScorer(**{**asdict(self), "threshold": float(threshold)})

    def spec(self) -> dict[str, Any]:
        return {
            "version": SCORER_VERSION,
            "threshold": self.threshold,
            "top_k": self.top_k,
            "features": list(self.features),
            "fitted_for": self.fitted_for,
            "fitted_on": dict(self.fitted_on),
        }


def scorer_key(embedder: Any, adapter: Any) -> str:
    """The recipe a scorer's coefficients hold for: the embedder's ``cache_key`` and, when a self-alignment map
    is applied, its version, training settings and label data (not its float bits, which differ across CPUs).

    >>> scorer_key(type("E", (), {"cache_key": "st|m|128|True"})(), None)
    'st|m|128|True|no-map'
    """
    from medlens.retrieval._adapt import AdapterSettings

    base = str(getattr(embedder, "cache_key", getattr(embedder, "model_id", "")))
    if adapter is None:
        return f"{base}|no-map"
    spec = adapter.spec()
    recipe = {k: spec.get(k) for k in ("version", "data_sha256", *asdict(AdapterSettings()))}
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    return f"{base}|map-{digest}"


def _word_set(text: str) -> frozenset[str]:
    from medlens.retrieval._phenotype import phrase_tokens

    return frozenset(phrase_tokens(text))


def nearest_terms(sims: np.ndarray, label_terms: np.ndarray, top_k: int = TOP_K) -> tuple[list[str], list[int]]:
    """The ``top_k`` nearest distinct terms of a span and the index of each one's most similar label, nearest
    first, among the span's ``4 * top_k`` most similar labels.

    >>> nearest_terms(np.array([0.2, 0.9, 0.8, 0.7]), np.array(["A", "B", "B", "C"], dtype=object), top_k=2)
    (['B', 'C'], [1, 3])
    """
    n = len(sims)
    pool = min(n, 4 * top_k)
    near = np.argpartition(-sims, pool - 1)[:pool] if pool < n else np.arange(n)
    near = near[np.argsort(-sims[near], kind="stable")]
    terms: list[str] = []
    labs: list[int] = []
    for j in near:
        t = str(label_terms[j])
        if t in terms:
            continue
        terms.append(t)
        labs.append(int(j))
        if len(terms) == top_k:
            break
    return terms, labs


def candidate_features(
    sims: np.ndarray,
    label_terms: np.ndarray,
    label_words: Sequence[frozenset[str]],
    span_words: frozenset[str],
    span_share: float,
    ic: Callable[[str], float],
    top_k: int = TOP_K,
) -> tuple[list[str], np.ndarray]:
    """(the ``top_k`` nearest distinct terms of one span, their feature rows) from the span's cosine to every label.

    ``sims[j]``: cosine to label ``j`` of term ``label_terms[j]`` with normalised words ``label_words[j]``;
    ``span_share``: the span's words over its sentence's; ``ic(term)``: its information content (NaN counts 0).

    >>> sims = np.array([0.9, 0.8, 0.5])
    >>> terms = np.array(["A", "A", "B"], dtype=object)
    >>> words = [frozenset({"small", "head"}), frozenset({"tiny"}), frozenset({"head"})]
    >>> t, x = candidate_features(sims, terms, words, frozenset({"small", "head", "size"}), 0.5, lambda t: 1.0)
    >>> t, [round(float(v), 3) for v in x[1]]
    (['A', 'B'], [0.5, -0.4, 0.5, 0.25, 1.0, 0.333, 1.0])
    """
    terms, labs = nearest_terms(sims, label_terms, top_k)
    if not labs:
        return [], np.zeros((0, len(FEATURES)))
    best = float(sims[labs[0]])
    rows = []
    n_span = max(1, len(span_words))
    for t, j in zip(terms, labs, strict=True):
        lw = label_words[j]
        common = len(span_words & lw)
        c = float(sims[j])
        v = ic(t)
        rows.append(
            [c, c - best, span_share, c * span_share, 0.0 if v != v else v, common / n_span, common / max(1, len(lw))]
        )
    return terms, np.array(rows, dtype=np.float64)


def fit_concept_scorer(
    examples: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    threshold: float,
    top_k: int = TOP_K,
    c: float = 1.0,
    fitted_for: str = "",
    fitted_on: Mapping[str, Any] | None = None,
) -> ConceptScorer:
    """Fit the scorer by L2-regularised logistic regression (scikit-learn, ``C=c``) on standardised features.

    ``examples``: one ``(features, labels)`` pair per span, ``features`` from :func:`candidate_features` and
    ``labels[i]`` true when candidate ``i`` is a term the text names (what
    :meth:`medlens.retrieval._concepts.ConceptRecognizer.training_examples` gives for labelled texts).
    """
    from sklearn.linear_model import LogisticRegression

    xs = [np.asarray(x, dtype=np.float64) for x, _ in examples if len(x)]
    ys = [np.asarray(y, dtype=bool) for x, y in examples if len(x)]
    if not xs:
        raise InputError("no candidate spans to fit the concept scorer on.")
    x, y = np.concatenate(xs), np.concatenate(ys)
    if x.shape[1] != len(FEATURES) or len(x) != len(y):
        raise InputError(f"expected {len(FEATURES)} feature columns and one label per row; got {x.shape}, {len(y)}.")
    if y.all() or not y.any():
        raise InputError("the concept scorer needs both right and wrong candidates to fit; label more texts.")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    lr = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / scale, y)
    return ConceptScorer(
        mean=tuple(float(v) for v in mean),
        scale=tuple(float(v) for v in scale),
        coef=tuple(float(v) for v in lr.coef_[0]),
        intercept=float(lr.intercept_[0]),
        threshold=float(threshold),
        top_k=top_k,
        fitted_for=fitted_for,
        fitted_on=dict(fitted_on or {}),
    )


#: Fitted by ``scripts/fit_concept_scorer.py`` on rare-hpo-v2 *dev* (n=200, seed 0) for the packaged MiniLM with the
#: default self-alignment map; threshold chosen there by 2-fold cross-validation over the dev cases (module
#: docstring).
DEFAULT_SCORER: ConceptScorer | None = ConceptScorer(
    mean=(0.667451, -0.144958, 0.427321, 0.282437, 5.63065, 0.357627, 0.351004),
    scale=(0.122203, 0.120695, 0.287168, 0.192208, 2.30419, 0.335249, 0.291415),
    coef=(1.19583, 1.62398, 1.0692, -0.946442, -0.795285, -0.43821, 0.666773),
    intercept=-4.16653,
    threshold=0.25,
    fitted_for="st|sentence-transformers/all-MiniLM-L6-v2|256|True|map-ee892d3407acfb95",
    fitted_on={"generator": "rare-hpo-v2", "split": "dev", "n": 200, "seed": 0},
)
