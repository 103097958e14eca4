"""Ratio statistics and bootstrap confidence intervals.

Every rate medlens reports is a ratio of per-sample sums (``sum(num) / sum(den)``): a plain rate has
``den = 1``, micro hP is ``sum |α∩β| / sum |α|``, CAE share is ``sum CAE / sum error``. Bootstrapping
such ratios only needs resampled sums, so one multinomial weight matrix serves every metric at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from medlens._validation import InputError, check_interval

__all__ = ["Ratio", "bootstrap_ci", "bootstrap_counts"]


@dataclass(frozen=True)
class Ratio:
    """``sum(num) / sum(den)`` over samples (NaN when the denominator is 0)."""

    num: np.ndarray
    den: np.ndarray

    @property
    def value(self) -> float:
        d = float(self.den.sum())
        return float(self.num.sum() / d) if d > 0 else float("nan")


def bootstrap_ci(
    stats: dict[str, Ratio],
    *,
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    seed: int = 0,
    chunk: int = 64,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals for ratio statistics that share the same samples.

    Parameters
    ----------
    stats : dict of str to Ratio
        Per-sample numerators and denominators, all of length ``n_samples``.
    confidence : float in (0, 1)
    n_bootstrap : int
        Number of resamples (with replacement, size ``n_samples``).
    seed : int

    Returns
    -------
    dict of str to (low, high)

    Examples
    --------
    >>> r = Ratio(np.array([1.0, 0, 0, 1]), np.ones(4))
    >>> lo, hi = bootstrap_ci({"rate": r}, n_bootstrap=200)["rate"]
    >>> 0.0 <= lo <= 0.5 <= hi <= 1.0
    True
    """
    check_interval(confidence, name="confidence", low=0, high=1, closed="neither")
    if int(n_bootstrap) < 1:
        raise InputError(f"n_bootstrap must be >= 1; got {n_bootstrap}.")
    if not stats:
        return {}
    n = len(next(iter(stats.values())).num)
    for name, r in stats.items():
        if len(r.num) != n or len(r.den) != n:
            raise InputError(f"bootstrap statistic {name!r} has {len(r.num)} samples; expected {n}.")
    num = np.stack([np.asarray(r.num, dtype=float) for r in stats.values()], axis=1)  # (n, m)
    den = np.stack([np.asarray(r.den, dtype=float) for r in stats.values()], axis=1)
    draws = []
    for w in bootstrap_counts(n, n_bootstrap=n_bootstrap, seed=seed, chunk=chunk):
        with np.errstate(invalid="ignore", divide="ignore"):
            draws.append((w @ num) / (w @ den))
    vals = np.concatenate(draws, axis=0)  # (B, m)
    columns = {name: vals[:, j] for j, name in enumerate(stats)}
    alpha = (1.0 - confidence) / 2.0
    out = {}
    for name, col in columns.items():
        col = col[np.isfinite(col)]
        out[name] = (
            (float(np.quantile(col, alpha)), float(np.quantile(col, 1 - alpha))) if len(col) else (np.nan, np.nan)
        )
    return out


def bootstrap_counts(n: int, *, n_bootstrap: int = 1000, seed: int = 0, chunk: int = 64) -> Iterator[np.ndarray]:
    """The resamples of :func:`bootstrap_ci` as counts: float arrays ``(b, n)`` (``b ≤ chunk``, ``n_bootstrap``
    rows in all) saying how often each of ``n`` samples is drawn in each resample of size ``n``. A statistic
    that accepts per-sample weights is evaluated on a resample by weighting with its row.

    >>> w = np.concatenate(list(bootstrap_counts(5, n_bootstrap=3)))
    >>> w.shape, w.sum(axis=1).tolist()
    ((3, 5), [5.0, 5.0, 5.0])
    """
    if int(n_bootstrap) < 1:
        raise InputError(f"n_bootstrap must be >= 1; got {n_bootstrap}.")
    rng = np.random.default_rng(seed)
    for start in range(0, int(n_bootstrap), chunk):
        b = min(chunk, int(n_bootstrap) - start)
        idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        yield np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(float)
