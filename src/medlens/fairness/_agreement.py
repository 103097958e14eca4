"""Agreement between judges: Cohen's kappa, unweighted or weighted (linear/quadratic) for ordinal grades.

FMBench's GREEN and "LLM score" both came from one 70B model (its reviewers' objection); with several judges
the report shows how far they agree. :func:`weighted_kappa` equals ``sklearn.metrics.cohen_kappa_score`` with
``labels`` and ``weights``: the weight of a disagreement is the distance between the two grades' *positions*
in ``labels`` (|i − j| or (i − j)²), as scikit-learn does. :func:`judges_agreement` compares every pair of
judges on the items both scored (NaN = a reply that could not be read, left out and counted).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medlens._validation import InputError, check_option, check_same_length

__all__ = ["KAPPA_WEIGHTS", "judges_agreement", "weighted_kappa"]

KAPPA_WEIGHTS = ("none", "linear", "quadratic")


def weighted_kappa(
    a: Sequence[Any], b: Sequence[Any], *, labels: Sequence[Any] | None = None, weights: str | None = None
) -> float:
    """Cohen's kappa of two raters; ``weights`` None/"none", "linear" or "quadratic" (ordinal ``labels``).

    ``labels`` fix the categories and their order (default: the sorted union of both raters' values); a value
    outside them is refused. NaN when the expected disagreement is 0 (both raters always give one grade).

    >>> weighted_kappa([1, 2, 3, 3], [1, 2, 2, 3], weights="linear")
    0.7142857142857143
    """
    w = "none" if weights is None else weights
    check_option(w, KAPPA_WEIGHTS, name="weights")
    n = check_same_length(a, b, names=("ratings_a", "ratings_b"))
    if n == 0:
        raise InputError("kappa needs at least one pair of ratings; got none.")
    if labels is None:
        try:
            labels = sorted(set(a) | set(b))
        except TypeError:
            raise InputError("ratings of mixed types cannot be ordered; pass labels in their order.") from None
    labels = list(labels)
    pos = {x: i for i, x in enumerate(labels)}
    if len(pos) != len(labels):
        raise InputError("labels must be distinct.")
    for name, r in (("ratings_a", a), ("ratings_b", b)):
        bad = next((i for i, x in enumerate(r) if x not in pos), None)
        if bad is not None:
            raise InputError(f"{name}[{bad}] = {r[bad]!r} is not among the labels {labels[:10]}.")
    k = len(labels)
    ia = np.fromiter((pos[x] for x in a), dtype=np.intp, count=n)
    ib = np.fromiter((pos[x] for x in b), dtype=np.intp, count=n)
    observed = np.bincount(ia * k + ib, minlength=k * k).reshape(k, k).astype(np.float64)
    expected = np.outer(observed.sum(1), observed.sum(0)) / n
    d = np.abs(np.subtract.outer(np.arange(k), np.arange(k))).astype(np.float64)
    wm = {"none": (d > 0).astype(np.float64), "linear": d, "quadratic": d**2}[w]
    denom = float((wm * expected).sum())
    if denom == 0:
        return float("nan")
    return 1.0 - float((wm * observed).sum()) / denom


def judges_agreement(
    scores: Mapping[str, Sequence[float]], *, labels: Sequence[Any] | None = None, weights: str | None = "quadratic"
) -> dict[str, Any]:
    """Pairwise kappa between judges' per-item grades (same items, same order); NaN grades are left out.

    Returns ``{"weights", "pairs": [{"a", "b", "n", "n_missing", "kappa", "exact_agreement"}]}``. Grades are
    compared as numbers: give integer grades (a rubric), or 0/1 decisions; GREEN's continuous scores need binning
    first (each distinct value is its own category).

    >>> judges_agreement({"j1": [1, 2, 3, float("nan")], "j2": [1, 2, 2, 3]}, weights=None)["pairs"][0]["n"]
    3
    """
    names = list(scores)
    if len(names) < 2:
        raise InputError(f"agreement needs at least two judges; got {len(names)}.")
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in scores.items()}
    sizes = {k: v.shape for k, v in arrays.items()}
    if len({s for s in sizes.values()}) != 1 or arrays[names[0]].ndim != 1:
        raise InputError(f"every judge needs one grade per item, in the same order; got shapes {sizes}.")
    pairs = []
    for x, y in itertools.combinations(names, 2):
        ok = ~np.isnan(arrays[x]) & ~np.isnan(arrays[y])
        ax, ay = arrays[x][ok].tolist(), arrays[y][ok].tolist()
        kappa = weighted_kappa(ax, ay, labels=labels, weights=weights) if ax else float("nan")
        pairs.append(
            {
                "a": x,
                "b": y,
                "n": int(ok.sum()),
                "n_missing": int((~ok).sum()),
                "kappa": None if math.isnan(kappa) else kappa,
                "exact_agreement": float(np.mean(np.equal(ax, ay))) if ax else None,
            }
        )
    return {"weights": "none" if weights is None else weights, "pairs": pairs}
