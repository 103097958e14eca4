"""The ontology-aware ranker on a hand-built ontology: concept recognition, negation, IC and both scores.

Toy ontology (``is_a`` edges) and annotations, with closure counts n(t) over N = 3 diseases::

    R (root, n=3)
    ├── A  Abnormality of the nervous system   n=2 (d1, d2)
    │   ├── S  Seizure / Epileptic seizure / Seizures   n=2 (d1 via FS, d2)
    │   │   └── FS  Focal seizure                       n=1 (d1)
    │   └── X  Ataxia                                   n=1 (d1 via CX)
    │       └── CX  Cerebellar ataxia                   n=1 (d1)
    └── B  Short stature                                n=2 (d2, d3)

    d1 = {FS: 1.0, CX: 0.5}    d2 = {S: 0.2, B: 1.0}    d3 = {B: unknown -> 0.5}
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.retrieval._phenotype import OntologyRanker, PhenotypeMatcher, PhenotypeModel

PARENTS = {"R": [], "A": ["R"], "S": ["A"], "FS": ["S"], "X": ["A"], "CX": ["X"], "B": ["R"]}
LABELS = {
    "R": ["All"],
    "A": ["Abnormality of the nervous system"],
    "S": ["Seizure", "Epileptic seizure", "Seizures"],
    "FS": ["Focal seizure"],
    "X": ["Ataxia"],
    "CX": ["Cerebellar ataxia"],
    "B": ["Short stature"],
}
ANNOTATIONS = {"d1": {"FS": 1.0, "CX": 0.5}, "d2": {"S": 0.2, "B": 1.0}, "d3": {"B": None}}


@pytest.fixture
def model() -> PhenotypeModel:
    return PhenotypeModel(PARENTS, ANNOTATIONS, epsilon=0.5)  # rho = (1 - eps) / eps = 1: easy numbers


@pytest.fixture
def matcher() -> PhenotypeMatcher:
    return PhenotypeMatcher(LABELS)


def _terms(matcher, text):
    return [(m.term, m.negated) for m in matcher.match(text)]


def test_longest_match_synonyms_plurals_and_function_words(matcher):
    assert _terms(matcher, "Focal seizures, cerebellar ataxia and short stature.") == [
        ("FS", False),
        ("CX", False),
        ("B", False),
    ]
    assert _terms(matcher, "Epileptic seizures; ataxia") == [("S", False), ("X", False)]
    assert _terms(matcher, "abnormality of nervous system") == [("A", False)]  # "of the" ignored
    assert _terms(matcher, "cerebellar, ataxia") == [("X", False)]  # a phrase never spans punctuation
    assert _terms(matcher, "Café-au-lait") == []


def test_negation_scope(matcher):
    assert _terms(matcher, "No seizures or ataxia but short stature.") == [("S", True), ("X", True), ("B", False)]
    assert _terms(matcher, "without seizures and with ataxia") == [("S", True), ("X", False)]
    assert _terms(matcher, "Negative for focal seizure; ataxia.") == [("FS", True), ("X", False)]
    # one engine (medlens.text): a comma does not end a pre-cue scope, so a listed negation negates the whole
    # list (NegEx; "No seizures, ataxia or short stature." means none of the three). Before medlens.text this
    # matcher stopped at the comma and asserted ataxia here.
    assert _terms(matcher, "No seizures, ataxia.") == [("S", True), ("X", True)]
    assert _terms(matcher, "No seizures, ataxia or short stature.") == [("S", True), ("X", True), ("B", True)]
    assert _terms(matcher, "No seizures. Ataxia.") == [("S", True), ("X", False)]  # a full stop ends it
    assert _terms(matcher, "No seizures; presents ataxia") == [("S", True), ("X", False)]
    assert _terms(matcher, "Seizures, no change in ataxia") == [("S", False), ("X", False)]  # pseudo-negation
    assert _terms(matcher, "The child presents with no seizures. Ataxia.") == [("S", True), ("X", False)]


def test_a_phrase_goes_to_the_term_it_names_then_to_the_smallest_id():
    m = PhenotypeMatcher({"T1": ["Foo", "Bar"], "T0": ["Bar"], "T3": ["Baz", "Qux"], "T2": ["Zed", "Qux"]})
    assert _terms(m, "bar") == [("T0", False)]  # the name of T0 beats the synonym of T1
    assert _terms(m, "qux") == [("T2", False)]  # synonyms of both: smallest id


def test_closure_counts_and_information_content(model):
    assert model.count[[model.term_index[t] for t in ("R", "A", "S", "FS", "X", "CX", "B")]].tolist() == [
        3,
        2,
        2,
        1,
        1,
        1,
        2,
    ]
    assert model.information_content("R") == 0.0
    assert model.information_content("S") == pytest.approx(math.log(3 / 2))
    assert model.information_content("FS") == pytest.approx(math.log(3))
    assert model.ancestors("FS") == ("A", "FS", "R", "S")
    rows, share = model.diseases_with("A")
    assert rows.tolist() == [0, 1]
    np.testing.assert_allclose(share, [1.0, 1 / 6])  # d1: (1 + 0.5) / 1.5; d2: 0.2 / 1.2


def test_resnik_best_match_average_by_hand(model):
    np.testing.assert_allclose(model.scores(["FS"], method="resnik"), [math.log(3), math.log(1.5), 0.0])
    np.testing.assert_allclose(
        model.scores(["FS", "B"], method="resnik"),
        [math.log(3) / 2, math.log(1.5), math.log(1.5) / 2],
    )
    # a negated term costs its IC to the diseases that have it
    np.testing.assert_allclose(
        model.scores(["FS"], ["B"], method="resnik"), [math.log(3), 0.0, -math.log(1.5)], atol=1e-12
    )


def test_ic_overlap_by_hand(model):
    # s_d(S): d1 2/3 (FS under S), d2 1/6, d3 0; p(S) = 2/3; rho = 1
    np.testing.assert_allclose(model.scores(["S"]), [math.log(2), math.log(1.25), 0.0])
    # negated B: s_d(B) = 0, 5/6, 1 and p(B) = 2/3
    np.testing.assert_allclose(
        model.scores(["S"], ["B"]), [math.log(2), math.log(1.25) - math.log(2.25), -math.log(2.5)]
    )
    # repeats count once; a term both asserted and negated counts as asserted; unknown terms are ignored
    np.testing.assert_allclose(model.scores(["S", "S", "HP:404"], ["S"]), model.scores(["S"]))
    # a smaller epsilon trusts matches more: ln(1 + 99 * share / p)
    strict = PhenotypeModel(PARENTS, ANNOTATIONS, epsilon=0.01)
    assert strict.scores(["FS"])[0] == pytest.approx(math.log(1 + 99 * (2 / 3) * 3))


def test_an_unrelated_common_finding_does_not_outweigh_a_specific_one():
    """The case that motivates ic-overlap: Resnik gives a common finding's full IC to every disease that has it."""
    parents = {"R": [], "rare": ["R"], "common": ["R"], "other": ["R"]}
    ann = {"right": ["rare", "other"], **{f"w{i}": ["common"] for i in range(8)}, "w8": ["common", "rare"]}
    m = PhenotypeModel(parents, ann)
    query = ["rare", "common"]  # the right disease lacks "common"; w8 has both
    assert int(np.argmax(m.scores(query, method="resnik"))) == m.diseases.index("w8")
    ic = m.scores(query)
    assert ic[m.diseases.index("w8")] > ic[m.diseases.index("right")] > ic[m.diseases.index("w0")]


def test_model_errors():
    with pytest.raises(InputError, match="not a term of the ontology"):
        PhenotypeModel({"R": [], "A": ["Q"]}, {"d": ["A"]})
    with pytest.raises(InputError, match="annotated with 'Z'"):
        PhenotypeModel(PARENTS, {"d": ["Z"]})
    with pytest.raises(InputError, match="cycle"):
        PhenotypeModel({"A": ["B"], "B": ["A"]}, {"d": ["A"]})
    with pytest.raises(InputError, match="epsilon"):
        PhenotypeModel(PARENTS, ANNOTATIONS, epsilon=0)
    with pytest.raises(InputError, match="unknown ontology score"):
        PhenotypeModel(PARENTS, ANNOTATIONS).scores(["S"], method="cosine")


def test_ontology_and_hybrid_retrievers_on_a_toy_index(matcher, model):
    from medlens.retrieval import Corpus, Document, HashingEmbedder, RetrievalIndex

    docs = [
        Document("d1", "Alpha syndrome", "Focal seizure; cerebellar ataxia"),
        Document("d2", "Beta syndrome", "Seizure; short stature"),
        Document("d3", "Gamma dwarfism", "Short stature"),
        Document("d4", "Delta disease", "Nothing in the ontology"),
    ]
    idx = RetrievalIndex.build(Corpus(docs, name="toy"), embedder=HashingEmbedder(32), use_cache=False)
    with pytest.raises(InputError, match="need an index of the built-in hpo corpus"):
        idx.search("focal seizures", retriever="ontology")
    idx.phenotypes = OntologyRanker(matcher, model, np.array([0, 1, 2]))
    hits = idx.search("A boy with focal seizures and no short stature.", top_k=4, retriever="ontology")
    # d2 has only the parent "Seizure" (no credit for a more specific query term) and the negated finding: < 0
    assert [h.id for h in hits] == ["d1"]
    assert hits[0].score == pytest.approx(model.scores(["FS"], ["B"])[0])
    assert idx.search("nothing recognisable here", top_k=3, retriever="ontology") == []
    hy = idx.search("focal seizures", top_k=3, retriever="hybrid")
    assert hy[0].id == "d1"
    assert set(hy[0].ranks) == {"bm25", "dense", "ontology"}
    assert hy[0].ranks["ontology"] == 1
    resnik = OntologyRanker(matcher, model, np.array([0, 1, 2]), method="resnik")
    assert resnik.spec()["score"] == "resnik"
    with pytest.raises(InputError, match="index rows"):
        OntologyRanker(matcher, model, np.array([0, 1]))
