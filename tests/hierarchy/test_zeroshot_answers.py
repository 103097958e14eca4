"""Mapping generative models' free-text answers to taxonomy nodes: exact, synonym and embedding matching."""

from __future__ import annotations

import numpy as np
import pytest

from medlens._validation import InputError
from medlens.hierarchy import map_answer, map_answers
from medlens.hierarchy._answers import normalize_phrase
from medlens.taxonomy import Taxonomy, load_taxonomy


@pytest.fixture(scope="module")
def cxr() -> Taxonomy:
    return load_taxonomy("cxr_anatomic_v1")


@pytest.fixture
def tiny() -> Taxonomy:
    """root → Lung{Edema, Pneumonia}, Pleura{Pleural_Effusion}; Pleural_Effusion has the label 'pleural fluid'."""
    return Taxonomy(
        {"root": ["Lung", "Pleura"], "Lung": ["Edema", "Pneumonia"], "Pleura": ["Pleural_Effusion"]},
        labels={"Pleural_Effusion": ["pleural fluid"]},
    )


def test_normalize_phrase():
    assert normalize_phrase("Pleural Effusions") == "pleural effusion"
    assert normalize_phrase("pulmonary OEDEMA; haemothorax") == "pulmonary edema hemothorax"
    assert normalize_phrase("Air-space opacities / bullae") == "air space opacity bulla"
    assert normalize_phrase("atelectasis, masses, tumours") == "atelectasis mass tumor"


# ------------------------------------------------------------------------------------------------------ exact
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Pleural effusion", ["Pleural Effusion"]),
        ("The Pneumothorax.", ["Pneumothorax"]),  # articles and punctuation are ignored
        ("pleural-effusions", ["Pleural Effusion"]),  # hyphen and plural
        ("Edema; Pneumonia", ["Edema", "Pneumonia"]),
        ("cardiomegaly and pleural effusion", ["Cardiomegaly", "Pleural Effusion"]),
        ("Edema. Fracture.", ["Edema", "Fracture"]),
        ("left pleural effusion", ["root"]),  # exact needs the whole part to be a node
        ("effusion", ["root"]),  # a synonym, not a node id
        ("Lung Opacity, Pneumonia", ["Pneumonia"]),  # the ancestor is dropped
    ],
)
def test_exact(cxr, answer, expected):
    assert map_answer(answer, cxr, method="exact") == expected


def test_exact_reads_underscored_ids(tiny):
    assert map_answer("pleural effusion", tiny, method="exact") == ["Pleural_Effusion"]
    assert map_answer("pleural fluid", tiny, method="exact") == ["root"]


# ---------------------------------------------------------------------------------------------------- synonym
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Large left pleural effusion.", ["Pleural Effusion"]),
        ("Bilateral effusions.", ["Pleural Effusion"]),  # taxonomy label, plural
        ("Mild pulmonary oedema.", ["Edema"]),  # British spelling
        ("Air-space disease in the left base", ["Lung Opacity"]),
        ("Subcutaneous emphysema of the chest wall.", ["Musculoskeletal"]),  # longest match beats 'emphysema'
        ("Cardiomegaly and small left pleural effusion", ["Cardiomegaly", "Pleural Effusion"]),
        ("Lung opacity, likely pneumonia", ["Pneumonia"]),  # ancestor + descendant: the most specific
        ("Cardiomegaly without pleural effusion.", ["Cardiomegaly"]),
        ("No pleural effusion, pneumothorax or consolidation.", ["root"]),  # scope runs across commas
        ("No effusion but a small pneumothorax.", ["Pneumothorax"]),  # 'but' ends the scope
        ("Effusion is not seen; mild cardiomegaly", ["Cardiomegaly"]),  # 'not' after the mention
        ("The effusion has resolved.", ["root"]),
        ("Pneumonia cannot be excluded.", ["Pneumonia"]),  # pseudo-negation
        ("No change in the left effusion.", ["Pleural Effusion"]),  # pseudo-negation
        ("No Finding", ["No Finding"]),  # the trigger belongs to the term
        ("No acute cardiopulmonary process.", ["No Finding"]),
        ("Cardiomediastinal silhouette within normal limits.", ["root"]),  # 'normal' is part of the trigger
        ("normal", ["Normal"]),
        ("I am not able to answer.", ["root"]),
    ],
)
def test_synonym(cxr, answer, expected):
    assert map_answer(answer, cxr) == expected


def test_synonym_without_negation(cxr):
    assert map_answer("No pleural effusion.", cxr, negation=False) == ["Pleural Effusion"]


def test_user_synonyms_and_priorities():
    tax = Taxonomy({"root": ["Alpha", "Beta"]}, labels={"Alpha": ["shadow"]})
    assert map_answer("a shadow", tax) == ["Alpha"]
    assert map_answer("a shadow", tax, synonyms={"Beta": ["shadows"]}) == ["Beta"]  # user synonyms beat labels
    assert map_answer("alpha", tax, synonyms={"Beta": ["alpha"]}) == ["Alpha"]  # node ids beat everything
    assert map_answer("fluid in the chest", tax, synonyms={"Beta": ["fluid in the chest"]}) == ["Beta"]
    with pytest.raises(InputError, match="unknown node 'beta'.*Did you mean: 'Beta'"):
        map_answer("x", tax, synonyms={"beta": ["x"]})
    with pytest.raises(InputError, match="must be a list of strings"):
        map_answer("x", tax, synonyms={"Beta": "x"})


def test_map_answers_reports_how_each_node_was_matched(cxr):
    res = map_answers(
        ["Lung opacity, likely pneumonia.", "No pleural effusion.", "", "   ", "I don't know."],
        cxr,
    )
    assert [r.status for r in res] == ["matched", "negated", "empty", "empty", "unmatched"]
    assert [r.nodes for r in res] == [("Pneumonia",), ("root",), ("root",), ("root",), ("root",)]
    first = res[0].to_dict()
    assert first["matches"] == [
        {"node": "Lung Opacity", "method": "synonym", "text": "Lung opacity", "term": "Lung Opacity",
         "status": "ancestor", "similarity": None},
        {"node": "Pneumonia", "method": "synonym", "text": "pneumonia", "term": "Pneumonia", "status": "kept",
         "similarity": None},
    ]  # fmt: skip
    assert res[1].matches[0].status == "negated"
    assert res[1].matches[0].node == "Pleural Effusion"


def test_dag_keeps_the_most_specific(toy_dag):
    # Pneumonia sits under Opacity and LRTI: both ancestors are dropped, Sepsis (another branch) stays
    res = map_answers(["opacity, LRTI, pneumonia and sepsis"], toy_dag)[0]
    assert res.nodes == ("Pneumonia", "Sepsis")
    assert [m.status for m in res.matches] == ["ancestor", "ancestor", "kept", "kept"]


# -------------------------------------------------------------------------------------------------- embedding
VOCAB = ["lung", "pleura", "edema", "pneumonia", "pleural", "fluid", "wet"]


def bow(texts: list[str]) -> np.ndarray:
    """Bag of words over VOCAB (unnormalised; map_answers normalises); a text with none of them is zero."""
    calls.append(list(texts))
    out = np.zeros((len(texts), len(VOCAB)))
    for i, t in enumerate(texts):
        words = normalize_phrase(t).split()
        for j, w in enumerate(VOCAB):
            out[i, j] = words.count(w)
    return out


calls: list[list[str]] = []


def test_embedding_hand_computed(tiny):
    calls.clear()
    answers = ["wet edema", "wet", "edema and pleural fluid", "no edema", "lung, edema", "no acute disease"]
    res = map_answers(answers, tiny, method="embedding", embed=bow, min_similarity=0.5)
    # references: node names and labels (tiny has no prompts); parts embedded in one call
    assert calls[0] == ["lung", "pleura", "edema", "pneumonia", "pleural effusion", "pleural fluid"]
    assert calls[1] == ["wet edema", "wet", "edema", "pleural fluid", "lung"]
    assert len(calls) == 2
    # 'wet edema' = (edema + wet)/√2: cosine 1/√2 to 'edema'
    assert res[0].nodes == ("Edema",)
    assert res[0].matches[0].similarity == pytest.approx(1 / np.sqrt(2), abs=1e-6)
    assert res[0].matches[0].term == "edema"
    # 'wet' has cosine 0 to every reference: below 0.5, abstained
    assert (res[1].nodes, res[1].status, res[1].matches[0].status) == (("root",), "abstained", "below_threshold")
    assert res[2].nodes == ("Edema", "Pleural_Effusion")
    assert res[2].matches[1].term == "pleural fluid"
    assert res[2].matches[1].similarity == pytest.approx(1.0)
    assert (res[3].nodes, res[3].status) == (("root",), "negated")
    assert res[4].nodes == ("Edema",)
    assert [m.status for m in res[4].matches] == ["ancestor", "kept"]
    assert res[5].status == "negated"
    assert res[5].matches[0].node is None


def test_embedding_negation_scope_and_switch(tiny):
    assert map_answer("no edema and pneumonia", tiny, method="embedding", embed=bow) == ["root"]
    assert map_answer("pneumonia without edema", tiny, method="embedding", embed=bow) == ["Pneumonia"]
    assert map_answer("edema has resolved", tiny, method="embedding", embed=bow) == ["root"]
    assert map_answer("no edema", tiny, method="embedding", embed=bow, negation=False) == ["Edema"]
    assert map_answer("wet", tiny, method="embedding", embed=bow, min_similarity=-1.0) == ["Lung"]  # all tie at 0


def test_embedding_accepts_an_encoder(tiny, fake_encoder_cls):
    vocab_vectors = {t: v for t, v in zip(["lung", "pleura", "edema", "pneumonia", "pleural effusion",
                                           "pleural fluid", "oedematous"], np.eye(7).tolist(), strict=True)}  # fmt: skip
    vocab_vectors["oedematous"] = np.eye(7)[2].tolist()  # an encoder that knows 'oedematous' means edema
    enc = fake_encoder_cls(vocab_vectors, modality="text")
    assert map_answer("oedematous", tiny, method="embedding", embed=enc) == ["Edema"]


# ------------------------------------------------------------------------------------------------------ errors
def test_errors(tiny):
    with pytest.raises(InputError, match="'method' parameter must be one of"):
        map_answer("x", tiny, method="fuzzy")
    with pytest.raises(InputError, match="'min_similarity' parameter must be in the range"):
        map_answer("x", tiny, method="embedding", embed=bow, min_similarity=2)
    with pytest.raises(TypeError, match="for one answer use map_answer"):
        map_answers("edema", tiny)
    with pytest.raises(TypeError, match="answer 1 is int"):
        map_answers(["edema", 3], tiny)
    with pytest.raises(TypeError, match="an answer must be a string"):
        map_answer(None, tiny)
    with pytest.raises(TypeError, match="embed must be a callable"):
        map_answer("edema", tiny, method="embedding", embed=42)
    with pytest.raises(InputError, match=r"embed returned shape \(1, 3\) for 6 node names"):
        map_answer("edema", tiny, method="embedding", embed=lambda t: np.zeros((1, 3)))
