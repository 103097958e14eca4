"""Benchmark ``rare-hpo``: simulated rare-disease patients generated from HPO annotations.

Generator ``rare-hpo-v1`` (every parameter is a field of :class:`GeneratorConfig` and is written into each
result). For a seed, the cases are fixed:

1. **Diseases.** Eligible: diseases of ``phenotype.hpoa`` with at least ``min_phenotypes`` phenotype
   annotations, at least one of which is ``restrict_to`` or below it (default HP:0012443 "Abnormal brain
   morphology": the patient has a brain-imaging finding). ``n`` of them are drawn without replacement.
2. **Phenotypes.** Each annotated phenotype is present with its annotated frequency (HPO bands at their
   midpoints, ``n/m`` and percentages as given; ``unknown_frequency`` when none is given). At least one
   brain-imaging phenotype and ``min_terms`` phenotypes in all are kept (drawn by frequency if needed).
3. **Omissions.** Each present phenotype is then left unreported with probability ``p_omit`` (minimums kept);
   at most ``max_terms`` are reported.
4. **Imprecision.** Each reported phenotype is, with probability ``p_imprecise``, replaced by one of its
   ancestors 1 to ``max_up`` steps up, never above depth ``min_depth`` of the ontology (an imaging finding
   stays under ``restrict_to``).
5. **Noise.** ``round(noise_ratio × reported)`` unrelated phenotypes (drawn in proportion to how many diseases
   they annotate, never one annotated to the disease or an ancestor of one) are added.
6. **Narrative.** Phenotypes under ``restrict_to`` go into the ``caption`` ("Brain MRI shows …"), the others
   into the ``clinical_history`` ("A 4-year-old girl presents with …", age from the disease's onset).

A case is a CASE.json object (the schema ``rag diagnose`` reads) plus its answer and what the generator did:
``{id, clinical_history, caption, final_diagnosis, diagnosis_id, generator, phenotypes}``.

Scoring: a ranked candidate is correct when one of its supporting documents is the case's disease
(``diagnosis_id``) or its normalised name equals the disease name. Reported: top-1, top-5, MRR (over the
ranked candidates; 0 when the disease is not among them), macro top-1/top-5 over diseases, and percentile
bootstrap 95 % intervals over cases.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from medlens._validation import InputError, check_option

__all__ = ["GENERATOR_VERSION", "GeneratorConfig", "evaluate_rankings", "generate_cases", "run_rare_hpo"]

GENERATOR_VERSION = "rare-hpo-v1"
BRAIN_MORPHOLOGY = "HP:0012443"


@dataclass(frozen=True)
class GeneratorConfig:
    """Parameters of the ``rare-hpo-v1`` generator (see the module docstring)."""

    n: int = 200
    seed: int = 0
    restrict_to: str | None = BRAIN_MORPHOLOGY
    min_phenotypes: int = 3
    unknown_frequency: float = 0.5
    min_terms: int = 3
    max_terms: int = 6
    p_omit: float = 0.2
    p_imprecise: float = 0.5
    max_up: int = 2
    min_depth: int = 4
    noise_ratio: float = 0.5
    version: str = GENERATOR_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> GeneratorConfig:
        if self.version != GENERATOR_VERSION:
            raise InputError(f"this medlens generates {GENERATOR_VERSION!r} cases, not {self.version!r}.")
        return self._check_fields()

    def _check_fields(self) -> GeneratorConfig:
        if self.n < 1:
            raise InputError(f"n must be >= 1; got {self.n}.")
        for name in ("unknown_frequency", "p_omit", "p_imprecise"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise InputError(f"{name} must be in [0, 1]; got {v}.")
        if not 1 <= self.min_terms <= self.max_terms:
            raise InputError(f"need 1 <= min_terms <= max_terms; got {self.min_terms} and {self.max_terms}.")
        if self.max_up < 1 or self.min_phenotypes < 1 or self.min_depth < 1:
            raise InputError("max_up, min_phenotypes and min_depth must be >= 1.")
        if not 0.0 <= self.noise_ratio <= 5.0:
            raise InputError(f"noise_ratio must be in [0, 5]; got {self.noise_ratio}.")
        return self


_ONSET_AGE = {
    "HP:0030674": "newborn",  # antenatal
    "HP:0003577": "newborn",  # congenital
    "HP:0003623": "newborn",  # neonatal
    "HP:0003593": "infant",
    "HP:0011463": "child",
    "HP:0003621": "adolescent",
    "HP:0003581": "adult",
    "HP:0011462": "adult",  # young adult
    "HP:0003596": "adult",  # middle age
    "HP:0003584": "adult",  # late
}


def _phrase(name: str) -> str:
    """Term name as running text: first letter lower-cased unless the word is an acronym (``EEG``)."""
    if len(name) > 1 and name[0].isupper() and not name[1].isupper():
        return name[0].lower() + name[1:]
    return name


def _listing(items: Sequence[str]) -> str:
    items = [_phrase(x) for x in items]
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _who(kb: Any, disease: Any, rng: np.random.Generator) -> str:
    sex = "girl" if rng.random() < 0.5 else "boy"
    stage = None
    for t in disease.onset:
        stage = _ONSET_AGE.get(t)
        if stage:
            break
    if stage == "newborn":
        return f"A newborn {sex}"
    if stage == "infant":
        return f"A {int(rng.integers(2, 12))}-month-old {sex}"
    if stage == "child":
        return f"A {int(rng.integers(2, 11))}-year-old {sex}"
    if stage == "adolescent":
        return f"A {int(rng.integers(11, 18))}-year-old {sex}"
    adult = "woman" if sex == "girl" else "man"
    if stage == "adult":
        return f"A {int(rng.integers(20, 70))}-year-old {adult}"
    return "A patient"


class _Sampler:
    def __init__(self, kb: Any, cfg: GeneratorConfig) -> None:
        self.kb, self.cfg, self.tax = kb, cfg, kb.taxonomy
        if cfg.restrict_to is not None and cfg.restrict_to not in self.tax:
            raise InputError(f"restrict_to {cfg.restrict_to!r} is not a (non-obsolete) HPO term.")
        self.region = (
            frozenset(self.tax.descendants(cfg.restrict_to, include_self=True)) if cfg.restrict_to else frozenset()
        )
        eligible = []
        for did in sorted(kb.diseases):
            d = kb.diseases[did]
            terms = d.terms()
            if len(terms) < cfg.min_phenotypes:
                continue
            if self.region and not any(t in self.region for t in terms):
                continue
            eligible.append(did)
        if not eligible:
            raise InputError(f"no disease has >= {cfg.min_phenotypes} phenotypes under {cfg.restrict_to}.")
        self.eligible = eligible
        pool = sorted(kb.term_counts)
        weights = np.array([kb.term_counts[t] for t in pool], dtype=np.float64)
        self.noise_pool, self.noise_p = pool, weights / weights.sum()

    def in_region(self, term: str) -> bool:
        return not self.region or term in self.region

    def case(self, i: int, did: str) -> dict[str, Any]:
        """Case ``i`` of generator v1: :meth:`select`, then the findings written by their names."""
        cfg, kb = self.cfg, self.kb
        rng = np.random.default_rng([cfg.seed, i])
        d = kb.diseases[did]
        phen = self.select(did, rng)
        findings = phen["shown"]
        imaging = [kb.name(t) for t in findings if self.region and t in self.region]
        clinical = [kb.name(t) for t in findings if not (self.region and t in self.region)]
        who = _who(kb, d, rng)
        history = f"{who} presents with {_listing(clinical)}." if clinical else f"{who} is referred for brain MRI."
        caption = f"Brain MRI shows {_listing(imaging)}." if imaging else "Brain MRI shows no clear abnormality."
        return {
            "id": f"{cfg.version}-s{cfg.seed}-{i:04d}",
            "clinical_history": history,
            "caption": caption,
            "final_diagnosis": d.name,
            "diagnosis_id": d.id,
            "generator": cfg.version,
            "phenotypes": phen,
        }

    def select(self, did: str, rng: np.random.Generator) -> dict[str, Any]:
        """Steps 2-5 of the module docstring: ``{reported, shown, imprecise, omitted, noise}``, ``shown`` in
        the order the narrative lists them (noise included)."""
        cfg, kb, tax = self.cfg, self.kb, self.tax
        d = kb.diseases[did]
        anns = list({a.term: a for a in d.phenotypes}.values())
        freq = np.array([cfg.unknown_frequency if a.frequency is None else a.frequency for a in anns])
        present = [a.term for a, f in zip(anns, freq, strict=True) if rng.random() < f]
        weights = np.maximum(freq, 1e-3)

        def top_up(chosen: list[str], pool: list[str], need: int) -> None:
            rest = [t for t in pool if t not in chosen]
            while need > 0 and rest:
                w = np.array([weights[[a.term for a in anns].index(t)] for t in rest])
                pick = rest.pop(int(rng.choice(len(rest), p=w / w.sum())))
                chosen.append(pick)
                need -= 1

        all_terms = [a.term for a in anns]
        region_terms = [t for t in all_terms if self.in_region(t)]
        # omissions, then minimums (one imaging finding, min_terms in all), then the cap
        omitted = [t for t in present if rng.random() < cfg.p_omit]
        reported = [t for t in present if t not in omitted]
        if self.region and not any(self.in_region(t) for t in reported):
            top_up(reported, region_terms, 1)
        top_up(reported, all_terms, cfg.min_terms - len(reported))
        if len(reported) > cfg.max_terms:
            keep_region = next((t for t in reported if self.in_region(t)), None)
            others = [t for t in reported if t != keep_region]
            idx = rng.permutation(len(others))[: cfg.max_terms - (keep_region is not None)]
            kept = {others[j] for j in idx} | ({keep_region} if keep_region else set())
            reported = [t for t in reported if t in kept]
        # imprecision: a term is replaced by an ancestor 1..max_up steps up, not above min_depth
        imprecise: dict[str, str] = {}
        shown = []
        for t in reported:
            new = t
            if rng.random() < cfg.p_imprecise:
                cur = t
                for _ in range(int(rng.integers(1, cfg.max_up + 1))):
                    parents = [
                        p
                        for p in tax.parents(cur)
                        if tax.depth(p) >= cfg.min_depth and (not self.in_region(t) or self.in_region(p))
                    ]
                    if not parents:
                        break
                    cur = parents[int(rng.integers(len(parents)))]
                if cur != t:
                    new = imprecise[t] = cur
            if new not in shown:
                shown.append(new)
        # noise: unrelated, commonly annotated phenotypes
        related = set(all_terms)
        for t in all_terms:
            related.update(tax.ancestors(t))
        noise: list[str] = []
        for _ in range(int(round(cfg.noise_ratio * len(shown)))):
            for _try in range(20):
                cand = self.noise_pool[int(rng.choice(len(self.noise_pool), p=self.noise_p))]
                if cand not in related and cand not in noise and cand not in shown:
                    noise.append(cand)
                    break
        findings = shown + noise
        order = rng.permutation(len(findings))
        findings = [findings[j] for j in order]
        return {"reported": reported, "shown": findings, "imprecise": imprecise, "omitted": omitted, "noise": noise}


def generate_cases(config: GeneratorConfig | None = None, *, knowledge: Any = None, **overrides: Any) -> list[dict]:
    """Generate ``config.n`` simulated patients (deterministic for ``config.seed``).

    Keyword arguments override fields of ``config`` (``generate_cases(n=20, seed=1, p_imprecise=0.3)``). The
    ``n`` cases of a seed are the first ``n`` of one fixed order, so a smaller ``n`` gives a prefix of a larger
    one. Each case: ``{id, clinical_history, caption, final_diagnosis, diagnosis_id, generator, phenotypes}``.
    """
    from medlens.retrieval import load_hpo_knowledge

    cfg = GeneratorConfig(**{**(asdict(config) if config else {}), **overrides}).check()
    kb = knowledge or load_hpo_knowledge()
    sampler = _Sampler(kb, cfg)
    if cfg.n > len(sampler.eligible):
        raise InputError(f"n={cfg.n} but only {len(sampler.eligible)} diseases are eligible; lower --n.")
    rng = np.random.default_rng(cfg.seed)
    chosen = rng.permutation(len(sampler.eligible))[: cfg.n]  # a prefix of one permutation: n=5 ⊂ n=200
    return [sampler.case(i, sampler.eligible[int(j)]) for i, j in enumerate(chosen)]


def _correct(cand: Any, case: dict[str, Any]) -> bool:
    from medlens.retrieval import normalize_name

    gold_id = case.get("diagnosis_id")
    if gold_id and gold_id in cand.parents:
        return True
    return normalize_name(cand.name) == normalize_name(case["final_diagnosis"])


def evaluate_rankings(
    cases: Sequence[dict[str, Any]], rankings: Sequence[Sequence[Any]], *, n_bootstrap: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """top-1, top-5, MRR, macro top-1/top-5 over diseases, and bootstrap 95 % intervals."""
    if len(cases) != len(rankings):
        raise InputError(f"got {len(rankings)} rankings for {len(cases)} cases.")
    rr = np.zeros(len(cases))
    for i, (case, ranked) in enumerate(zip(cases, rankings, strict=True)):
        for cand in ranked:
            if _correct(cand, case):
                rr[i] = 1.0 / cand.rank
                break
    top1 = (rr >= 1.0).astype(float)
    top5 = (rr >= 0.2).astype(float)
    by_disease: dict[str, list[int]] = {}
    for i, case in enumerate(cases):
        by_disease.setdefault(case.get("diagnosis_id") or case["final_diagnosis"], []).append(i)
    macro1 = float(np.mean([top1[ix].mean() for ix in by_disease.values()]))
    macro5 = float(np.mean([top5[ix].mean() for ix in by_disease.values()]))
    out: dict[str, Any] = {
        "top1": float(top1.mean()),
        "top5": float(top5.mean()),
        "mrr": float(rr.mean()),
        "macro_top1": macro1,
        "macro_top5": macro5,
        "n": len(cases),
        "n_diseases": len(by_disease),
    }
    if n_bootstrap:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(cases), size=(n_bootstrap, len(cases)))
        out["ci95"] = {
            name: [float(np.percentile(v[idx].mean(axis=1), 2.5)), float(np.percentile(v[idx].mean(axis=1), 97.5))]
            for name, v in (("top1", top1), ("top5", top5), ("mrr", rr))
        }
        per_disease = list(by_disease.values())
        d1 = np.array([top1[ix].mean() for ix in per_disease])
        d5 = np.array([top5[ix].mean() for ix in per_disease])
        jdx = rng.integers(0, len(per_disease), size=(n_bootstrap, len(per_disease)))
        for name, v in (("macro_top1", d1), ("macro_top5", d5)):
            out["ci95"][name] = [
                float(np.percentile(v[jdx].mean(axis=1), 2.5)),
                float(np.percentile(v[jdx].mean(axis=1), 97.5)),
            ]
        out["ci95"]["method"] = (
            f"percentile bootstrap, {n_bootstrap} resamples, seed {seed}: over cases (top1, top5, mrr) and over "
            "diseases (macro_top1, macro_top5)"
        )
    return out


def run_rare_hpo(
    index: Any,
    *,
    n: int = 200,
    seed: int = 0,
    retriever: str = "auto",
    depth: int = 100,
    aggregate: str = "max",
    config: GeneratorConfig | None = None,
    n_bootstrap: int = 1000,
    return_cases: bool = False,
    generator: str = GENERATOR_VERSION,
    split: str = "test",
) -> dict[str, Any]:
    """Generate cases and score the retrieval-only ranker of ``index`` on them.

    ``generator`` is ``rare-hpo-v1`` (HPO names) or ``rare-hpo-v2`` (the same patients in paraphrase; ``split``
    ``dev`` or ``test``, disjoint diseases; with an ontology retriever v2 also reports ``recognition``, the
    micro precision / recall of the recognised HPO terms). ``config`` sets the generator's other fields (a
    :class:`GeneratorConfigV2` for v2, such as ``context_distractors``).
    Returns ``{top1, top5, mrr, macro_top1, macro_top5, n, n_diseases, ci95, generator, retriever, ranker,
    seconds}`` (plus ``cases`` with each case's top-5 when ``return_cases``). The leakage guard is off: the
    documents describe diseases, not cases.
    """
    from medlens.benchmarks.rare_hpo._cases_v2 import (
        GENERATOR_V2,
        GeneratorConfigV2,
        evaluate_recognition,
        generate_cases_v2,
    )
    from medlens.retrieval import RETRIEVERS, case_query, rank_candidates

    check_option(retriever, RETRIEVERS, name="retriever")
    check_option(generator, (GENERATOR_VERSION, GENERATOR_V2), name="generator")
    retriever = index.resolve_retriever(retriever)
    t0 = time.perf_counter()
    if generator == GENERATOR_V2:
        base = asdict(config) if isinstance(config, GeneratorConfigV2) else {}
        cfg: GeneratorConfig = GeneratorConfigV2(**{**base, "n": n, "seed": seed, "split": split}).check()
        cases = generate_cases_v2(cfg)
    else:
        cfg = GeneratorConfig(**{**(asdict(config) if config else {}), "n": n, "seed": seed}).check()
        cases = generate_cases(cfg)
    t_gen = time.perf_counter() - t0
    queries = [case_query(c) for c in cases]
    recognition = None
    if retriever in ("ontology", "hybrid") and generator == GENERATOR_V2:
        ranker = index.phenotypes
        if ranker.concepts is not None:
            ranker.concepts.prime(queries)  # one batch of span embeddings, cached on disk
        recognition = evaluate_recognition(cases, [ranker.query_terms(q) for q in queries])
    hits = index.search_many(queries, top_k=depth, retriever=retriever)
    rankings = [rank_candidates(h, aggregate=aggregate) for h in hits]
    out = evaluate_rankings(cases, rankings, n_bootstrap=n_bootstrap, seed=seed)
    out.update(
        {
            "generator": cfg.to_dict(),
            "retriever": retriever,
            "ranker": {"kind": "retrieval-only", "depth": depth, "aggregate": aggregate},
            "seconds": {"generate": round(t_gen, 3), "total": round(time.perf_counter() - t0, 3)},
        }
    )
    if retriever in ("ontology", "hybrid"):
        out["ranker"]["ontology"] = index.phenotypes.spec()
    if recognition is not None:
        out["recognition"] = recognition
    if return_cases:
        out["cases"] = [
            {
                **{k: c[k] for k in ("id", "diagnosis_id", "final_diagnosis", "clinical_history", "caption")},
                "top5": [x.name for x in r[:5]],
            }
            for c, r in zip(cases, rankings, strict=True)
        ]
    if not math.isfinite(out["mrr"]):  # pragma: no cover - defensive
        raise AssertionError("non-finite MRR")
    return out
