"""Plots for taxonomy-aware evaluation (matplotlib, extra ``viz``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medlens._optional import require
from medlens._validation import check_option

__all__ = ["anchor_sweep_figure", "risk_coverage_figure", "branch_confusion_figure"]


def _plt():
    mpl = require("matplotlib", extra="viz", purpose="report plots")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _log_limits(risks: Sequence[np.ndarray], alpha: float) -> tuple[float, float]:
    """Log-axis limits that keep α well inside: from below the smallest positive rate (or α/10) to the largest."""
    pos = np.concatenate([r[np.isfinite(r) & (r > 0)] for r in risks] + [np.array([alpha])])
    return min(float(pos.min()), alpha / 10) * 0.7, max(float(pos.max()), alpha * 10) * 1.3


def risk_coverage_figure(
    curves: Sequence[dict[str, Any]], *, alpha: float, title: str = "", rule: str | None = None
) -> Any:
    """CAE rate (log axis, so the region around α is readable) and coverage against λ, plus rate against coverage.

    Each curve: ``{"label", "lambda", "risk", "coverage", "lambda_hat"?}``. ``rule`` (e.g. ``"multilabel"``)
    names the decision rule the curves are for in both panel titles. A rate of 0 (everything abstained) has no
    place on a log axis and is left out of the line.
    """
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.0))
    cov_ax = ax1.twinx()
    risks = []
    for c in curves:
        lam, risk, cov = (np.asarray(c[k], dtype=float) for k in ("lambda", "risk", "coverage"))
        risks.append(risk)
        shown = np.where(risk > 0, risk, np.nan)
        (line,) = ax1.plot(lam, shown, label=f"CAE rate ({c['label']})")
        cov_ax.plot(lam, cov, linestyle="--", color=line.get_color(), label=f"coverage ({c['label']})")
        ax2.plot(cov, shown, color=line.get_color(), label=f"{c['label']}")
        if c.get("lambda_hat") is not None:
            ax1.axvline(
                c["lambda_hat"], color=line.get_color(), linestyle=":", linewidth=1, label=f"λ̂ = {c['lambda_hat']:.3f}"
            )
    lo, hi = _log_limits(risks, alpha)
    for ax in (ax1, ax2):
        ax.set_yscale("log")
        ax.set_ylim(lo, hi)
        ax.axhline(alpha, color="k", linewidth=0.9, linestyle="-.", label=f"target α = {alpha}")
        ax.grid(True, which="major", alpha=0.3)
    where = f" — rule {rule}" if rule else ""
    ax1.set_title(f"CAE rate and coverage vs threshold λ{where}", fontsize=10)
    ax1.set_xlabel("threshold λ")
    ax1.set_ylabel("CAE rate (log scale)")
    cov_ax.set_ylabel("coverage (share not abstained, dashed)")
    cov_ax.set_ylim(0, 1.02)
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = cov_ax.get_legend_handles_labels()
    ax1.legend(h1 + h2, l1 + l2, fontsize=7, loc="lower left")
    ax2.set_title(f"CAE rate vs coverage{where}", fontsize=10)
    ax2.set_xlabel("coverage (share not abstained)")
    ax2.set_ylabel("CAE rate (log scale)")
    ax2.legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def branch_confusion_figure(
    true_branches: list[str],
    predicted: list[str],
    counts: Sequence[Sequence[int]],
    *,
    title: str = "",
    normalize: str | None = None,
) -> Any:
    """Heat map of true branch × predicted branch counts (off-diagonal = cross-branch).

    ``normalize="row"`` colours each cell by its share of the row (the true branch's reports), so small and
    large branches read alike; the cell text then shows the share and, below it, the count.
    """
    check_option(normalize, (None, "row"), name="normalize")
    plt = _plt()
    m = np.asarray(counts, dtype=float)
    if normalize == "row":
        totals = m.sum(axis=1, keepdims=True)
        shown = np.divide(m, totals, out=np.zeros_like(m), where=totals > 0)
    else:
        shown = m
    fig, ax = plt.subplots(figsize=(1.6 + 0.8 * len(predicted), 1.0 + 0.6 * len(true_branches)))
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize == "row" else None)
    ax.set_xticks(range(len(predicted)), predicted, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(true_branches)), true_branches, fontsize=8)
    ax.set_xlabel("predicted branch")
    ax.set_ylabel("true branch")
    hi = 1.0 if normalize == "row" else (shown.max() if shown.size else 0)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            text = f"{shown[i, j]:.2f}\n({int(m[i, j])})" if normalize == "row" else f"{int(m[i, j])}"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=6 if normalize == "row" else 7,
                color="white" if hi and shown[i, j] > hi / 2 else "black",
            )
    bar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("share of the true branch's reports" if normalize == "row" else "reports (count)", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def anchor_sweep_figure(panels: Sequence[dict[str, Any]], *, title: str = "") -> Any:
    """Metric against the number of anchors (log x), one line per method with its confidence band.

    Each panel: ``{"title", "ylabel", "anchors": [...], "lines": {method: {"mean": [...], "ci_low": [...],
    "ci_high": [...]}}, "references": {label: value}}``; a ``None`` mean (an underdetermined cell) leaves a gap,
    references are horizontal dotted lines (e.g. the upper bound and the naive baseline).
    """
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.6), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        x = np.asarray(panel["anchors"], dtype=float)
        for method, line in panel["lines"].items():
            mean = np.array([np.nan if v is None else v for v in line["mean"]], dtype=float)
            (h,) = ax.plot(x, mean, marker="o", label=method)
            lo = np.array([np.nan if v is None else v for v in line.get("ci_low", [None] * len(x))], dtype=float)
            hi = np.array([np.nan if v is None else v for v in line.get("ci_high", [None] * len(x))], dtype=float)
            if np.isfinite(lo).any():
                ax.fill_between(x, lo, hi, color=h.get_color(), alpha=0.18, linewidth=0)
        for i, (label, value) in enumerate((panel.get("references") or {}).items()):
            if value is not None:
                ax.axhline(value, color=f"C{7 + i % 3}", linestyle=":", linewidth=1.2, label=label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(x, [str(int(v)) for v in x])
        ax.set_xlabel("anchors")
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.set_title(panel.get("title", ""), fontsize=10)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
