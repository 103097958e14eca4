"""What a phenotype mention says about the patient: present, negated, uncertain, or a relative's (ConText-style).

Both HPO recognisers (the exact matcher of :mod:`medlens.retrieval._phenotype` and the embedding recogniser of
:mod:`medlens.retrieval._concepts`) tokenise with :func:`tokens` and give every mention one status from
:func:`mention_status`. Three cue sets run over the same tokens through the scoping engine of :mod:`medlens.text`
(NegEx: a pre cue covers the mentions after it up to a clause stop, a post cue those before it):

* **negated** (``no seizures``, ``seizures were ruled out``): the ``clinical`` rules' pre cues but those ending in
  "of" ("of" is not a token here), and of their post cues only ``ruled out`` and ``excluded``
  (:data:`NEGATION_POST`): a history's "seizures, since resolved" or "feeding normal since age 2" still reports
  the finding;
* **uncertain** (``possible seizures``, ``suspected ataxia``, ``to rule out hypotonia``, ``a seizure disorder
  cannot be excluded``): :data:`UNCERTAINTY_PRE` and :data:`UNCERTAINTY_POST`;
* **family** (``family history of deafness``, ``her brother has seizures``, ``epilepsy in the maternal uncle``):
  :data:`FAMILY_PRE` and :data:`FAMILY_POST`, with pseudo cues for an unremarkable family history
  (:data:`FAMILY_PSEUDO`). A relative who *reports* ("parents report", "mother reports") is no cue: only a
  relative who *has* the finding is; and the son, daughter or twin of a note is usually the patient.

A family mention beats the others ("no family history of seizures" says nothing about the patient's seizures),
then an uncertain one ("no seizures" stays negated; "seizures cannot be excluded" is a pseudo-negation and
uncertain). The ranker uses present mentions as evidence for a disease and negated ones against it; uncertain
and family mentions are neither (ClinPhen likewise drops the findings of a sentence that names a relative or a
negation; NegEx/ConText keep the statuses apart). Statuses are scoped per clause: the stops are the
``clinical`` rules' (``. ; : ? !`` and the clause words ``but however although though whereas except while which
with has shows presents``; parentheses are no tokens), so "possible seizures; hypotonia" leaves the hypotonia
present. NegEx's limits remain: "seizures in the patient and in the mother" is read as the mother's, and
"possible regression, later confirmed" stays uncertain.

``rare-hpo`` v1 and v2 write no uncertainty or family cue (the spans and recognised terms are the same as
before these rules); the tests check the rules on hand-written sentences, and the benchmark's
``context_distractors`` row on v2 cases with such sentences added.
"""

from __future__ import annotations

import re
from dataclasses import replace

from medlens.retrieval._bm25 import _stem
from medlens.text import NegationDetector, NegationRules, fold, load_negation_rules

__all__ = [
    "BOUNDARY",
    "FAMILY_POST",
    "FAMILY_PRE",
    "FAMILY_PSEUDO",
    "NEGATION_POST",
    "RELATIVES",
    "STATUSES",
    "UNCERTAINTY_POST",
    "UNCERTAINTY_PRE",
    "mention_status",
    "tokens",
]

#: What :func:`mention_status` returns per mention (``"cue"``: the mention is itself a negation cue; dropped).
STATUSES = ("present", "negated", "uncertain", "family", "cue")

_WORD = re.compile(r"[a-z0-9]+|[.;:,?!]")
_DROP = frozenset({"a", "an", "the", "of"})
#: Clause punctuation; not parentheses, which some HPO names hold ("Seizure (febrile)").
BOUNDARY = frozenset(".;:,?!")


def tokens(text: str) -> list[str]:
    """Normalised words and clause punctuation (``. ; : , ? !``), function words dropped, plurals stemmed.

    >>> tokens("No seizures (focal)? The brother of the patient.")
    ['no', 'seizure', 'focal', '?', 'brother', 'patient', '.']
    """
    return [w if w in BOUNDARY else _stem(w) for w in _WORD.findall(fold(text)) if w not in _DROP]


_CLINICAL = load_negation_rules("clinical")
#: The negation post cues of the HPO recognisers (the ``clinical`` rules' others, "resolved", "normal",
#: "absent", describe a finding the history still reports, or are part of one: "absent speech").
NEGATION_POST = ("ruled out", "excluded")
#: Cues before an uncertain finding ("possible seizures", "to rule out hypotonia", "concern for ataxia"). Every
#: word of every cue is a context word of the concept recogniser's spans (``_concepts.CONTEXT``), so that a span
#: never swallows its cue; "unclear", "may" and "could" are left out ("unclear slurred words", "could not walk
#: until 3" and definitions' "... may cause" are findings), and so are cues ending in "of" ("of" is no token).
UNCERTAINTY_PRE = (
    *("possible", "possibly", "suspected", "suspect", "suspicious for", "questionable", "query"),
    *("concern for", "concerning for", "rule out", "evaluate for", "evaluation for"),
)
#: Cues after an uncertain finding ("seizures are possible", "ataxia cannot be excluded"): with a verb, so that a
#: hedge after "and" does not reach back ("hypotonia and possible seizures" leaves the hypotonia present), and the
#: ``clinical`` rules' pseudo-negations that hedge ("cannot be excluded", "not ruled out", ...).
UNCERTAINTY_POST = (
    *(f"{v} {w}" for v in ("is", "are", "was", "were") for w in ("possible", "suspected", "questionable")),
    *(c for c in _CLINICAL.pseudo_cues if c.endswith(("excluded", "ruled out"))),
)
#: Relatives whose findings are not the patient's (:data:`FAMILY_PRE`, :data:`FAMILY_POST`); not "son",
#: "daughter" or "twin", which the patient often is ("mother reports her son has seizures", "a twin with
#: hypotonia").
RELATIVES = (
    *("mother", "father", "brother", "sister", "sibling", "sib", "aunt", "uncle", "cousin", "grandmother"),
    *("grandfather", "grandparent", "niece", "nephew", "half-brother", "half-sister"),
)
#: Cues before a relative's finding ("family history of deafness", "her brother has seizures", "family history:
#: epilepsy"); "family history is unremarkable" and the like are pseudo cues (:data:`FAMILY_PSEUDO`).
FAMILY_PRE = (
    *("family history", "family hx", "fhx", "family history :", "family hx :", "fhx :", "family member with"),
    *(f"{r} {v}" for r in RELATIVES for v in ("has", "have", "had", "with", "who has", "who had", "also has")),
)
FAMILY_PSEUDO = tuple(
    f"family history {v}{w}"
    for v in ("", "is ", "was ")
    for w in ("unremarkable", "noncontributory", "non-contributory", "negative", "not contributory")
)
#: Cues after a relative's finding ("deafness in the father", "epilepsy in a maternal uncle", "epilepsy in her
#: mother", "runs in the family").
FAMILY_POST = (
    *("in family", "runs in family", "in relatives"),
    *(
        f"in {side}{r}"
        for r in RELATIVES
        for side in ("", "maternal ", "paternal ", "older ", "younger ", "her ", "his ", "their ", "two ")
    ),
)


def _rules(name: str, pre: tuple[str, ...], post: tuple[str, ...], pseudo: tuple[str, ...] = ()) -> NegationRules:
    """The ``clinical`` rules' scope stops with these cues."""
    return replace(_CLINICAL, name=name, pre_cues=pre, post_cues=post, pseudo_cues=pseudo)


_NEGATION_PRE = tuple(c for c in _CLINICAL.pre_cues if not c.endswith(" of"))
_NEGATION = NegationDetector(
    _rules("clinical-history", _NEGATION_PRE, NEGATION_POST, _CLINICAL.pseudo_cues), tokenize=tokens
)
_UNCERTAIN = NegationDetector(_rules("hpo-uncertainty", UNCERTAINTY_PRE, UNCERTAINTY_POST), tokenize=tokens)
_FAMILY = NegationDetector(_rules("hpo-family", FAMILY_PRE, FAMILY_POST, FAMILY_PSEUDO), tokenize=tokens)


def mention_status(words: list[str], mentions: list[tuple[int, int]]) -> list[str]:
    """The status (:data:`STATUSES`) of each mention, a ``[start, end)`` span of :func:`tokens` words.

    >>> w = tokens("Possible seizures, but no ataxia. Her brother has deafness; hypotonia.")
    >>> w
    ['possible', 'seizure', ',', 'but', 'no', 'ataxia', '.', 'her', 'brother', 'has', 'deafness', ';', 'hypotonia', '.']
    >>> mention_status(w, [(1, 2), (5, 6), (10, 11), (12, 13)])
    ['uncertain', 'negated', 'family', 'present']
    """
    negation = _NEGATION.analyse(words, mentions)[1]
    uncertain = _UNCERTAIN.negated(words, mentions)
    family = _FAMILY.negated(words, mentions)
    out = []
    for neg, unc, fam in zip(negation, uncertain, family, strict=True):
        if neg == "cue":
            out.append("cue")
        elif fam:
            out.append("family")
        elif unc:
            out.append("uncertain")
        else:
            out.append("negated" if neg == "negated" else "present")
    return out
