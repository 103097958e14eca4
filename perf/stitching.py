"""Translator fit and apply speed of medlens vs latentis (the reference implementation) on the same anchors.

10,000 anchors × 1,024 dimensions (source and target, a noisy rotation of each other): Procrustes, least squares
and l-ortho with standard scaling and zero padding, as latentis's ``Translator`` composes them; then translation
throughput on 100,000 rows. Prints both times, the ratio ours/peer and the largest difference of the outputs.
Without latentis installed the peer is scipy's ``orthogonal_procrustes`` / numpy's ``lstsq`` on standardised data.
Usage: python perf/stitching.py [--n 10000] [--dim 1024] [--rows 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _util import timed  # noqa: E402


def _latentis(method: str):
    """A latentis Translator factory for ``method``, or None when latentis is not installed."""
    try:
        import torch
        from latentis.transform.base import StandardScaling
        from latentis.transform.dim_matcher import ZeroPadding
        from latentis.transform.translate.aligner import MatrixAligner
        from latentis.transform.translate.aligner import Translator as LTranslator
        from latentis.transform.translate.functional import (
            lstsq_align_state,
            lstsq_ortho_align_state,
            svd_align_state,
        )
    except ImportError:
        return None
    state = {"ortho": svd_align_state, "linear": lstsq_align_state, "lortho": lstsq_ortho_align_state}[method]

    def fit(x: np.ndarray, y: np.ndarray):
        tr = LTranslator(
            aligner=MatrixAligner(name=method, align_fn_state=state),
            x_transform=StandardScaling(),
            y_transform=StandardScaling(),
            dim_matcher=ZeroPadding(),
        )
        tr.fit(torch.from_numpy(x), torch.from_numpy(y))
        return lambda z: tr.transform(torch.from_numpy(z))[0].numpy()

    return fit


def _scipy(method: str):
    from scipy.linalg import orthogonal_procrustes

    def fit(x: np.ndarray, y: np.ndarray):
        mx, sx, my, sy = x.mean(0), x.std(0, ddof=1), y.mean(0), y.std(0, ddof=1)
        a, b = (x - mx) / sx, (y - my) / sy
        if method == "ortho":
            r = orthogonal_procrustes(a, b)[0]
        else:
            r = np.linalg.lstsq(a, b, rcond=None)[0]
            if method == "lortho":
                u, _, vt = np.linalg.svd(r)
                r = u @ vt
        return lambda z: ((z - mx) / sx) @ r * sy + my

    return fit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from medlens.stitching import Translator

    rng = np.random.default_rng(0)
    d = args.dim
    q = np.linalg.qr(rng.normal(size=(d, d)))[0]
    x = rng.normal(size=(args.n, d)) * rng.uniform(0.5, 2.0, size=d)
    y = x @ q + 0.05 * rng.normal(size=(args.n, d)) + 1.0
    rows = rng.normal(size=(args.rows, d))
    peer_name = "latentis" if _latentis("ortho") is not None else "scipy/numpy"
    print(f"anchors {args.n} x {d} dims, apply to {args.rows} rows; peer: {peer_name}")
    for method in ("ortho", "linear", "lortho"):
        peer_fit = (_latentis(method) or _scipy(method)) if peer_name == "latentis" else _scipy(method)
        t_ours, ours = timed(lambda m=method: Translator(m).fit(x, y), args.repeat)
        t_peer, peer = timed(lambda f=peer_fit: f(x, y), args.repeat)
        a_ours, out_ours = timed(lambda o=ours: o.transform(rows), args.repeat)
        a_peer, out_peer = timed(lambda p=peer: p(rows), args.repeat)
        diff = float(np.abs(out_ours - out_peer).max())
        print(
            f"{method:7s} fit ours {t_ours:.3f} s  peer {t_peer:.3f} s  ratio {t_ours / t_peer:.2f} | "
            f"apply ours {args.rows / a_ours:,.0f} rows/s  peer {args.rows / a_peer:,.0f} rows/s  "
            f"ratio {a_ours / a_peer:.2f} | max |diff| {diff:.2e}"
        )


if __name__ == "__main__":
    main()
