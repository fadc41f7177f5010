"""`postern run FILE`: the whole experiment from one declarative file."""

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def run(
        experiment: Path = typer.Argument(..., help="experiment file (.toml or .yaml)"),
        out: Path = typer.Option(None, "--out", "-o", help="run folder (default: runs/<experiment name>)"),
        workers: int = typer.Option(None, help="parallel processes (overrides the file's `workers`)"),
    ):
        """Fine-tune, sample, judge and aggregate every condition x seed; cached, resumable."""
        from postern.config import load_experiment
        from postern.runner.run import run_experiment

        exp = load_experiment(experiment)
        if workers is not None:
            exp = exp.model_copy(update={"workers": workers})
        run_experiment(exp, out or Path("runs") / exp.name, experiment_file=experiment)
