"""Group reports: per-group scores with bootstrap intervals, gaps, ES-metric and FAP for sensitive attributes.

Input is one score per sample (a caption metric, a judge grade, 0/1 correctness) and one or more attributes. For
each attribute the report gives every group's size and mean score with a seeded percentile-bootstrap interval, the
pooled mean, the gaps (max − min, max |P_g − P̄|, std of the group means), the ES-metric, FAP_λ with its parts and
variants, and the worst group, each summary with its own bootstrap interval (computed on the same resamples).

Rules that keep small or missing groups from driving the numbers (``design/fairness.md`` §9):

- ``min_group_size`` (default 30): a smaller group stays in the output with ``excluded: true`` and a
  :class:`SmallGroupWarning`, and is left out of the gaps, ES and FAP (its own interval is still given).
- Missing attribute values (``None``, NaN, empty text, or a value listed in ``unknown``): ``missing="drop"``
  leaves those samples out of that attribute's report; ``missing="group"`` makes them a group named
  ``"unknown"``. ``n_missing`` is always reported.
- Intersections are opt-in: ``intersections=[("race", "gender")]`` adds an attribute ``race&gender`` whose
  groups are the observed combinations (``"Black&Female"``); a sample missing either part is missing there.
- Samples with a NaN score (e.g. an unparsable judge answer) are left out of every attribute and counted
  (``n_nan_scores``).

The gaps' reference P̄ and the ES-metric's overall value are the pooled mean of the included groups' samples
(equal to the size-weighted FAP performance term); ``pooled`` is the mean over every sample the attribute
counts, excluded groups included. The group standard deviation is the population one (ddof = 0).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medlens._results import MetricResult
from medlens._validation import InputError, check_interval, check_option, shorten
from medlens.fairness._bootstrap import resampled_group_sums
from medlens.fairness._summary import DISPERSIONS, FAP_WEIGHTS, FAPResult, _check_fap_options, fap_arrays

__all__ = [
    "MISSING_POLICIES",
    "AttributeReport",
    "GroupReport",
    "GroupStat",
    "SmallGroupWarning",
    "encode_attribute",
    "group_report",
]

MISSING_POLICIES = ("drop", "group")
"""What happens to samples whose attribute is missing: left out, or their own group ``"unknown"``."""
UNKNOWN = "unknown"


class SmallGroupWarning(UserWarning):
    """A group has fewer than ``min_group_size`` samples and is excluded from gaps, ES and FAP."""


@dataclass(frozen=True)
class GroupStat(MetricResult):
    """One group of one attribute: size, mean score, bootstrap interval and whether it is excluded."""

    name: str
    n: int
    score: float
    ci_low: float | None
    ci_high: float | None
    excluded: bool


@dataclass(frozen=True)
class AttributeReport(MetricResult):
    """The fairness summary of one attribute (see the module notes).

    ``groups`` are sorted by name. Summaries over fewer than two included groups are ``None`` (with a warning).
    ``ci`` maps each summary (``pooled``, ``gap_max_min``, ``gap_max_abs``, ``gap_std``, ``es``) to its
    bootstrap interval; FAP's interval is on ``fap``.
    """

    attribute: str
    groups: tuple[GroupStat, ...]
    n: int
    n_missing: int
    pooled: float
    fap: FAPResult | None
    es: float | None
    gap_max_min: float | None
    gap_max_abs: float | None
    gap_std: float | None
    worst_group: str | None
    ci: dict[str, tuple[float, float] | None] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def group(self, name: str) -> GroupStat:
        """The group called ``name``."""
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(f"attribute {self.attribute!r} has no group {name!r}; groups: {[g.name for g in self.groups]}")


@dataclass(frozen=True)
class GroupReport(MetricResult):
    """Group reports of one score for several attributes, with the settings that produced them."""

    attributes: dict[str, AttributeReport]
    n: int
    n_nan_scores: int
    settings: dict[str, Any]

    def __getitem__(self, attribute: str) -> AttributeReport:
        return self.attributes[attribute]


def _label(value: Any) -> str | None:
    """A group name for ``value`` (None when missing): integral floats print as integers (``1.0`` → ``"1"``)."""
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        if float(value).is_integer():
            return str(int(value))
    text = str(value).strip()
    return text or None


def _codes(values: Any, unknown: Sequence[Any]) -> tuple[np.ndarray, list[str]]:
    """Group codes with ``-1`` for a missing value, and the sorted group names (vectorised through factorize)."""
    import pandas as pd

    raw = values if isinstance(values, np.ndarray) else np.asarray(list(values), dtype=object)
    if raw.ndim != 1:
        raw = np.asarray(list(values), dtype=object)
    inverse, uniques = pd.factorize(raw, use_na_sentinel=True)
    unknown_names = {_label(u) for u in unknown} - {None}
    labels = [_label(u) for u in np.asarray(uniques, dtype=object)]
    labels = [None if lab in unknown_names else lab for lab in labels]
    names = sorted({lab for lab in labels if lab is not None})
    index = {name: i for i, name in enumerate(names)}
    lut = np.array([index[lab] if lab is not None else -1 for lab in labels] + [-1], dtype=np.int64)
    return lut[np.asarray(inverse, dtype=np.int64)], names  # factorize's -1 (missing) picks the trailing -1


def _apply_policy(codes: np.ndarray, names: list[str], missing: str) -> tuple[np.ndarray, list[str], int]:
    n_missing = int((codes < 0).sum())
    if missing == "group" and n_missing:
        if UNKNOWN in names:  # the data already has a group called 'unknown': missing values join it
            codes = np.where(codes < 0, names.index(UNKNOWN), codes)
            return codes, names, n_missing
        names = sorted([*names, UNKNOWN])
        # old codes 0..G-1 keep their order among the named groups; -1 becomes the 'unknown' group
        old_named = [nm for nm in names if nm != UNKNOWN]
        remap = np.array([names.index(nm) for nm in old_named] + [names.index(UNKNOWN)], dtype=np.int64)
        codes = remap[codes]  # index -1 reads the last entry: 'unknown'
    return codes, names, n_missing


def encode_attribute(
    values: Sequence[Any], *, missing: str = "drop", unknown: Sequence[Any] = ()
) -> tuple[np.ndarray, list[str], int]:
    """Group codes of one attribute: ``(codes, names, n_missing)`` with ``codes[i] = -1`` for a dropped sample.

    Names are sorted, so the codes do not depend on the order in which groups appear.

    >>> encode_attribute(["b", None, "a", "b", float("nan"), "-1"], unknown=["-1"])
    (array([ 1, -1,  0,  1, -1, -1]), ['a', 'b'], 3)
    >>> encode_attribute([1.0, None, 0.0], missing="group")[1:]
    (['0', '1', 'unknown'], 1)
    """
    check_option(missing, MISSING_POLICIES, name="missing")
    codes, names = _codes(values, unknown)
    return _apply_policy(codes, names, missing)


def _intersect(parts: list[tuple[np.ndarray, list[str]]]) -> tuple[np.ndarray, list[str]]:
    """Codes and names of the observed combinations of several attributes (missing if any part is missing)."""
    n = len(parts[0][0])
    ok = np.ones(n, dtype=bool)
    key = np.zeros(n, dtype=np.int64)
    for codes, names in parts:
        ok &= codes >= 0
        key = key * max(len(names), 1) + np.maximum(codes, 0)
    combos, inverse = np.unique(key[ok], return_inverse=True)
    labels = []
    for k in combos.tolist():
        idx = []
        for _, names in reversed(parts):
            idx.append(k % max(len(names), 1))
            k //= max(len(names), 1)
        labels.append("&".join(nm[i] for (_, nm), i in zip(parts, reversed(idx), strict=True)))
    order = np.argsort(labels, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    codes = np.full(n, -1, dtype=np.int64)
    codes[ok] = rank[inverse.ravel()]
    return codes, sorted(labels)


def _interval(draws: np.ndarray, confidence: float) -> tuple[float, float] | None:
    """Percentile interval of the finite draws (None when there are none)."""
    d = draws[np.isfinite(draws)]
    if not len(d):
        return None
    a = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(d, [a, 1.0 - a])
    return float(lo), float(hi)


def _summaries(S: np.ndarray, N: np.ndarray, inc: np.ndarray, opts: dict[str, Any]) -> dict[str, np.ndarray]:
    """Summaries over the included groups, vectorised over the rows of ``(R, G)`` sums and counts."""
    if not inc.any():  # nothing to summarise but the pooled mean
        with np.errstate(invalid="ignore", divide="ignore"):
            return {"pooled": S.sum(axis=1) / N.sum(axis=1)}
    with np.errstate(invalid="ignore", divide="ignore"):
        P = S[:, inc] / N[:, inc]
        Ni = N[:, inc]
        ref = S[:, inc].sum(axis=1) / Ni.sum(axis=1)  # pooled mean of the included samples
        out = {
            "pooled": S.sum(axis=1) / N.sum(axis=1),
            "gap_max_min": P.max(axis=1) - P.min(axis=1),
            "gap_max_abs": np.abs(P - ref[:, None]).max(axis=1),
            "gap_std": P.std(axis=1),
            "es": ref / (1.0 + opts["alpha"] * np.abs(P - ref[:, None]).sum(axis=1)),
        }
        for wk in FAP_WEIGHTS:
            for dk in DISPERSIONS:
                out[f"fap:{wk}/{dk}"], perf, disp = fap_arrays(
                    P, Ni, lam=opts["lam"], weights=wk, dispersion=dk, higher_is_better=opts["higher_is_better"]
                )
                if wk == opts["weights"] and dk == opts["dispersion"]:
                    out["fap"], out["fap_performance"], out["fap_dispersion"] = out[f"fap:{wk}/{dk}"], perf, disp
    return out


def _attribute_report(
    name: str,
    codes: np.ndarray,
    names: list[str],
    n_missing: int,
    sums: tuple[np.ndarray, np.ndarray],
    boot: tuple[np.ndarray, np.ndarray] | None,
    opts: dict[str, Any],
) -> AttributeReport:
    s_full, n_full = sums
    inc = n_full >= opts["min_group_size"]
    notes: list[str] = []
    for g, nm in enumerate(names):
        if not inc[g]:
            notes.append(
                f"attribute {name!r}: group {nm!r} has {int(n_full[g])} sample(s) < min_group_size "
                f"{opts['min_group_size']}; it is reported but excluded from gaps, ES and FAP."
            )
    point = {k: float(v[0]) for k, v in _summaries(s_full[None], n_full[None], inc, opts).items()}
    draws = _summaries(*boot, inc, opts) if boot is not None else None
    conf = opts["confidence"]
    group_ci = [None] * len(names)
    if boot is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            Pb = boot[0] / boot[1]
        group_ci = [_interval(Pb[:, g], conf) for g in range(len(names))]
    with np.errstate(invalid="ignore", divide="ignore"):
        P = s_full / n_full
    groups = tuple(
        GroupStat(
            name=nm,
            n=int(n_full[g]),
            score=float(P[g]),
            ci_low=None if group_ci[g] is None else group_ci[g][0],
            ci_high=None if group_ci[g] is None else group_ci[g][1],
            excluded=not bool(inc[g]),
        )
        for g, nm in enumerate(names)
    )
    ci = {}
    keys = ("pooled", "gap_max_min", "gap_max_abs", "gap_std", "es")
    for k in keys:
        ci[k] = _interval(draws[k], conf) if (draws is not None and k in draws) else None
    enough = int(inc.sum()) >= 2
    if not enough:
        notes.append(
            f"attribute {name!r}: {int(inc.sum())} group(s) with at least min_group_size "
            f"{opts['min_group_size']} samples; gaps, ES and FAP need two."
        )
    fap_res = None
    worst = None
    if enough:
        inc_idx = np.flatnonzero(inc)
        pi = P[inc_idx]
        w = int(np.argmin(pi) if opts["higher_is_better"] else np.argmax(pi))
        worst = names[inc_idx[w]]
        fci = _interval(draws["fap"], conf) if draws is not None else None
        fap_res = FAPResult(
            value=point["fap"],
            performance=point["fap_performance"],
            dispersion=point["fap_dispersion"],
            lam=float(opts["lam"]),
            weights=opts["weights"],
            dispersion_kind=opts["dispersion"],
            min_group_score=float(pi[w]),
            worst_group=worst,
            variants={f"{wk}/{dk}": point[f"fap:{wk}/{dk}"] for wk in FAP_WEIGHTS for dk in DISPERSIONS},
            ci_low=None if fci is None else fci[0],
            ci_high=None if fci is None else fci[1],
        )
    return AttributeReport(
        attribute=name,
        groups=groups,
        n=int(n_full.sum()),
        n_missing=int(n_missing),
        pooled=point["pooled"],
        fap=fap_res,
        es=point.get("es") if enough else None,
        gap_max_min=point.get("gap_max_min") if enough else None,
        gap_max_abs=point.get("gap_max_abs") if enough else None,
        gap_std=point.get("gap_std") if enough else None,
        worst_group=worst,
        ci={k: (v if (enough or k == "pooled") else None) for k, v in ci.items()},
        warnings=tuple(notes),
    )


def _attribute_columns(attributes: Any, n: int) -> dict[str, np.ndarray]:
    """Attribute name → values (length ``n``) from a mapping or a pandas DataFrame."""
    if hasattr(attributes, "columns") and hasattr(attributes, "__getitem__"):
        cols = {str(c): np.asarray(attributes[c].to_numpy()) for c in attributes.columns}
    elif isinstance(attributes, Mapping):
        cols = {
            str(k): v if isinstance(v, np.ndarray) else np.asarray(list(v), dtype=object) for k, v in attributes.items()
        }
    else:
        raise InputError(f"attributes must be a mapping name → values or a DataFrame; got {type(attributes).__name__}.")
    if not cols:
        raise InputError("attributes is empty; give at least one sensitive attribute.")
    for k, v in cols.items():
        if len(v) != n:
            raise InputError(f"attribute {k!r} has {len(v)} values for {n} scores; give one value per sample.")
    return cols


def group_report(
    scores: Any,
    attributes: Any,
    *,
    min_group_size: int = 30,
    missing: str = "drop",
    unknown: Sequence[Any] = (),
    intersections: Sequence[Sequence[str]] = (),
    lam: float = 1.0,
    weights: str = "size",
    dispersion: str = "mad",
    alpha: float = 1.0,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    stratify: bool = False,
    seed: int = 0,
    higher_is_better: bool = True,
) -> GroupReport:
    """Per-group scores with bootstrap intervals, gaps, ES-metric and FAP for each sensitive attribute.

    Parameters
    ----------
    scores : array-like of shape (n_samples,)
        One score per sample (NaN = not scored; counted and left out).
    attributes : mapping of str to sequence, or DataFrame
        Sensitive attribute name → one value per sample.
    min_group_size : int >= 1
        Groups with fewer samples are reported with ``excluded=True`` and left out of the summaries.
    missing : {"drop", "group"}
        Missing attribute values: leave the sample out of that attribute, or put it in a group ``"unknown"``.
    unknown : sequence
        Values that also mean missing (e.g. ``-1`` or ``"Unknown"`` in FairVLMed's codes).
    intersections : sequence of sequences of attribute names
        Extra attributes crossing several ones (opt-in), named ``"a&b"``.
    lam, weights, dispersion :
        FAP's λ ≥ 0 and variant (see :func:`medlens.fairness.fap`); every variant is also in ``fap.variants``.
    alpha : float >= 0
        The ES-metric's α (FairCLIP uses 1).
    n_bootstrap : int >= 0
        Resamples for the percentile intervals (0: no intervals).
    confidence : float in (0, 1)
    stratify : bool
        Resample within each attribute's groups (fixed group sizes) instead of resampling rows jointly.
    seed : int
    higher_is_better : bool
        Direction of the score: the worst group and FAP's penalty follow it.

    Returns
    -------
    GroupReport
        ``report["race"]`` is the :class:`AttributeReport` of an attribute.

    Examples
    --------
    >>> rep = group_report([1, 1, 0, 1, 0, 0], {"sex": ["F", "F", "F", "M", "M", "M"]},
    ...                    min_group_size=1, n_bootstrap=0)
    >>> r = rep["sex"]
    >>> [(g.name, g.n, round(g.score, 3)) for g in r.groups], round(r.gap_max_min, 3), r.worst_group
    ([('F', 3, 0.667), ('M', 3, 0.333)], 0.333, 'M')
    >>> round(r.fap.value, 4), round(r.fap.performance, 4), round(r.fap.dispersion, 4)
    (0.3333, 0.5, 0.1667)
    """
    if isinstance(min_group_size, bool) or not isinstance(min_group_size, int | np.integer) or min_group_size < 1:
        raise InputError(f"min_group_size must be an integer >= 1; got {min_group_size!r}.")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int | np.integer) or n_bootstrap < 0:
        raise InputError(f"n_bootstrap must be an integer >= 0; got {n_bootstrap!r}.")
    _check_fap_options(lam, weights, dispersion)
    check_interval(alpha, name="alpha", low=0)
    check_interval(confidence, name="confidence", low=0, high=1, closed="neither")
    check_option(missing, MISSING_POLICIES, name="missing")
    try:
        s = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"scores must be numbers, one per sample; got {shorten(list(scores)[:5])}… that are not numeric."
        ) from None
    if s.ndim != 1:
        raise InputError(f"scores must be one value per sample, shape (n,); got shape {s.shape}.")
    inf = np.flatnonzero(np.isinf(s))
    if len(inf):
        raise InputError(f"scores must be finite or NaN (not scored); got {s[inf[0]]} at sample {int(inf[0])}.")
    cols = _attribute_columns(attributes, len(s))
    keep = np.isfinite(s)
    n_nan = int((~keep).sum())
    s = s[keep]
    base = {}
    for name, values in cols.items():
        base[name] = _codes(values[keep], unknown)
    raw = dict(base)
    for combo in intersections:
        parts = [str(p) for p in combo]
        unknown_parts = [p for p in parts if p not in base]
        if len(parts) < 2 or unknown_parts:
            raise InputError(
                f"intersection {parts} must name at least two attributes among {sorted(base)}"
                + (f"; unknown: {unknown_parts}" if unknown_parts else "")
                + "."
            )
        raw["&".join(parts)] = _intersect([base[p] for p in parts])
    encoded = {}
    for name, (codes, names) in raw.items():
        codes, names, n_miss = _apply_policy(codes, names, missing)
        if len(names) < 2:
            raise InputError(
                f"attribute {name!r} has {len(names)} distinct value(s) ({names}) among the scored samples; "
                "a fairness report needs at least two groups. Check the column or leave it out."
            )
        encoded[name] = (codes, names, n_miss)
    opts = {
        "min_group_size": int(min_group_size),
        "lam": float(lam),
        "weights": weights,
        "dispersion": dispersion,
        "alpha": float(alpha),
        "confidence": float(confidence),
        "higher_is_better": bool(higher_is_better),
    }
    names_list = list(encoded)
    code_list = [encoded[k][0] for k in names_list]
    sizes = [len(encoded[k][1]) for k in names_list]
    full = []
    for codes, g in zip(code_list, sizes, strict=True):
        valid = codes >= 0
        full.append(
            (
                np.bincount(codes[valid], weights=s[valid], minlength=g),
                np.bincount(codes[valid], minlength=g).astype(np.float64),
            )
        )
    boots = (
        resampled_group_sums(s, code_list, sizes, n_bootstrap=int(n_bootstrap), seed=seed, stratify=stratify)
        if n_bootstrap
        else [None] * len(names_list)
    )
    reports = {}
    for a, name in enumerate(names_list):
        codes, names, n_miss = encoded[name]
        rep = _attribute_report(name, codes, names, n_miss, full[a], boots[a], opts)
        for note in rep.warnings:
            warnings.warn(note, SmallGroupWarning, stacklevel=2)
        reports[name] = rep
    settings = {
        **opts,
        "missing": missing,
        "unknown": [str(u) for u in unknown],
        "intersections": [list(map(str, c)) for c in intersections],
        "n_bootstrap": int(n_bootstrap),
        "stratify": bool(stratify),
        "seed": int(seed),
        "bootstrap": "percentile; rows resampled " + ("within each attribute's groups" if stratify else "jointly"),
    }
    return GroupReport(attributes=reports, n=int(len(s)), n_nan_scores=n_nan, settings=settings)
