"""Plots for taxonomy-aware evaluation (matplotlib, extra ``viz``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medlens._optional import require

__all__ = ["anchor_sweep_figure", "risk_coverage_figure", "branch_confusion_figure"]


def _plt():
    mpl = require("matplotlib", extra="viz", purpose="report plots")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def risk_coverage_figure(curves: Sequence[dict[str, Any]], *, alpha: float, title: str = "") -> Any:
    """CAE risk and coverage against λ for several curves, plus risk against coverage.

    Each curve: ``{"label", "lambda", "risk", "coverage", "lambda_hat"?}``.
    """
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for c in curves:
        lam, risk, cov = (np.asarray(c[k], dtype=float) for k in ("lambda", "risk", "coverage"))
        (line,) = ax1.plot(lam, risk, label=f"CAE risk ({c['label']})")
        ax1.plot(lam, cov, linestyle="--", color=line.get_color(), label=f"coverage ({c['label']})")
        ax2.plot(cov, risk, color=line.get_color(), label=c["label"])
        if c.get("lambda_hat") is not None:
            ax1.axvline(c["lambda_hat"], color=line.get_color(), linestyle=":", linewidth=1)
    ax1.axhline(alpha, color="k", linewidth=0.8, linestyle="-.", label=f"α = {alpha}")
    ax1.set_xlabel("threshold λ")
    ax1.set_ylabel("rate")
    ax1.legend(fontsize=7)
    ax2.axhline(alpha, color="k", linewidth=0.8, linestyle="-.")
    ax2.set_xlabel("coverage (share not abstained)")
    ax2.set_ylabel("CAE rate")
    ax2.set_title("risk–coverage")
    ax2.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def branch_confusion_figure(
    true_branches: list[str], predicted: list[str], counts: Sequence[Sequence[int]], *, title: str = ""
) -> Any:
    """Heat map of true branch × predicted branch counts (off-diagonal = cross-branch)."""
    plt = _plt()
    m = np.asarray(counts, dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 + 0.75 * len(predicted), 1.0 + 0.6 * len(true_branches)))
    im = ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(predicted)), predicted, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(true_branches)), true_branches, fontsize=8)
    ax.set_xlabel("predicted branch")
    ax.set_ylabel("true branch")
    hi = m.max() if m.size else 0
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                f"{int(m[i, j])}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if hi and m[i, j] > hi / 2 else "black",
            )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
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
