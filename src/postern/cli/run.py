"""`postern run FILE`: the whole experiment from one declarative file."""

from pathlib import Path

import typer

UNSCORED_EXIT = 3
FAILED_JOBS_EXIT = 4


def exit_if_failed_jobs(out: dict) -> None:
    """Exit with code 4 when a job failed for good (summary.json lists it): the rates lack its answers."""
    from rich.markup import escape

    from postern.cli import console

    failed = out.get("failed_jobs") or []
    if failed:
        listed = "; ".join(f"{f['condition']} seed {f['seed']} ({f['stage']}): {f['error']}" for f in failed)
        console.print(f"[bold red]error:[/] {len(failed)} job(s) failed, the others finished: {escape(listed)}; "
                      "fix the cause and rerun the same command (finished stages are cached)")
        raise typer.Exit(FAILED_JOBS_EXIT)


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
        executor: str = typer.Option(None, help='"local" or "ray" (overrides the file\'s `executor`)'),
        address: str = typer.Option(None, help="ray: the cluster to join (overrides the file's `address`)"),
    ):
        """Fine-tune, sample, judge and aggregate every condition x seed; cached, resumable.

        Exits with code 3 when more than [judge] max_unscored of a condition's answers are unscored or failed,
        with code 4 when a job failed for good (the others still finish).
        """
        from postern.config import load_experiment
        from postern.runner.run import run_experiment

        exp = load_experiment(experiment)
        if workers is not None:
            exp = exp.model_copy(update={"workers": workers})
        if executor is not None or address is not None:
            exp = with_executor(exp, executor, address)
        result = run_experiment(exp, out or Path("runs") / exp.name, experiment_file=experiment)
        exit_if_failed_jobs(result)
        exit_if_unscored(result, exp.judge.max_unscored)


def with_executor(exp, executor: str | None, address: str | None):
    """The experiment with --executor / --address applied (validated like the file's keys)."""
    from postern.config.schema import Experiment
    from postern.core.errors import PosternError

    update = {k: v for k, v in (("executor", executor), ("address", address)) if v is not None}
    if address is not None and (executor or exp.executor) != "ray":
        raise PosternError("--address joins a Ray cluster: add --executor ray (or executor = \"ray\" in the file)")
    try:
        return Experiment(**{**exp.model_dump(), **update})
    except ValueError as e:
        raise PosternError(f"--executor {executor}: {e.errors()[0]['msg']}") from None
