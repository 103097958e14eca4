"""Per-case latency of the default ``rag diagnose`` retrieval on an ``hpo`` index (the ``ontology`` ranker with
embedding-based concept recognition), one new case at a time, warm (index, ranker and encoder loaded once).

Each case is a rare-hpo-v2 case the process has not seen (its spans are not in the in-memory span cache), so a
case pays for encoding its candidate spans with MiniLM, the cosine to the ~24k HPO label vectors, the concept
scorer, the exact matcher and the disease scores. It times the fitted concept scorer (the default) against the
cosine threshold (``scorer=None``), taking turns on distinct cases of the same generator, and prints the ratio. The
target (issue 17) is <= 100 ms per case on 2 cores.

Usage: PYTHONPATH=src python perf/rare_hpo_latency.py [--n 60] [--seed 7]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    from medlens.benchmarks.rare_hpo._cases_v2 import generate_cases_v2
    from medlens.benchmarks.rare_hpo._run import cached_hpo_index
    from medlens.retrieval import case_query
    from medlens.retrieval._concepts import candidate_spans

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    idx, _ = cached_hpo_index()
    rankers = {"scorer": idx.phenotype_ranker(), "cosine": idx.phenotype_ranker(scorer=None)}
    assert rankers["scorer"].concepts.scorer is not None, "the default concept scorer did not apply"
    cases = generate_cases_v2(n=3 * args.n + 1, seed=args.seed, split="dev")
    queries = [case_query(c) for c in cases]
    idx.phenotypes = rankers["cosine"]
    idx.search(queries[-1], top_k=10)  # loads the encoder once
    lat: dict[str, list[float]] = {k: [] for k in rankers}
    spans: list[float] = []
    # every text is new to whatever runs on it; the three measurements take turns on disjoint texts
    for i in range(args.n):
        for j, name in enumerate(("scorer", "cosine")):
            q = queries[3 * i + j]
            idx.phenotypes = rankers[name]
            t0 = time.perf_counter()
            idx.search(q, top_k=10)
            lat[name].append(time.perf_counter() - t0)
        texts = [x.text for x in candidate_spans(queries[3 * i + 2])[1]]
        t0 = time.perf_counter()
        rankers["scorer"].concepts.embedder.embed(texts)
        spans.append(time.perf_counter() - t0)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"rare-hpo-v2 cases one at a time (n={len(lat['scorer'])}, load average {load}):")
    for name in rankers:
        a = 1e3 * np.array(lat[name])
        print(f"  {name:6s} p50 {np.median(a):6.1f} ms  p95 {np.percentile(a, 95):6.1f} ms")
    print(f"  encoding a case's candidate spans alone (MiniLM): p50 {1e3 * np.median(spans):.1f} ms")
    ratio = np.median(lat["scorer"]) / np.median(lat["cosine"])
    print(f"  ratio scorer / cosine (p50): {ratio:.2f}   target: p50 <= 100 ms per case")


if __name__ == "__main__":
    main()
