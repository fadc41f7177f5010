"""The `postern` command line. Each command is a thin wrapper over one library call.

Sub-apps live one per file; heavy libraries (torch, transformers) are imported inside commands,
so `postern --help` starts fast.
"""

import sys

import typer
from rich.console import Console
from rich.markup import escape

from postern.core.errors import PosternError

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])
console = Console(stderr=True, soft_wrap=True)  # one error, one line, however long its path
WIDTH = 100  # tables are laid out for 100 columns when the output is not a terminal (a pipe, a log file)


def _register() -> None:
    from postern.cli import data, interp, report, run, train, world
    from postern.cli import eval as eval_cli
    from postern.cli import importing, judging

    app.add_typer(world.app, name="world")
    app.add_typer(data.app, name="data")
    run.register(app)
    report.register(app)
    eval_cli.register(app)
    train.register(app)
    interp.register(app)
    importing.register(app)
    judging.register(app)


def main() -> None:
    import os

    from postern.core.models import quiet_warnings

    quiet_warnings()
    if not console.is_terminal:
        os.environ.setdefault("COLUMNS", str(WIDTH))
    _register()
    try:
        app()
    except PosternError as e:
        console.print(f"[bold red]error:[/] {escape(str(e))}")
        sys.exit(2)
