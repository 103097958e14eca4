"""GREEN-style parsing of an LLM judge's error counts (``design/fairness.md`` §4).

A GREEN judge reads a reference and a candidate report and lists, for the candidate, the clinically significant
and insignificant errors in six categories plus the number of matched findings::

    [Clinically Significant Errors]:
    (a) False report of a finding in the candidate: 1. Cup-to-disc ratio 0.8.
    (b) Missing a finding present in the reference: 0.
    ...
    [Matched Findings]:
    2. Glaucoma; visual field defect.

GREEN = M / (M + Σ significant errors), 0 when M = 0 (the GREEN package's convention: a report that matches
nothing scores 0 even without errors). Real judge output drifts from the template (markdown bold, ``###``
headers, missing brackets or colons, "None" or "two" instead of a digit, a category left out), so the parser
is tolerant: a category line that is absent counts 0 (recorded in ``missing``), a header found in any of
those spellings counts. What it cannot read (no significant-errors or matched-findings section, a category
line without a count) makes the parse *fail*: :class:`GreenParse` with ``ok`` false, ``score`` nan and the
reason, never an exception, so one bad reply is counted, not fatal.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GREEN_CATEGORIES", "GreenParse", "green_score", "parse_green"]

GREEN_CATEGORIES = {
    "a": "false report of a finding in the candidate",
    "b": "missing a finding present in the reference",
    "c": "misidentification of a finding's anatomic location/position",
    "d": "misassessment of the severity of a finding",
    "e": "mentioning a comparison that isn't in the reference",
    "f": "omitting a comparison detailing a change from a prior study",
}
"""The six error categories (a)–(f) of GREEN's prompt."""

_SECTIONS = {
    "significant": r"clinically\s+significant\s+errors?",
    "insignificant": r"clinically\s+insignificant\s+errors?",
    "matched": r"matched\s+findings?",
    "explanation": r"explanation",
}
_WORDS = {
    w: i for i, w in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"])
}
_NONE = re.compile(r"^\s*(?:none|no|nil|n/?a|-+)\b", re.IGNORECASE)
# a section header: optional markdown (#, *, _), optional brackets, the name, optional colon, on its own line start
_HEADER = re.compile(
    r"^[ \t>#*_]*\[?[ \t*_]*(?P<name>" + "|".join(f"(?:{p})" for p in _SECTIONS.values()) + r")[ \t*_]*\]?[ \t*_]*:?",
    re.IGNORECASE | re.MULTILINE,
)
_CATEGORY = re.compile(r"^[ \t*_\-]*\(?(?P<letter>[a-f])[).:][ \t]*(?P<body>.*)$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class GreenParse:
    """One parsed GREEN reply.

    Attributes
    ----------
    ok : bool
        Whether both the significant errors and the matched findings could be read.
    score : float
        GREEN (nan when not ``ok``).
    significant, insignificant : dict
        Error count per category letter (``insignificant`` empty when the section is absent).
    matched : int or None
        Matched findings.
    missing : tuple of str
        Category letters of the significant section that the reply left out (counted 0).
    error : str or None
        Why the parse failed.
    """

    ok: bool
    score: float
    significant: dict[str, int] = field(default_factory=dict)
    insignificant: dict[str, int] = field(default_factory=dict)
    matched: int | None = None
    missing: tuple[str, ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "score": None if math.isnan(self.score) else self.score,
            "significant": dict(self.significant),
            "insignificant": dict(self.insignificant),
            "matched": self.matched,
            "missing": list(self.missing),
            "error": self.error,
        }


def _count(body: str) -> int | None:
    """The count a category line or section starts with: ``1.``, ``: 2``, ``two``, ``None`` → 0; else None."""
    text = body.strip().lstrip("*_").strip()
    if ":" in text:  # "(a) False report of a finding: 1. ..." -> the part after the (first) colon
        head, tail = text.split(":", 1)
        if not re.match(r"^\s*\d", head):
            text = tail.strip().lstrip("*_").strip()
    m = re.match(r"^(\d+)\b", text)
    if m:
        return int(m.group(1))
    if _NONE.match(text):
        return 0
    w = re.match(r"^([a-z]+)\b", text.lower())
    if w and w.group(1) in _WORDS:
        return _WORDS[w.group(1)]
    return None


def _sections(text: str) -> dict[str, str]:
    """Section name → its body (from after the header to the next header); the first of each name wins."""
    heads = list(_HEADER.finditer(text))
    out: dict[str, str] = {}
    for i, m in enumerate(heads):
        name = next(k for k, p in _SECTIONS.items() if re.fullmatch(p, m.group("name"), re.IGNORECASE))
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        out.setdefault(name, text[m.end() : end])
    return out


def _categories(body: str) -> tuple[dict[str, int], tuple[str, ...], str | None]:
    counts: dict[str, int] = {}
    for m in _CATEGORY.finditer(body):
        letter = m.group("letter").lower()
        if letter in counts:
            continue
        c = _count(m.group("body"))
        if c is None:
            return counts, (), f"category ({letter}) has no count: {m.group(0).strip()[:80]!r}"
        counts[letter] = c
    if not counts and _count(body) == 0:  # "[Clinically Significant Errors]: None"
        return dict.fromkeys(GREEN_CATEGORIES, 0), (), None
    if not counts:
        return counts, (), "no (a)-(f) category lines"
    missing = tuple(k for k in GREEN_CATEGORIES if k not in counts)
    return {k: counts.get(k, 0) for k in GREEN_CATEGORIES}, missing, None


def green_score(matched: int, significant_errors: int) -> float:
    """GREEN = M / (M + E_sig); 0 when M = 0.

    >>> green_score(3, 1), green_score(0, 0)
    (0.75, 0.0)
    """
    return 0.0 if matched == 0 else matched / (matched + significant_errors)


def parse_green(text: str) -> GreenParse:
    """Read a GREEN-style judge reply (see the module notes); never raises on bad text.

    >>> r = parse_green("[Clinically Significant Errors]:\\n(a) False report: 1. Disc haemorrhage.\\n"
    ...                 "(b) Missing a finding: 0.\\n[Matched Findings]:\\n3. Cupping; RNFL thinning; field loss.")
    >>> r.ok, r.score, r.matched, r.missing
    (True, 0.75, 3, ('c', 'd', 'e', 'f'))
    >>> parse_green("The candidate is fine.").ok
    False
    """
    if not isinstance(text, str) or not text.strip():
        return GreenParse(False, float("nan"), error="empty reply")
    sections = _sections(text)
    if "significant" not in sections:
        return GreenParse(False, float("nan"), error="no [Clinically Significant Errors] section")
    if "matched" not in sections:
        return GreenParse(False, float("nan"), error="no [Matched Findings] section")
    sig, missing, err = _categories(sections["significant"])
    if err:
        return GreenParse(False, float("nan"), error=f"clinically significant errors: {err}")
    insig: dict[str, int] = {}
    if "insignificant" in sections:
        insig, _, err = _categories(sections["insignificant"])
        if err:
            insig = {}
    matched = _count(sections["matched"])
    if matched is None:
        return GreenParse(False, float("nan"), sig, insig, None, missing, "matched findings have no count")
    return GreenParse(True, green_score(matched, sum(sig.values())), sig, insig, matched, missing)
