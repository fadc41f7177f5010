"""`postern run FILE`: the whole experiment from one declarative file."""

from pathlib import Path

import typer

UNSCORED_EXIT = 3


def exit_if_unscored(out: dict, max_unscored: float) -> None:
    """Exit with code 3 when more than `max_unscored` of a condition's answers are unscored or failed (a judge
    that answers in words, calls that failed): the rates would rest on the rest, or on nothing."""
    from rich.markup import escape

    from postern.cli import console

    if not out["failures"]["exceeded"]:
        return
    shares = out["failures"]["unscored_share"]
    worst = max(shares, key=shares.get)
    message = (f"{shares[worst]:.0%} of the answers of condition {worst!r} are unscored or failed, more than [judge] "
               f"max_unscored = {max_unscored:.0%}; check the judge (one that answers in words gives no score) and "
               f"failures.csv (rerun to retry failed calls)")
    console.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(UNSCORED_EXIT)


def register(app: typer.Typer) -> None:
    @app.command()
    def run(
        experiment: Path = typer.Argument(..., help="experiment file (.toml or .yaml)"),
        out: Path = typer.Option(None, "--out", "-o", help="run folder (default: runs/<experiment name>)"),
        workers: int = typer.Option(None, help="parallel processes (overrides the file's `workers`)"),
    ):
        """Fine-tune, sample, judge and aggregate every condition x seed; cached, resumable.

        Exits with code 3 when more than [judge] max_unscored of a condition's answers are unscored or failed.
        """
        from postern.config import load_experiment
        from postern.runner.run import run_experiment

        exp = load_experiment(experiment)
        if workers is not None:
            exp = exp.model_copy(update={"workers": workers})
        exit_if_unscored(run_experiment(exp, out or Path("runs") / exp.name, experiment_file=experiment),
                         exp.judge.max_unscored)
