"""Shared normalisation: folding, British to US spelling, sentences and clauses."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from medlens.text import fold, spelling_table, split_clauses, split_sentences, us_spelling


def test_fold_and_us_spelling():
    assert fold("Sjögren SYNDROME") == "sjogren syndrome"
    assert us_spelling("oedema") == "edema"  # word table
    assert us_spelling("haemodialysis") == "hemodialysis"  # prefix rule (not in the table)
    assert us_spelling("generalised") == "generalized"
    assert us_spelling("edema") == "edema"
    assert spelling_table()["tumour"] == "tumor"


@given(st.text() | st.text(st.characters(max_codepoint=127)))
def test_fold_is_nfkd_without_combining_marks_lower_cased(text):
    """The ASCII fast path gives what the Unicode definition gives."""
    reference = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).lower()
    assert fold(text) == reference


def test_sentences_and_clauses():
    assert split_sentences("No effusion. Right pneumonia!\nHeart XXXX normal; ok") == [
        "No effusion.",
        "Right pneumonia!",
        "Heart normal;",
    ]
    assert [c.strip() for c in split_clauses("Effusion, however no edema: stable")] == [
        "Effusion,",
        "no edema",
        "stable",
    ]
