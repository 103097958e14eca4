"""The leakage guard: case ids, URLs, embedding cosine, shingle Jaccard and containment; every drop logged."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medlens._validation import InputError
from medlens.retrieval import (
    Corpus,
    Document,
    HashingEmbedder,
    Hit,
    LeakageGuard,
    RetrievalIndex,
    normalize_url,
    shingle_similarity,
    shingles,
)

CASE = {
    "id": "nova-017",
    "clinical_history": "A 34-year-old woman with progressive left-sided hearing loss and tinnitus.",
    "caption": "Axial T1 post-contrast image shows an enhancing mass in the left cerebellopontine angle.",
    "url": "https://www.eurorad.org/case/17/",
}
CASE_TEXT = f"{CASE['clinical_history']} {CASE['caption']}"
OFF = {"cosine": None, "jaccard": None, "containment": None}


def _hit(i: str, *, parent: str | None = None, url: str | None = None, rank: int = 1) -> Hit:
    return Hit(i, 1.0 / rank, f"title {i}", rank, parent or i, url=url)


def test_normalize_url_and_shingles_by_hand():
    assert normalize_url("HTTP://WWW.Eurorad.org/case/17/?lang=en#fig1") == "eurorad.org/case/17"
    assert normalize_url("eurorad.org/case/17") == normalize_url("https://eurorad.org/case/17/")
    assert normalize_url("https://eurorad.org/case/17") != normalize_url("https://eurorad.org/case/171")
    # "a b c d": 2-shingles ab, bc, cd; "b c d e": bc, cd, de → Jaccard 2/4, containment of the first 2/3
    a, b = shingles("A b, c d", 2), shingles("b c d e", 2)
    assert a == {("a", "b"), ("b", "c"), ("c", "d")}
    assert shingle_similarity(a, b) == (0.5, pytest.approx(2 / 3))
    assert shingles("two words", 3) == {("two", "words")}
    assert shingles("", 3) == frozenset()
    assert shingle_similarity(frozenset(), b) == (0.0, 0.0)


def test_case_id_and_url_blocklists():
    guard = LeakageGuard(**OFF, block_case_ids=("nova-099",), block_urls=("radiopaedia.org/cases/abc",))
    hits = [
        _hit("d1"),
        _hit("nova-017", rank=2),  # the case's own id
        _hit("chunk-3", parent="nova-099", rank=3),  # a chunk of a blocked case
        _hit("d4", url="http://eurorad.org/case/17", rank=4),  # the case's own url, written differently
        _hit("d5", url="https://www.radiopaedia.org/cases/abc/?x", rank=5),  # a blocked url
        _hit("d6", url="https://radiopaedia.org/cases/abcd", rank=6),  # a different page
    ]
    kept, dropped = guard.filter(CASE, hits, texts={})
    assert [h.id for h in kept] == ["d1", "d6"]
    assert [(d["id"], d["reason"], d["value"]) for d in dropped] == [
        ("nova-017", "case_id", "nova-017"),
        ("chunk-3", "case_id", "nova-099"),
        ("d4", "url", "http://eurorad.org/case/17"),
        ("d5", "url", "https://www.radiopaedia.org/cases/abc/?x"),
    ]
    assert all(set(d) == {"id", "title", "reason", "value", "threshold"} for d in dropped)


def test_case_id_field_of_a_document_in_an_index():
    docs = [
        Document("a", "Vestibular schwannoma", "Enhancing cerebellopontine angle mass.", meta={"case_id": "nova-017"}),
        Document("b", "Meningioma", "Dural-based enhancing mass."),
    ]
    idx = RetrievalIndex.build(Corpus(docs, name="toy"), embedder=HashingEmbedder(32), use_cache=False)
    kept, dropped = LeakageGuard(**OFF).filter(CASE, [_hit("a"), _hit("b", rank=2)], index=idx)
    assert [h.id for h in kept] == ["b"]
    assert dropped[0]["reason"] == "case_id"
    assert dropped[0]["value"] == "nova-017"


def test_embedding_cosine_threshold_by_hand():
    emb = HashingEmbedder(64)
    near = CASE_TEXT + " Vestibular schwannoma."
    far = "Tuberous sclerosis with cortical tubers and subependymal nodules."
    texts = {"near": near, "far": far}
    v = emb.embed([CASE_TEXT, near, far]).astype(np.float64)
    cos_near, cos_far = float(v[0] @ v[1]), float(v[0] @ v[2])
    assert cos_near > 0.95 > cos_far  # precondition
    guard = LeakageGuard(cosine=0.95, jaccard=None, containment=None)
    kept, dropped = guard.filter(CASE, [_hit("near"), _hit("far", rank=2)], texts=texts, embedder=emb)
    assert [h.id for h in kept] == ["far"]
    assert dropped == [
        {
            "id": "near",
            "title": "title near",
            "reason": "embedding_cosine",
            "value": round(cos_near, 4),
            "threshold": 0.95,
        }
    ]
    # a threshold just above the computed cosine keeps it
    kept, _ = LeakageGuard(cosine=min(1.0, cos_near + 1e-3), jaccard=None, containment=None).filter(
        CASE, [_hit("near")], texts=texts, embedder=emb
    )
    assert [h.id for h in kept] == ["near"]
    with pytest.raises(TypeError, match="needs an embedder"):
        guard.filter(CASE, [_hit("near")], texts=texts)


def test_shingle_jaccard_and_containment_by_hand():
    page = (
        f"Case 17. {CASE_TEXT} Final diagnosis: vestibular schwannoma. Discussion: schwannomas of the vestibular "
        "nerve are the commonest masses of the cerebellopontine angle; they widen the internal auditory canal, "
        "enhance avidly and may contain cystic change, unlike meningiomas which have a broad dural base."
    )
    texts = {"copy": CASE_TEXT, "page": page, "other": "Glioblastoma with necrosis and oedema in an elderly man."}
    case_sh = shingles(CASE_TEXT, 3)
    jac_page, cont_page = shingle_similarity(case_sh, shingles(page, 3))
    assert jac_page < 0.5
    assert cont_page == 1.0
    guard = LeakageGuard(cosine=None)
    hits = [_hit("copy"), _hit("page", rank=2), _hit("other", rank=3)]
    kept, dropped = guard.filter(CASE, hits, texts=texts)
    assert [h.id for h in kept] == ["other"]
    assert [(d["id"], d["reason"], d["value"], d["threshold"]) for d in dropped] == [
        ("copy", "shingle_jaccard", 1.0, 0.5),
        ("page", "shingle_containment", 1.0, 0.8),
    ]
    # a short case is too short for the containment test
    short = {"id": "s", "clinical_history": "Hearing loss.", "caption": ""}
    kept, _ = guard.filter(short, [_hit("page")], texts={"page": "x " * 50 + "Hearing loss. " + "y " * 50})
    assert [h.id for h in kept] == ["page"]
    # every test can be switched off
    kept, dropped = LeakageGuard(**OFF).filter({"caption": CASE_TEXT}, hits, texts=texts)
    assert len(kept) == 3
    assert dropped == []


def test_threshold_validation():
    for bad in (0, 1.5, -0.1, float("nan"), True, "0.9"):
        with pytest.raises(InputError, match="threshold must be in"):
            LeakageGuard(cosine=bad)
    with pytest.raises(InputError, match="shingle must be"):
        LeakageGuard(shingle=0)
    with pytest.raises(TypeError, match="unit texts"):
        LeakageGuard().filter(CASE, [])


WORDS = st.lists(st.sampled_from(["mass", "left", "angle", "enhancing", "cyst", "tumour", "axial", "t2"]), max_size=12)


@settings(max_examples=60, deadline=None)
@given(a=WORDS, b=WORDS, n=st.integers(1, 4))
def test_shingle_similarity_properties(a, b, n):
    sa, sb = shingles(" ".join(a), n), shingles(" ".join(b), n)
    jab, cab = shingle_similarity(sa, sb)
    jba, _ = shingle_similarity(sb, sa)
    assert jab == jba
    assert 0.0 <= jab <= cab <= 1.0
    if sa:
        assert shingle_similarity(sa, sa) == (1.0, 1.0)


@settings(max_examples=40, deadline=None)
@given(texts=st.lists(WORDS, min_size=1, max_size=8), threshold=st.floats(0.05, 1.0))
def test_filter_partitions_hits_in_order(texts, threshold):
    hits = [_hit(f"d{i}", rank=i + 1) for i in range(len(texts))]
    docs = {f"d{i}": " ".join(w) for i, w in enumerate(texts)}
    case = {"id": "q", "clinical_history": " ".join(texts[0]), "caption": "axial t2"}
    kept, dropped = LeakageGuard(cosine=None, jaccard=threshold, containment=None).filter(case, hits, texts=docs)
    assert sorted([h.id for h in kept] + [d["id"] for d in dropped]) == sorted(docs)
    assert [h.id for h in kept] == [h.id for h in hits if h.id in {k.id for k in kept}]
    case_sh = shingles(f"{' '.join(texts[0])} axial t2", 3)
    for h in hits:
        jac = shingle_similarity(case_sh, shingles(docs[h.id], 3))[0]
        assert (h in kept) == (not jac > threshold)
