"""CIDEr-D of medlens vs pycocoevalcap's Cider on 5,000 samples (5 references each by default).

Captions are drawn from a 2,000-word vocabulary with Zipf-like frequencies (so n-grams repeat across samples),
half of the candidates copy a reference span. Both sides get the same tokens: pycocoevalcap is timed on
``Cider().compute_score`` with space-joined tokens (its own whitespace split included), medlens on
``cider_d_scores`` with token lists. Median of ``--repeat``. Prints the seconds, the ratio ours/peer (and its inverse, the speed-up) and the
largest difference of the per-sample scores (must be below 1e-9).
Usage: python perf/caption_metrics.py [--samples 5000] [--refs 5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _util import timed  # noqa: E402


def make_data(n: int, n_refs: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(2000)])
    p = 1.0 / np.arange(1, len(vocab) + 1)
    p /= p.sum()

    def sentence() -> list[str]:
        return [str(w) for w in rng.choice(vocab, int(rng.integers(6, 20)), p=p)]

    refs = [[sentence() for _ in range(n_refs)] for _ in range(n)]
    cands = []
    for i in range(n):
        c = sentence()
        if i % 2 == 0:
            src = refs[i][int(rng.integers(n_refs))]
            k = int(rng.integers(0, len(src) - 3))
            c[:4] = src[k : k + 4]
        cands.append(c)
    return refs, cands


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--refs", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    try:
        from pycocoevalcap.cider.cider import Cider
    except ImportError:
        raise SystemExit('pycocoevalcap is not installed: pip install "medlens[reference]"') from None
    from medlens.metrics._cider import cider_d_scores

    refs, cands = make_data(args.samples, args.refs)
    gts = {i: [" ".join(r) for r in rs] for i, rs in enumerate(refs)}
    res = {i: [" ".join(c)] for i, c in enumerate(cands)}
    t_peer, (peer_mean, peer) = timed(lambda: Cider().compute_score(gts, res), args.repeat)
    t_ours, ours = timed(lambda: cider_d_scores(refs, cands), args.repeat)
    diff = float(np.abs(ours - np.asarray(peer)).max())
    print(
        f"CIDEr-D on {args.samples} samples x {args.refs} references: pycocoevalcap {t_peer:.2f} s, "
        f"medlens {t_ours:.2f} s -> ratio ours/peer {t_ours / t_peer:.3f} ({t_peer / t_ours:.1f}x faster); corpus {ours.mean():.6f} vs "
        f"{peer_mean:.6f}; max |diff| per sample {diff:.1e}"
    )
    if diff > 1e-9:
        raise SystemExit("values differ")


if __name__ == "__main__":
    main()
