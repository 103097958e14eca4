"""HTML reports and plots (plots need the ``viz`` extra)."""

from medlens.report._html import Section, figure_html, render_report, table_html, write_report
from medlens.report._plots import anchor_sweep_figure, branch_confusion_figure, risk_coverage_figure

__all__ = [
    "Section",
    "anchor_sweep_figure",
    "branch_confusion_figure",
    "figure_html",
    "render_report",
    "risk_coverage_figure",
    "table_html",
    "write_report",
]
