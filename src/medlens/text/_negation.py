"""Negation scoping (NegEx-style): which mentions of a token sequence are negated.

One engine for every text consumer of medlens; what differs between them is data (a :class:`NegationRules`)
and the tokenizer, which each consumer brings because it matches its own dictionary.

Rules
-----
``pre_cues`` negate what follows them, ``post_cues`` what precedes them (a cue in both lists, such as
``not``, is *two-way*), and ``pseudo_cues`` are phrases that contain a cue but negate nothing (``no change``,
``cannot be excluded``, ``not only``). Cue phrases are tokenised with the consumer's tokenizer and found
longest first, so ``no`` inside ``no change`` is not a cue.

1. **Scope.** A pre cue's scope runs forward from the cue to the first ``pre_stops`` token; a post cue's runs
   backward to the first ``post_stops`` token. With ``window`` set, a scope also ends after that many words
   (punctuation tokens do not count). A mention is negated when it *starts* inside the scope of a pre cue
   before it, or *ends* inside the scope of a post cue after it.
2. **Two-way cues** negate backward when a mention lies in their backward scope (``effusion is not seen``),
   else forward (``not effusion``), never both: in ``edema is not present and effusion`` only the edema is
   negated.
3. **Mentions win over cues inside them.** A cue or a stop inside a longer mention is part of the mention
   (``no finding``); a mention inside a longer cue is part of the cue (``normal`` in ``within normal limits``).
   A mention that *is* a cue (``normal``) acts as a post cue when another mention lies in its backward scope
   (``heart size normal``) and as a mention otherwise.

Two rule sets are packaged (:data:`NEGATION_RULE_SETS`): ``clinical`` (no window, clause-scoped; the default)
and ``keywords`` (a 3-word window, used by keyword F1). :func:`load_negation_rules` reads either, a JSON file
or a dict with the keys of :meth:`NegationRules.to_dict`.

References
----------
Chapman WW et al. A simple algorithm for identifying negated findings and diseases in discharge summaries.
J Biomed Inform 2001;34:301-310.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from medlens._validation import InputError, did_you_mean
from medlens.text._normalize import fold, us_spelling

__all__ = [
    "NEGATION_RULE_SETS",
    "NegationDetector",
    "NegationRules",
    "Trigger",
    "load_negation_rules",
    "longest_matches",
    "negation_tokens",
]

#: Packaged rule sets (``data/negation_<name>.json``).
NEGATION_RULE_SETS = ("clinical", "keywords")

_TOKEN = re.compile(r"[a-z0-9]+|[.,;:!?()]")
_ALNUM = re.compile(r"[^\W_]")
_LISTS = ("pre_cues", "post_cues", "pseudo_cues", "pre_stops", "post_stops")


def negation_tokens(text: str) -> list[str]:
    """The default tokenizer: folded words (US spelling) and the punctuation ``. , ; : ! ? ( )``.

    >>> negation_tokens("No pleural effusion; oedema (mild).")
    ['no', 'pleural', 'effusion', ';', 'edema', '(', 'mild', ')', '.']
    """
    return [us_spelling(t) for t in _TOKEN.findall(fold(text))]


@dataclass(frozen=True)
class NegationRules:
    """Cue phrases, scope stops and window of the negation engine (see the module notes)."""

    pre_cues: tuple[str, ...] = ()
    post_cues: tuple[str, ...] = ()
    pseudo_cues: tuple[str, ...] = ()
    pre_stops: frozenset[str] = field(default_factory=frozenset)
    post_stops: frozenset[str] = field(default_factory=frozenset)
    window: int | None = None
    name: str = "custom"

    def to_dict(self) -> dict[str, Any]:
        """The JSON layout (round-trips through :meth:`from_dict`)."""
        return {"name": self.name, "window": self.window, **{k: sorted(getattr(self, k)) for k in _LISTS}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "negation rules") -> NegationRules:
        """Build from the JSON layout, checking it; missing lists are empty, a missing window is ``None``."""
        if not isinstance(data, Mapping):
            raise InputError(f"{source}: expected a JSON object; got {type(data).__name__}.")
        unknown = sorted(set(data) - {"name", "version", "description", "provenance", "window", *_LISTS})
        if unknown:
            raise InputError(
                f"{source}: unknown key {unknown[0]!r}; expected window, {', '.join(_LISTS)}."
                + did_you_mean(unknown[0], _LISTS)
            )
        window = data.get("window")
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 0):
            raise InputError(f"{source}: 'window' must be an integer >= 0 or null; got {window!r}.")
        lists: dict[str, Any] = {}
        for k in _LISTS:
            v = data.get(k, ())
            if isinstance(v, str) or not isinstance(v, Sequence | frozenset | set):
                raise InputError(f"{source}: {k!r} must be a list of strings; got {v!r}.")
            lists[k] = sorted({str(x).lower() for x in v})
        return cls(
            pre_cues=tuple(lists["pre_cues"]),
            post_cues=tuple(lists["post_cues"]),
            pseudo_cues=tuple(lists["pseudo_cues"]),
            pre_stops=frozenset(lists["pre_stops"]),
            post_stops=frozenset(lists["post_stops"]),
            window=window,
            name=str(data.get("name", "custom")),
        )


def load_negation_rules(spec: str | os.PathLike | Mapping[str, Any] | None = None) -> NegationRules:
    """A packaged rule set by name (``None`` = ``"clinical"``), a JSON file, or a dict.

    >>> load_negation_rules().window is None, load_negation_rules("keywords").window
    (True, 3)
    """
    if spec is None:
        spec = "clinical"
    if isinstance(spec, Mapping):
        return NegationRules.from_dict(spec)
    if isinstance(spec, str) and spec in NEGATION_RULE_SETS:
        res = resources.files("medlens.text").joinpath("data", f"negation_{spec}.json")
        return NegationRules.from_dict(json.loads(res.read_text(encoding="utf-8")), source=spec)
    path = Path(spec)
    if not path.is_file():
        raise InputError(
            f"unknown negation rules {str(spec)!r}: not a packaged set ({', '.join(NEGATION_RULE_SETS)}) nor a "
            f"JSON file." + did_you_mean(str(spec), NEGATION_RULE_SETS)
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"negation rules file {path}: invalid JSON ({exc}).") from exc
    return NegationRules.from_dict(data, source=str(path))


@dataclass(frozen=True)
class Trigger:
    """An active cue: token span, direction and scope (token span ``[scope_start, scope_end)``)."""

    start: int
    end: int
    direction: Literal["pre", "post"]
    scope_start: int
    scope_end: int


Span = tuple[int, int]


def longest_matches(tokens: Sequence[str], table: Mapping[tuple[str, ...], Any], maxlen: int) -> list[Span]:
    """Non-overlapping token spans of the phrases of ``table`` (token tuples), longest first, in text order.

    Among overlapping candidates the longer wins, then the leftmost.

    >>> longest_matches("no pleural effusion".split(), {("effusion",): 1, ("pleural", "effusion"): 2}, 2)
    [(1, 3)]
    """
    cands = [
        (i, i + n)
        for i in range(len(tokens))
        for n in range(min(maxlen, len(tokens) - i), 0, -1)
        if tuple(tokens[i : i + n]) in table
    ]
    cands.sort(key=lambda s: (s[0] - s[1], s[0]))
    taken = np.zeros(len(tokens), dtype=bool)
    out = []
    for a, b in cands:
        if not taken[a:b].any():
            taken[a:b] = True
            out.append((a, b))
    return sorted(out)


def _stop_tokens(stops: frozenset[str], tokenize: Callable[[str], Sequence[str]]) -> frozenset[str]:
    out = set()
    for s in stops:
        toks = list(tokenize(s))
        if len(toks) == 1:
            out.add(toks[0])
    return frozenset(out)


def _inside(inner: Span, spans: Sequence[Span]) -> bool:
    """Whether ``inner`` lies within a strictly longer span of ``spans``."""
    return any(a <= inner[0] and inner[1] <= b and (b - a) > (inner[1] - inner[0]) for a, b in spans)


class NegationDetector:
    """The negation engine for one rule set and one tokenizer.

    Parameters
    ----------
    rules : NegationRules, str or None
        Rules, or the name of a packaged set (``None`` = ``"clinical"``).
    tokenize : callable str -> list of str
        The consumer's tokenizer, applied to the cue phrases and the stops so that they match its tokens
        (default :func:`negation_tokens`); a stop it turns into no token or several is left out.

    Examples
    --------
    >>> neg = NegationDetector()
    >>> toks = negation_tokens("No effusion or pneumothorax, but mild edema. Heart size normal.")
    >>> spans = [(1, 2), (3, 4), (7, 8), (9, 10)]  # effusion, pneumothorax, edema, heart
    >>> neg.negated(toks, spans)
    [True, True, False, True]
    >>> neg.has_negation(negation_tokens("No change in the effusion."))  # a pseudo-negation
    False
    """

    def __init__(
        self,
        rules: NegationRules | str | None = None,
        tokenize: Callable[[str], Sequence[str]] = negation_tokens,
    ) -> None:
        self.rules = rules if isinstance(rules, NegationRules) else load_negation_rules(rules)
        table: dict[tuple[str, ...], str] = {}
        for kind, cues in (("post", self.rules.post_cues), ("pre", self.rules.pre_cues)):
            for c in cues:
                key = tuple(tokenize(c))
                if key:
                    table[key] = "both" if table.get(key, kind) != kind else kind
        for c in self.rules.pseudo_cues:
            key = tuple(tokenize(c))
            if key:
                table[key] = "pseudo"
        self._table = table
        self._maxlen = max((len(k) for k in table), default=1)
        self._pre_stops = _stop_tokens(self.rules.pre_stops, tokenize)
        self._post_stops = _stop_tokens(self.rules.post_stops, tokenize)

    # ----------------------------------------------------------------------------------------------- scopes
    def _scope(self, tokens: Sequence[str], start: int, step: int, protected: np.ndarray) -> int:
        """The far end of a scope from ``start`` (exclusive when stepping forward, inclusive backward)."""
        stops = self._pre_stops if step > 0 else self._post_stops
        window = self.rules.window
        words, q, edge = 0, start, start
        while 0 <= q < len(tokens):
            t = tokens[q]
            if t in stops and not protected[q]:
                break
            if _ALNUM.search(t):
                if window is not None and words >= window:
                    break
                words += 1
            q += step
            edge = q
        return edge

    def analyse(self, tokens: Sequence[str], mentions: Sequence[Span] = ()) -> tuple[list[Trigger], list[str]]:
        """The active cues of ``tokens`` and the status of every mention.

        Parameters
        ----------
        tokens : sequence of str
            Tokens from the consumer's tokenizer.
        mentions : sequence of (start, end)
            Non-overlapping token spans of the matched terms.

        Returns
        -------
        triggers : list of Trigger
            Active cues (pseudo cues and cues inside mentions removed), with their direction and scope.
        status : list of str
            Per mention: ``"negated"``, ``"affirmed"``, or ``"cue"`` (the mention is a cue, or lies inside one).
        """
        spans = [(int(a), int(b)) for a, b in mentions]
        cues = longest_matches(tokens, self._table, self._maxlen)
        kind = {c: self._table[tuple(tokens[c[0] : c[1]])] for c in cues}
        cues = [c for c in cues if not _inside(c, spans)]
        live = [s for s in spans if not _inside(s, cues)]
        protected = np.zeros(len(tokens), dtype=bool)
        for a, b in live:
            protected[a:b] = True

        def back(c: Span, pool: Sequence[Span]) -> bool:  # a mention of ``pool`` in c's backward scope
            lo = self._scope(tokens, c[0] - 1, -1, protected) + 1
            return any(b <= c[0] and b - 1 >= lo for a, b in pool if (a, b) != c)

        for c in sorted(set(cues) & set(live)):
            if kind[c] in ("post", "both") and back(c, live):
                live.remove(c)
                protected[c[0] : c[1]] = False
            else:
                cues.remove(c)
        triggers = []
        for c in cues:
            k = kind[c]
            if k == "pseudo":
                continue
            if k == "both":
                k = "post" if back(c, live) else "pre"
            if k == "pre":
                triggers.append(Trigger(c[0], c[1], "pre", c[1], self._scope(tokens, c[1], 1, protected)))
            else:
                triggers.append(Trigger(c[0], c[1], "post", self._scope(tokens, c[0] - 1, -1, protected) + 1, c[0]))
        status = []
        for s in spans:
            if s not in live:
                status.append("cue")
                continue
            a, b = s
            neg = any(
                (t.direction == "pre" and t.scope_start <= a < t.scope_end)
                or (t.direction == "post" and t.scope_start <= b - 1 < t.scope_end)
                for t in triggers
            )
            status.append("negated" if neg else "affirmed")
        return triggers, status

    def negated(self, tokens: Sequence[str], mentions: Sequence[Span]) -> list[bool]:
        """Whether each mention is negated (a mention that is a cue counts as not negated)."""
        return [s == "negated" for s in self.analyse(tokens, mentions)[1]]

    def mask(self, tokens: Sequence[str], mentions: Sequence[Span] = ()) -> np.ndarray:
        """Boolean mask of shape (len(tokens),): tokens inside an active cue or inside its scope."""
        m = np.zeros(len(tokens), dtype=bool)
        for t in self.analyse(tokens, mentions)[0]:
            m[t.start : t.end] = True
            m[t.scope_start : t.scope_end] = True
        return m

    def has_negation(self, tokens: Sequence[str]) -> bool:
        """Whether ``tokens`` hold an active cue (a pseudo-negation is none)."""
        return bool(self.analyse(tokens)[0])
