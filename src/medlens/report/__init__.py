"""HTML reports and plots (plots need the ``viz`` extra)."""

from medlens.report._html import CAE_DEFINITION, Section, figure_html, render_report, table_html, write_report, yes_no
from medlens.report._plots import anchor_sweep_figure, branch_confusion_figure, risk_coverage_figure

__all__ = [
    "CAE_DEFINITION",
    "Section",
    "anchor_sweep_figure",
    "branch_confusion_figure",
    "figure_html",
    "render_report",
    "risk_coverage_figure",
    "table_html",
    "write_report",
    "yes_no",
]
