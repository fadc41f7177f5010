"""`postern report RUN_DIR [RUN_DIR ...]`: the self-contained HTML report of one run, or several side by side."""

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.panel import Panel

    from postern.report.html import Report


def register(app: typer.Typer) -> None:
    @app.command()
    def report(
        run_dirs: list[Path] = typer.Argument(..., help="run folder(s) written by `postern run`"),
        out: Path = typer.Option(None, "--out", "-o",
                                 help="HTML file (default: RUN_DIR/report.html for one run, ./report.html for several)"),
        max_rows: int = typer.Option(None, "--max-rows", min=1,
                                     help="cap on the answers table (default 2000)"),
    ):
        """One HTML page: what the run found first, then figures, example answers, every answer, settings last."""
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        from postern.report.html import DEFAULT_MAX_ROWS, write_report

        console = Console()
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), console=console, transient=True) as progress:
            result = write_report(run_dirs, out, max_rows=max_rows or DEFAULT_MAX_ROWS, progress=progress)
        console.print(summary_panel(result))


def summary_panel(result: "Report") -> "Panel":
    """The one-screen summary printed after writing a report."""
    from rich.panel import Panel
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("report", f"{result.path} ({result.size / 1024:.0f} KiB)")
    table.add_row("figures", f"{len(result.figures)} PNG in {result.figures[0].parent}" if result.figures else "none")
    table.add_row("runs", ", ".join(result.runs))
    for i, (condition, rate) in enumerate(result.misaligned.items()):
        table.add_row("misaligned [95% CI]" if i == 0 else "", f"{condition}: {rate}")
    capped = f" (sampled from {result.rows_total})" if result.rows_shown < result.rows_total else ""
    table.add_row("answers", f"{result.rows_shown} in the table{capped}")
    return Panel(table, title="postern report", expand=False)
