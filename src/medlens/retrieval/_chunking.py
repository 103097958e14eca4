"""Chunking: split long documents into overlapping windows that a sentence encoder reads whole.

A window holds at most ``size`` units and the next one starts ``overlap`` units before the previous one ended;
windows start and end on word boundaries (a word's word pieces are never split, unless the word alone is
longer than a window). Units are either

* ``"words"`` — runs of non-space characters (no model needed); or
* ``"tokens"`` — the word pieces of a Hugging Face *fast* tokenizer (e.g. ``SentenceTransformerEmbedder(...)
  .tokenizer``), so a window of 256 tokens is exactly what MiniLM reads.

Chunk text is cut from the original string (whitespace and punctuation kept). Chunk ``i`` of document ``D``
gets id ``"D#i"``, ``parent="D"``, the parent's title, source, url and diagnosis, and ``meta`` with
``chunk``, ``n_chunks`` and the character span ``start``/``end`` in the parent text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from medlens._validation import InputError, check_option
from medlens.retrieval._corpus import Corpus, Document

__all__ = ["chunk_corpus", "chunk_spans", "chunk_text"]

UNITS = ("words", "tokens")
_NONSPACE = re.compile(r"\S+")


def _check(size: int, overlap: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InputError(f"chunk size must be an integer >= 1; got {size!r}.")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < size:
        raise InputError(f"chunk overlap must be an integer in [0, size={size}); got {overlap!r}.")


def _unit_spans(text: str, unit: str, tokenizer: Any) -> list[tuple[int, int]]:
    check_option(unit, UNITS, name="unit")
    if unit == "words":
        return [m.span() for m in _NONSPACE.finditer(text)]
    if tokenizer is None:
        raise InputError("chunking in tokens needs a tokenizer (e.g. SentenceTransformerEmbedder().tokenizer).")
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except (NotImplementedError, TypeError, ValueError) as exc:
        raise InputError(f"chunking in tokens needs a fast tokenizer with offset mapping ({exc}).") from None
    return [tuple(s) for s in enc["offset_mapping"] if s[1] > s[0]]


def chunk_spans(
    text: str, *, size: int, overlap: int = 0, unit: str = "words", tokenizer: Any = None
) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the windows of ``text``; one span for a text that fits.

    >>> chunk_spans("a b c d e", size=2, overlap=1)
    [(0, 3), (2, 5), (4, 7), (6, 9)]
    """
    _check(size, overlap)
    units = _unit_spans(text, unit, tokenizer)
    if not units:
        return [(0, len(text))]
    n = len(units)
    # a window never starts or ends inside a word (a word split into word pieces stays whole), unless one
    # word alone is longer than the window
    starts_word = [i == 0 or units[i][0] != units[i - 1][1] for i in range(n)] + [True]
    spans = []
    start = 0
    while True:
        end = min(start + size, n)
        e = end
        while e > start + 1 and not starts_word[e]:
            e -= 1
        if not starts_word[e]:
            e = end
        spans.append((units[start][0], units[e - 1][1]))
        if e >= n:
            break
        nxt = max(start + 1, e - overlap)
        while nxt < e and not starts_word[nxt]:
            nxt += 1
        start = nxt
    return spans


def chunk_text(text: str, *, size: int, overlap: int = 0, unit: str = "words", tokenizer: Any = None) -> list[str]:
    """The windows of ``text`` as strings (see :func:`chunk_spans`).

    >>> chunk_text("one two three four five", size=3, overlap=1)
    ['one two three', 'three four five']
    """
    return [text[a:b] for a, b in chunk_spans(text, size=size, overlap=overlap, unit=unit, tokenizer=tokenizer)]


def chunk_corpus(
    corpus: Corpus | Sequence[Document],
    *,
    size: int,
    overlap: int = 0,
    unit: str = "words",
    tokenizer: Any = None,
) -> Corpus:
    """Split every document into chunks (ids ``"<doc id>#<i>"``, ``parent`` = the document id)."""
    _check(size, overlap)
    chunks: list[Document] = []
    for doc in corpus:
        if doc.parent is not None:
            raise InputError(f"document {doc.id!r} is already a chunk of {doc.parent!r}; chunk the original corpus.")
        spans = chunk_spans(doc.text, size=size, overlap=overlap, unit=unit, tokenizer=tokenizer)
        for i, (a, b) in enumerate(spans):
            chunks.append(
                Document(
                    id=f"{doc.id}#{i}",
                    title=doc.title,
                    text=doc.text[a:b],
                    source=doc.source,
                    url=doc.url,
                    diagnosis=doc.diagnosis,
                    parent=doc.id,
                    meta={"chunk": i, "n_chunks": len(spans), "start": a, "end": b},
                )
            )
    name = getattr(corpus, "name", "corpus")
    prov = dict(getattr(corpus, "provenance", {}) or {})
    prov["chunking"] = {"size": size, "overlap": overlap, "unit": unit}
    return Corpus(chunks, name=name, provenance=prov, notices=getattr(corpus, "notices", ()))
