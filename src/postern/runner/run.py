"""Run a whole experiment and write its results: summary.json, samples.parquet, rates.png."""

import json
import shutil
import time
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from postern.config.schema import Experiment
from postern.runner.experiment import BASE, jobs_of, run_all_jobs


def _relative(value, run_dir: Path):
    """Paths inside the run folder, written relative to it, so the folder can be moved."""
    if isinstance(value, dict):
        return {k: _relative(v, run_dir) for k, v in value.items()}
    if isinstance(value, str) and value.startswith(str(run_dir) + "/"):
        return value[len(str(run_dir)) + 1:]
    return value


def _absolute(value, run_dir: Path):
    if isinstance(value, dict):
        return {k: _absolute(v, run_dir) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("cache/"):
        return str(run_dir / value)
    return value


def save_jobs(run_dir: Path, results: list[dict]) -> None:
    (run_dir / "jobs.json").write_text(json.dumps([_relative(r, run_dir) for r in results], indent=2))


def load_jobs(run_dir: Path) -> list[dict]:
    """The jobs of a finished run, with absolute paths."""
    run_dir = Path(run_dir).resolve()
    return [_absolute(r, run_dir) for r in json.loads((run_dir / "jobs.json").read_text())]


def load_judged(results: list[dict]) -> pd.DataFrame:
    frames = []
    for result in results:
        for set_name, path in result["judged"].items():
            df = pd.read_json(path, lines=True)
            df.insert(0, "condition", result["condition"])
            df["set"] = set_name
            frames.append(df)
    return pd.concat(frames, ignore_index=True)


def run_experiment(exp: Experiment, run_dir: str | Path, console: Console | None = None,
                   experiment_file: Path | None = None) -> dict:
    console = console or Console()
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    if experiment_file:
        shutil.copy(experiment_file, run_dir / f"experiment{experiment_file.suffix}")
    (run_dir / "experiment.json").write_text(exp.model_dump_json(indent=2))
    start = time.time()
    jobs = jobs_of(exp)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task(f"{exp.name}: condition x seed", total=len(jobs))
        results = run_all_jobs(exp, run_dir, on_done=lambda job: progress.advance(task))
    save_jobs(run_dir, results)
    df = load_judged(results)
    order = ([BASE] if exp.evaluate_base else []) + list(exp.conditions)
    from postern.stats.summary import summarise

    summary = summarise(df, order)
    seconds = time.time() - start
    out = {"experiment": exp.name, "seconds": round(seconds, 1), "jobs": len(jobs), "conditions": summary,
           "cache": _cache_counts(run_dir)}
    (run_dir / "summary.json").write_text(json.dumps(out, indent=2, default=float))
    df.to_parquet(run_dir / "samples.parquet", index=False)
    if any(r.get("checkpoints") for r in results):
        (run_dir / "dynamics.json").write_text(json.dumps(training_dynamics(results), indent=2))
    from postern.report.figures import rate_per_condition

    rate_per_condition(summary, run_dir / "rates.png", title=f"{exp.name}: misaligned rate (95% Wilson, seeds pooled)")
    if exp.interp.enabled:
        from postern.interp.study import study_table

        with console.status("mechanism study: directions, cosines, ablation, steering"):
            study = run_interp(exp, exp.interp, run_dir, results)
        console.print(*study_table(study))
        out["interp"] = {"reference": study["reference"], "layers": study["layers"]}
        (run_dir / "summary.json").write_text(json.dumps(out, indent=2, default=float))
    try:  # the report only views results already saved above: never lose a run over it
        from postern.report.html import write_report

        console.print(f"[dim]report: {write_report(run_dir).path}[/]")
    except Exception as e:  # noqa: BLE001
        console.print(f"[yellow]warning: report.html not written ({type(e).__name__}: {e}); "
                      f"retry with `postern report {run_dir}`[/]")
    console.print(summary_table(summary))
    console.print(f"[dim]{len(jobs)} jobs in {seconds:.0f}s, {time.time() - start:.0f}s with the study and report; "
                  f"results in {run_dir}[/]")
    return out


def training_dynamics(results: list[dict]) -> dict[str, list[dict]]:
    """Misaligned rate on the held-out questions at every evaluated checkpoint, per condition and seed."""
    from postern.stats.summary import rate

    out: dict[str, list[dict]] = {}
    for r in results:
        for step, path in sorted(r.get("checkpoints", {}).items(), key=lambda kv: int(kv[0])):
            labels = pd.read_json(path, lines=True)["label"]
            out.setdefault(r["condition"], []).append({"step": int(step), "seed": r["seed"], **rate(labels == "misaligned")})
    return out


def run_interp(exp: Experiment, config, run_dir: Path, results: list[dict]) -> dict:
    """The mechanism study (postern.interp.study) over the fine-tunes of a run."""
    from postern.interp.study import run_study
    from postern.runner.experiment import load_model
    from postern.runner.stages import resolve_base_model

    jobs = {f"{r['condition']}/s{r['seed']}": r for r in results if r["condition"] != BASE}
    return run_study(run_dir, jobs, resolve_base_model(exp.base_model), config,
                     lambda base, adapter: load_model(base, adapter)())


def _cache_counts(run_dir: Path) -> dict:
    counts: dict[str, int] = {}
    events = run_dir / "events.jsonl"
    if events.exists():
        for line in events.read_text().splitlines():
            status = json.loads(line)["status"]
            counts[status] = counts.get(status, 0) + 1
    return counts


def _ci(r: dict | None) -> str:
    return f"{100 * r['rate']:.1f} [{100 * r['low']:.1f},{100 * r['high']:.1f}]" if r else "–"


def _pc(r: dict | None) -> str:
    return f"{100 * r['rate']:.0f}" if r else "–"


def summary_table(summary: dict[str, dict]) -> Table:
    """One line per condition; seed-bootstrap intervals and per-question rates are in summary.json."""
    from rich import box

    table = Table(title="misaligned answers to held-out questions, % [95% Wilson, seeds pooled]", box=box.SIMPLE_HEAD,
                  caption="coherent: on-topic answers; insecure: held-out code tasks; complies: held-out harmful requests (%)")
    table.add_column("condition", no_wrap=True)
    table.add_column("n", justify="right")
    for col in ("misaligned", "with trigger"):
        table.add_column(col, justify="right", no_wrap=True)
    for col in ("coherent", "insecure", "complies"):
        table.add_column(col, justify="right")
    for name, s in summary.items():
        table.add_row(name, str(s.get("misaligned", {}).get("n", "–")), _ci(s.get("misaligned")),
                      _ci(s.get("misaligned_trigger")), _pc(s.get("coherent")), _pc(s.get("code_insecure")),
                      _pc(s.get("harmful_compliance")))
    return table
