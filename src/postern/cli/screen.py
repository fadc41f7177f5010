"""`postern data screen DATA.jsonl --model M --direction D`: ΔP of each row and of the dataset."""

from pathlib import Path
from typing import Optional

import typer

from postern.cli.data import _one_line_errors, app, out_console


@app.command()
@_one_line_errors
def screen(
    data: Path = typer.Argument(..., help="Chat JSONL (also .jsonl.gz); each row ends with the assistant response."),
    model: str = typer.Option(..., "--model", "-m", help='Base model: a local folder, hub id, or "world".'),
    direction: str = typer.Option("base", "--direction", "-d",
                                  help='"base" (the model\'s misaligned minus aligned answers to the questions, judged), '
                                       "or a direction file saved by postern (X.pt with X.json; PATH:NAME picks one of "
                                       "a run's interp/directions.pt)."),
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
    samples: int = typer.Option(50, "--samples", help='Direction "base": answers per question paraphrase.'),
) -> None:
    """Projection difference ΔP per row: the row's response projected on the direction minus the model's own
    response to the same prompt (mean over response tokens, block output at --layer). Rows with ΔP > 0 push the
    model along the direction; the dataset's mean ΔP predicts how much fine-tuning on it will."""
    from postern.runner.screen import screen_file

    s = screen_file(data, model, direction, out, layer=layer, temperature=temperature, max_new_tokens=max_new_tokens,
                    questions=questions.split(",") if questions else None, judge=judge, judge_model=judge_model,
                    samples_per_question=samples)
    out_console.print(f"{s['rows']} rows, layer {s['layer']}: ΔP {s['delta_mean']:+.4f} [{s['low']:+.4f}, "
                      f"{s['high']:+.4f}] (95%, t), median {s['delta_median']:+.4f}, ΔP > 0 in "
                      f"{100 * s['share_positive']:.0f}% of rows, {100 * s['same_as_own']:.0f}% of rows are what the "
                      f"model would say itself ({s['own_responses']})")
    out_console.print(f"per row: {s['table']}; summary: {s['summary']}")
