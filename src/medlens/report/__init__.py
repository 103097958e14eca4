"""HTML reports and plots (plots need the ``viz`` extra)."""

from medlens.report._html import Section, figure_html, render_report, table_html, write_report

__all__ = ["Section", "figure_html", "render_report", "table_html", "write_report"]
