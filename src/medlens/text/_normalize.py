"""Shared text normalisation and splitting: case and accent folding, British → US spelling, sentences, clauses.

Every text consumer of medlens (answer mapping, keyword F1, HPO concept recognition, zero-shot report scoring)
tokenises in its own way, because each matches against its own dictionary, but they share these steps:

* :func:`fold` lower-cases and removes accents (Unicode NFKD, combining marks dropped): ``"Sjögren"`` →
  ``"sjogren"``;
* :func:`us_spelling` maps one lower-case British word to its US spelling: first the curated word table
  (``data/spelling_gb_us.json``: ``tumour`` → ``tumor``, ``localised`` → ``localized``, ...), then the prefix
  rules ``oedem haem anaem oesophag leukaem ischaem paediatr orthopaed aetiolog diarrhoe`` (``haemodialysis`` →
  ``hemodialysis``);
* :func:`split_sentences` splits at ``. ! ? ;`` followed by white space and at newlines, and drops the
  ``XXXX`` marks of de-identified reports;
* :func:`split_clauses` further cuts a sentence at the clause words of :data:`CLAUSE_WORDS` and at ``:``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from importlib import resources

__all__ = ["CLAUSE_WORDS", "fold", "spelling_table", "split_clauses", "split_sentences", "us_spelling"]

#: Words that end a clause (and with it a negation scope), as in NegEx's termination terms.
CLAUSE_WORDS = ("but", "however", "although", "though", "whereas", "except")

_BRITISH_PREFIX = (
    ("oedem", "edem"),
    ("haem", "hem"),
    ("anaem", "anem"),
    ("oesophag", "esophag"),
    ("leukaem", "leukem"),
    ("ischaem", "ischem"),
    ("paediatr", "pediatr"),
    ("orthopaed", "orthoped"),
    ("aetiolog", "etiolog"),
    ("diarrhoe", "diarrhe"),
)
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")
_REDACT = re.compile(r"\bX{2,}\b")
_CLAUSE = re.compile(r"\b(?:" + "|".join(CLAUSE_WORDS) + r")\b|:", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z0-9]")


def fold(text: str) -> str:
    """Lower case without accents (Unicode NFKD, combining marks removed).

    >>> fold("Sjögren Syndrome, café-au-lait")
    'sjogren syndrome, cafe-au-lait'
    """
    text = str(text)
    if text.isascii():  # NFKD leaves ASCII as it is and no ASCII character is a combining mark
        return text.lower()
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch)).lower()


@lru_cache(maxsize=1)
def _spelling_table() -> dict[str, str]:
    data = resources.files("medlens.text").joinpath("data", "spelling_gb_us.json").read_text(encoding="utf-8")
    return dict(json.loads(data)["map"])


def spelling_table() -> dict[str, str]:
    """The curated British → US word table (a copy)."""
    return dict(_spelling_table())


@lru_cache(maxsize=65536)
def us_spelling(word: str) -> str:
    """The US spelling of one lower-case word (the word itself when it has none).

    >>> us_spelling("tumour"), us_spelling("haemodialysis"), us_spelling("localised"), us_spelling("edema")
    ('tumor', 'hemodialysis', 'localized', 'edema')
    """
    mapped = _spelling_table().get(word)
    if mapped is not None:
        return mapped
    for old, new in _BRITISH_PREFIX:
        if word.startswith(old):
            return new + word[len(old) :]
    return word


def split_sentences(text: str) -> list[str]:
    """Split report text into sentences (on ``. ! ? ;`` and newlines); de-identification marks dropped.

    Pieces without a run of three letters are dropped.

    >>> split_sentences("Heart size normal. No effusion; mild atelectasis at XXXX base.")
    ['Heart size normal.', 'No effusion;', 'mild atelectasis at base.']
    """
    parts = (_REDACT.sub("", p) for p in _SENTENCE.split(str(text)))
    return [" ".join(p.split()) for p in parts if re.search(r"[A-Za-z]{3,}", p)]


def split_clauses(text: str) -> list[str]:
    """The clauses of every sentence of ``text``: cut at :data:`CLAUSE_WORDS` and ``:`` (the cut word dropped).

    >>> split_clauses("No effusion but a small pneumothorax. Impression: edema")
    ['No effusion ', ' a small pneumothorax.', 'Impression', ' edema']
    """
    out = []
    for sentence in split_sentences(text):
        out.extend(c for c in _CLAUSE.split(sentence) if _WORD.search(c))
    return out
