"""The concept scorer: features by hand, parity of the fit with scikit-learn, re-ranking and refinement on
hand-built ontologies, and the default scorer matching the packaged recipe."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medlens._validation import InputError
from medlens.retrieval import HashingEmbedder
from medlens.retrieval._concept_scorer import (
    DEFAULT_SCORER,
    FEATURES,
    ConceptScorer,
    candidate_features,
    fit_concept_scorer,
    scorer_key,
)
from medlens.retrieval._concepts import ConceptRecognizer, hpo_concept_recognizer
from medlens.retrieval._phenotype import OntologyRanker, PhenotypeMatcher, PhenotypeModel


class TableEmbedder:
    """Vectors looked up by text (cosines set by hand); unknown texts get a vector orthogonal to all."""

    model_id = "test/table"
    cache_key = "table"

    def __init__(self, table: dict[str, list[float]], dim: int = 4) -> None:
        self.table, self.dim = table, dim

    def embed(self, texts, **_):
        out = []
        for t in texts:
            v = np.array(self.table.get(t, [0.0] * (self.dim - 1) + [1.0]), dtype=np.float32)
            out.append(v / np.linalg.norm(v))
        return np.stack(out)


def _only(feature: str, weight: float = 10.0, at: float = 0.5, threshold: float = 0.5) -> ConceptScorer:
    """A scorer whose probability is sigmoid(weight * (feature - at))."""
    coef = tuple(weight if f == feature else 0.0 for f in FEATURES)
    mean = tuple(at if f == feature else 0.0 for f in FEATURES)
    return ConceptScorer(mean=mean, scale=(1.0,) * 7, coef=coef, intercept=0.0, threshold=threshold)


def test_features_by_hand_dedupe_terms_and_keep_top_k():
    sims = np.array([0.2, 0.9, 0.85, 0.7, 0.6])
    terms = np.array(["C", "A", "A", "B", "D"], dtype=object)
    words = [
        frozenset({"x"}),
        frozenset({"pedal", "oedema"}),
        frozenset({"swelling"}),
        frozenset({"oedema"}),
        frozenset(),
    ]
    got_terms, x = candidate_features(sims, terms, words, frozenset({"oedema"}), 1.0, {"A": 3.0, "B": 1.0}.get, top_k=2)
    assert got_terms == ["A", "B"]  # A once (its best label), then B; C and D cut by top_k
    assert x.shape == (2, len(FEATURES))
    a, b = x
    assert a.tolist() == pytest.approx([0.9, 0.0, 1.0, 0.9, 3.0, 1.0, 0.5])
    assert b.tolist() == pytest.approx([0.7, -0.2, 1.0, 0.7, 1.0, 1.0, 1.0])


def test_unknown_information_content_counts_zero():
    _, x = candidate_features(
        np.array([0.5]), np.array(["A"], dtype=object), [frozenset()], frozenset(), 0.5, lambda t: float("nan")
    )
    assert x[0, FEATURES.index("ic")] == 0.0


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_fit_equals_scikit_learn_pipeline(seed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(120, 7)) * rng.uniform(0.1, 3, size=7) + rng.normal(size=7)
    y = (x @ rng.normal(size=7) + rng.normal(size=120)) > 0
    if y.all() or not y.any():
        y[0] = not y[0]
    examples = [(x[i : i + 10], y[i : i + 10]) for i in range(0, 120, 10)]
    ours = fit_concept_scorer(examples, threshold=0.3)
    peer = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000)).fit(x, y)
    assert ours.probability(x) == pytest.approx(peer.predict_proba(x)[:, 1], abs=1e-4)


def test_fit_refuses_one_class_and_no_data():
    x = np.ones((3, 7))
    with pytest.raises(InputError, match="both right and wrong"):
        fit_concept_scorer([(x, np.ones(3, bool))], threshold=0.5)
    with pytest.raises(InputError, match="no candidate"):
        fit_concept_scorer([(np.zeros((0, 7)), np.zeros(0, bool))], threshold=0.5)


def test_bad_scorers_are_refused():
    with pytest.raises(InputError, match="threshold"):
        _only("cosine", threshold=1.0)
    with pytest.raises(InputError, match="scales"):
        ConceptScorer(mean=(0,) * 7, scale=(0,) * 7, coef=(0,) * 7, intercept=0.0, threshold=0.5)
    with pytest.raises(InputError, match="7 means"):
        ConceptScorer(mean=(0,) * 6, scale=(1,) * 6, coef=(0,) * 6, intercept=0.0, threshold=0.5)


# a small ontology: R > EDEMA > PEDAL (pedal oedema is a kind of oedema); R > ATAXIA > EPISODIC; R > RASH
PARENTS = {"R": [], "EDEMA": ["R"], "PEDAL": ["EDEMA"], "ATAXIA": ["R"], "EPISODIC": ["ATAXIA"], "RASH": ["R"]}
MODEL = PhenotypeModel(PARENTS, {"d1": ["PEDAL", "EPISODIC"], "d2": ["EDEMA"], "d3": ["RASH", "ATAXIA"]})
LABELS = [("EDEMA", "oedema"), ("PEDAL", "pedal oedema"), ("EPISODIC", "episodic ataxia"), ("RASH", "rash")]
TABLE = {
    "oedema": [1.0, 0.0, 0.0, 0.0],
    "pedal oedema": [1.0, 0.3, 0.0, 0.0],
    "episodic ataxia": [0.0, 1.0, 0.0, 0.0],
    "rash": [0.0, 0.0, 1.0, 0.0],
    # the spans of the texts below
    "swollen oedema": [1.0, 0.6, 0.0, 0.0],  # nearer "pedal oedema" than "oedema"
    "paroxysmal ataxia": [0.0, 1.0, 0.05, 0.0],
    "sudden ataxia": [0.0, 0.0, 1.0, 0.05],  # nearest "rash", no descendant of ataxia
}


def _recognizer(scorer=None, exact=None, ontology=MODEL) -> ConceptRecognizer:
    emb = TableEmbedder(TABLE)
    return ConceptRecognizer(
        LABELS, emb.embed([x for _, x in LABELS]), emb, threshold=0.5, exact=exact, ontology=ontology, scorer=scorer
    )


def test_the_scorer_reranks_a_span_to_the_term_whose_label_it_covers():
    # by cosine "swollen oedema" is "pedal oedema"; a label with a word the span lacks names something more
    # specific, and a scorer that reads label_covered prefers the general term
    assert [m.term for m in _recognizer().match("swollen oedema.")] == ["PEDAL"]
    got = _recognizer(scorer=_only("label_covered")).match("swollen oedema.")
    assert [(m.term, m.negated) for m in got] == [("EDEMA", False)]
    assert got[0].score == pytest.approx(1 / (1 + np.exp(-10 * 0.5)))


def test_the_scorer_threshold_rejects_improbable_spans():
    rec = _recognizer(scorer=_only("cosine", at=0.99, threshold=0.5))
    assert rec.match("swollen oedema.") == []  # cosine < 0.99: probability < 0.5
    assert [m.term for m in rec.match("rash.")] == ["RASH"]


def test_a_span_with_an_exact_ancestor_is_refined_only_to_a_descendant():
    exact = PhenotypeMatcher({"ATAXIA": ["ataxia"], "RASH": ["rash"]})
    rec = _recognizer(exact=exact)
    got = rec.match("Paroxysmal ataxia.")
    assert [(m.term, m.refines) for m in got] == [("EPISODIC", ("ATAXIA",))]
    ranker = OntologyRanker(exact, MODEL, np.arange(3), concepts=rec)
    assert ranker.query_terms("Paroxysmal ataxia. Rash.") == (["RASH", "EPISODIC"], [])
    # the span's nearest term is no descendant of the exact one: the exact term stays, nothing is added
    assert rec.match("Sudden ataxia.") == []
    assert ranker.query_terms("Sudden ataxia.") == (["ATAXIA"], [])
    # without the ontology such spans are left to the exact matcher, as before
    plain = _recognizer(exact=exact, ontology=None)
    assert plain.match("Paroxysmal ataxia.") == []


def test_training_examples_label_candidates_by_the_named_terms():
    ex = _recognizer().training_examples(["swollen oedema. No rash."], [{"EDEMA", "RASH"}])
    assert len(ex) == 2
    (x1, y1), (x2, y2) = ex
    assert x1.shape[1] == len(FEATURES)
    assert len(x1) == len(y1) == 4
    assert y1[:2].tolist() == [False, True]  # PEDAL (nearest, not named), EDEMA (named)
    assert y2[0]  # "rash"
    with pytest.raises(InputError, match="ontology"):
        _recognizer(ontology=None).training_examples(["x"], [set()])
    with pytest.raises(InputError, match="ontology"):
        _recognizer(scorer=_only("cosine"), ontology=None)


def test_auto_uses_the_default_scorer_only_for_its_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDLENS_CACHE", str(tmp_path))
    from medlens.retrieval import hpo_renderings

    terms = sorted(hpo_renderings())[:40]
    rec = hpo_concept_recognizer(HashingEmbedder(dim=32), terms, adapt=False, ontology=MODEL)
    assert rec.scorer is None
    assert rec.spec()["scorer"] is None
    mine = fit_concept_scorer([(np.eye(7), np.eye(7)[0].astype(bool))], threshold=0.4)
    rec = hpo_concept_recognizer(HashingEmbedder(dim=32), terms, adapt=False, ontology=MODEL, scorer=mine)
    assert rec.scorer is mine
    assert rec.spec()["scorer"]["threshold"] == 0.4
    with pytest.raises(InputError, match="scorer"):
        hpo_concept_recognizer(HashingEmbedder(dim=32), terms, adapt=False, scorer="best")


def test_the_default_scorer_is_fitted_for_the_packaged_minilm_and_default_map():
    """If the HPO data, the rendering split, the label table or the map's settings change, the default scorer
    silently stops applying; this catches it (refit with scripts/fit_concept_scorer.py)."""
    from medlens.retrieval import load_corpus, load_embedder, load_hpo_knowledge
    from medlens.retrieval._adapt import ADAPTER_VERSION, AdapterSettings, labels_digest
    from medlens.retrieval._concepts import concept_labels
    from medlens.retrieval._hpo_terms import hpo_renderings
    from medlens.retrieval._phenotype import hpo_ranker_parts

    corpus = load_corpus("hpo")
    _, _, reach = hpo_ranker_parts(load_hpo_knowledge(), [d.id for d in corpus.documents])
    labels = concept_labels(hpo_renderings(), reach)

    class Recipe:  # the spec a default-settings map trained on these labels carries
        def spec(self):
            return {"version": ADAPTER_VERSION, "data_sha256": labels_digest(labels), **vars(AdapterSettings())}

    assert DEFAULT_SCORER is not None
    assert DEFAULT_SCORER.fitted_for == scorer_key(load_embedder("minilm"), Recipe())
