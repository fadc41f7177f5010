"""Figures and the HTML report of run folders (`postern report`)."""

from postern.report.html import DEFAULT_MAX_ROWS, Report, load_run, write_report

__all__ = ["DEFAULT_MAX_ROWS", "Report", "load_run", "write_report"]
