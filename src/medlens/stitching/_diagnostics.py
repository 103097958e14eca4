"""How well does a translation work? Pair similarity, retrieval, CKA, cross-covariance rank, anchor sampling.

* :func:`translation_report` — for translated rows and their true targets: mean squared error, mean pair
  cosine, and retrieval of the true target among all targets by cosine (top-1 accuracy and mean reciprocal rank).
* :func:`linear_cka` — linear centred kernel alignment of two paired representations (Kornblith et al., 2019):
  ``‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F)`` on column-centred data; 1 for spaces equal up to rotation and scale.
* :func:`cross_covariance_rank` — singular values of the cross-correlation of the standardised anchors;
  the count above ``tol`` is how many directions the two spaces share.
* :func:`sample_anchors` — class-stratified anchor indices from a pool (largest-remainder allocation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medlens._validation import InputError

__all__ = [
    "cross_covariance_rank",
    "linear_cka",
    "sample_anchors",
    "translation_report",
]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _paired(a: Any, b: Any, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise InputError(f"{names[0]} and {names[1]} must be paired 2-D arrays; got shapes {x.shape} and {y.shape}.")
    return x, y


def translation_report(translated: Any, target: Any, *, chunk: int = 4096) -> dict[str, float]:
    """Quality of ``translated`` (``m × d``) against the true ``target`` rows (``m × d``), paired by row.

    Returns ``mse``, ``pair_cosine`` (mean cosine of each row to its own target), ``top1`` (share of rows whose
    nearest target by cosine is their own) and ``mrr`` (mean reciprocal rank of the own target; ties count
    against it).

    >>> t = np.eye(3)
    >>> translation_report(t, t)["mrr"], translation_report(t[[1, 0, 2]], t)["top1"]
    (1.0, 0.3333333333333333)
    >>> translation_report(np.ones((3, 3)), t)["top1"]  # equally close to every target: no hit
    0.0
    """
    x, y = _paired(translated, target, ("translated", "target"))
    if x.shape[1] != y.shape[1]:
        raise InputError(f"translated rows have {x.shape[1]} dimensions but the targets have {y.shape[1]}.")
    if len(x) == 0:
        raise InputError("translation_report needs at least one row.")
    xu, yu = _unit_rows(x), _unit_rows(y)
    own = (xu * yu).sum(1)
    ranks = np.empty(len(x))
    for start in range(0, len(x), chunk):
        sim = xu[start : start + chunk] @ yu.T
        mine = own[start : start + chunk, None]
        # every target at least as similar as the own one ranks ahead of it (the own target included), so ties —
        # duplicate targets, or a degenerate translation that is equally close to everything — count against it
        ranks[start : start + chunk] = np.maximum(1, (sim >= mine - 1e-12).sum(1))
    return {
        "n": int(len(x)),
        "mse": float(((x - y) ** 2).mean()),
        "pair_cosine": float(own.mean()),
        "top1": float((ranks == 1).mean()),
        "mrr": float((1.0 / ranks).mean()),
    }


def linear_cka(x: Any, y: Any) -> float:
    """Linear CKA of paired representations (rows = items); dimensions may differ.

    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(50, 4))
    >>> q = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    >>> round(linear_cka(a, 3 * a @ q + 1), 6)
    1.0
    """
    a, b = _paired(x, y, ("x", "y"))
    a = a - a.mean(0)
    b = b - b.mean(0)
    # with fewer rows than dimensions the n × n Gram form is cheaper; both give the same value
    if len(a) < max(a.shape[1], b.shape[1]):
        ka, kb = a @ a.T, b @ b.T
        num = float((ka * kb).sum())
        den = float(np.linalg.norm(ka) * np.linalg.norm(kb))
    else:
        num = float(np.linalg.norm(b.T @ a) ** 2)
        den = float(np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b))
    return num / den if den > 0 else 0.0


def cross_covariance_rank(x: Any, y: Any, *, tol: float = 0.1) -> dict[str, Any]:
    """Singular values of ``AᵀB / (n − 1)`` for the standardised anchors ``A``, ``B`` (cross-correlations).

    ``rank`` counts singular values above ``tol``; ``effective_rank`` is ``exp(entropy)`` of the normalised
    spectrum (Roy & Vetterli, 2007).
    """
    a, b = _paired(x, y, ("source anchors", "target anchors"))
    if len(a) < 2:
        raise InputError("cross_covariance_rank needs at least two anchors.")

    def standard(m: np.ndarray) -> np.ndarray:
        sd = m.std(0, ddof=1)
        return (m - m.mean(0)) / np.where(sd > 0, sd, 1.0)

    s = np.linalg.svd(standard(a).T @ standard(b) / (len(a) - 1), compute_uv=False)
    p = s / s.sum() if s.sum() > 0 else s
    nz = p[p > 0]
    return {
        "rank": int((s > tol).sum()),
        "tol": tol,
        "effective_rank": float(np.exp(-(nz * np.log(nz)).sum())) if nz.size else 0.0,
        "top_singular_values": s[:10].tolist(),
    }


def sample_anchors(
    n: int, *, pool: Sequence[int] | np.ndarray, strata: Sequence[Any] | None = None, seed: int = 0
) -> np.ndarray:
    """``n`` distinct indices from ``pool``, class-stratified by ``strata`` (one key per pool entry) when given.

    Each stratum gets ``n × share`` anchors, rounded by largest remainder (ties broken at random), so rare
    classes are represented in proportion; without strata the draw is uniform. Sorted, deterministic per seed.

    >>> sample_anchors(4, pool=np.arange(8), strata=list("aaaaaabb"), seed=0).size
    4
    """
    idx = np.asarray(pool, dtype=int)
    if n < 1 or n > len(idx):
        raise InputError(f"cannot draw {n} anchors from {len(idx)} rows; choose between 1 and {len(idx)}.")
    rng = np.random.default_rng(seed)
    if strata is None:
        return np.sort(rng.choice(idx, size=n, replace=False))
    keys = np.asarray([str(s) for s in strata])
    if len(keys) != len(idx):
        raise InputError(f"strata must give one key per pool row; got {len(keys)} keys for {len(idx)} rows.")
    groups, inverse = np.unique(keys, return_inverse=True)
    sizes = np.bincount(inverse, minlength=len(groups))
    quota = n * sizes / len(idx)
    take = np.floor(quota).astype(int)
    remainder = quota - take + rng.uniform(0, 1e-9, size=len(groups))
    for g in np.argsort(-remainder)[: n - take.sum()]:
        take[g] += 1
    out = [rng.choice(idx[inverse == g], size=int(take[g]), replace=False) for g in range(len(groups)) if take[g]]
    return np.sort(np.concatenate(out))
