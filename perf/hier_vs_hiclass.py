"""Hierarchical P/R/F of medlens vs hiclass on 100,000 samples with depth-3 paths.

Both start from in-memory string labels: hiclass from (n, 3) path arrays, medlens from the leaf labels and
the taxonomy. Prints the values (they must be identical) and the time ratio ours/peer for micro and macro.
Usage: python perf/hier_vs_hiclass.py [--n 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _util import timed  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import warnings

    import hiclass.metrics as hm

    warnings.simplefilter("ignore")  # hiclass warns once per sample on ill-defined F; printing would skew timing

    from medlens.hierarchy import hierarchical_precision_recall_fscore as prf
    from medlens.taxonomy import Taxonomy

    rng = np.random.default_rng(0)
    children = {"root": [f"a{i}" for i in range(6)]}
    for i in range(6):
        children[f"a{i}"] = [f"a{i}.b{j}" for j in range(6)]
        for j in range(6):
            children[f"a{i}.b{j}"] = [f"a{i}.b{j}.c{m}" for m in range(6)]
    tax = Taxonomy(children, name="perf_depth3")
    leaves = np.array(tax.leaves, dtype=object)
    # Predictions are right 40 % of the time, else a random leaf: realistic overlap.
    t_idx = rng.integers(0, len(leaves), args.n)
    p_idx = np.where(rng.random(args.n) < 0.4, t_idx, rng.integers(0, len(leaves), args.n))
    y_true, y_pred = leaves[t_idx].tolist(), leaves[p_idx].tolist()

    def paths(labels: list[str]) -> np.ndarray:
        return np.array([[s.split(".")[0], ".".join(s.split(".")[:2]), s] for s in labels], dtype=object)

    pt, pp = paths(y_true), paths(y_pred)
    print(f"hierarchical P/R/F, n={args.n}, depth-3 tree ({len(tax)} nodes), median of {args.repeat}")
    for average in ("micro", "macro"):
        ours_t, ours = timed(lambda a=average: prf(y_true, y_pred, taxonomy=tax, average=a), args.repeat)
        peer_t, peer = timed(lambda a=average: (hm.precision(pt, pp, a), hm.recall(pt, pp, a), hm.f1(pt, pp, a)), 1)
        same = np.allclose([ours.hP, ours.hR, ours.hF], peer, rtol=0, atol=1e-12)
        print(
            f"  {average}: ours {ours_t:.3f} s, hiclass {peer_t:.2f} s (precision+recall+f1) -> ratio ours/peer "
            f"{ours_t / peer_t:.4f} ({peer_t / ours_t:.0f}x faster); hF ours {ours.hF:.12f} hiclass {peer[2]:.12f} "
            f"identical={same}"
        )
        f1_t, _ = timed(lambda a=average: hm.f1(pt, pp, a), 1)
        print(f"    hiclass f1 alone {f1_t:.2f} s -> ratio ours/peer {ours_t / f1_t:.4f} ({f1_t / ours_t:.0f}x)")
        if not same:
            raise SystemExit(f"values differ for {average}")


if __name__ == "__main__":
    main()
