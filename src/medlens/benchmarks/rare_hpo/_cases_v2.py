"""Generator ``rare-hpo-v2``: the v1 patients, written the way notes paraphrase (v1 stays as it is).

Which phenotypes a patient shows is drawn exactly as in v1 (:meth:`_Sampler.select`: frequencies, omissions,
imprecise ancestors, unrelated findings). What changes is the wording:

1. **Renderings.** Each finding is written by its HPO *name* with probability ``p_name``; otherwise by one of
   the medlens lay paraphrases (:mod:`._lay`, never indexed) with probability ``p_lay`` when the term has one,
   else by a *test-half* rendering of hp.obo (:func:`medlens.retrieval.hpo_renderings`): an ``EXACT`` synonym
   of any type, a layperson synonym of any scope, or the first sentence of the definition (at most
   ``max_definition_words`` words). Concept recognisers index only the name and the *index* half, so a
   case measures recognition of unseen wording. A term with none of these falls back to its name.
2. **Templates.** Clinical findings are spread over "presents with …", "There is a history of …",
   "Since age N, …", "Parents report …"; a definition is a sentence of its own; imaging findings go into
   "Brain MRI shows …".
3. **Negated distractors.** ``0..max_negated`` unrelated phenotypes (as for noise) are written in a negated
   sentence ("No …", "There is no …", "No history of …"); they are recorded as ``negated``, not as findings.
4. **Uncertain and family distractors** (``context_distractors`` > 0; 0 by default, so the default cases are
   unchanged): that many further unrelated phenotypes, alternately written as uncertain ("Possible …", "… cannot
   be excluded", "Referred to rule out …") and as a relative's ("A brother has …", "Family history of …", "… in
   the maternal uncle"), drawn from their own random stream; recorded as ``uncertain`` and ``family``, neither
   findings nor negated. The templates use cue phrases of :mod:`medlens.retrieval._context`, so they test that a
   ranker keeps such mentions out of its evidence, not how many ways a note can hedge.
5. **Splits.** The eligible diseases are split by a hash of their id into ``dev`` (for choosing thresholds,
   weights and rules) and ``test`` (the reported split, never used for a choice); the two never share a
   disease, and their random streams differ.

Each case is a v1 case (same keys) whose ``phenotypes`` also hold ``renderings`` (``[{term, text, kind}]`` in
text order, kind ``name | synonym | definition | lay``) and ``negated`` (terms).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from medlens._validation import InputError
from medlens.benchmarks.rare_hpo._cases import GeneratorConfig, _listing, _phrase, _Sampler, _who
from medlens.benchmarks.rare_hpo._lay import LAY_PARAPHRASES, LAY_VERSION

__all__ = ["GENERATOR_V2", "SPLITS", "GeneratorConfigV2", "evaluate_recognition", "generate_cases_v2", "split_of"]

GENERATOR_V2 = "rare-hpo-v2"
SPLITS = ("dev", "test")
_SPLIT_CODE = {"dev": 1, "test": 2}


def split_of(disease_id: str) -> str:
    """``"dev"`` or ``"test"``: the fixed split of a disease (SHA-256 of its id; about half each)."""
    return "dev" if hashlib.sha256(f"rare-hpo-v2|{disease_id}".encode()).digest()[0] % 2 == 0 else "test"


@dataclass(frozen=True)
class GeneratorConfigV2(GeneratorConfig):
    """Parameters of ``rare-hpo-v2``: v1's plus the split and the wording (module docstring)."""

    split: str = "test"
    p_name: float = 0.15
    p_lay: float = 0.6
    max_definition_words: int = 25
    max_negated: int = 2
    context_distractors: int = 0
    lay_table: str = LAY_VERSION
    version: str = GENERATOR_V2

    def check(self) -> GeneratorConfigV2:
        if self.version != GENERATOR_V2:
            raise InputError(f"GeneratorConfigV2 generates {GENERATOR_V2!r} cases, not {self.version!r}.")
        if self.split not in SPLITS:
            raise InputError(f"split must be one of {', '.join(SPLITS)}; got {self.split!r}.")
        for name in ("p_name", "p_lay"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise InputError(f"{name} must be in [0, 1]; got {v}.")
        if self.max_definition_words < 1 or not 0 <= self.max_negated <= 5 or not 0 <= self.context_distractors <= 5:
            raise InputError("need max_definition_words >= 1, 0 <= max_negated <= 5 and 0 <= context_distractors <= 5.")
        if self.lay_table != LAY_VERSION:
            raise InputError(f"this medlens ships the lay table {LAY_VERSION!r}, not {self.lay_table!r}.")
        return self._check_fields()  # type: ignore[return-value]


_USABLE_SCOPE = ("EXACT",)


class _Writer:
    """Chooses a rendering per term and writes the narrative."""

    def __init__(self, kb: Any, cfg: GeneratorConfigV2) -> None:
        from medlens.retrieval import hpo_renderings

        self.kb, self.cfg = kb, cfg
        self.renderings = hpo_renderings()

    def test_half(self, term: str) -> list[tuple[str, str]]:
        out = []
        for r in self.renderings.get(term, ()):
            if r.half != "test":
                continue
            if r.kind == "synonym" and (r.scope in _USABLE_SCOPE or r.type == "layperson"):
                out.append((r.text, "synonym"))
            elif r.kind == "definition" and len(r.text.split()) <= self.cfg.max_definition_words:
                out.append((r.text, "definition"))
        return out

    def render(self, term: str, rng: np.random.Generator) -> tuple[str, str]:
        lay = LAY_PARAPHRASES.get(term, ())
        held = self.test_half(term)
        if rng.random() < self.cfg.p_name or not (lay or held):
            return self.kb.name(term), "name"
        if lay and (not held or rng.random() < self.cfg.p_lay):
            return lay[int(rng.integers(len(lay)))], "lay"
        return held[int(rng.integers(len(held)))]


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[0].upper() + text[1:]) if text else text


def _clinical(rendered: list[tuple[str, str]], rng: np.random.Generator, who: str) -> list[str]:
    """Clinical-history sentences: the first findings in a "presents with" list, the others in templates."""
    listed = [t for t, k in rendered if k != "definition"]
    defs = [t for t, k in rendered if k == "definition"]
    head_n = max(1, len(listed) - int(rng.integers(0, len(listed) + 1))) if listed else 0
    head, rest = listed[:head_n], listed[head_n:]
    out = [f"{who} presents with {_listing(head)}."] if head else [f"{who} is referred for brain MRI."]
    for x in rest:
        form = int(rng.integers(3))
        if form == 0:
            out.append(f"There is a history of {_phrase(x)}.")
        elif form == 1:
            out.append(f"Since age {int(rng.integers(1, 6))}, {_phrase(x)} has been noted.")
        else:
            out.append(f"Parents report {_phrase(x)}.")
    out += [_sentence(d) + "." for d in defs]
    return out


def _negated(rendered: list[str], rng: np.random.Generator) -> list[str]:
    out = []
    for x in rendered:
        form = int(rng.integers(3))
        out.append((f"No {_phrase(x)}.", f"There is no {_phrase(x)}.", f"No history of {_phrase(x)}.")[form])
    return out


_UNCERTAIN_FORMS = ("Possible {p}.", "{s} cannot be excluded.", "Referred to rule out {p}.")
_FAMILY_FORMS = ("A brother has {p}.", "Family history of {p}.", "{s} in the maternal uncle.")


def _unrelated(sampler: _Sampler, taken: set[str], related: set[str], rng: np.random.Generator) -> str | None:
    """An unrelated phenotype drawn like noise (None after 20 tries)."""
    for _try in range(20):
        cand = sampler.noise_pool[int(rng.choice(len(sampler.noise_pool), p=sampler.noise_p))]
        if cand not in related and cand not in taken:
            return cand
    return None


def _context_sentences(
    n: int, sampler: _Sampler, writer: _Writer, taken: set[str], related: set[str], rng: np.random.Generator
) -> tuple[list[str], dict[str, list[dict[str, str]]]]:
    """``n`` unrelated phenotypes, alternately uncertain and a relative's (module docstring)."""
    out: list[str] = []
    got: dict[str, list[dict[str, str]]] = {"uncertain": [], "family": []}
    for k in range(n):
        t = _unrelated(sampler, taken, related, rng)
        if t is None:
            continue
        taken.add(t)
        text, kind = writer.render(t, rng)
        status, forms = ("uncertain", _UNCERTAIN_FORMS) if k % 2 == 0 else ("family", _FAMILY_FORMS)
        out.append(forms[int(rng.integers(len(forms)))].format(p=_phrase(text), s=_sentence(text)))
        got[status].append({"term": t, "text": text, "kind": kind})
    return out, got


def _case_v2(sampler: _Sampler, writer: _Writer, i: int, did: str) -> dict[str, Any]:
    cfg, kb = sampler.cfg, sampler.kb
    assert isinstance(cfg, GeneratorConfigV2)
    rng = np.random.default_rng([cfg.seed, 2, _SPLIT_CODE[cfg.split], i])
    d = kb.diseases[did]
    phen = sampler.select(did, rng)
    findings = phen["shown"]
    rendered = {t: writer.render(t, rng) for t in findings}
    # negated distractors: unrelated terms, drawn like noise
    related = set(d.terms())
    for t in d.terms():
        related.update(sampler.tax.ancestors(t))
    negated: list[str] = []
    for _ in range(int(rng.integers(0, cfg.max_negated + 1))):
        cand = _unrelated(sampler, {*findings, *negated}, related, rng)
        if cand is not None:
            negated.append(cand)
    neg_rendered = {t: writer.render(t, rng) for t in negated}
    imaging = [rendered[t] for t in findings if sampler.region and t in sampler.region]
    clinical = [rendered[t] for t in findings if not (sampler.region and t in sampler.region)]
    who = _who(kb, d, rng)
    history = " ".join(_clinical(clinical, rng, who) + _negated([x for x, _ in neg_rendered.values()], rng))
    if cfg.context_distractors:
        crng = np.random.default_rng([cfg.seed, 3, _SPLIT_CODE[cfg.split], i])
        extra, context = _context_sentences(
            cfg.context_distractors, sampler, writer, {*findings, *negated}, related, crng
        )
        history = " ".join([history, *extra])
        phen["uncertain"] = [x["term"] for x in context["uncertain"]]
        phen["family"] = [x["term"] for x in context["family"]]
        phen["context_renderings"] = context
    if imaging:
        img_list = [t for t, k in imaging if k != "definition"]
        img_defs = [t for t, k in imaging if k == "definition"]
        parts = [f"Brain MRI shows {_listing(img_list)}."] if img_list else ["Brain MRI:"]
        caption = " ".join(parts + [_sentence(x) + "." for x in img_defs])
    else:
        caption = "Brain MRI shows no clear abnormality."
    phen["renderings"] = [{"term": t, "text": rendered[t][0], "kind": rendered[t][1]} for t in findings]
    phen["negated"] = negated
    phen["negated_renderings"] = [{"term": t, "text": x, "kind": k} for t, (x, k) in neg_rendered.items()]
    return {
        "id": f"{cfg.version}-{cfg.split}-s{cfg.seed}-{i:04d}",
        "clinical_history": history,
        "caption": caption,
        "final_diagnosis": d.name,
        "diagnosis_id": d.id,
        "generator": cfg.version,
        "split": cfg.split,
        "phenotypes": phen,
    }


def generate_cases_v2(
    config: GeneratorConfigV2 | None = None, *, knowledge: Any = None, **overrides: Any
) -> list[dict[str, Any]]:
    """``config.n`` ``rare-hpo-v2`` cases of ``config.split`` (deterministic for seed and split; a smaller ``n``
    gives a prefix). Keyword arguments override fields (``generate_cases_v2(n=50, split="dev")``)."""
    from medlens.retrieval import load_hpo_knowledge

    cfg = GeneratorConfigV2(**{**(asdict(config) if config else {}), **overrides}).check()
    kb = knowledge or load_hpo_knowledge()
    sampler = _Sampler(kb, cfg)
    eligible = [d for d in sampler.eligible if split_of(d) == cfg.split]
    if cfg.n > len(eligible):
        raise InputError(f"n={cfg.n} but only {len(eligible)} diseases are eligible in split {cfg.split}; lower n.")
    writer = _Writer(kb, cfg)
    rng = np.random.default_rng([cfg.seed, 2, _SPLIT_CODE[cfg.split]])
    chosen = rng.permutation(len(eligible))[: cfg.n]
    return [_case_v2(sampler, writer, i, eligible[int(j)]) for i, j in enumerate(chosen)]


def evaluate_recognition(cases: list[dict[str, Any]], recognised: list[tuple[list[str], list[str]]]) -> dict[str, Any]:
    """Micro precision / recall / F1 of the recognised terms against the terms the generator wrote.

    ``recognised[i]`` is ``(positive terms, negated terms)`` of case ``i``. Positive terms are scored against the
    case's ``shown`` findings and negated ones against its ``negated`` distractors, each exactly (an ancestor or
    a sibling of the written term counts as wrong). Also reported: the recall of each rendering kind, and for
    cases with uncertain or family distractors (``context_distractors``), how many of those terms were
    recognised as the patient's own (``as_present``) or as negated (``as_negated``): both should be 0.
    """
    if len(cases) != len(recognised):
        raise InputError(f"got {len(recognised)} recognitions for {len(cases)} cases.")
    tp = fp = fn = ntp = nfp = nfn = 0
    by_kind: dict[str, list[int]] = {}
    context = {"n": 0, "as_present": 0, "as_negated": 0}
    for c, (pos, neg) in zip(cases, recognised, strict=True):
        gold, gneg, p, n = set(c["phenotypes"]["shown"]), set(c["phenotypes"]["negated"]), set(pos), set(neg)
        distractors = set(c["phenotypes"].get("uncertain", ())) | set(c["phenotypes"].get("family", ()))
        context["n"] += len(distractors)
        context["as_present"] += len(distractors & p)
        context["as_negated"] += len(distractors & n)
        tp, fp, fn = tp + len(p & gold), fp + len(p - gold), fn + len(gold - p)
        ntp, nfp, nfn = ntp + len(n & gneg), nfp + len(n - gneg), nfn + len(gneg - n)
        for r in c["phenotypes"].get("renderings", []):
            by_kind.setdefault(r["kind"], [0, 0])
            by_kind[r["kind"]][0] += r["term"] in p
            by_kind[r["kind"]][1] += 1

    def prf(a: int, b: int, c: int) -> dict[str, float]:
        pr = a / (a + b) if a + b else 0.0
        rc = a / (a + c) if a + c else 0.0
        return {"precision": pr, "recall": rc, "f1": 2 * pr * rc / (pr + rc) if pr + rc else 0.0}

    return {
        **prf(tp, fp, fn),
        "negated": prf(ntp, nfp, nfn),
        "recall_by_rendering": {k: v[0] / v[1] for k, v in sorted(by_kind.items())},
        "counts": {"tp": tp, "fp": fp, "fn": fn},
        **({"context_distractors": context} if context["n"] else {}),
    }
