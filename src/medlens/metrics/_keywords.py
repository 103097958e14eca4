"""Keyword F1 over term sets (NOVA's modality/sequence and finding terms), negation- and spelling-aware.

Matching rules
--------------
1. Text is NFKC-normalised and lower-cased, then split into word tokens (runs of letters/digits: hyphens and
   slashes split, so ``"T2-weighted"`` → ``t2 weighted`` and ``"T2/FLAIR"`` → ``t2 flair``) and clause
   punctuation tokens (``. , ; : ! ? ( )``; dashes count as ``;``; a full stop inside a word or number such
   as ``3.5`` is not one).
2. Every word token goes through the British→US spelling of :func:`medlens.text.us_spelling`:
   ``haemorrhage`` → ``hemorrhage``, ``oedema`` → ``edema``, ``tumour`` → ``tumor``, ...
3. A term set maps each canonical term to its variants (tokenised the same way, so a variant can span
   several words: ``"restricted diffusion"``); the longest variant wins at each position and a concept is
   counted once per caption however often it occurs.
4. When the term set is negatable (the finding set is; the modality set is not) a mention is dropped when a
   negation cue occurs within ``window`` words before it (``no``, ``without``, ``absence`` ...) or after it
   (``absent``, ``excluded``, ``not`` ...), unless a scope stop comes first: sentence and clause punctuation and
   ``but``, ``however``, ``with``, ... before; also ``,``, ``and``, ``or`` after. Pseudo-negations (``not
   excluded``, ``no change``) negate nothing, and a two-way cue (``not``) negates backwards when a term precedes
   it in scope, else forwards. These are the ``keywords`` rules of the engine in :mod:`medlens.text`
   (``load_negation_rules("keywords")``). A concept mentioned both negated and affirmed is mentioned.

Per sample, with ``C`` and ``R`` the concepts of the candidate and of the reference: precision
``|C∩R|/|C|``, recall ``|C∩R|/|R|``, F1 their harmonic mean (0 when either set is empty and the other is
not). When both are empty the sample is, by ``both_empty``: ``"skip"`` (default: ``nan``, left out of the
mean and counted in ``n_skipped``), ``"one"`` (perfect agreement) or ``"zero"`` (the NOVA reproduction's
rule). With several references the best F1 is kept. The corpus value is the mean over scored samples.

Term-set files (JSON) look like ``{"name", "version", "description", "provenance", "negation": bool,
"terms": {canonical: [variant, ...]}}``; pass a path or a dict to :func:`load_term_set` to use your own.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from medlens._results import check_sample_weight
from medlens._validation import InputError, check_option, did_you_mean, read_text_file
from medlens.metrics._text import TextScore, check_captions, mean_or_none
from medlens.text import NegationDetector, NegationRules, load_negation_rules, us_spelling

__all__ = [
    "TERM_SETS",
    "KeywordMentions",
    "TermSet",
    "keyword_f1",
    "keyword_mentions",
    "keyword_tokens",
    "load_term_set",
]

#: Built-in term sets (``data/keywords/<name with _>.json``).
TERM_SETS = ("nova-modality", "nova-findings")
BOTH_EMPTY = ("skip", "one", "zero")

_WORD = r"[^\W_]+"
_TOKENS = re.compile(rf"{_WORD}|[;:!?(),]|\.(?![^\W_])|[\u2012-\u2015]")
_PUNCT = frozenset(".,;:!?()")


def _data(name: str) -> str:
    return resources.files("medlens.metrics").joinpath("data", "keywords", name).read_text(encoding="utf-8")


def keyword_tokens(text: str, *, spelling: bool = True) -> list[str]:
    """Word and clause-punctuation tokens of ``text`` (hyphens/slashes split, US spelling).

    >>> keyword_tokens("Axial T2-weighted/FLAIR: no haemorrhage, 3.5 cm tumour.")
    ['axial', 't2', 'weighted', 'flair', ':', 'no', 'hemorrhage', ',', '3', '5', 'cm', 'tumor', '.']
    """
    if not isinstance(text, str):
        raise InputError(f"keyword matching needs a string; got {type(text).__name__} {text!r}.")
    raw = _TOKENS.findall(unicodedata.normalize("NFKC", text).lower())
    return [";" if len(t) == 1 and "\u2012" <= t <= "\u2015" else us_spelling(t) if spelling else t for t in raw]


@dataclass(frozen=True)
class TermSet:
    """Canonical terms and their variants (see the module notes for the JSON layout)."""

    name: str
    terms: Mapping[str, tuple[str, ...]]
    version: str = "1"
    negation: bool = True
    description: str = ""
    provenance: Any = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "term set") -> TermSet:
        """Build from the JSON layout, checking it."""
        if not isinstance(data, Mapping):
            raise InputError(f"{source}: expected a JSON object; got {type(data).__name__}.")
        missing = [k for k in ("name", "terms") if k not in data]
        if missing:
            raise InputError(
                f"{source}: missing key(s) {missing}; expected 'name' and 'terms' ({{canonical: [variant, ...]}})."
            )
        terms = data["terms"]
        if not isinstance(terms, Mapping) or not terms:
            raise InputError(f"{source}: 'terms' must be a non-empty object {{canonical: [variant, ...]}}.")
        out: dict[str, tuple[str, ...]] = {}
        for canon, variants in terms.items():
            if isinstance(variants, str) or not isinstance(variants, Sequence) or not variants:
                raise InputError(f"{source}: term {canon!r} needs a non-empty list of variants; got {variants!r}.")
            for v in variants:
                if not isinstance(v, str) or not [t for t in keyword_tokens(v) if t not in _PUNCT]:
                    raise InputError(f"{source}: term {canon!r} has a variant without words: {v!r}.")
            out[str(canon)] = tuple(variants)
        negation = data.get("negation", True)
        if not isinstance(negation, bool):
            raise InputError(f"{source}: 'negation' must be true or false; got {negation!r}.")
        return cls(
            name=str(data["name"]),
            terms=out,
            version=str(data.get("version", "1")),
            negation=negation,
            description=str(data.get("description", "")),
            provenance=data.get("provenance"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON layout (round-trips through :meth:`from_dict`)."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "provenance": self.provenance,
            "negation": self.negation,
            "terms": {k: list(v) for k, v in self.terms.items()},
        }

    def patterns(self, *, spelling: bool = True) -> dict[str, list[tuple[tuple[str, ...], str]]]:
        """First token → [(variant tokens, canonical)], longest first."""
        index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for canon, variants in self.terms.items():
            for v in variants:
                toks = tuple(t for t in keyword_tokens(v, spelling=spelling) if t not in _PUNCT)
                index.setdefault(toks[0], []).append((toks, canon))
        for lst in index.values():
            lst.sort(key=lambda p: -len(p[0]))
        return index


def load_term_set(spec: str | os.PathLike | Mapping[str, Any] | TermSet) -> TermSet:
    """A built-in term set by name (``nova-modality``, ``nova-findings``), a JSON file, or a dict.

    >>> ts = load_term_set("nova-findings")
    >>> ts.terms["edema"], ts.negation
    (('edema', 'oedema'), True)
    """
    if isinstance(spec, TermSet):
        return spec
    if isinstance(spec, Mapping):
        return TermSet.from_dict(spec)
    if isinstance(spec, str) and spec in TERM_SETS:
        return TermSet.from_dict(json.loads(_data(spec.replace("-", "_") + ".json")), source=spec)
    path = Path(spec)
    if not path.is_file():
        raise InputError(
            f"unknown term set {str(spec)!r}: not a built-in set ({', '.join(TERM_SETS)}) nor a JSON file."
            + did_you_mean(str(spec), TERM_SETS)
        )
    try:
        data = json.loads(read_text_file(path, what="term set file"))
    except json.JSONDecodeError as exc:
        raise InputError(f"term set file {path}: invalid JSON ({exc}).") from exc
    return TermSet.from_dict(data, source=str(path))


@dataclass(frozen=True)
class KeywordMentions:
    """Concepts of a term set mentioned in a text (``found``) and those only mentioned negated."""

    found: frozenset[str]
    negated: frozenset[str]


def _mentions(tokens: list[str], index: Mapping[str, list], negation: NegationDetector | None) -> KeywordMentions:
    spans: list[tuple[int, int]] = []
    canon: list[str] = []
    p = 0
    while p < len(tokens):
        for variant, c in index.get(tokens[p], ()):
            if tuple(tokens[p : p + len(variant)]) == variant:
                spans.append((p, p + len(variant)))
                canon.append(c)
                p += len(variant)
                break
        else:
            p += 1
    status = ["affirmed"] * len(spans) if negation is None else negation.analyse(tokens, spans)[1]
    found = {c for c, st in zip(canon, status, strict=True) if st == "affirmed"}
    negated = {c for c, st in zip(canon, status, strict=True) if st == "negated"}
    return KeywordMentions(frozenset(found), frozenset(negated - found))


def _negation(
    terms: TermSet, negation: bool | NegationRules | Mapping | None, spelling: bool
) -> NegationDetector | None:
    if not terms.negation or negation is None or negation is False:
        return None
    rules = (
        negation
        if isinstance(negation, NegationRules)
        else load_negation_rules("keywords" if negation is True else negation)
    )
    return NegationDetector(rules, tokenize=lambda text: keyword_tokens(text, spelling=spelling))


def keyword_mentions(
    text: str,
    terms: str | os.PathLike | Mapping[str, Any] | TermSet,
    *,
    negation: bool | NegationRules | Mapping[str, Any] | None = True,
    spelling: bool = True,
) -> KeywordMentions:
    """The concepts of ``terms`` that ``text`` mentions (negated mentions apart; see the module notes).

    >>> m = keyword_mentions("Large tumour with surrounding oedema; no haemorrhage.", "nova-findings")
    >>> sorted(m.found), sorted(m.negated)
    (['edema', 'tumor'], ['hemorrhage'])
    """
    ts = load_term_set(terms)
    neg = _negation(ts, negation, spelling)
    return _mentions(keyword_tokens(text, spelling=spelling), ts.patterns(spelling=spelling), neg)


def _prf(c: frozenset, r: frozenset, both_empty: str) -> tuple[float, float, float]:
    if not c and not r:
        return {"skip": (np.nan,) * 3, "one": (1.0, 1.0, 1.0), "zero": (0.0, 0.0, 0.0)}[both_empty]
    tp = len(c & r)
    p = tp / len(c) if c else 0.0
    rec = tp / len(r) if r else 0.0
    f = 2 * p * rec / (p + rec) if p + rec > 0 else 0.0
    return p, rec, f


def keyword_f1(
    references: Sequence[Any],
    candidates: Sequence[str],
    *,
    terms: str | os.PathLike | Mapping[str, Any] | TermSet = "nova-findings",
    negation: bool | NegationRules | Mapping[str, Any] | None = True,
    spelling: bool = True,
    both_empty: Literal["skip", "one", "zero"] = "skip",
    ids: Sequence[Any] | None = None,
    sample_weight: Sequence[float] | None = None,
) -> TextScore:
    """Per-sample keyword precision/recall/F1 over a term set and the (weighted) mean F1 of the scored samples.

    Parameters
    ----------
    references, candidates
        Captions (several references per sample allowed: the best F1 is kept).
    terms : str, path, dict or TermSet
        ``"nova-findings"`` (default), ``"nova-modality"``, a JSON file or a dict.
    negation : bool, NegationRules or dict
        Drop negated mentions (only for term sets with ``"negation": true``). ``True`` = the packaged
        ``keywords`` rules of :mod:`medlens.text`.
    spelling : bool
        Map British to US spelling before matching.
    both_empty : {"skip", "one", "zero"}
        Score of a sample where neither caption mentions a term (see the module notes).

    Examples
    --------
    >>> r = keyword_f1(["T2-weighted axial image: haemorrhagic mass with oedema"],
    ...                ["axial T2 image shows a mass and edema, no hemorrhage"], terms="nova-findings")
    >>> r.score  # {mass, edema} vs {mass, edema}: 'haemorrhagic' is not a term, 'no hemorrhage' is negated
    1.0
    """
    check_option(both_empty, BOTH_EMPTY, name="both_empty")
    refs, cands = check_captions(references, candidates, ids)
    w = check_sample_weight(sample_weight, len(cands))
    ts = load_term_set(terms)
    index = ts.patterns(spelling=spelling)
    neg = _negation(ts, negation, spelling)

    def mention(text: str) -> KeywordMentions:
        return _mentions(keyword_tokens(text, spelling=spelling), index, neg)

    n = len(cands)
    prec, rec, f1 = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    cand_terms, ref_terms, cand_neg, ref_neg = [], [], [], []
    for i, (rs, c) in enumerate(zip(refs, cands, strict=True)):
        mc = mention(c)
        scored = [(_prf(mc.found, mr.found, both_empty), mr) for mr in map(mention, rs)]
        best, best_ref = max(scored, key=lambda s: -1.0 if np.isnan(s[0][2]) else s[0][2])  # first best reference
        prec[i], rec[i], f1[i] = best
        cand_terms.append(tuple(sorted(mc.found)))
        cand_neg.append(tuple(sorted(mc.negated)))
        ref_terms.append(tuple(sorted(best_ref.found)))
        ref_neg.append(tuple(sorted(best_ref.negated)))
    return TextScore(
        metric="keyword_f1",
        score=mean_or_none(f1, w),
        per_sample=f1,
        settings={
            "terms": ts.name,
            "terms_version": ts.version,
            "negation": neg.rules.to_dict() if neg is not None else None,
            "spelling": "gb->us" if spelling else None,
            "both_empty": both_empty,
            "n_scored": int(np.isfinite(f1).sum()),
            "n_skipped": int((~np.isfinite(f1)).sum()),
            "scale": "0-1",
        },
        components={
            "precision": prec,
            "recall": rec,
            "candidate_terms": cand_terms,
            "reference_terms": ref_terms,
            "candidate_negated": cand_neg,
            "reference_negated": ref_neg,
        },
    )
