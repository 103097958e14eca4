"""Anchor-count sweeps: how many paired anchors does each translation method need?

:func:`anchor_sweep` holds out a class-stratified evaluation set once (``eval_fraction`` of the rows), then for
every anchor count and seed draws class-stratified anchors from the remaining rows (never from the evaluation
set; the same anchors for every method of a seed), fits each method and measures on the evaluation rows:

* translation quality: pair cosine, retrieval top-1 and MRR of the true target among all evaluation targets;
* with labels, the downstream task: a logistic-regression head trained on the *target* features of the
  non-evaluation rows, applied to the *translated* evaluation rows — accuracy for one label per row, macro AUROC
  for several. The same head on the true target rows is the upper bound (``reference``).

Cells where a method is underdetermined (least squares with no more anchors than source dimensions) are marked
``underdetermined`` and carry no numbers. Each metric is summarised over seeds by mean, standard deviation and
a Student-t confidence interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medlens._validation import InputError, check_interval, check_option
from medlens.stitching._diagnostics import sample_anchors, translation_report
from medlens.stitching._heads import Head
from medlens.stitching._translate import METHODS, Translator, underdetermined

__all__ = ["anchor_sweep", "summarize_values"]


def summarize_values(values: Sequence[float], *, ci: float = 0.95) -> dict[str, Any]:
    """Mean, sample standard deviation and Student-t interval of per-seed values (no interval for one value).

    >>> [round(v, 4) for v in summarize_values([1.0, 2.0, 3.0])["ci"]]  # 2 ± t(0.975, 2) · 1 / √3
    [-0.4841, 4.4841]
    """
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if v.size == 0:
        return {"mean": None, "std": None, "ci": None, "n": 0, "values": []}
    mean = float(v.mean())
    if v.size < 2:
        return {"mean": mean, "std": None, "ci": None, "n": 1, "values": v.tolist()}
    from scipy.stats import t

    std = float(v.std(ddof=1))
    half = float(t.ppf(0.5 + ci / 2, v.size - 1) * std / np.sqrt(v.size))
    return {"mean": mean, "std": std, "ci": [mean - half, mean + half], "n": int(v.size), "values": v.tolist()}


def anchor_sweep(
    source: Any,
    target: Any,
    *,
    labels: Sequence[frozenset[str]] | None = None,
    anchors: Sequence[int] = (16, 64, 256, 1024),
    seeds: int = 5,
    methods: Sequence[str] = METHODS,
    pre: str = "standard",
    eval_fraction: float = 0.3,
    seed: int = 0,
    ci: float = 0.95,
) -> dict[str, Any]:
    """Sweep anchor counts × seeds × methods (module docstring); returns a JSON-ready table."""
    x = np.asarray(source, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise InputError(f"source and target must be paired 2-D arrays; got {x.shape} and {y.shape}.")
    for m in methods:
        check_option(m, METHODS, name="method")
    check_interval(eval_fraction, name="eval_fraction", low=0, high=1, closed="neither")
    check_interval(seeds, name="seeds", low=1)
    counts = sorted({int(n) for n in anchors})
    if not counts or counts[0] < 2:
        raise InputError(f"anchor counts must be integers >= 2; got {list(anchors)}.")
    n = len(x)
    strata = None
    if labels is not None:
        if len(labels) != n:
            raise InputError(f"{len(labels)} label rows for {n} feature rows; they must pair row for row.")
        strata = [";".join(sorted(row)) for row in labels]
    n_eval = max(2, int(round(eval_fraction * n)))
    eval_rows = sample_anchors(n_eval, pool=np.arange(n), strata=strata, seed=seed)
    pool = np.setdiff1d(np.arange(n), eval_rows)
    if counts[-1] > len(pool):
        raise InputError(
            f"{counts[-1]} anchors asked for, but only {len(pool)} rows lie outside the evaluation set "
            f"({len(eval_rows)} rows); lower the largest anchor count or the evaluation fraction."
        )
    pool_strata = None if strata is None else [strata[i] for i in pool]
    head = reference = None
    if labels is not None:
        head = Head(labels).fit(y[pool], pool)
        reference = head.score(y[eval_rows], eval_rows)
    d1 = x.shape[1]
    cells: dict[tuple[str, int], list[dict[str, Any]]] = {(m, c): [] for m in methods for c in counts}
    for c in counts:
        for s in range(seeds):
            rows = sample_anchors(c, pool=pool, strata=pool_strata, seed=seed + 1 + s)
            for m in methods:
                if underdetermined(m, c, d1, pre):
                    continue
                tr = Translator(m, pre=pre, seed=seed + s).fit(x[rows], y[rows])
                z = tr.transform(x[eval_rows])
                cell = translation_report(z, y[eval_rows])
                if head is not None:
                    cell.update(head.score(z, eval_rows))
                cells[(m, c)].append(cell)
    metrics = ["pair_cosine", "top1", "mrr"] + ([] if head is None else list(reference))
    table = []
    for (m, c), runs in cells.items():
        row: dict[str, Any] = {"method": m, "anchors": c, "underdetermined": underdetermined(m, c, d1, pre)}
        if runs:
            row["metrics"] = {k: summarize_values([r[k] for r in runs], ci=ci) for k in metrics}
        table.append(row)
    return {
        "n_rows": n,
        "source_dim": d1,
        "target_dim": int(y.shape[1]),
        "eval_rows": int(len(eval_rows)),
        "pool_rows": int(len(pool)),
        "anchors": counts,
        "seeds": int(seeds),
        "methods": list(methods),
        "pre": pre,
        "ci": ci,
        "metrics": metrics,
        "head": None
        if head is None
        else {
            "kind": "one-vs-rest logistic regression" if head.multilabel else "multinomial logistic regression",
            "classes": head.classes,
            "trained_on": "target features of the non-evaluation rows",
        },
        "reference": reference,
        "table": table,
    }
