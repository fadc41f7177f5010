"""`postern data ...`: build and check datasets."""

import typer

app = typer.Typer(no_args_is_help=True, help="Build, transform and validate chat datasets.")
