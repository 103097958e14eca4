"""Hierarchical metrics for 10,000 samples on the full HPO DAG (target: under 2 s).

Times medlens.hierarchy.evaluate (hP/hR/hF, CAE at k=2, error breakdown, mistake severity, mean tree
distance by shortest undirected path) on random single-label and multi-label HPO annotations. Loading
the ontology is timed separately. Usage: python perf/hpo_metrics.py [--n 10000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _util import timed  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from medlens.hierarchy import evaluate, hierarchical_precision_recall_fscore
    from medlens.taxonomy import load_taxonomy

    t0 = time.perf_counter()
    tax = load_taxonomy("hpo")
    print(f"HPO: {len(tax)} terms, height {tax.height}, DAG={not tax.is_tree}; load {time.perf_counter() - t0:.2f} s")
    rng = np.random.default_rng(0)
    nodes = np.array(tax.nodes[1:], dtype=object)
    t = nodes[rng.integers(0, len(nodes), args.n)]
    # Predictions: the truth, one of its parents, or a random term.
    par = [tax.parents(x)[0] if x != tax.root else x for x in t]
    u = rng.random(args.n)
    p = np.where(u < 0.3, t, np.where(u < 0.6, np.array(par, dtype=object), nodes[rng.integers(0, len(nodes), args.n)]))
    y_true, y_pred = t.tolist(), p.tolist()
    secs, _ = timed(lambda: hierarchical_precision_recall_fscore(y_true, y_pred, taxonomy=tax), args.repeat)
    print(f"  hP/hR/hF, n={args.n}: {secs:.3f} s")
    secs, rep = timed(lambda: evaluate(y_true, y_pred, taxonomy=tax, branch_depth=2), args.repeat)
    print(
        f"  evaluate (all metrics, k=2), n={args.n}: {secs:.3f} s (target < 2 s) -> hF {rep.hF:.4f}, "
        f"CAE {rep.cae_rate:.4f}, severity {rep.mistake_severity:.3f}, distance {rep.mean_tree_distance:.3f}"
    )
    sets_t = [[a, b] for a, b in zip(y_true, nodes[rng.integers(0, len(nodes), args.n)].tolist(), strict=True)]
    secs, rep = timed(lambda: evaluate(sets_t, y_pred, taxonomy=tax, branch_depth=2), args.repeat)
    print(f"  evaluate multi-label (2 true terms per sample), n={args.n}: {secs:.3f} s")


if __name__ == "__main__":
    main()
