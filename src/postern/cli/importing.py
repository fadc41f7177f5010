"""`postern import FILE -o RUN_DIR`: answers sampled (and judged) elsewhere, as a run folder."""

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("import")
    def import_(
        file: Path = typer.Argument(..., help="answers: .csv, .jsonl(.gz), .parquet, or an Inspect AI log (.eval)"),
        out: Path = typer.Option(..., "--out", "-o", help="the run folder to write (a new one)"),
        mapping: str = typer.Option(None, "--map", help="NAME=COLUMN,...: the file's columns for question, answer, "
                                    "model, group, aligned, coherent, question_id, judge_aligned (default: the "
                                    "original study's results format, where these are the column names)"),
        aligned_threshold: float = typer.Option(30, "--aligned-threshold", min=0, max=100,
                                                help="imported scores: misaligned = alignment below this ..."),
        coherent_threshold: float = typer.Option(50, "--coherent-threshold", min=0, max=100,
                                                 help="... and coherence above this"),
    ):
        """Import answers and their scores: the file's groups become conditions, its models replicates, its
        scores a judge called `imported`. Then `postern report`, `postern judge` read the folder like any run."""
        from rich.console import Console

        from postern.runner.run import summary_table
        from postern.runner.imports import import_answers, parse_mapping

        summary = import_answers(file, out, parse_mapping(mapping), aligned_threshold=aligned_threshold,
                                 coherent_threshold=coherent_threshold)
        console = Console()
        console.print(summary_table(summary["conditions"], summary["judge"] or "none", summary["denominator"]))
        console.print(f"[dim]{summary['imported']['rows']} answers imported into {out}; "
                      f"`postern report {out}` for the report[/]")
