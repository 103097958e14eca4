"""Diagnosis judges: does a predicted diagnosis name the same condition as the gold one?

A judge implements :class:`Judge`: ``judge(prediction, gold) -> Judgement`` and the batched
``judge_batch(pairs)``, plus a ``judge_id`` that changes whenever its verdicts could change (it keys the cache).
Subclass :class:`BaseJudge` and implement ``judge_batch``; register a factory in :data:`JUDGES` to make a judge
available by name (``medlens nova evaluate --judge NAME``). An LLM judge plugs in the same way.

Built-in judges:

- ``exact_synonym`` (:class:`ExactSynonymJudge`, the default): equal after normalisation, or in the same group of
  a curated synonym table (``data/diagnosis_synonyms.json``). Deterministic, offline; a lower bound of what a
  clinician (or an LLM judge) would accept.
- ``embedding`` (:class:`EmbeddingJudge`): cosine similarity of sentence embeddings (the packaged MiniLM by
  default) at or above a threshold. **Analysis only**: MiniLM scores abbreviations low ("glioblastoma" vs "GBM"
  0.19) and related-but-different conditions high ("subdural" vs "epidural hematoma" 0.69), so its numbers are
  not comparable to NOVA's.
- ``llm`` (:class:`~medlens.metrics._llm_judge.LLMJudge`): the majority of several votes of an
  OpenAI-compatible LLM asked whether the two names denote the same disease (NOVA's kind of judge, with our own
  documented prompt).

Judgements are cached on disk by :class:`JudgeCache` (JSONL, keyed by judge id + both texts) and logged
(``logging`` at DEBUG per pair, INFO per batch) by :func:`run_judge`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from medlens._cache import cache_root
from medlens._registry import Registry
from medlens._validation import InputError, check_interval
from medlens.text import fold, us_spelling

__all__ = [
    "JUDGES",
    "BaseJudge",
    "EmbeddingJudge",
    "ExactSynonymJudge",
    "Judge",
    "JudgeCache",
    "Judgement",
    "SynonymTable",
    "load_synonym_table",
    "make_judge",
    "normalize_diagnosis",
    "run_judge",
]

log = logging.getLogger(__name__)

SYNONYMS_FILE = "diagnosis_synonyms.json"


# ================================================================================================= the types
@dataclass(frozen=True)
class Judgement:
    """One verdict: ``match``, a ``score`` (1/0, a similarity, a vote share, or None) and a one-line ``rationale``."""

    match: bool
    score: float | None
    rationale: str

    def to_dict(self) -> dict[str, Any]:
        return {"match": self.match, "score": self.score, "rationale": self.rationale}


@runtime_checkable
class Judge(Protocol):
    """What :func:`run_judge` and the diagnosis metrics need from a judge."""

    name: str
    judge_id: str
    analysis_only: bool

    def judge(self, prediction: str, gold: str) -> Judgement: ...

    def judge_batch(self, pairs: Sequence[tuple[str, str]]) -> list[Judgement]: ...

    def describe(self) -> dict[str, Any]: ...


class BaseJudge:
    """Shared plumbing: ``judge`` calls ``judge_batch`` on one pair. Subclasses set ``name``/``judge_id``."""

    name: str = "judge"
    analysis_only: bool = False

    @property
    def judge_id(self) -> str:  # pragma: no cover - every subclass overrides it
        return self.name

    def judge(self, prediction: str, gold: str) -> Judgement:
        return self.judge_batch([(prediction, gold)])[0]

    def judge_batch(self, pairs: Sequence[tuple[str, str]]) -> list[Judgement]:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"judge": self.name, "judge_id": self.judge_id, "analysis_only": self.analysis_only}


# ============================================================================================ normalisation
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


def _forms(text: str, table: SynonymTable) -> list[str]:
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
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"synonym table {path}: not valid JSON ({exc.msg}, line {exc.lineno}).") from None
    return _table_from(data, str(path), extra)


# ================================================================================================ the judges
class ExactSynonymJudge(BaseJudge):
    """Match when the normalised names are equal or in the same synonym group (the default judge).

    Each name is also tried without its bracketed parts and as each bracketed part ("Lhermitte-Duclos disease
    (dysplastic cerebellar gangliocytoma)" matches either name). Scores are 1.0 or 0.0.

    Parameters
    ----------
    synonyms : path, mapping, SynonymTable or None
        The table (default: the built-in one, see :func:`load_synonym_table`).
    extra : iterable of lists of str
        More groups.

    Examples
    --------
    >>> j = ExactSynonymJudge()
    >>> j.judge("Acoustic neuroma", "vestibular schwannoma").match
    True
    >>> j.judge("cyst", "arachnoid cyst").match
    False
    >>> j.judge("Probable glioblastoma multiforme", "Glioblastoma, IDH-wildtype").rationale
    "synonyms: 'glioblastoma multiforme' and 'glioblastoma idh wildtype' are in the group of 'glioblastoma'"
    """

    name = "exact_synonym"
    analysis_only = False

    def __init__(
        self,
        synonyms: str | os.PathLike | Mapping[str, Any] | SynonymTable | None = None,
        *,
        extra: Iterable[Iterable[str]] = (),
    ) -> None:
        self.table = load_synonym_table(synonyms, extra=extra)
        self._index = self.table.index()

    @property
    def judge_id(self) -> str:
        return f"exact_synonym:{self.table.name}@{self.table.version}:{self.table.sha256[:16]}"

    def canonical(self, text: str) -> str:
        """The label a name counts as (its group's first name, else its normalised form)."""
        forms = _forms(text, self.table)
        for f in forms:
            if f in self._index:
                return self.table.groups[self._index[f]][0]
        return forms[0] if forms else ""

    def _one(self, prediction: str, gold: str) -> Judgement:
        pf, gf = _forms(prediction, self.table), _forms(gold, self.table)
        for p in pf:
            if p in gf:
                return Judgement(True, 1.0, f"exact match after normalisation: {p!r}")
        for p in pf:
            for g in gf:
                gp, gg = self._index.get(p), self._index.get(g)
                if gp is not None and gp == gg:
                    return Judgement(
                        True, 1.0, f"synonyms: {p!r} and {g!r} are in the group of {self.table.groups[gp][0]!r}"
                    )
        return Judgement(False, 0.0, f"no match: {pf[0] if pf else ''!r} vs {gf[0] if gf else ''!r}")

    def judge_batch(self, pairs: Sequence[tuple[str, str]]) -> list[Judgement]:
        return [self._one(p, g) for p, g in pairs]

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "synonym_table": {"name": self.table.name, "version": self.table.version, "sha256": self.table.sha256},
            "n_groups": len(self.table.groups),
        }


class EmbeddingJudge(BaseJudge):
    """Match when the cosine similarity of the two names' embeddings is >= ``threshold`` (analysis only).

    Parameters
    ----------
    encoder : str or encoder
        ``"minilm"`` (the packaged all-MiniLM-L6-v2), a local sentence-transformers folder, or any object with
        ``encode_texts(texts) -> (n, d) array`` and a ``model_id``.
    threshold : float
        In (-1, 1]; default 0.8 (an arbitrary cut: see the module notes).
    """

    name = "embedding"
    analysis_only = True

    def __init__(self, encoder: Any = "minilm", *, threshold: float = 0.8) -> None:
        check_interval(threshold, name="threshold", low=-1, high=1, closed="right")
        self.threshold = float(threshold)
        self._encoder_arg = encoder
        self._encoder = None if isinstance(encoder, str) else encoder
        self.model_id = (
            getattr(encoder, "model_id", type(encoder).__name__) if self._encoder is not None else str(encoder)
        )
        if encoder == "minilm":
            from medlens.encoders import MINILM_ID

            self.model_id = MINILM_ID

    @property
    def judge_id(self) -> str:
        return f"embedding:{self.model_id}:threshold={self.threshold:g}"

    def _get_encoder(self):
        if self._encoder is None:
            from medlens.encoders import load_encoder

            self._encoder = load_encoder(self._encoder_arg)
        return self._encoder

    def judge_batch(self, pairs: Sequence[tuple[str, str]]) -> list[Judgement]:
        if not pairs:
            return []
        texts = list(dict.fromkeys(t.strip() for pair in pairs for t in pair))
        emb = np.asarray(self._get_encoder().encode_texts(texts), dtype=np.float64)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        emb = emb / np.where(norms > 0, norms, 1.0)
        pos = {t: i for i, t in enumerate(texts)}
        out = []
        for p, g in pairs:
            s = float(emb[pos[p.strip()]] @ emb[pos[g.strip()]])
            ok = s >= self.threshold
            out.append(Judgement(ok, s, f"cosine {s:.3f} {'>=' if ok else '<'} {self.threshold:g} ({self.model_id})"))
        return out

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "model": self.model_id,
            "threshold": self.threshold,
            "note": "analysis only: embedding similarity is not NOVA's LLM semantic matching; do not compare",
        }


JUDGES: Registry[Any] = Registry("judge")
JUDGES.register(
    "exact_synonym",
    "medlens.metrics._judges:ExactSynonymJudge",
    description="normalised exact match + curated synonym table (default; offline, deterministic, a lower bound)",
)
JUDGES.register(
    "embedding",
    "medlens.metrics._judges:EmbeddingJudge",
    description="cosine similarity of MiniLM embeddings >= threshold (analysis only)",
    extra="hf",
)
JUDGES.register(
    "llm",
    "medlens.metrics._llm_judge:LLMJudge",
    description="majority of several votes of an OpenAI-compatible LLM on 'same disease?' (our prompt; needs "
    "llm_url and model, or a client)",
    extra="llm",
)


def make_judge(judge: str | Judge, **kwargs: Any) -> Judge:
    """A judge from its registered name (with constructor ``kwargs``), or ``judge`` itself when it is one."""
    if isinstance(judge, str):
        return JUDGES.get(judge)(**kwargs)
    if kwargs:
        raise InputError("judge options are given with a judge name, not with a judge object.")
    if not isinstance(judge, Judge):
        raise TypeError(
            f"judge must be a registered name ({', '.join(JUDGES.names())}) or an object with name, judge_id, "
            f"analysis_only, judge(), judge_batch() and describe(); got {type(judge).__name__}."
        )
    return judge


# ================================================================================================= the cache
class JudgeCache:
    """Judgements on disk: one JSONL file per judge under ``folder`` (default ``$MEDLENS_CACHE/judgements``).

    Each line holds the key (SHA-256 of judge id, prediction and gold), the judge id, both texts, the verdict
    and the time it was made, so the file doubles as the judgement log. Unreadable lines (a run killed
    mid-write) are skipped.

    >>> import tempfile
    >>> cache = JudgeCache(tempfile.mkdtemp())
    >>> cache.put("j", "a", "b", Judgement(True, 1.0, "same"))
    >>> JudgeCache(cache.folder).get("j", "a", "b")
    Judgement(match=True, score=1.0, rationale='same')
    """

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self.folder = Path(folder) if folder is not None else cache_root("judgements")
        self._loaded: dict[str, dict[str, Judgement]] = {}

    @staticmethod
    def key(judge_id: str, prediction: str, gold: str) -> str:
        return hashlib.sha256("\x1f".join((judge_id, prediction, gold)).encode("utf-8")).hexdigest()

    def path(self, judge_id: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", judge_id.split(":")[0])[:40]
        return self.folder / f"{slug}-{hashlib.sha256(judge_id.encode()).hexdigest()[:16]}.jsonl"

    def _entries(self, judge_id: str) -> dict[str, Judgement]:
        if judge_id not in self._loaded:
            entries: dict[str, Judgement] = {}
            p = self.path(judge_id)
            if p.is_file():
                with p.open(encoding="utf-8") as fh:
                    for lineno, line in enumerate(fh, 1):
                        try:
                            r = json.loads(line)
                            entries[r["key"]] = Judgement(bool(r["match"]), r.get("score"), str(r.get("rationale", "")))
                        except (json.JSONDecodeError, KeyError, TypeError):
                            log.warning("judge cache %s: line %d unreadable; ignored", p, lineno)
            self._loaded[judge_id] = entries
        return self._loaded[judge_id]

    def get(self, judge_id: str, prediction: str, gold: str) -> Judgement | None:
        return self._entries(judge_id).get(self.key(judge_id, prediction, gold))

    def put(self, judge_id: str, prediction: str, gold: str, judgement: Judgement) -> None:
        self.put_many(judge_id, [(prediction, gold, judgement)])

    def put_many(self, judge_id: str, items: Sequence[tuple[str, str, Judgement]]) -> None:
        if not items:
            return
        entries = self._entries(judge_id)
        p = self.path(judge_id)
        p.parent.mkdir(parents=True, exist_ok=True)
        now = time.strftime("%Y-%m-%dT%H:%M:%S")
        with p.open("a", encoding="utf-8") as fh:
            for pred, gold, j in items:
                k = self.key(judge_id, pred, gold)
                entries[k] = j
                rec = {"key": k, "judge_id": judge_id, "prediction": pred, "gold": gold, **j.to_dict(), "time": now}
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


@dataclass(frozen=True)
class JudgeRun:
    """What :func:`run_judge` returns: verdicts in input order and how they were obtained."""

    judgements: list[Judgement]
    n_pairs: int
    n_unique: int
    n_cached: int
    n_judged: int
    cache_path: str | None

    def stats(self) -> dict[str, Any]:
        return {
            "n_pairs": self.n_pairs,
            "n_unique_pairs": self.n_unique,
            "cache_hits": self.n_cached,
            "judged": self.n_judged,
            "cache": self.cache_path,
        }


def run_judge(judge: Judge, pairs: Sequence[tuple[str, str]], *, cache: JudgeCache | None = None) -> JudgeRun:
    """Judge ``(prediction, gold)`` pairs: unique pairs once, cached ones from ``cache``, new ones stored there.

    >>> run = run_judge(ExactSynonymJudge(), [("GBM", "glioblastoma"), ("GBM", "glioblastoma"), ("cyst", "tumor")])
    >>> [j.match for j in run.judgements], run.n_unique
    ([True, True, False], 2)
    """
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, tuple | list) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
            raise InputError(f"pair {i} must be (prediction, gold) strings; got {pair!r}.")
    unique = list(dict.fromkeys((p, g) for p, g in pairs))
    verdicts: dict[tuple[str, str], Judgement] = {}
    todo = []
    for pair in unique:
        hit = cache.get(judge.judge_id, *pair) if cache is not None else None
        if hit is not None:
            verdicts[pair] = hit
        else:
            todo.append(pair)
    if todo:
        fresh = judge.judge_batch(todo)
        if len(fresh) != len(todo):
            raise RuntimeError(f"judge {judge.judge_id} returned {len(fresh)} verdicts for {len(todo)} pairs.")
        verdicts.update(zip(todo, fresh, strict=True))
        if cache is not None:
            cache.put_many(judge.judge_id, [(p, g, j) for (p, g), j in zip(todo, fresh, strict=True)])
    for (p, g), j in verdicts.items():
        log.debug(
            "judge %s: %r vs %r -> %s (%s)", judge.judge_id, p, g, "match" if j.match else "no match", j.rationale
        )
    log.info(
        "judge %s: %d pairs, %d unique, %d from cache, %d judged",
        judge.judge_id,
        len(pairs),
        len(unique),
        len(unique) - len(todo),
        len(todo),
    )
    return JudgeRun(
        judgements=[verdicts[(p, g)] for p, g in pairs],
        n_pairs=len(pairs),
        n_unique=len(unique),
        n_cached=len(unique) - len(todo),
        n_judged=len(todo),
        cache_path=str(cache.path(judge.judge_id)) if cache is not None else None,
    )
