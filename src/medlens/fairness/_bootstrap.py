"""Resampled per-group sums for many attributes at once: the engine behind the group reports' intervals.

A group's mean is a ratio of sums (``sum(score) / count``), so one bootstrap resample only needs, per group,
the resampled score sum and count. Rows are resampled jointly (fairlearn's ``MetricFrame(n_boot=...)`` scheme):
each resample draws ``n`` rows with replacement and every attribute is summarised on the same draw. The rows are
sorted once by their *cell* (the combination of every attribute's group); a resample's per-cell sums are then
``np.add.reduceat`` over the row counts, and each attribute's group sums are a small ``(cells × groups)``
product. Work per resample is one pass over ``n`` rows whatever the number of attributes.

Each chunk of resamples has its own generator spawned from the seed, so the draws are the same whether the
chunks run on one thread or several.

With ``stratify=True`` each attribute is resampled within its groups (group sizes fixed, as in a stratified
bootstrap), one draw per attribute; rows without a group in that attribute are not drawn.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["THREADS", "resampled_group_sums"]

THREADS = min(4, os.cpu_count() or 1)
"""Threads that draw resample chunks in parallel (numpy's generators and ufuncs release the GIL)."""


def _counts(rng: np.random.Generator, low: np.ndarray | int, high: np.ndarray | int, b: int, n: int) -> np.ndarray:
    """(b, n) resample counts: how often each of ``n`` rows is drawn in each of ``b`` resamples."""
    idx = rng.integers(low, high, size=(b, n))
    idx += (np.arange(b, dtype=idx.dtype) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=b * n).reshape(b, n)


def _cells(codes: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Dense cell id per row (the combination of all codes) and, per cell, its code in every attribute."""
    stacked = np.stack([np.asarray(c, dtype=np.int64) for c in codes], axis=1)
    radix = stacked.max(axis=0) + 2  # codes run from -1
    if np.sum(np.log2(radix.astype(float))) < 62:  # one int64 key per row: a fast 1-D unique
        key = np.zeros(len(stacked), dtype=np.int64)
        for a in range(stacked.shape[1]):
            key = key * radix[a] + (stacked[:, a] + 1)
        _, first, cell = np.unique(key, return_index=True, return_inverse=True)
        return cell.ravel(), stacked[first]
    table, cell = np.unique(stacked, axis=0, return_inverse=True)
    return cell.ravel(), table


def resampled_group_sums(
    scores: np.ndarray,
    codes: Sequence[np.ndarray],
    n_groups: Sequence[int],
    *,
    n_bootstrap: int,
    seed: int,
    stratify: bool = False,
    chunk: int = 32,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per attribute, the ``(n_bootstrap, n_groups)`` resampled score sums and counts of its groups.

    Parameters
    ----------
    scores : (n,) float array
        Per-sample scores (finite).
    codes : sequence of (n,) int arrays
        One per attribute: each row's group index in ``0..n_groups[a]-1``, or ``-1`` when the row has no group
        in that attribute (it is then resampled with the others but counted in no group).
    n_groups : sequence of int
    n_bootstrap : int
    seed : int
    stratify : bool
        Resample within the groups of each attribute instead of jointly.

    Returns
    -------
    list of (sums, counts), one per attribute, each ``(n_bootstrap, n_groups[a])`` float arrays.

    Examples
    --------
    >>> s = np.array([1.0, 0.0, 1.0, 1.0])
    >>> [(S.shape, N.sum(axis=1).tolist()) for S, N in resampled_group_sums(s, [np.array([0, 0, 1, 1])], [2],
    ...                                                                       n_bootstrap=3, seed=0)]
    [((3, 2), [4.0, 4.0, 4.0])]
    """
    scores = np.asarray(scores, dtype=np.float64)
    n, B = len(scores), int(n_bootstrap)
    out = [(np.zeros((B, g)), np.zeros((B, g))) for g in n_groups]
    if n == 0 or B == 0:
        return out
    if stratify:
        for a, (code, g) in enumerate(zip(codes, n_groups, strict=True)):
            code = np.asarray(code, dtype=np.int64)
            keep = np.flatnonzero(code >= 0)
            if not len(keep):
                continue
            order = keep[np.argsort(code[keep], kind="stable")]
            sizes = np.bincount(code[order], minlength=g)
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            low, high = np.repeat(starts, sizes), np.repeat(starts + sizes, sizes)
            s_sorted, nonempty = scores[order], sizes > 0
            S, N = out[a]

            def one_attribute(rng, start, b, low=low, high=high, s_sorted=s_sorted, starts=starts[nonempty],
                              nonempty=nonempty, sizes=sizes, S=S, N=N):  # fmt: skip
                w = _counts(rng, low, high, b, len(s_sorted))
                S[start : start + b, nonempty] = np.add.reduceat(w * s_sorted, starts, axis=1)
                N[start : start + b] = sizes

            _chunks(one_attribute, B, chunk, np.random.SeedSequence([seed, a]))
        return out
    cell, table = _cells(codes)
    order = np.argsort(cell, kind="stable")
    s_sorted = scores[order]
    starts = np.searchsorted(cell[order], np.arange(len(table)))
    # per attribute: (cells, groups) indicator of which group each cell belongs to
    maps = []
    for a, g in enumerate(n_groups):
        m = np.zeros((len(table), g))
        valid = table[:, a] >= 0
        m[np.flatnonzero(valid), table[valid, a]] = 1.0
        maps.append(m)

    def joint(rng, start, b):
        w = _counts(rng, 0, n, b, n)
        cell_n = np.add.reduceat(w, starts, axis=1).astype(np.float64)
        cell_s = np.add.reduceat(w * s_sorted, starts, axis=1)
        for a, m in enumerate(maps):
            out[a][0][start : start + b] = cell_s @ m
            out[a][1][start : start + b] = cell_n @ m

    _chunks(joint, B, chunk, np.random.SeedSequence(seed))
    return out


def _chunks(fn, B: int, chunk: int, seq: np.random.SeedSequence) -> None:
    """Run ``fn(rng, start, b)`` over chunks of ``B`` resamples, each chunk with its own generator spawned from
    ``seq`` (the result does not depend on the number of threads), on up to :data:`THREADS` threads."""
    starts = list(range(0, B, chunk))
    rngs = [np.random.default_rng(s) for s in seq.spawn(len(starts))]
    jobs = [(rng, start, min(chunk, B - start)) for rng, start in zip(rngs, starts, strict=True)]
    if THREADS <= 1 or len(jobs) == 1:
        for job in jobs:
            fn(*job)
        return
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for f in [pool.submit(fn, *job) for job in jobs]:
            f.result()
