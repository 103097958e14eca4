"""Diagnosis names, normalised and grouped: what :class:`~medlens.metrics.ExactSynonymJudge` compares.

:func:`normalize_diagnosis` folds case, accents, punctuation, British spellings, roman numerals after "type" /
"grade" and leading hedges; a :class:`SynonymTable` (the packaged ``data/diagnosis_synonyms.json``, a JSON file
of the same layout, or a mapping) groups names of one condition. The table's content hash is part of the judge
id, so editing it invalidates cached verdicts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from medlens._validation import InputError, read_text_file
from medlens.text import fold, us_spelling

__all__ = [
    "SYNONYMS_FILE",
    "SynonymTable",
    "default_synonym_table",
    "load_synonym_table",
    "name_forms",
    "normalize_diagnosis",
]

SYNONYMS_FILE = "diagnosis_synonyms.json"


@dataclass(frozen=True)
class SynonymTable:
    """Normalisation rules and synonym groups (the JSON layout of ``data/diagnosis_synonyms.json``).

    Attributes
    ----------
    groups : tuple of tuple of str
        Normalised names per group; the first name of a group is its canonical label.
    hedges, articles : tuple of str
        Normalised leading phrases dropped before matching ("probable", "consistent with", "the").
    roman_after : tuple of str
        Words after which a roman numeral i-x is read as a digit ("type II" -> "type 2").
    name, version : str
    sha256 : str
        Hash of the content (part of the judge id, so editing the table invalidates cached verdicts).
    """

    groups: tuple[tuple[str, ...], ...]
    hedges: tuple[str, ...]
    articles: tuple[str, ...]
    roman_after: tuple[str, ...]
    name: str = "custom"
    version: str = "1"
    sha256: str = ""
    notes: tuple[str | None, ...] = ()

    def index(self) -> dict[str, int]:
        return {n: g for g, names in enumerate(self.groups) for n in names}


_ROMAN = {
    "i": "1",
    "ii": "2",
    "iii": "3",
    "iv": "4",
    "v": "5",
    "vi": "6",
    "vii": "7",
    "viii": "8",
    "ix": "9",
    "x": "10",
}
_NON_WORD = re.compile(r"[^0-9a-z]+")
_POSSESSIVE = re.compile(r"(?<=[a-z])'s\b")
_PAREN = re.compile(r"\(([^()]*)\)|\[([^\[\]]*)\]")


def _basic_tokens(text: str, roman_after: Iterable[str]) -> list[str]:
    t = fold(text).replace("’", "'")
    t = _POSSESSIVE.sub("", t).replace("'", "")
    toks = [us_spelling(w) for w in _NON_WORD.sub(" ", t).split()]
    after = set(roman_after)
    return [_ROMAN.get(w, w) if i and toks[i - 1] in after else w for i, w in enumerate(toks)]


def _strip_leading(toks: list[str], phrases: Iterable[tuple[str, ...]]) -> list[str]:
    phrases = sorted(phrases, key=len, reverse=True)
    changed = True
    while changed:
        changed = False
        for p in phrases:
            if p and len(toks) > len(p) and tuple(toks[: len(p)]) == p:
                toks = toks[len(p) :]
                changed = True
                break
    return toks


def normalize_diagnosis(text: str, *, table: SynonymTable | None = None) -> str:
    """Normalised form of a diagnosis name (what :class:`ExactSynonymJudge` compares).

    Lower case; accents removed; possessive ``'s`` dropped; every run of non-alphanumerics (hyphens, slashes,
    commas, brackets) becomes one space; British spellings become US ones (:func:`medlens.text.us_spelling`); a roman
    numeral after "type"/"grade"/"chiari" becomes a digit; leading hedges ("probable", "consistent with") and
    articles are dropped (never the whole name).

    >>> normalize_diagnosis("Probable Wilson's disease")
    'wilson disease'
    >>> normalize_diagnosis("Haemangiopericytoma (WHO grade II)")
    'hemangiopericytoma who grade 2'
    >>> normalize_diagnosis("Neuro-Behçet disease")
    'neuro behcet disease'
    """
    if not isinstance(text, str):
        raise InputError(f"a diagnosis must be a string; got {type(text).__name__} {text!r}.")
    table = table or default_synonym_table()
    toks = _basic_tokens(text, table.roman_after)
    toks = _strip_leading(toks, [tuple(h.split()) for h in (*table.hedges, *table.articles)])
    return " ".join(toks)


def name_forms(text: str, table: SynonymTable) -> list[str]:
    """The normalised name, plus the name without bracketed parts and each bracketed part (alternative names)."""
    forms = [normalize_diagnosis(text, table=table)]
    if _PAREN.search(text):
        outside = _PAREN.sub(" ", text)
        inside = [a or b for a, b in _PAREN.findall(text)]
        forms += [normalize_diagnosis(t, table=table) for t in (outside, *inside)]
    return [f for f in dict.fromkeys(forms) if f]


# ============================================================================================ synonym table
def _table_from(data: Any, source: str, extra: Iterable[Iterable[str]] = ()) -> SynonymTable:
    if not isinstance(data, Mapping) or "groups" not in data:
        raise InputError(f"{source}: expected a JSON object with 'groups' ([{{'names': [...]}}, ...] or [[...], ...]).")
    base = SynonymTable(
        (), tuple(data.get("hedges", ())), tuple(data.get("articles", ())), tuple(data.get("roman_after", ()))
    )

    def norm_phrase(p: Any, what: str) -> str:
        if not isinstance(p, str) or not p.strip():
            raise InputError(f"{source}: {what} entries must be non-empty strings; got {p!r}.")
        return " ".join(_basic_tokens(p, base.roman_after))

    hedges = tuple(norm_phrase(h, "'hedges'") for h in base.hedges)
    articles = tuple(norm_phrase(a, "'articles'") for a in base.articles)
    table = SynonymTable((), hedges, articles, base.roman_after)
    groups: list[tuple[str, ...]] = []
    notes: list[str | None] = []
    owner: dict[str, tuple[int, str]] = {}
    raw_groups = list(data["groups"]) + [list(g) for g in extra]
    for gi, g in enumerate(raw_groups):
        names = g.get("names") if isinstance(g, Mapping) else g
        if isinstance(names, str) or not isinstance(names, Sequence) or not names:
            raise InputError(
                f"{source}: group {gi} must be a non-empty list of names (or {{'names': [...]}}); got {g!r}."
            )
        normed = []
        for n in names:
            if not isinstance(n, str) or not n.strip():
                raise InputError(f"{source}: group {gi} has a name that is not a non-empty string: {n!r}.")
            key = normalize_diagnosis(n, table=table)
            if key in owner and owner[key][0] != len(groups):
                other, other_name = owner[key]
                raise InputError(
                    f"{source}: {n!r} (normalised {key!r}) is in group {gi} and also in group {other} (as "
                    f"{other_name!r}); a name may belong to one group only. Merge the groups or drop one entry."
                )
            owner[key] = (len(groups), n)
            normed.append(key)
        groups.append(tuple(dict.fromkeys(normed)))
        notes.append(g.get("note") if isinstance(g, Mapping) else None)
    digest = hashlib.sha256(
        json.dumps([groups, hedges, articles, base.roman_after], separators=(",", ":")).encode()
    ).hexdigest()
    return SynonymTable(
        groups=tuple(groups),
        hedges=hedges,
        articles=articles,
        roman_after=base.roman_after,
        name=str(data.get("name", "custom")),
        version=str(data.get("version", "1")),
        sha256=digest,
        notes=tuple(notes),
    )


@lru_cache(maxsize=1)
def default_synonym_table() -> SynonymTable:
    """The built-in table (``medlens/metrics/data/diagnosis_synonyms.json``)."""
    text = resources.files("medlens.metrics").joinpath("data", SYNONYMS_FILE).read_text(encoding="utf-8")
    return _table_from(json.loads(text), SYNONYMS_FILE)


def load_synonym_table(
    synonyms: str | os.PathLike | Mapping[str, Any] | SynonymTable | None = None,
    *,
    extra: Iterable[Iterable[str]] = (),
) -> SynonymTable:
    """A synonym table: ``None``/``"default"`` = built-in, a JSON path, a mapping of the same layout, or a table.

    ``extra`` adds groups (lists of names) to it; a name already in another group is an error.

    >>> t = load_synonym_table(extra=[["Wernicke encephalopathy", "Wernicke-Korsakoff syndrome"]])
    >>> t.groups[-1]
    ('wernicke encephalopathy', 'wernicke korsakoff syndrome')
    """
    extra = [list(g) for g in extra]
    if isinstance(synonyms, SynonymTable) and not extra:
        return synonyms
    if synonyms is None or synonyms == "default":
        if not extra:
            return default_synonym_table()
        text = resources.files("medlens.metrics").joinpath("data", SYNONYMS_FILE).read_text(encoding="utf-8")
        return _table_from(json.loads(text), SYNONYMS_FILE, extra)
    if isinstance(synonyms, SynonymTable):
        data = {
            "name": synonyms.name,
            "version": synonyms.version,
            "hedges": synonyms.hedges,
            "articles": synonyms.articles,
            "roman_after": synonyms.roman_after,
            "groups": [list(g) for g in synonyms.groups],
        }
        return _table_from(data, "synonym table", extra)
    if isinstance(synonyms, Mapping):
        return _table_from(synonyms, "synonym table", extra)
    path = Path(synonyms)
    if not path.is_file():
        raise InputError(f"synonym table {path}: no such file; give a JSON file like medlens' {SYNONYMS_FILE}.")
    try:
        data = json.loads(read_text_file(path, what="synonym table"))
    except json.JSONDecodeError as exc:
        raise InputError(f"synonym table {path}: not valid JSON ({exc.msg}, line {exc.lineno}).") from None
    return _table_from(data, str(path), extra)
