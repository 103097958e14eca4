"""Embedding-based concept recognition on hand-built label tables (hashing embedder: no model, exact cosines)."""

from __future__ import annotations

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.retrieval import HashingEmbedder
from medlens.retrieval._concepts import ConceptRecognizer, candidate_spans, concept_labels
from medlens.retrieval._hpo_terms import TermRendering, parse_renderings, rendering_half
from medlens.retrieval._phenotype import OntologyRanker, PhenotypeMatcher, PhenotypeModel, indexed_labels

LABELS = [
    ("T1", "floppy muscles"),
    ("T1", "low muscle tone"),
    ("T2", "small head size"),
    ("T3", "episodes of jerking"),
]


def _rec(threshold: float = 0.6, exact=None) -> ConceptRecognizer:
    emb = HashingEmbedder(dim=512)
    return ConceptRecognizer(LABELS, emb.embed([x for _, x in LABELS]), emb, threshold=threshold, exact=exact)


def test_spans_trim_templates_and_split_lists():
    _, spans = candidate_spans("Since age 3, parents report floppy muscles, small head size and fits; no rash.")
    texts = [s.text for s in spans]
    assert texts[:3] == ["floppy muscles", "small head size", "fits"]
    assert "floppy muscles small head size and fits" in texts  # the whole clause too
    assert texts[-1] == "rash"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Brain MRI shows swelling of the brain.", ["swelling of the brain"]),
        ("MRI of the brain shows a small cerebellum.", ["small cerebellum"]),
        ("There is fluid in the brain on brain MRI.", ["fluid in the brain"]),
        ("Head CT: a brain malformation.", ["brain malformation"]),
        ("Abnormal shape of brain.", ["abnormal shape of brain"]),
        ("The boy is referred for brain MRI.", []),
        ("Renal ultrasound shows small kidneys.", ["small kidneys"]),
        ("X-rays of the hand show short metacarpals; a thickened skull.", ["short metacarpals", "thickened skull"]),
        ("Bones that mature late on x-ray.", ["bones that mature late"]),
    ],
)
def test_a_body_site_is_context_only_where_it_names_an_image(text, want):
    # "brain" next to an imaging word is template ("brain MRI shows", "MRI of the brain"), elsewhere it is part of
    # the finding: trimming it turned "swelling of the brain" into "swelling" and "a brain attack" into "attack"
    assert [s.text for s in candidate_spans(text)[1]] == want


def test_match_takes_the_best_label_above_threshold_and_scopes_negation():
    got = _rec().match("A boy presents with floppy muscles. There is no small head size. Blue car.")
    assert [(m.term, m.status, m.negated) for m in got] == [("T1", "present", False), ("T2", "negated", True)]
    assert all(c >= 0.6 for _, _, c, *_ in got)
    # cosine 1 for an exact label; a stricter threshold than any partial match keeps only exact labels
    got = _rec(threshold=0.99).match("low muscle tone and jerking episodes often")
    assert [t for t, *_ in got] == ["T1"]


def test_negation_stops_at_the_clause():
    got = _rec().match("No small head size but floppy muscles.")
    assert [(t, st) for t, st, *_ in got] == [("T2", "negated"), ("T1", "present")]


def test_a_whole_clause_wins_over_its_pieces_only_when_more_similar():
    emb = HashingEmbedder(dim=512)
    labels = [("A", "weakness and wasting of the legs"), ("B", "weakness")]
    rec = ConceptRecognizer(labels, emb.embed([x for _, x in labels]), emb, threshold=0.5)
    assert [t for t, *_ in rec.match("weakness and wasting of the legs.")] == ["A"]
    assert [t for t, *_ in rec.match("weakness.")] == ["B"]


def test_spans_the_exact_matcher_finds_are_left_to_it():
    exact = PhenotypeMatcher({"T9": ["floppy muscles"]})
    assert _rec(exact=exact).match("floppy muscles and episodes of jerking") == [
        ("T3", "present", pytest.approx(1.0, abs=1e-5), "episodes of jerking", ())
    ]


def test_the_ranker_adds_recognised_concepts_to_exact_ones():
    model = PhenotypeModel({"R": [], "T1": ["R"], "T2": ["R"], "T3": ["R"]}, {"d1": ["T1"], "d2": ["T3"]})
    exact = PhenotypeMatcher({"T3": ["seizure"]})
    r = OntologyRanker(exact, model, np.array([0, 1]), concepts=_rec(exact=exact))
    assert r.query_terms("seizure, floppy muscles, no small head size.") == (["T3", "T1"], ["T2"])
    assert r.spec()["concepts"]["n_labels"] == 4
    assert OntologyRanker(exact, model, np.array([0, 1])).query_terms("floppy muscles") == ([], [])


def test_bad_inputs_are_refused():
    emb = HashingEmbedder(dim=8)
    with pytest.raises(InputError, match="vectors"):
        ConceptRecognizer(LABELS, np.zeros((2, 8)), emb)
    with pytest.raises(InputError, match="threshold"):
        ConceptRecognizer(LABELS, np.zeros((4, 8)), emb, threshold=0)
    with pytest.raises(InputError, match="at least one"):
        ConceptRecognizer([], np.zeros((0, 8)), emb)


OBO = """format-version: 1.2

[Term]
id: HP:1
name: Root

[Term]
id: HP:2
name: Small head
def: "A head that is small. More text." [PMID:1]
synonym: "Microcephaly" EXACT []
synonym: "Tiny noggin" BROAD layperson [x]
synonym: "tiny  noggin." EXACT []
is_a: HP:1

[Term]
id: HP:3
name: Old
is_obsolete: true
"""


def test_obo_renderings_types_halves_and_dedup():
    r = parse_renderings(OBO.splitlines())
    assert set(r) == {"HP:1", "HP:2"}
    rows = r["HP:2"]
    assert [(x.kind, x.text) for x in rows] == [
        ("name", "Small head"),
        ("definition", "A head that is small"),
        ("synonym", "Microcephaly"),
        ("synonym", "Tiny noggin"),
    ]
    assert rows[3].scope == "BROAD"
    assert rows[3].type == "layperson"
    assert all(x.half == rendering_half("HP:2", x.text) for x in rows[1:])
    labels = concept_labels(r, ["HP:2"])
    assert labels[0] == ("HP:2", "Small head")
    assert {x for _, x in labels[1:]} == {x.text for x in rows[1:] if x.half == "index"}


def test_indexed_labels_keep_names_and_the_index_half():
    labels = {"T": ["Name", *[f"syn {i}" for i in range(20)]]}
    out = indexed_labels(labels)["T"]
    assert out[0] == "Name"
    assert 0 < len(out) - 1 < 20
    assert {x for x in labels["T"][1:] if rendering_half("T", x) == "index"} == set(out[1:])
    assert TermRendering("T", "x", "name").half == "index"
