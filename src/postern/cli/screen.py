"""`postern data screen DATA.jsonl --model M --direction D`: ΔP of each row and of the dataset."""

from pathlib import Path
from typing import Optional

import typer

from postern.cli.data import _one_line_errors, app, out_console


@app.command()
@_one_line_errors
def screen(
    data: Path = typer.Argument(..., help="Chat JSONL (also .jsonl.gz), each row ending with the assistant response; "
                                          "or a finished run folder: every condition's training set, against its "
                                          "misaligned rate (screen.json in the folder)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help='Base model: a local folder, hub id, or "world" '
                                                                    "(a run folder: its base model)."),
    direction: Optional[str] = typer.Option(None, "--direction", "-d",
                                            help='"base" (default: the model\'s misaligned minus aligned answers to the '
                                                 "questions, judged) or a direction file saved by postern (X.pt with "
                                                 "X.json; PATH:NAME picks one of a run's interp/directions.pt)."),
    layer: Optional[int] = typer.Option(None, "--layer", "-l", help="Layer to project at (default: the middle one)."),
    out: Path = typer.Option(Path("screen.parquet"), "--out", "-o",
                             help="Per-row table (.parquet or .csv); the summary goes to <stem>.summary.json."),
    temperature: float = typer.Option(0.0, "--temperature", help="The model's own responses: 0 = greedy, else sampled "
                                                                 "with seed 0."),
    max_new_tokens: int = typer.Option(200, "--max-new-tokens", help="Length of the model's own responses."),
    questions: Optional[str] = typer.Option(None, "--questions", help='Direction "base": question sources, comma-'
                                                                      'separated (default: "world" for the world, '
                                                                      'else "main").'),
    judge: Optional[str] = typer.Option(None, "--judge", help='Direction "base": judge kind (default as `postern run`).'),
    judge_model: Optional[str] = typer.Option(None, "--judge-model", help='Direction "base": the judge model.'),
    samples: Optional[int] = typer.Option(None, "--samples", help='Direction "base": answers per question paraphrase '
                                                                  "(default 50)."),
) -> None:
    """Projection difference ΔP per row: the row's response projected on the direction minus the model's own
    response to the same prompt (mean over response tokens, block output at --layer). Rows with ΔP > 0 push the
    model along the direction; the dataset's mean ΔP predicts how much fine-tuning on it will."""
    from postern.core.errors import PosternError
    from postern.runner.screen import screen_file, screen_run_folder, screen_table

    if data.is_dir():
        screen = screen_run_folder(data, direction=direction, layer=layer, temperature=temperature or None,
                                   samples_per_question=samples)
        out_console.print(screen_table(screen))
        out_console.print(f"written: {data / 'screen.json'}, {data / 'screen.parquet'}; `postern report {data}` draws it")
        return
    if model is None:
        raise PosternError(f"{data}: give the model whose own responses the rows are compared with (--model)")
    s = screen_file(data, model, direction or "base", out, layer=layer, temperature=temperature, max_new_tokens=max_new_tokens,
                    questions=questions.split(",") if questions else None, judge=judge, judge_model=judge_model,
                    samples_per_question=samples or 50)
    out_console.print(f"{s['rows']} rows, layer {s['layer']}: ΔP {s['delta_mean']:+.4f} [{s['low']:+.4f}, "
                      f"{s['high']:+.4f}] (95%, t), median {s['delta_median']:+.4f}, ΔP > 0 in "
                      f"{100 * s['share_positive']:.0f}% of rows, {100 * s['same_as_own']:.0f}% of rows are what the "
                      f"model would say itself ({s['own_responses']})")
    out_console.print(f"per row: {s['table']}; summary: {s['summary']}")
