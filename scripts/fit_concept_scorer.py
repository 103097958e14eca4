"""Fit the concept scorer of the hpo recogniser on rare-hpo-v2 *dev* and print ``DEFAULT_SCORER``.

Reproduces :data:`medlens.retrieval._concept_scorer.DEFAULT_SCORER` (packaged MiniLM, default self-alignment map):

1. the recogniser of the cached ``hpo`` index with the cosine rule (``scorer=None``), the dev cases (n=200, seed 0)
   and their (span, candidate) pairs labelled by the terms the generator wrote (findings and negated ones);
2. 2-fold cross-validation over the dev cases (even / odd): fit on one half, recognise and rank the other, for
   each probability threshold of the grid; the threshold with the best cross-validated recognition F1 is kept;
3. the scorer refitted on all dev cases with it, printed as a Python literal.

The test split is never read. Usage: PYTHONPATH=src python scripts/fit_concept_scorer.py [--n 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

GRID = (0.15, 0.2, 0.25, 0.3, 0.35, 0.4)


def main() -> None:
    from medlens.benchmarks.rare_hpo._cases import evaluate_rankings
    from medlens.benchmarks.rare_hpo._cases_v2 import evaluate_recognition, generate_cases_v2
    from medlens.benchmarks.rare_hpo._run import cached_hpo_index
    from medlens.retrieval import case_query, rank_candidates
    from medlens.retrieval._concept_scorer import fit_concept_scorer, scorer_key

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    idx, _ = cached_hpo_index()
    ranker = idx.phenotype_ranker(scorer=None)
    idx.phenotypes = ranker
    rec = ranker.concepts
    cases = generate_cases_v2(n=args.n, seed=args.seed, split="dev")
    texts = [case_query(c) for c in cases]
    named = [set(c["phenotypes"]["shown"]) | set(c["phenotypes"]["negated"]) for c in cases]
    rec.prime(texts)
    examples = [rec.training_examples([t], [g]) for t, g in zip(texts, named, strict=True)]
    key = scorer_key(rec.embedder, rec.adapter)
    folds = [list(range(0, len(cases), 2)), list(range(1, len(cases), 2))]
    rows = []
    for tau in GRID:
        got: dict[str, list[float]] = {"precision": [], "recall": [], "f1": [], "top5": []}
        for a in (0, 1):
            train = [e for i in folds[a] for e in examples[i]]
            rec.scorer = fit_concept_scorer(train, threshold=tau, fitted_for=key)
            held = folds[1 - a]
            r = evaluate_recognition([cases[i] for i in held], [ranker.query_terms(texts[i]) for i in held])
            hits = idx.search_many([texts[i] for i in held], top_k=100, retriever="ontology")
            ev = evaluate_rankings([cases[i] for i in held], [rank_candidates(h) for h in hits], n_bootstrap=0)
            for k in ("precision", "recall", "f1"):
                got[k].append(r[k])
            got["top5"].append(ev["top5"])
        rows.append((tau, {k: float(np.mean(v)) for k, v in got.items()}))
        print(f"threshold {tau:.2f}: " + "  ".join(f"{k} {v:.3f}" for k, v in rows[-1][1].items()), flush=True)
    tau = max(rows, key=lambda r: r[1]["f1"])[0]
    final = fit_concept_scorer(
        [e for ex in examples for e in ex],
        threshold=tau,
        fitted_for=key,
        fitted_on={"generator": "rare-hpo-v2", "split": "dev", "n": args.n, "seed": args.seed},
    )
    print(f"# chosen threshold {tau} (best cross-validated F1); {time.perf_counter() - t0:.0f} s")
    print("DEFAULT_SCORER = ConceptScorer(")
    for name in ("mean", "scale", "coef"):
        print(f"    {name}=({', '.join(f'{v:.6g}' for v in getattr(final, name))}),")
    print(f"    intercept={final.intercept:.6g},\n    threshold={final.threshold},")
    print(f"    fitted_for={final.fitted_for!r},\n    fitted_on={dict(final.fitted_on)!r},\n)")


if __name__ == "__main__":
    main()
