"""Map free-text answers of generative VLMs to taxonomy nodes, so they feed the same metrics as classifiers.

Three methods (as in "Taxonomy-Aware Evaluation of Vision-Language Models", arXiv 2504.05457):

* ``exact``: the normalised answer, or one of its comma / semicolon / "and"-separated parts, equals a
  normalised node id;
* ``synonym``: phrase matching (on word boundaries) against node ids, the taxonomy's ``labels`` and a user
  synonym table; the longest match wins; negated mentions ("no pleural effusion", "effusion has resolved")
  are ignored;
* ``embedding``: the nearest node (cosine to the node's id, synonyms and prompts, with a sentence
  encoder) of the answer or of each part; a part below ``min_similarity`` abstains.

Normalisation is case-insensitive, reads hyphens, slashes and underscores as spaces, singularises plurals
and maps British to US spelling (:func:`medlens.text.us_spelling`: ``oedema`` → ``edema``). When a node and one
of its ancestors are both found, only the more specific node is kept. An answer that matches nothing maps to the
root (abstained).

Negation uses the engine of :mod:`medlens.text` with its ``clinical`` rules: answers are cut into clauses
(:func:`medlens.text.split_clauses`); a mention is negated by a preceding cue in its clause (``no``, ``not``,
``without``, ``negative for``, ``free of``, ``absence of``, ...) up to a scope stop (``with``, ``which``, ...),
or by a following one (``resolved``, ``removed``, ``clear``, ``unremarkable``, ``normal``, ``within normal
limits``, ``absent``, ``excluded``, ``ruled out``, ...) back to a comma. Pseudo-negations (``cannot be
excluded``, ``no change``, ``not only``) negate nothing, and a cue inside a matched term (``no finding``)
belongs to the term.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from medlens._validation import InputError, check_interval, check_option, did_you_mean
from medlens.taxonomy import Taxonomy
from medlens.text import NegationDetector, longest_matches, split_clauses, us_spelling

__all__ = ["ANSWER_METHODS", "AnswerMatch", "NodeMatch", "map_answer", "map_answers", "normalize_phrase"]

ANSWER_METHODS = ("exact", "synonym", "embedding")
AnswerMethod = Literal["exact", "synonym", "embedding"]

_WORD = re.compile(r"[A-Za-z0-9]+")
_TOKEN = re.compile(r"[A-Za-z0-9]+|,")  # commas are tokens: no phrase spans one
_WORD_MAP = {  # plurals the singulariser below gets wrong
    "apices": "apex",
    "metastases": "metastasis",
    "stenoses": "stenosis",
    "diagnoses": "diagnosis",
    "anastomoses": "anastomosis",
}
_SPLIT_WORDS = {"xray": ("x", "ray"), "xrays": ("x", "ray")}


def _singular(w: str) -> str:
    if len(w) <= 3 or w.isdigit():
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("sses"):
        return w[:-2]
    if w.endswith("ae") and len(w) > 4:
        return w[:-1]
    if w.endswith(("ss", "us", "is")):
        return w
    return w[:-1] if w.endswith("s") else w


@lru_cache(maxsize=65536)
def _norm_word(word: str) -> tuple[str, ...]:
    w = word.lower()
    if w in _SPLIT_WORDS:
        return _SPLIT_WORDS[w]
    w = _WORD_MAP.get(w) or us_spelling(w)
    return (_singular(w),)


def _tokens(text: str) -> tuple[list[str], list[int]]:
    """Normalised tokens (words, and "," for commas) and, for each, the index of the raw token it comes from."""
    toks, src = [], []
    for k, m in enumerate(_TOKEN.finditer(text)):
        for t in (",",) if m.group() == "," else _norm_word(m.group()):
            toks.append(t)
            src.append(k)
    return toks, src


def normalize_phrase(text: str) -> str:
    """The normalised form used for matching: lower case, words only, singular, US spelling.

    >>> normalize_phrase("Pleural Effusions"), normalize_phrase("pulmonary oedema"), normalize_phrase("X-ray")
    ('pleural effusion', 'pulmonary edema', 'x ray')
    """
    return " ".join(t for t in _tokens(str(text))[0] if t != ",")


_NEGATION = NegationDetector("clinical", tokenize=lambda text: _tokens(text)[0])
_PART_SPLIT = re.compile(r"[,;\n]+|(?<=[.!?])\s+")
_AND = re.compile(r"\band\b", re.IGNORECASE)
_ARTICLES = {"a", "an", "the"}


@dataclass(frozen=True)
class NodeMatch:
    """How one node was (or was not) matched in an answer.

    ``status`` is ``kept`` (a predicted node), ``ancestor`` (dropped for a more specific match), ``negated``
    (a negated mention, ignored) or ``below_threshold`` (embedding similarity under ``min_similarity``).
    ``node`` is ``None`` for a negated part of an ``embedding`` answer that names no known term.
    """

    node: str | None
    method: str
    text: str
    term: str
    status: str
    similarity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AnswerMatch:
    """The nodes of one answer and how they were found.

    ``status`` is ``matched``, ``unmatched`` (nothing found), ``negated`` (only negated mentions),
    ``abstained`` (embedding: every part below ``min_similarity``) or ``empty`` (a blank answer). Every
    status but ``matched`` gives ``nodes == (root,)``.
    """

    answer: str
    nodes: tuple[str, ...]
    status: str
    matches: tuple[NodeMatch, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "nodes": list(self.nodes),
            "status": self.status,
            "matches": [m.to_dict() for m in self.matches],
        }


# ---------------------------------------------------------------------------------------------- term tables
class _Terms:
    """Normalised phrase → (node, original term), with node ids first, then user synonyms, then labels."""

    def __init__(self, taxonomy: Taxonomy, synonyms: Mapping[str, Sequence[str]], *, with_labels: bool) -> None:
        self.table: dict[tuple[str, ...], tuple[str, str]] = {}
        tiers: list[list[tuple[str, str]]] = [[(n, n) for n in taxonomy.nodes[1:]]]
        if with_labels:
            tiers.append([(n, s) for n in taxonomy.nodes[1:] for s in synonyms.get(n, [])])
            tiers.append([(n, s) for n in taxonomy.nodes[1:] for s in taxonomy.labels.get(n, [])])
        for tier in tiers:
            for node, term in tier:
                key = tuple(_tokens(term)[0])
                if key:
                    self.table.setdefault(key, (node, term))
        self.maxlen = max((len(k) for k in self.table), default=1)


def _check_synonyms(synonyms: Mapping[str, Sequence[str]] | None, taxonomy: Taxonomy) -> dict[str, list[str]]:
    if synonyms is None:
        return {}
    if not isinstance(synonyms, Mapping):
        raise InputError(f"synonyms must map node ids to lists of phrases; got {type(synonyms).__name__}.")
    out = {}
    for node, phrases in synonyms.items():
        if node not in taxonomy.index:
            raise InputError(
                f"synonym table names unknown node {node!r} of taxonomy {taxonomy.name!r}."
                f"{did_you_mean(str(node), taxonomy.nodes)}"
            )
        if (
            isinstance(phrases, str)
            or not isinstance(phrases, Sequence)
            or not all(isinstance(p, str) for p in phrases)
        ):
            raise InputError(f"synonyms of {node!r} must be a list of strings; got {phrases!r}.")
        out[str(node)] = list(phrases)
    return out


@dataclass
class _Clause:
    source: str  # the clause text
    raw: list[tuple[int, int]]  # character span of each raw token (words and commas)
    tokens: list[str]  # normalised tokens
    src: list[int]  # normalised token -> raw token
    mentions: list[tuple[int, int, str, str, bool]]  # (start, end, node, term, negated), token spans
    negated_mask: np.ndarray  # tokens inside an active negation cue or its scope

    def text(self, a: int, b: int) -> str:
        return self.source[self.raw[self.src[a]][0] : self.raw[self.src[b - 1]][1]].strip(", ")


def _analyse_clause(text: str, terms: _Terms, negation: bool) -> _Clause:
    raw = [m.span() for m in _TOKEN.finditer(text)]
    tokens, src = _tokens(text)
    spans = longest_matches(tokens, terms.table, terms.maxlen)
    mask = np.zeros(len(tokens), dtype=bool)
    if negation:
        triggers, status = _NEGATION.analyse(tokens, spans)
        for t in triggers:
            mask[t.start : t.end] = True
            mask[t.scope_start : t.scope_end] = True
    else:
        status = ["affirmed"] * len(spans)
    mentions = [
        (a, b, *terms.table[tuple(tokens[a:b])], st == "negated")
        for (a, b), st in zip(spans, status, strict=True)
        if st != "cue"
    ]
    return _Clause(text, raw, tokens, src, mentions, mask)


def _most_specific(nodes: Sequence[str], taxonomy: Taxonomy) -> tuple[list[str], set[str]]:
    uniq = list(dict.fromkeys(nodes))
    anc = set()
    for n in uniq:
        anc.update(taxonomy.ancestors(n))
    kept = [n for n in uniq if n not in anc]
    return kept, {n for n in uniq if n in anc}


def _finish(answer: str, found: list[NodeMatch], taxonomy: Taxonomy) -> AnswerMatch:
    positive = [m.node for m in found if m.status == "kept"]
    kept, dropped = _most_specific(positive, taxonomy)
    matches = tuple(
        NodeMatch(m.node, m.method, m.text, m.term, "ancestor", m.similarity)
        if (m.status == "kept" and m.node in dropped)
        else m
        for m in found
    )
    if kept:
        return AnswerMatch(answer, tuple(kept), "matched", matches)
    statuses = {m.status for m in found}
    status = "abstained" if "below_threshold" in statuses else "negated" if "negated" in statuses else "unmatched"
    return AnswerMatch(answer, (taxonomy.root,), status, matches)


# ---------------------------------------------------------------------------------------------- the methods
def _parts(answer: str) -> list[str]:
    """Parts of an answer split at commas, semicolons, newlines and sentence ends."""
    return [p.strip() for p in _PART_SPLIT.split(answer) if _WORD.search(p)]


def _strip_articles(tokens: list[str]) -> tuple[str, ...]:
    k = 0
    while k < len(tokens) and tokens[k] in _ARTICLES:
        k += 1
    return tuple(tokens[k:])


def _map_exact(answer: str, taxonomy: Taxonomy, terms: _Terms) -> list[NodeMatch]:
    def lookup(text: str) -> NodeMatch | None:
        key = _strip_articles(_tokens(text)[0])
        hit = terms.table.get(key)
        return None if hit is None else NodeMatch(hit[0], "exact", text.strip(), hit[1], "kept")

    whole = lookup(answer)
    if whole is not None:
        return [whole]
    found = []
    for part in _parts(answer):
        m = lookup(part)
        if m is not None:
            found.append(m)
            continue
        found.extend(x for x in (lookup(s) for s in _AND.split(part) if _WORD.search(s)) if x is not None)
    return found


def _map_synonym(answer: str, terms: _Terms, negation: bool) -> list[NodeMatch]:
    found = []
    for clause in split_clauses(answer):
        c = _analyse_clause(clause, terms, negation)
        for a, b, node, term, neg in c.mentions:
            found.append(NodeMatch(node, "synonym", c.text(a, b), term, "negated" if neg else "kept"))
    return found


def _embedding_parts(answer: str, terms: _Terms, negation: bool) -> tuple[list[str], list[NodeMatch]]:
    """The parts of an answer to embed, with negated scope removed, and the negated mentions and parts.

    Clauses are split into parts at commas and "and" after negation scope is resolved on the whole clause,
    so "no effusion and pneumothorax" negates both.
    """
    keep: list[str] = []
    negated: list[NodeMatch] = []
    for clause in split_clauses(answer):
        c = _analyse_clause(clause, terms, negation)
        mask = c.negated_mask
        cuts = [i for i, t in enumerate(c.tokens) if t in (",", "and")]
        bounds = zip([-1, *cuts], [*cuts, len(c.tokens)], strict=True)
        for lo, hi in ((lo + 1, hi) for lo, hi in bounds if hi > lo + 1):
            alive = [i for i in range(lo, hi) if not mask[i]]
            if alive:
                keep.append(c.text(alive[0], alive[-1] + 1))
                continue
            mentions = [m for m in c.mentions if lo <= m[0] and m[1] <= hi]
            negated.extend(
                NodeMatch(node, "embedding", c.text(a, b), term, "negated") for a, b, node, term, _ in mentions
            )
            if not mentions:
                negated.append(NodeMatch(None, "embedding", c.text(lo, hi), "", "negated"))
    return keep, negated


def _embedder(embed: Any) -> Callable[[list[str]], np.ndarray]:
    if embed is None:
        from medlens.encoders import load_encoder

        enc = load_encoder("minilm")
        return lambda texts: enc.encode_texts(texts)
    if callable(getattr(embed, "encode_texts", None)):
        return lambda texts: embed.encode_texts(texts)
    if callable(embed):
        return embed
    raise TypeError(f"embed must be a callable list[str] -> (n, dim) array or an encoder; got {type(embed).__name__}.")


def _unit(x: Any, n: int, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or len(a) != n:
        raise InputError(f"embed returned shape {a.shape} for {n} {what}; expected ({n}, dim).")
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(norms == 0, 1.0, norms)


def _references(taxonomy: Taxonomy, synonyms: Mapping[str, Sequence[str]]) -> tuple[list[str], np.ndarray]:
    from medlens.hierarchy._prompts import _display

    refs: list[str] = []
    owner: list[int] = []
    for j, n in enumerate(taxonomy.nodes):
        if j == 0:
            continue
        names = [_display(n), *synonyms.get(n, []), *taxonomy.labels.get(n, []), *taxonomy.prompts.get(n, [])]
        for r in dict.fromkeys(x for x in names if x.strip()):
            refs.append(r)
            owner.append(j)
    return refs, np.array(owner, dtype=np.int64)


def _map_embedding_batch(
    answers: Sequence[str],
    taxonomy: Taxonomy,
    terms: _Terms,
    synonyms: Mapping[str, Sequence[str]],
    embed: Callable[[list[str]], np.ndarray],
    min_similarity: float,
    negation: bool,
) -> list[list[NodeMatch]]:
    per = [_embedding_parts(a, terms, negation) for a in answers]
    parts = [p for keep, _ in per for p in keep]
    found: list[list[NodeMatch]] = [list(neg) for _, neg in per]
    if not parts:
        return found
    refs, owner = _references(taxonomy, synonyms)
    if not refs:
        raise InputError(f"taxonomy {taxonomy.name!r} has no node names to embed.")
    uniq = list(dict.fromkeys(parts))
    r = _unit(embed(refs), len(refs), "node names")
    q = _unit(embed(uniq), len(uniq), "answer parts")
    sim = q @ r.T
    best = sim.argmax(axis=1)
    pos = {p: k for k, p in enumerate(uniq)}
    for i, (keep, _) in enumerate(per):
        for p in keep:
            k = pos[p]
            j = int(best[k])
            s = float(sim[k, j])
            status = "kept" if s >= min_similarity else "below_threshold"
            found[i].append(NodeMatch(taxonomy.nodes[owner[j]], "embedding", p, refs[j], status, round(s, 6)))
    return found


def map_answers(
    answers: Sequence[str],
    taxonomy: Taxonomy,
    *,
    method: AnswerMethod = "synonym",
    synonyms: Mapping[str, Sequence[str]] | None = None,
    embed: Any = None,
    min_similarity: float = 0.5,
    negation: bool = True,
) -> list[AnswerMatch]:
    """Map many answers to node sets, recording how each node was matched.

    Parameters
    ----------
    answers : sequence of str
        Free-text model answers.
    taxonomy : Taxonomy
    method : {"exact", "synonym", "embedding"}
    synonyms : mapping of str to list of str, optional
        Extra phrases per node (``synonym`` and ``embedding``), on top of the taxonomy's ``labels``.
    embed : callable or Encoder, optional
        ``embedding`` only: maps a list of strings to embeddings (n, dim); default the packaged MiniLM.
    min_similarity : float
        ``embedding`` only: a part whose best cosine is below this abstains.
    negation : bool
        Ignore negated mentions (``synonym`` and ``embedding``; ``exact`` needs the whole part to equal a node).

    Returns
    -------
    list of AnswerMatch
        ``nodes`` (the most specific matched nodes, or ``(root,)``), ``status`` and every ``NodeMatch``.
    """
    check_option(method, ANSWER_METHODS, name="method")
    check_interval(min_similarity, name="min_similarity", low=-1.0, high=1.0)
    if isinstance(answers, str):
        raise TypeError("answers must be a list of strings; for one answer use map_answer(text, taxonomy).")
    bad = [k for k, a in enumerate(answers) if not isinstance(a, str)]
    if bad:
        raise TypeError(f"answers must be strings; answer {bad[0]} is {type(answers[bad[0]]).__name__}.")
    syn = _check_synonyms(synonyms, taxonomy)
    terms = _Terms(taxonomy, syn, with_labels=method != "exact")
    if method == "embedding":
        live = [k for k, a in enumerate(answers) if _WORD.search(a)]
        batch = _map_embedding_batch(
            [answers[k] for k in live], taxonomy, terms, syn, _embedder(embed), min_similarity, negation
        )
        found_by = dict(zip(live, batch, strict=True))
    out = []
    for k, a in enumerate(answers):
        if not _WORD.search(a):
            out.append(AnswerMatch(a, (taxonomy.root,), "empty", ()))
            continue
        if method == "exact":
            found = _map_exact(a, taxonomy, terms)
        elif method == "synonym":
            found = _map_synonym(a, terms, negation)
        else:
            found = found_by[k]
        out.append(_finish(a, found, taxonomy))
    return out


def map_answer(
    text: str,
    taxonomy: Taxonomy,
    *,
    method: AnswerMethod = "synonym",
    synonyms: Mapping[str, Sequence[str]] | None = None,
    embed: Any = None,
    min_similarity: float = 0.5,
    negation: bool = True,
) -> list[str]:
    """Map one free-text answer to node ids (the root alone = no match / abstained).

    See :func:`map_answers` for the parameters and the module docstring for the rules.

    Examples
    --------
    >>> tax = Taxonomy({"root": ["Lung", "Pleura"], "Lung": ["Edema"], "Pleura": ["Pleural Effusion"]},
    ...                labels={"Pleural Effusion": ["effusion"]})
    >>> map_answer("Pulmonary oedema. No pleural effusions.", tax)
    ['Edema']
    >>> map_answer("edema and effusion", tax, method="exact")
    ['Edema']
    >>> map_answer("Lung edema, left effusion", tax)
    ['Edema', 'Pleural Effusion']
    >>> map_answer("I cannot tell.", tax)
    ['root']
    """
    if not isinstance(text, str):
        raise TypeError(f"an answer must be a string; got {type(text).__name__}.")
    res = map_answers(
        [text],
        taxonomy,
        method=method,
        synonyms=synonyms,
        embed=embed,
        min_similarity=min_similarity,
        negation=negation,
    )
    return list(res[0].nodes)
