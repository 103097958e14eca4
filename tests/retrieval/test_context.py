"""Negation, uncertainty and family-history statuses of phenotype mentions (both HPO recognisers and the ranker)."""

from __future__ import annotations

import numpy as np
import pytest

from medlens.retrieval import HashingEmbedder
from medlens.retrieval._concepts import ConceptRecognizer, candidate_spans
from medlens.retrieval._context import FAMILY_POST, FAMILY_PRE, STATUSES, UNCERTAINTY_PRE, mention_status, tokens
from medlens.retrieval._phenotype import OntologyRanker, PhenotypeMatcher, PhenotypeModel

MATCHER = PhenotypeMatcher(
    {
        "S": ["Seizure"],
        "A": ["Ataxia"],
        "H": ["Hypotonia"],
        "D": ["Deafness"],
        "E": ["Epilepsy"],
        "X": ["Absent speech"],
    }
)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Seizures and ataxia.", [("S", "present"), ("A", "present")]),
        ("No seizures, ataxia or hypotonia.", [("S", "negated"), ("A", "negated"), ("H", "negated")]),
        ("Seizures were ruled out; ataxia.", [("S", "negated"), ("A", "present")]),
        ("Epilepsy was excluded.", [("E", "negated")]),
        # a history's resolved or normal finding is still reported; "absent" inside a term is the term
        ("Seizures, since resolved.", [("S", "present")]),
        ("Absent speech.", [("X", "present")]),
        # uncertainty, before or after the finding, scoped to its clause
        ("Possible seizures; hypotonia.", [("S", "uncertain"), ("H", "present")]),
        ("Suspected epilepsy but clear ataxia.", [("E", "uncertain"), ("A", "present")]),
        ("Seizures cannot be excluded.", [("S", "uncertain")]),
        ("Epilepsy is not excluded.", [("E", "uncertain")]),
        ("To rule out epilepsy.", [("E", "uncertain")]),
        ("Ataxia is questionable.", [("A", "uncertain")]),
        ("Seizures cannot be completely excluded.", [("S", "uncertain")]),
        # a hedge reaches forward, or back only with its verb: the finding before "and possible ..." stays present
        ("She has hypotonia and possible seizures.", [("H", "present"), ("S", "uncertain")]),
        ("Possible seizures? Ataxia since age 2.", [("S", "uncertain"), ("A", "present")]),
        ("Seizures are possible.", [("S", "uncertain")]),
        # words that also say other things are no cues
        ("Seizures were first suspected at 6 months.", [("S", "present")]),
        ("Seizures are unlikely to recur.", [("S", "present")]),
        ("Ataxia made walking possible only with support.", [("A", "present")]),
        ("Parents had a question about his seizures.", [("S", "present")]),
        # a relative's finding, however it is said; a relative who reports is no cue
        ("Family history of deafness and epilepsy.", [("D", "family"), ("E", "family")]),
        ("Family history: epilepsy in a maternal uncle. Ataxia.", [("E", "family"), ("A", "present")]),
        ("Her brother has seizures; she has ataxia.", [("S", "family"), ("A", "present")]),
        ("She has ataxia and a sister with deafness.", [("A", "present"), ("D", "family")]),
        ("Deafness runs in the family.", [("D", "family")]),
        ("Parents report hypotonia. Mother reports seizures.", [("H", "present"), ("S", "present")]),
        # family beats negation: no family history says nothing about the patient
        ("No family history of seizures.", [("S", "family")]),
        ("Family history: seizures. FHx: ataxia.", [("S", "family"), ("A", "family")]),
        ("Epilepsy in her mother. Her brothers have seizures.", [("E", "family"), ("S", "family")]),
        ("Family history of deafness, epilepsy and ataxia.", [("D", "family"), ("E", "family"), ("A", "family")]),
        # the patient is often the son, daughter or twin; an unremarkable family history ends there
        ("Mother reports her son has seizures.", [("S", "present")]),
        ("He is a twin with hypotonia.", [("H", "present")]),
        ("Family history noncontributory, seizures since age 2.", [("S", "present")]),
        ("Family history is unremarkable and seizures began at 2.", [("S", "present")]),
    ],
)
def test_the_exact_matcher_gives_each_mention_its_status(text, want):
    assert [(m.term, m.status) for m in MATCHER.match(text)] == want
    assert all(m.negated == (m.status == "negated") for m in MATCHER.match(text))


def test_mention_status_returns_one_known_status_per_mention():
    words = tokens("Possible seizures, but no ataxia. Her brother has deafness; hypotonia.")
    got = mention_status(words, [(1, 2), (5, 6), (10, 11), (12, 13)])
    assert got == ["uncertain", "negated", "family", "present"]
    assert set(got) <= set(STATUSES)
    assert mention_status(words, []) == []


def test_cue_phrases_are_single_tokenised_phrases():
    # every cue must survive the recognisers' tokenizer (a cue that tokenises to nothing would never fire)
    for cue in (*UNCERTAINTY_PRE, *FAMILY_PRE, *FAMILY_POST):
        assert tokens(cue), cue


def _rec() -> ConceptRecognizer:
    labels = [("H", "floppy muscles"), ("M", "small head size"), ("S", "episodes of jerking")]
    emb = HashingEmbedder(dim=512)
    return ConceptRecognizer(labels, emb.embed([x for _, x in labels]), emb, threshold=0.6)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Possible floppy muscles.", [("H", "uncertain")]),
        ("Her brother has a small head size; episodes of jerking.", [("M", "family"), ("S", "present")]),
        ("Episodes of jerking cannot be excluded.", [("S", "uncertain")]),
        ("To rule out episodes of jerking, floppy muscles.", [("S", "uncertain"), ("H", "uncertain")]),
        ("No small head size.", [("M", "negated")]),
    ],
)
def test_the_concept_recogniser_scopes_the_same_cues(text, want):
    assert [(m.term, m.status) for m in _rec().match(text)] == want


def test_cue_words_are_trimmed_from_candidate_spans():
    # a cue inside a span would be part of the mention and never fire
    texts = [
        s.text for s in candidate_spans("Suspected floppy muscles; her sister has a small head; rule out fits.")[1]
    ]
    assert texts == ["floppy muscles", "small head", "fits"]
    # "out" is context only after "rule"
    assert [s.text for s in candidate_spans("Ears that stick out.")[1]] == ["ears that stick out"]


def test_the_ranker_counts_uncertain_and_family_mentions_neither_way():
    model = PhenotypeModel({"R": [], "S": ["R"], "A": ["R"], "D": ["R"]}, {"d1": ["S"], "d2": ["A"], "d3": ["D"]})
    exact = PhenotypeMatcher({"S": ["seizure"], "A": ["ataxia"], "D": ["deafness"]})
    r = OntologyRanker(exact, model, np.array([0, 1, 2]))
    assert r.query_terms("Ataxia. Possible seizures. Family history of deafness.") == (["A"], [])
    assert r.query_terms("Ataxia. No seizures. No family history of deafness.") == (["A"], ["S"])
    scores, rows = r.search("Possible seizures; family history of deafness; ataxia.", top_k=3)
    assert rows.tolist() == [1]


def test_every_cue_is_trimmed_from_concept_spans():
    # otherwise a span would swallow its cue ("her brother who has floppy muscles" -> "who has floppy muscles"),
    # the mention would cover the cue's words, and the cue could never fire
    from medlens.retrieval._context import NEGATION_POST, UNCERTAINTY_POST

    for cue in (*UNCERTAINTY_PRE, *FAMILY_PRE):
        assert [s.text for s in candidate_spans(f"{cue} floppy muscles.")[1]] == ["floppy muscles"], cue
    for cue in (*UNCERTAINTY_POST, *FAMILY_POST, *NEGATION_POST):
        assert [s.text for s in candidate_spans(f"floppy muscles {cue}.")[1]] == ["floppy muscles"], cue
    # a relative's side is context only before a relative, "cannot" only before "be"
    assert [s.text for s in candidate_spans("Maternal antibodies.")[1]] == ["maternal antibodies"]
    assert [s.text for s in candidate_spans("Floppy muscles in two maternal uncles.")[1]] == ["floppy muscles"]
    assert [s.text for s in candidate_spans("He cannot walk unaided.")[1]] == ["cannot walk unaided"]
    assert [s.text for s in candidate_spans("She can not sit.")[1]] == ["can not sit"]


def test_the_ranker_lists_every_mention_with_its_status():
    model = PhenotypeModel({"R": [], "S": ["R"], "A": ["R"], "D": ["R"]}, {"d1": ["S"], "d2": ["A"], "d3": ["D"]})
    exact = PhenotypeMatcher({"S": ["Seizure", "fits"], "A": ["Ataxia"], "D": ["Deafness"]})
    r = OntologyRanker(exact, model, np.array([0, 1, 2]))
    got = r.mentions("Possible fits. Her brother has deafness; ataxia, no seizures.")
    assert got == [
        {"term": "S", "name": "Seizure", "status": "uncertain", "text": "fit", "by": "exact"},
        {"term": "D", "name": "Deafness", "status": "family", "text": "deafness", "by": "exact"},
        {"term": "A", "name": "Ataxia", "status": "present", "text": "ataxia", "by": "exact"},
        {"term": "S", "name": "Seizure", "status": "negated", "text": "seizure", "by": "exact"},
    ]
    # a term both uncertain and negated is only negated; the uncertain mention is no evidence either way
    assert r.query_terms("Possible fits. Her brother has deafness; ataxia, no seizures.") == (["A"], ["S"])
